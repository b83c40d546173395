//! The in-memory store's data: a session with its seats and per-pair mailboxes, and the
//! bookkeeping that releases their memory budget.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::net::mailbox::Mailbox;
use crate::relay::budget::Budget;
use crate::relay::sessions::{
    Closed, JoinRequest, MESSAGE_OVERHEAD, Reason, Refusal, Seat, SessionInfo, TokenDigest,
    random_id,
};

pub(super) struct SeatInfo {
    pub(super) client: Option<String>,
    pub(super) token: Option<TokenDigest>,
    pub(super) last_seen: Instant,
    /// Counts the clients that held the seat: a receive waiting for this seat's messages
    /// is told when a new client reclaimed it.
    pub(super) generation: u64,
    /// Whether this holder's loss was already logged.
    pub(super) lost_logged: bool,
}

impl SeatInfo {
    /// Whether the request comes from the seat's holder.
    pub(super) fn held_by(&self, req: &JoinRequest) -> bool {
        match (&self.token, &req.token, &self.client, &req.client) {
            (Some(mine), Some(theirs), _, _) => mine.matches(theirs),
            (Some(_), None, _, _) => false,
            (None, _, Some(mine), Some(theirs)) => mine == theirs,
            (None, _, Some(_), None) => req.token.is_none(),
            (None, _, None, _) => true,
        }
    }

    /// Whether a client claimed the seat (so that silence means it is lost).
    pub(super) fn claimed(&self) -> bool {
        self.client.is_some() || self.token.is_some()
    }
}

pub(super) struct Pair {
    /// Queued messages and the number the next one gets.
    pub(super) mailbox: Mailbox,
    /// Wakes receivers long-polling this pair.
    pub(super) notify: Arc<Notify>,
}

impl Pair {
    pub(super) fn new() -> Self {
        Self {
            mailbox: Mailbox::new(),
            notify: Arc::new(Notify::new()),
        }
    }
}

pub(super) struct Inner {
    pub(super) parties: Option<u32>,
    pub(super) seats: BTreeMap<Seat, SeatInfo>,
    /// Seats in the order they first joined: parties decide whether a dealer takes part by
    /// whether it joined before the last party, and all of them must see the same order.
    pub(super) join_order: Vec<Seat>,
    pub(super) pairs: HashMap<(Seat, Seat), Pair>,
    pub(super) queued_bytes: usize,
    pub(super) queued_messages: usize,
    /// Everything this session has charged to the total budget.
    pub(super) charged: usize,
    pub(super) last_activity: Instant,
    pub(super) closed: Option<Closed>,
    pub(super) complete_logged: bool,
}

impl Inner {
    /// Removes the oldest message of `key`'s queue, releasing its memory.
    pub(super) fn pop_front(&mut self, key: (Seat, Seat), budget: &Budget) -> Option<(u64, Bytes)> {
        let pair = self.pairs.get_mut(&key)?;
        let (seq, msg) = pair.mailbox.pop_front()?;
        self.queued_bytes -= msg.len();
        self.queued_messages -= 1;
        let cost = msg.len() + MESSAGE_OVERHEAD;
        self.charged -= cost;
        budget.release(cost);
        Some((seq, msg))
    }

    /// Empties the pairs from `seat` (and, if `both`, to it) and starts their numbering
    /// again: a new client of the seat starts from message 0, and what someone else sent
    /// in its name before it claimed the seat is dropped.
    pub(super) fn reset_pairs(&mut self, seat: Seat, both: bool, budget: &Budget) {
        let keys: Vec<(Seat, Seat)> = self
            .pairs
            .keys()
            .filter(|(from, to)| *from == seat || (both && *to == seat))
            .copied()
            .collect();
        for key in keys {
            while self.pop_front(key, budget).is_some() {}
            if let Some(pair) = self.pairs.get_mut(&key) {
                pair.mailbox.restart();
                pair.notify.notify_waiters();
            }
        }
    }

    /// Refuses a request for `seat` that lacks the token the seat was claimed with.
    pub(super) fn authorize(
        &self,
        session: &str,
        seat: Seat,
        token: Option<&TokenDigest>,
        what: &str,
    ) -> Result<(), Refusal> {
        match self.seats.get(&seat).and_then(|s| s.token.as_ref()) {
            None => Ok(()),
            Some(claimed) if token.is_some_and(|t| t.matches(claimed)) => Ok(()),
            Some(_) => Err(Reason::NeedsToken {
                session: session.to_string(),
                seat,
                what: what.to_string(),
            }
            .into()),
        }
    }

    pub(super) fn check_seat(&self, session: &str, seat: Seat) -> Result<(), Refusal> {
        match self.parties {
            Some(parties) if !seat.fits(Some(parties)) => Err(Reason::NoSuchSeat {
                session: session.to_string(),
                seat,
                parties,
            }
            .into()),
            _ => Ok(()),
        }
    }
}

/// One session: seats and mailboxes.
pub(super) struct Session {
    pub(super) name: String,
    pub(super) epoch: String,
    pub(super) created: Instant,
    pub(super) inner: Mutex<Inner>,
    pub(super) waiters: AtomicUsize,
}

/// Counts a request waiting in a session (such a session does not expire meanwhile).
pub(super) struct WaiterGuard<'a> {
    pub(super) session: &'a Session,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.session.waiters.fetch_sub(1, Ordering::AcqRel);
        self.session.lock().last_activity = Instant::now();
    }
}

/// The state of a long-polled message.
pub(super) enum Poll {
    Ready(Bytes),
    Waiting { recheck_at: Option<Instant> },
}

impl Session {
    pub(super) fn new(name: String, charged: usize) -> Self {
        let now = Instant::now();
        Self {
            name,
            epoch: random_id(),
            created: now,
            inner: Mutex::new(Inner {
                parties: None,
                seats: BTreeMap::new(),
                join_order: Vec::new(),
                pairs: HashMap::new(),
                queued_bytes: 0,
                queued_messages: 0,
                charged,
                last_activity: now,
                closed: None,
                complete_logged: false,
            }),
            waiters: AtomicUsize::new(0),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // Nothing panics while holding the lock; should it ever, the data is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(super) fn waiter(&self) -> WaiterGuard<'_> {
        self.waiters.fetch_add(1, Ordering::AcqRel);
        WaiterGuard { session: self }
    }

    pub(super) fn info(&self) -> SessionInfo {
        let inner = self.lock();
        SessionInfo {
            session: self.name.clone(),
            parties: inner.parties,
            seats: inner.seats.keys().map(|s| s.to_string()).collect(),
            join_order: inner.join_order.iter().map(|s| s.to_string()).collect(),
            queued_messages: inner.queued_messages,
            queued_bytes: inner.queued_bytes,
            age_secs: self.created.elapsed().as_secs(),
            idle_secs: inner.last_activity.elapsed().as_secs(),
        }
    }

    /// Ends the session: frees its memory and wakes its waiters.
    pub(super) fn close(&self, why: Closed, budget: &Budget) {
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return;
        }
        inner.closed = Some(why);
        for pair in inner.pairs.values() {
            pair.notify.notify_waiters();
        }
        inner.pairs.clear();
        inner.seats.clear();
        inner.join_order.clear();
        inner.queued_bytes = 0;
        inner.queued_messages = 0;
        budget.release(inner.charged);
        inner.charged = 0;
    }
}
