//! The relay's counters, served as Prometheus text on `GET /metrics` (names start with
//! `mpc_relay_`). Counters count what this relay process did; gauges describe the store
//! (with a shared store, every relay reports the same sessions) or this process.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// What a store reports about the sessions it holds.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreStats {
    /// Sessions that exist.
    pub sessions: u64,
    /// Seats joined in them.
    pub seats: u64,
    /// Messages queued.
    pub queued_messages: u64,
    /// Payload bytes queued.
    pub queued_bytes: u64,
}

/// The counters of one relay process.
#[derive(Debug, Default)]
pub struct Metrics {
    sessions_created: AtomicU64,
    sessions_finished: Mutex<BTreeMap<&'static str, u64>>,
    sessions_complete: AtomicU64,
    parties_lost: AtomicU64,
    seats_reclaimed: AtomicU64,
    messages_relayed: AtomicU64,
    bytes_relayed: AtomicU64,
    messages_delivered: AtomicU64,
    bytes_delivered: AtomicU64,
    long_polls_waiting: AtomicI64,
    refusals: Mutex<BTreeMap<u16, u64>>,
    store_errors: AtomicU64,
}

/// Counts a long-poll as waiting until dropped.
pub struct Waiting<'a>(&'a Metrics);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.long_polls_waiting.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The process-wide figures [`Metrics::render`] adds to the counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessFigures {
    /// Connections open.
    pub connections_open: usize,
    /// Connections closed because they were idle or to make room.
    pub connections_shed: u64,
    /// The connection cap.
    pub connections_max: usize,
    /// Bytes charged to the memory budget.
    pub budget_used: usize,
    /// The memory budget.
    pub budget_limit: usize,
}

impl Metrics {
    /// A session was created.
    pub fn session_created(&self) {
        self.sessions_created.fetch_add(1, Ordering::Relaxed);
    }

    /// A session ended (`how`: deleted, expired, shutdown).
    pub fn session_finished(&self, how: &'static str) {
        let mut map = self
            .sessions_finished
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *map.entry(how).or_default() += 1;
    }

    /// Every party of a session has joined.
    pub fn session_complete(&self) {
        self.sessions_complete.fetch_add(1, Ordering::Relaxed);
    }

    /// A party was reported lost.
    pub fn party_lost(&self) {
        self.parties_lost.fetch_add(1, Ordering::Relaxed);
    }

    /// A lost seat was claimed by a new client.
    pub fn seat_reclaimed(&self) {
        self.seats_reclaimed.fetch_add(1, Ordering::Relaxed);
    }

    /// A message of `bytes` was accepted and queued.
    pub fn relayed(&self, bytes: usize) {
        self.messages_relayed.fetch_add(1, Ordering::Relaxed);
        self.bytes_relayed
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A message of `bytes` was handed to its receiver.
    pub fn delivered(&self, bytes: usize) {
        self.messages_delivered.fetch_add(1, Ordering::Relaxed);
        self.bytes_delivered
            .fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A long-poll starts waiting; it stops when the guard is dropped.
    pub fn waiting(&self) -> Waiting<'_> {
        self.long_polls_waiting.fetch_add(1, Ordering::Relaxed);
        Waiting(self)
    }

    /// A request was refused with `status`.
    pub fn refused(&self, status: u16) {
        let mut map = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
        *map.entry(status).or_default() += 1;
    }

    /// The store failed an operation.
    pub fn store_error(&self) {
        self.store_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Store errors so far.
    pub fn store_errors(&self) -> u64 {
        self.store_errors.load(Ordering::Relaxed)
    }

    /// The Prometheus text exposition of everything (`store`: `None` when the store could
    /// not be asked; its gauges are then left out).
    pub fn render(&self, store: Option<StoreStats>, process: ProcessFigures) -> String {
        let mut out = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, samples: &[(String, String)]| {
            let _ = writeln!(out, "# HELP mpc_relay_{name} {help}");
            let _ = writeln!(out, "# TYPE mpc_relay_{name} {kind}");
            for (labels, value) in samples {
                let _ = writeln!(out, "mpc_relay_{name}{labels} {value}");
            }
        };
        let one = |v: u64| vec![(String::new(), v.to_string())];
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        if let Some(stats) = store {
            metric(
                "sessions_active",
                "gauge",
                "Sessions in the store.",
                &one(stats.sessions),
            );
            metric(
                "seats",
                "gauge",
                "Seats joined in active sessions.",
                &one(stats.seats),
            );
            metric(
                "messages_queued",
                "gauge",
                "Messages queued in the store, not yet acknowledged.",
                &one(stats.queued_messages),
            );
            metric(
                "bytes_queued",
                "gauge",
                "Payload bytes queued in the store, not yet acknowledged.",
                &one(stats.queued_bytes),
            );
        }
        metric(
            "sessions_created_total",
            "counter",
            "Sessions created by this relay.",
            &one(get(&self.sessions_created)),
        );
        let finished: Vec<(String, String)> = {
            let map = self
                .sessions_finished
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            ["deleted", "expired", "shutdown"]
                .iter()
                .map(|how| {
                    (
                        format!("{{reason=\"{how}\"}}"),
                        map.get(how).copied().unwrap_or(0).to_string(),
                    )
                })
                .collect()
        };
        metric(
            "sessions_finished_total",
            "counter",
            "Sessions ended by this relay, by reason.",
            &finished,
        );
        metric(
            "sessions_complete_total",
            "counter",
            "Sessions in which every party joined (seen by this relay).",
            &one(get(&self.sessions_complete)),
        );
        metric(
            "parties_lost_total",
            "counter",
            "Parties reported lost (silent for --lost-after).",
            &one(get(&self.parties_lost)),
        );
        metric(
            "seats_reclaimed_total",
            "counter",
            "Lost seats claimed by a new client.",
            &one(get(&self.seats_reclaimed)),
        );
        metric(
            "messages_relayed_total",
            "counter",
            "Messages accepted and queued by this relay.",
            &one(get(&self.messages_relayed)),
        );
        metric(
            "bytes_relayed_total",
            "counter",
            "Payload bytes accepted and queued by this relay.",
            &one(get(&self.bytes_relayed)),
        );
        metric(
            "messages_delivered_total",
            "counter",
            "Messages handed to their receiver by this relay (retries included).",
            &one(get(&self.messages_delivered)),
        );
        metric(
            "bytes_delivered_total",
            "counter",
            "Payload bytes handed to their receiver by this relay (retries included).",
            &one(get(&self.bytes_delivered)),
        );
        metric(
            "long_polls_waiting",
            "gauge",
            "Receives waiting for a message right now.",
            &one(self.long_polls_waiting.load(Ordering::Relaxed).max(0) as u64),
        );
        let refusals: Vec<(String, String)> = {
            let map = self.refusals.lock().unwrap_or_else(|p| p.into_inner());
            map.iter()
                .map(|(status, n)| (format!("{{status=\"{status}\"}}"), n.to_string()))
                .collect()
        };
        metric(
            "refusals_total",
            "counter",
            "Requests answered with an error status, by status.",
            &refusals,
        );
        metric(
            "store_errors_total",
            "counter",
            "Operations the session store failed (e.g. Redis unreachable).",
            &one(get(&self.store_errors)),
        );
        metric(
            "connections_open",
            "gauge",
            "Client connections open.",
            &one(process.connections_open as u64),
        );
        metric(
            "connections_max",
            "gauge",
            "Most client connections served at once.",
            &one(process.connections_max as u64),
        );
        metric(
            "connections_shed_total",
            "counter",
            "Connections closed because they were idle or to make room for new ones.",
            &one(process.connections_shed),
        );
        metric(
            "memory_budget_used_bytes",
            "gauge",
            "Bytes charged to the relay's memory budget (--max-total).",
            &one(process.budget_used as u64),
        );
        metric(
            "memory_budget_bytes",
            "gauge",
            "The relay's memory budget (--max-total).",
            &one(process.budget_limit as u64),
        );
        out
    }
}
