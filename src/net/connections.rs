//! Open connections of a server: how many, which are idle, and which to close.
//!
//! A connection counts as idle while none of its requests is being answered (a long-poll
//! is being answered, so it is busy). Idle connections are closed after the idle timeout,
//! and when a new connection would exceed the cap, the connection idle the longest is
//! closed to make room; only when every connection is busy is the newcomer turned away.
//! This keeps clients that open connections and send nothing (or stop mid-way) from
//! locking everyone else out, without ever cutting a request that is being served.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

/// Limits on the connections of one server.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// A connection without a request in progress for this long is closed.
    pub idle_timeout: Duration,
    /// Most connections open at once.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// File descriptors kept free for everything but client connections (listener, store
/// connections, files, outgoing requests).
const RESERVED_FDS: u64 = 64;

/// Raises this process's open-file limit to its hard limit and returns how many client
/// connections fit under it, at most `wanted`.
pub fn fit_to_fd_limit(wanted: usize) -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
    {
        limit.current = Some(maximum);
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit.current = Some(current);
        }
    }
    match limit.current {
        Some(fds) => {
            let room = fds.saturating_sub(RESERVED_FDS).max(1);
            wanted.min(usize::try_from(room).unwrap_or(usize::MAX))
        }
        None => wanted,
    }
}

struct Conn {
    /// Requests being answered.
    active: usize,
    /// When the last request finished (or the connection opened).
    idle_since: Instant,
    /// Tells the connection's task to close it.
    close: Arc<Notify>,
}

/// The open connections of one server.
pub struct Connections {
    limits: ConnectionLimits,
    conns: Mutex<HashMap<u64, Conn>>,
    next_id: AtomicU64,
    shed: AtomicU64,
}

/// A connection admitted by [`Connections::admit`]; unregisters it when dropped.
pub struct Admitted {
    connections: Arc<Connections>,
    id: u64,
    /// Notified when the server wants this connection closed (idle too long, or shed).
    pub close: Arc<Notify>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.connections.lock().remove(&self.id);
    }
}

/// A request in progress on a connection: the connection is busy until it is dropped.
pub struct Busy {
    connections: Arc<Connections>,
    id: u64,
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Some(conn) = self.connections.lock().get_mut(&self.id) {
            conn.active = conn.active.saturating_sub(1);
            conn.idle_since = Instant::now();
        }
    }
}

impl Connections {
    /// No connections yet.
    pub fn new(limits: ConnectionLimits) -> Arc<Self> {
        Arc::new(Self {
            limits,
            conns: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
            shed: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<u64, Conn>> {
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The limits in force.
    pub fn limits(&self) -> ConnectionLimits {
        self.limits
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.lock().len()
    }

    /// Connections closed so far to make room for new ones or because they were idle.
    pub fn shed(&self) -> u64 {
        self.shed.load(Ordering::Relaxed)
    }

    /// Admits a new connection, closing the longest-idle one if the cap is reached;
    /// `None` when every connection is busy (the newcomer should be turned away).
    pub fn admit(self: &Arc<Self>) -> Option<Admitted> {
        let mut conns = self.lock();
        if conns.len() >= self.limits.max_connections {
            let oldest = conns
                .iter()
                .filter(|(_, c)| c.active == 0)
                .min_by_key(|(_, c)| c.idle_since)
                .map(|(id, _)| *id)?;
            if let Some(conn) = conns.remove(&oldest) {
                conn.close.notify_one();
                self.shed.fetch_add(1, Ordering::Relaxed);
            }
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let close = Arc::new(Notify::new());
        conns.insert(
            id,
            Conn {
                active: 0,
                idle_since: Instant::now(),
                close: close.clone(),
            },
        );
        Some(Admitted {
            connections: self.clone(),
            id,
            close,
        })
    }

    /// Marks connection `admitted` busy until the returned guard is dropped.
    pub fn busy(self: &Arc<Self>, id: u64) -> Busy {
        if let Some(conn) = self.lock().get_mut(&id) {
            conn.active += 1;
        }
        Busy {
            connections: self.clone(),
            id,
        }
    }

    /// Closes the connections idle for longer than the idle timeout.
    pub fn close_idle(&self) {
        let timeout = self.limits.idle_timeout;
        let mut conns = self.lock();
        let idle: Vec<u64> = conns
            .iter()
            .filter(|(_, c)| c.active == 0 && c.idle_since.elapsed() > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in idle {
            if let Some(conn) = conns.remove(&id) {
                conn.close.notify_one();
                self.shed.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Closes idle connections periodically, for as long as it runs.
    pub async fn sweep(self: Arc<Self>) {
        let period =
            (self.limits.idle_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(5));
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.close_idle();
        }
    }
}

impl Admitted {
    /// This connection's id, for [`Connections::busy`].
    pub fn id(&self) -> u64 {
        self.id
    }
}
