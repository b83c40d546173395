//! Sessions of the relay: seats, per-pair mailboxes with sequence numbers, and the memory
//! accounting that keeps the relay within its limits.
//!
//! Locking: the registry's mutex guards only the map from names to sessions; each session
//! has its own mutex. Both are std mutexes held for short, synchronous sections (never across
//! an `.await`); the lock order is registry, then session.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use hyper::StatusCode;
use serde::Serialize;
use tokio::sync::Notify;

use super::RelayConfig;

/// Bookkeeping charged against the total budget for every queued message, on top of its
/// payload: its queue slot (sequence number and handle, with the queue's spare capacity)
/// and the allocator's header and rounding of its own copy of the body.
pub const MESSAGE_OVERHEAD: usize = 128;
/// Bookkeeping charged for a session (its name, maps, mutex).
pub const SESSION_OVERHEAD: usize = 4096;
/// Bookkeeping charged for a seat (including a client id of at most 128 bytes).
pub const SEAT_OVERHEAD: usize = 256;
/// Bookkeeping charged for an ordered pair's mailbox.
pub const PAIR_OVERHEAD: usize = 256;

/// A seat of a session: a numbered party or the dealer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Seat {
    /// A computing party, by number.
    Party(u32),
    /// The trusted dealer.
    Dealer,
}

impl Seat {
    /// Parses a seat from a path segment: a number or the literal `dealer`.
    pub fn parse(raw: &str) -> Result<Seat, String> {
        if raw == "dealer" {
            return Ok(Seat::Dealer);
        }
        if !raw.is_empty()
            && raw.len() <= 10
            && raw.bytes().all(|b| b.is_ascii_digit())
            && let Ok(n) = raw.parse::<u32>()
        {
            return Ok(Seat::Party(n));
        }
        Err(format!(
            "party must be a number from 0 to {} or 'dealer', got '{}'",
            u32::MAX,
            shorten(raw)
        ))
    }

    /// How messages name this seat: "party 1", "the dealer".
    pub fn describe(self) -> String {
        match self {
            Seat::Party(n) => format!("party {n}"),
            Seat::Dealer => "the dealer".to_string(),
        }
    }
}

impl fmt::Display for Seat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Seat::Party(n) => write!(f, "{n}"),
            Seat::Dealer => f.write_str("dealer"),
        }
    }
}

/// Cuts a client-supplied string for echoing it in an error message.
pub fn shorten(raw: &str) -> String {
    const MAX: usize = 64;
    if raw.chars().count() <= MAX {
        raw.to_string()
    } else {
        let cut: String = raw.chars().take(MAX).collect();
        format!("{cut}...")
    }
}

/// A request the relay refuses: the status and a sentence saying why.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// HTTP status to answer with.
    pub status: StatusCode,
    /// Why, for the response body.
    pub message: String,
}

impl Refusal {
    /// A refusal with `status` and `message`.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
}

/// The byte budget shared by all sessions (the `max_total` limit).
#[derive(Debug)]
pub struct Budget {
    used: AtomicUsize,
    limit: usize,
}

impl Budget {
    fn new(limit: usize) -> Self {
        Self {
            used: AtomicUsize::new(0),
            limit,
        }
    }

    /// Bytes currently charged.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }

    /// The limit.
    pub fn limit(&self) -> usize {
        self.limit
    }

    fn try_charge(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    fn release(&self, n: usize) {
        let _ = self
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                Some(used.saturating_sub(n))
            });
    }

    /// Reserves `n` bytes, or `None` if that would exceed the limit.
    pub fn reserve(&self, n: usize) -> Option<Reservation<'_>> {
        // Build the reservation only once the charge succeeded: dropping one releases its
        // amount, so a reservation made for a failed charge would release bytes never
        // charged and let the total grow past its limit.
        if !self.try_charge(n) {
            return None;
        }
        Some(Reservation {
            budget: self,
            amount: n,
        })
    }

    /// The message explaining that the total limit is reached.
    pub fn exhausted(&self) -> Refusal {
        Refusal::new(
            StatusCode::TOO_MANY_REQUESTS,
            format!(
                "the relay's total memory limit ({}) is reached; retry later",
                human_bytes(self.limit)
            ),
        )
    }
}

/// Bytes reserved from the [`Budget`]; released when dropped unless kept.
#[derive(Debug)]
pub struct Reservation<'a> {
    budget: &'a Budget,
    amount: usize,
}

impl Reservation<'_> {
    /// Releases whatever exceeds `n` bytes.
    pub fn shrink_to(&mut self, n: usize) {
        if n < self.amount {
            self.budget.release(self.amount - n);
            self.amount = n;
        }
    }

    /// Turns the reservation into a permanent charge (released later by its owner).
    fn keep(self) -> usize {
        let amount = self.amount;
        std::mem::forget(self);
        amount
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.budget.release(self.amount);
    }
}

/// Formats a byte count for humans: "16 MiB", "1000 bytes".
pub fn human_bytes(n: usize) -> String {
    const UNITS: [(usize, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
    for (size, unit) in UNITS {
        if n >= size && n.is_multiple_of(size) {
            return format!("{} {unit}", n / size);
        }
    }
    format!("{n} bytes")
}

/// Why a session stopped existing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// `DELETE /sessions/{session}`.
    Deleted,
    /// No request for the session time-to-live.
    Expired,
    /// The relay is stopping.
    Shutdown,
}

impl Closed {
    /// The answer to a request that was waiting in (or raced with) the closed session.
    pub fn refusal(self, session: &str) -> Refusal {
        match self {
            Closed::Deleted => Refusal::new(
                StatusCode::GONE,
                format!(
                    "session deleted: '{}' was ended on request",
                    shorten(session)
                ),
            ),
            Closed::Expired => Refusal::new(
                StatusCode::GONE,
                format!("session expired: '{}' was idle too long", shorten(session)),
            ),
            Closed::Shutdown => Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "the relay is shutting down",
            ),
        }
    }
}

struct SeatInfo {
    client: Option<String>,
    last_seen: Instant,
}

struct Pair {
    /// Queued messages with their sequence numbers, oldest first, numbers consecutive.
    queue: VecDeque<(u64, Bytes)>,
    /// The number the next message sent on this pair gets.
    next_seq: u64,
    /// Payload bytes queued.
    bytes: usize,
    /// Wakes receivers long-polling this pair.
    notify: Arc<Notify>,
}

impl Pair {
    fn new() -> Self {
        Self {
            queue: VecDeque::new(),
            next_seq: 0,
            bytes: 0,
            notify: Arc::new(Notify::new()),
        }
    }
}

struct SessionInner {
    seats: BTreeMap<Seat, SeatInfo>,
    /// Seats in the order they first joined: parties decide whether a dealer takes part by
    /// whether it joined before the last party, and all of them must see the same order.
    join_order: Vec<Seat>,
    pairs: HashMap<(Seat, Seat), Pair>,
    queued_bytes: usize,
    queued_messages: usize,
    /// Everything this session has charged to the total budget.
    charged: usize,
    last_activity: Instant,
    closed: Option<Closed>,
}

impl SessionInner {
    /// Removes the oldest message of `key`'s queue, releasing its memory.
    fn pop_front(&mut self, key: (Seat, Seat), budget: &Budget) -> Option<(u64, Bytes)> {
        let pair = self.pairs.get_mut(&key)?;
        let (seq, msg) = pair.queue.pop_front()?;
        pair.bytes -= msg.len();
        self.queued_bytes -= msg.len();
        self.queued_messages -= 1;
        let cost = msg.len() + MESSAGE_OVERHEAD;
        self.charged -= cost;
        budget.release(cost);
        Some((seq, msg))
    }
}

/// What happened to a sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued with this sequence number.
    Queued(u64),
    /// A retry of a message already queued (or delivered): ignored.
    Duplicate(u64),
    /// The session was closed meanwhile; the caller may retry in a fresh session.
    Closed,
}

/// The sequence check done before reading a message body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeqStatus {
    /// The number expected next (or no number given).
    Next,
    /// Already received.
    Duplicate,
    /// Beyond the next expected number.
    Gap {
        /// The number expected next.
        expected: u64,
    },
    /// The session was closed meanwhile.
    Closed,
}

/// The state of a long-polled message.
pub enum Poll {
    /// The message is there.
    Ready(Bytes),
    /// Not there yet; wait for the pair's notification (and re-check for a lost sender at
    /// `recheck_at`, if set).
    Waiting {
        /// When the sender would count as lost if it stays silent.
        recheck_at: Option<Instant>,
    },
    /// The request cannot be served (lost sender, message already acknowledged, closed).
    Refused(Refusal),
}

/// One session: seats and mailboxes.
pub struct Session {
    name: String,
    created: Instant,
    inner: Mutex<SessionInner>,
    waiters: AtomicUsize,
}

/// Counts a request waiting in a session (such a session does not expire meanwhile).
pub struct WaiterGuard<'a> {
    session: &'a Session,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.session.waiters.fetch_sub(1, Ordering::AcqRel);
        self.session.lock().last_activity = Instant::now();
    }
}

/// A JSON description of a session, for `GET /sessions` and `GET /sessions/{session}`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// The session name.
    pub session: String,
    /// Joined seats: numbers, then "dealer".
    pub seats: Vec<String>,
    /// The same seats in the order they first joined.
    pub join_order: Vec<String>,
    /// Messages queued in all mailboxes.
    pub queued_messages: usize,
    /// Payload bytes queued in all mailboxes.
    pub queued_bytes: usize,
    /// Seconds since the session was created.
    pub age_secs: u64,
    /// Seconds since the last request naming the session.
    pub idle_secs: u64,
}

impl Session {
    fn new(name: String, charged: usize) -> Self {
        let now = Instant::now();
        Self {
            name,
            created: now,
            inner: Mutex::new(SessionInner {
                seats: BTreeMap::new(),
                join_order: Vec::new(),
                pairs: HashMap::new(),
                queued_bytes: 0,
                queued_messages: 0,
                charged,
                last_activity: now,
                closed: None,
            }),
            waiters: AtomicUsize::new(0),
        }
    }

    /// The session name.
    pub fn name(&self) -> &str {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, SessionInner> {
        // Nothing panics while holding the lock; should it ever, the data is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Registers a waiting request until the guard is dropped.
    pub fn waiter(&self) -> WaiterGuard<'_> {
        self.waiters.fetch_add(1, Ordering::AcqRel);
        WaiterGuard { session: self }
    }

    /// Records a request naming the session and, if given, the seat that made it.
    pub fn touch(&self, seat: Option<Seat>) {
        let now = Instant::now();
        let mut inner = self.lock();
        inner.last_activity = now;
        if let Some(info) = seat.and_then(|s| inner.seats.get_mut(&s)) {
            info.last_seen = now;
        }
    }

    /// Claims `seat` for `client` (or joins anonymously). `Ok(None)` if the session was
    /// closed meanwhile.
    pub fn join(
        &self,
        seat: Seat,
        client: Option<&str>,
        budget: &Budget,
    ) -> Result<Option<()>, Refusal> {
        let now = Instant::now();
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return Ok(None);
        }
        inner.last_activity = now;
        if let Some(info) = inner.seats.get_mut(&seat) {
            match (&info.client, client) {
                (Some(owner), Some(id)) if owner != id => {
                    return Err(Refusal::new(
                        StatusCode::CONFLICT,
                        format!(
                            "seat {seat} of session '{}' is already taken by another client",
                            shorten(&self.name)
                        ),
                    ));
                }
                (None, Some(id)) => info.client = Some(id.to_string()),
                _ => {}
            }
            info.last_seen = now;
            return Ok(Some(()));
        }
        let Some(reservation) = budget.reserve(SEAT_OVERHEAD) else {
            return Err(budget.exhausted());
        };
        inner.charged += reservation.keep();
        inner.join_order.push(seat);
        inner.seats.insert(
            seat,
            SeatInfo {
                client: client.map(str::to_string),
                last_seen: now,
            },
        );
        tracing::info!(
            session = %self.name,
            seat = %seat,
            client = client.is_some(),
            "seat joined"
        );
        Ok(Some(()))
    }

    /// The joined numeric seats, in order.
    pub fn participants(&self) -> Vec<u32> {
        self.lock()
            .seats
            .keys()
            .filter_map(|s| match s {
                Seat::Party(n) => Some(*n),
                Seat::Dealer => None,
            })
            .collect()
    }

    /// Checks a send's sequence number before its body is read.
    pub fn check_seq(&self, from: Seat, to: Seat, seq: Option<u64>) -> SeqStatus {
        let inner = self.lock();
        if inner.closed.is_some() {
            return SeqStatus::Closed;
        }
        let next = inner.pairs.get(&(from, to)).map_or(0, |p| p.next_seq);
        match seq {
            None => SeqStatus::Next,
            Some(n) if n < next => SeqStatus::Duplicate,
            Some(n) if n == next => SeqStatus::Next,
            Some(_) => SeqStatus::Gap { expected: next },
        }
    }

    /// Queues `body` from `from` to `to`; `reservation` covers the body plus
    /// [`MESSAGE_OVERHEAD`] and becomes the message's charge.
    pub fn enqueue(
        &self,
        registry: &Registry,
        from: Seat,
        to: Seat,
        seq: Option<u64>,
        body: Bytes,
        reservation: Reservation<'_>,
    ) -> Result<SendOutcome, Refusal> {
        let (config, budget) = (&registry.config, &registry.budget);
        let len = body.len();
        let mut inner = self.lock();
        if inner.closed.is_some() {
            return Ok(SendOutcome::Closed);
        }
        inner.last_activity = Instant::now();
        let next = inner.pairs.get(&(from, to)).map_or(0, |p| p.next_seq);
        match seq {
            Some(n) if n < next => return Ok(SendOutcome::Duplicate(n)),
            Some(n) if n > next => return Err(gap_refusal(from, to, n, next)),
            _ => {}
        }
        let queued = inner.pairs.get(&(from, to)).map_or(0, |p| p.bytes);
        if queued + len > config.max_queue {
            return Err(Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "queue limit: the queue from {} to {} holds {} (limit {}); retry later",
                    from.describe(),
                    to.describe(),
                    human_bytes(queued),
                    human_bytes(config.max_queue)
                ),
            ));
        }
        if inner.queued_bytes + len > config.max_session {
            return Err(Refusal::new(
                StatusCode::TOO_MANY_REQUESTS,
                format!(
                    "session limit: session '{}' holds {} (limit {}); retry later",
                    shorten(&self.name),
                    human_bytes(inner.queued_bytes),
                    human_bytes(config.max_session)
                ),
            ));
        }
        if !inner.pairs.contains_key(&(from, to)) {
            let Some(pair_charge) = budget.reserve(PAIR_OVERHEAD) else {
                return Err(budget.exhausted());
            };
            inner.charged += pair_charge.keep();
            inner.pairs.insert((from, to), Pair::new());
        }
        inner.charged += reservation.keep();
        inner.queued_bytes += len;
        inner.queued_messages += 1;
        let Some(pair) = inner.pairs.get_mut(&(from, to)) else {
            // Inserted just above, under the same lock.
            return Err(Refusal::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal error: mailbox vanished",
            ));
        };
        let n = pair.next_seq;
        pair.next_seq += 1;
        pair.bytes += len;
        pair.queue.push_back((n, body));
        pair.notify.notify_waiters();
        Ok(SendOutcome::Queued(n))
    }

    /// Removes and returns the oldest message from `from` to `to` (polytune's receive).
    pub fn pop(&self, from: Seat, to: Seat, budget: &Budget) -> Result<Bytes, Refusal> {
        let mut inner = self.lock();
        if let Some(closed) = inner.closed {
            return Err(Refusal::new(
                StatusCode::BAD_REQUEST,
                closed.refusal(&self.name).message,
            ));
        }
        inner.last_activity = Instant::now();
        if let Some(info) = inner.seats.get_mut(&to) {
            info.last_seen = Instant::now();
        }
        inner
            .pop_front((from, to), budget)
            .map(|(_, msg)| msg)
            .ok_or_else(|| {
                Refusal::new(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "no message queued from {} to {} in session '{}'",
                        from.describe(),
                        to.describe(),
                        shorten(&self.name)
                    ),
                )
            })
    }

    /// The notifier of the pair `from`→`to`, creating its (empty) mailbox if needed.
    pub fn pair_notify(
        &self,
        from: Seat,
        to: Seat,
        budget: &Budget,
    ) -> Result<Arc<Notify>, Refusal> {
        let mut inner = self.lock();
        if let Some(closed) = inner.closed {
            return Err(closed.refusal(&self.name));
        }
        if let Some(pair) = inner.pairs.get(&(from, to)) {
            return Ok(pair.notify.clone());
        }
        let Some(charge) = budget.reserve(PAIR_OVERHEAD) else {
            return Err(budget.exhausted());
        };
        inner.charged += charge.keep();
        let pair = Pair::new();
        let notify = pair.notify.clone();
        inner.pairs.insert((from, to), pair);
        Ok(notify)
    }

    /// Acknowledges the messages of `from`→`to` numbered below `seq` (freeing them) and
    /// looks for message `seq`, without removing it.
    pub fn poll(
        &self,
        from: Seat,
        to: Seat,
        seq: u64,
        lost_after: Duration,
        budget: &Budget,
    ) -> Poll {
        let mut inner = self.lock();
        if let Some(closed) = inner.closed {
            return Poll::Refused(closed.refusal(&self.name));
        }
        while inner
            .pairs
            .get(&(from, to))
            .and_then(|p| p.queue.front())
            .is_some_and(|(n, _)| *n < seq)
        {
            inner.pop_front((from, to), budget);
        }
        let (front, next) = match inner.pairs.get(&(from, to)) {
            Some(pair) => (pair.queue.front().cloned(), pair.next_seq),
            None => (None, 0),
        };
        if let Some((n, msg)) = front
            && n == seq
        {
            return Poll::Ready(msg);
        }
        if seq < next {
            // Sent but no longer queued: taken by a receive without sequence number.
            return Poll::Refused(Refusal::new(
                StatusCode::CONFLICT,
                format!(
                    "message {seq} from {} to {} was already delivered and removed",
                    from.describe(),
                    to.describe()
                ),
            ));
        }
        let mut recheck_at = None;
        if let Some(info) = inner.seats.get(&from)
            && info.client.is_some()
        {
            let silent = info.last_seen.elapsed();
            if silent > lost_after {
                return Poll::Refused(Refusal::new(
                    StatusCode::GONE,
                    format!(
                        "{} lost: no contact for {:.1} s",
                        from.describe(),
                        silent.as_secs_f64()
                    ),
                ));
            }
            recheck_at = Some(info.last_seen + lost_after + Duration::from_millis(1));
        }
        Poll::Waiting { recheck_at }
    }

    /// Describes the session.
    pub fn info(&self) -> SessionInfo {
        let inner = self.lock();
        SessionInfo {
            session: self.name.clone(),
            seats: inner.seats.keys().map(|s| s.to_string()).collect(),
            join_order: inner.join_order.iter().map(|s| s.to_string()).collect(),
            queued_messages: inner.queued_messages,
            queued_bytes: inner.queued_bytes,
            age_secs: self.created.elapsed().as_secs(),
            idle_secs: inner.last_activity.elapsed().as_secs(),
        }
    }

    /// Ends the session: frees its memory and wakes its waiters.
    fn close(&self, why: Closed, budget: &Budget) {
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

/// Builds the refusal for a send whose sequence number skips ahead.
pub fn gap_refusal(from: Seat, to: Seat, got: u64, expected: u64) -> Refusal {
    Refusal::new(
        StatusCode::CONFLICT,
        format!(
            "message {got} from {} to {} is out of order: expected seq {expected}",
            from.describe(),
            to.describe()
        ),
    )
}

/// All sessions of a relay, with its configuration and memory budget.
pub struct Registry {
    config: RelayConfig,
    budget: Budget,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    shutting_down: AtomicBool,
}

impl Registry {
    /// An empty registry.
    pub fn new(config: RelayConfig) -> Self {
        Self {
            budget: Budget::new(config.max_total),
            config,
            sessions: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
        }
    }

    /// The relay's settings.
    pub fn config(&self) -> &RelayConfig {
        &self.config
    }

    /// The total memory budget.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The session called `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<Session>> {
        self.map().get(name).cloned()
    }

    /// The session called `name`, created if needed.
    pub fn get_or_create(&self, name: &str) -> Result<Arc<Session>, Refusal> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(Closed::Shutdown.refusal(name));
        }
        let mut map = self.map();
        if let Some(session) = map.get(name) {
            return Ok(session.clone());
        }
        let Some(charge) = self.budget.reserve(SESSION_OVERHEAD + name.len()) else {
            return Err(self.budget.exhausted());
        };
        let session = Arc::new(Session::new(name.to_string(), charge.keep()));
        map.insert(name.to_string(), session.clone());
        tracing::info!(session = %name, sessions = map.len(), "session created");
        Ok(session)
    }

    /// Ends the session called `name`; false if there is none.
    pub fn delete(&self, name: &str) -> bool {
        let removed = self.map().remove(name);
        match removed {
            Some(session) => {
                session.close(Closed::Deleted, &self.budget);
                tracing::info!(session = %name, "session deleted");
                true
            }
            None => false,
        }
    }

    /// Removes the sessions idle for longer than the time-to-live (none with waiters).
    pub fn expire_idle(&self) {
        let ttl = self.config.session_ttl;
        let mut expired = Vec::new();
        {
            let mut map = self.map();
            map.retain(|_, session| {
                let idle = session.lock().last_activity.elapsed();
                let keep = idle <= ttl || session.waiters.load(Ordering::Acquire) > 0;
                if !keep {
                    expired.push(session.clone());
                }
                keep
            });
        }
        for session in expired {
            session.close(Closed::Expired, &self.budget);
            tracing::info!(
                session = %session.name,
                idle_secs = ttl.as_secs(),
                "session expired"
            );
        }
    }

    /// Descriptions of every session, by name.
    pub fn list(&self) -> Vec<SessionInfo> {
        let sessions: Vec<Arc<Session>> = self.map().values().cloned().collect();
        let mut infos: Vec<SessionInfo> = sessions.iter().map(|s| s.info()).collect();
        infos.sort_by(|a, b| a.session.cmp(&b.session));
        infos
    }

    /// Closes every session and refuses new ones (the relay is stopping).
    pub fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let sessions: Vec<Arc<Session>> = self.map().drain().map(|(_, s)| s).collect();
        for session in sessions {
            session.close(Closed::Shutdown, &self.budget);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_reservation_releases_nothing() {
        let budget = Budget::new(100);
        let held = budget.reserve(80).expect("80 of 100 bytes");
        for _ in 0..10 {
            assert!(budget.reserve(50).is_none());
        }
        assert_eq!(budget.used(), 80);
        drop(held);
        assert_eq!(budget.used(), 0);
    }
}
