//! The in-memory store (`--store memory`, the default): sessions live in this process and
//! are charged to its memory budget; they are gone when it stops.
//!
//! Locking: the store's mutex guards only the map from names to sessions; each session has
//! its own mutex. Both are std mutexes held for short, synchronous sections (never across
//! an `.await`); the lock order is store, then session. Waiting receivers are woken
//! through a [`Notify`] per ordered pair.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::Notify;

use super::{DeleteAccess, Store, StoreContext};
use crate::net::mailbox::{Admission, admit};
use crate::relay::budget::{Budget, Reservation};
use crate::relay::metrics::StoreStats;
use crate::relay::sessions::{
    Closed, JoinRequest, Joined, PAIR_OVERHEAD, Reason, Refusal, Refused, SEAT_OVERHEAD,
    SESSION_OVERHEAD, Seat, SendOutcome, SessionInfo, TokenDigest, random_id,
};

mod state;

use state::{Inner, Pair, Poll, SeatInfo, Session};

/// The in-memory store (see the module documentation).
pub struct MemoryStore {
    context: StoreContext,
    instance: String,
    sessions: Mutex<HashMap<String, Arc<Session>>>,
    shutting_down: AtomicBool,
}

impl MemoryStore {
    /// An empty store.
    pub fn new(context: StoreContext) -> Self {
        Self {
            context,
            instance: random_id(),
            sessions: Mutex::new(HashMap::new()),
            shutting_down: AtomicBool::new(false),
        }
    }

    fn budget(&self) -> &Arc<Budget> {
        &self.context.budget
    }

    fn map(&self) -> MutexGuard<'_, HashMap<String, Arc<Session>>> {
        self.sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn get(&self, name: &str) -> Option<Arc<Session>> {
        self.map().get(name).cloned()
    }

    fn get_or_create(&self, name: &str) -> Result<Arc<Session>, Refusal> {
        if self.shutting_down.load(Ordering::Acquire) {
            return Err(Closed::Shutdown.refusal(name));
        }
        let mut map = self.map();
        if let Some(session) = map.get(name) {
            return Ok(session.clone());
        }
        let Some(charge) = self.budget().reserve(SESSION_OVERHEAD + name.len()) else {
            return Err(self.budget().exhausted());
        };
        let session = Arc::new(Session::new(name.to_string(), charge.keep()));
        map.insert(name.to_string(), session.clone());
        self.context.metrics.session_created();
        tracing::info!(session = %name, sessions = map.len(), "session created");
        Ok(session)
    }

    /// Runs `op` on the open session `name` (created if needed), retrying once in a fresh
    /// session if it was closed between the lookup and the lock.
    fn with_session<T>(
        &self,
        name: &str,
        mut op: impl FnMut(&Arc<Session>, &mut Inner) -> Result<T, Refusal>,
    ) -> Result<T, Refusal> {
        for _ in 0..2 {
            let session = self.get_or_create(name)?;
            let mut inner = session.lock();
            if inner.closed.is_some() {
                continue;
            }
            inner.last_activity = Instant::now();
            return op(&session, &mut inner);
        }
        Err(Reason::KeepsClosing(name.to_string()).into())
    }

    /// How long `info`'s holder has been silent, as far as this store can tell.
    fn silence(&self, info: &SeatInfo) -> Duration {
        info.last_seen.elapsed()
    }

    fn join_seat(
        &self,
        session: &Session,
        inner: &mut Inner,
        seat: Seat,
        req: &JoinRequest,
    ) -> Result<Joined, Refusal> {
        let name = &session.name;
        let now = Instant::now();
        if let Some(wanted) = req.parties {
            match inner.parties {
                Some(has) if has != wanted => {
                    return Err(Reason::PartyCount {
                        session: name.to_string(),
                        has,
                        wanted,
                    }
                    .into());
                }
                Some(_) => {}
                None => {
                    if let Some(beyond) = inner.seats.keys().find(|s| !s.fits(Some(wanted))) {
                        return Err(Reason::NoSuchSeat {
                            session: name.to_string(),
                            seat: *beyond,
                            parties: wanted,
                        }
                        .into());
                    }
                    inner.parties = Some(wanted);
                }
            }
        }
        inner.check_seat(name, seat)?;
        let budget = self.budget().clone();
        let lost_after = self.context.limits.lost_after;
        let silence = inner.seats.get(&seat).map(|info| self.silence(info));
        match inner.seats.get_mut(&seat) {
            Some(info) if req.anonymous() => {
                if info.token.is_some() {
                    return Err(Reason::NeedsToken {
                        session: name.to_string(),
                        seat,
                        what: "joining it".to_string(),
                    }
                    .into());
                }
                info.last_seen = now;
            }
            Some(info) if info.held_by(req) => {
                let new_token = info.token.is_none() && req.token.is_some();
                if info.client.is_none() {
                    info.client = req.client.clone();
                }
                if new_token {
                    info.token = req.token;
                }
                info.last_seen = now;
                if new_token {
                    inner.reset_pairs(seat, false, &budget);
                }
            }
            Some(info) => {
                let silent = silence.unwrap_or_default();
                if info.claimed() && silent <= lost_after {
                    return Err(Reason::SeatTaken {
                        session: name.to_string(),
                        seat,
                        silent_secs: silent.as_secs_f64(),
                        lost_after_secs: lost_after.as_secs_f64(),
                    }
                    .into());
                }
                info.client = req.client.clone();
                info.token = req.token;
                info.last_seen = now;
                info.generation += 1;
                info.lost_logged = false;
                inner.reset_pairs(seat, true, &budget);
                self.context.metrics.seat_reclaimed();
                tracing::info!(
                    session = %name,
                    seat = %seat,
                    silent_secs = silent.as_secs(),
                    "lost seat reclaimed by a new client"
                );
            }
            None => {
                let Some(reservation) = budget.reserve(SEAT_OVERHEAD) else {
                    return Err(budget.exhausted());
                };
                inner.charged += reservation.keep();
                inner.join_order.push(seat);
                inner.seats.insert(
                    seat,
                    SeatInfo {
                        client: req.client.clone(),
                        token: req.token,
                        last_seen: now,
                        generation: 0,
                        lost_logged: false,
                    },
                );
                if req.token.is_some() {
                    inner.reset_pairs(seat, false, &budget);
                }
                tracing::info!(
                    session = %name,
                    seat = %seat,
                    claimed = !req.anonymous(),
                    "seat joined"
                );
                if let Some(parties) = inner.parties
                    && !inner.complete_logged
                    && (0..parties).all(|p| inner.seats.contains_key(&Seat::Party(p)))
                {
                    inner.complete_logged = true;
                    self.context.metrics.session_complete();
                    tracing::info!(session = %name, parties, "session complete: every party joined");
                }
            }
        }
        Ok(Joined {
            epoch: session.epoch.clone(),
        })
    }

    /// Acknowledges the messages of `from`→`to` below `seq` and looks for message `seq`.
    #[allow(clippy::too_many_arguments)]
    fn poll(
        &self,
        session: &Session,
        from: Seat,
        to: Seat,
        seq: u64,
        token: Option<&TokenDigest>,
        known_generation: &mut Option<u64>,
    ) -> Result<Poll, Refusal> {
        let budget = self.budget();
        let lost_after = self.context.limits.lost_after;
        let mut inner = session.lock();
        if let Some(closed) = inner.closed {
            return Err(closed.refusal(&session.name));
        }
        inner.authorize(&session.name, to, token, "receiving its messages")?;
        if let Some(info) = inner.seats.get_mut(&to) {
            info.last_seen = Instant::now();
        }
        if let Some(info) = inner.seats.get(&from) {
            match *known_generation {
                Some(known) if known != info.generation => {
                    return Err(Reason::Reclaimed(Some(from)).into());
                }
                _ => *known_generation = Some(info.generation),
            }
        }
        while inner
            .pairs
            .get(&(from, to))
            .and_then(|p| p.mailbox.front())
            .is_some_and(|(n, _)| *n < seq)
        {
            inner.pop_front((from, to), budget);
        }
        let (front, next) = match inner.pairs.get(&(from, to)) {
            Some(pair) => (pair.mailbox.front().cloned(), pair.mailbox.next_seq()),
            None => (None, 0),
        };
        if let Some((n, msg)) = front
            && n == seq
        {
            self.context.metrics.delivered(msg.len());
            return Ok(Poll::Ready(msg));
        }
        if seq < next {
            // Sent but no longer queued: taken by a receive without sequence number.
            return Err(Reason::Delivered { seq, from, to }.into());
        }
        let mut recheck_at = None;
        let silence = inner.seats.get(&from).map(|info| self.silence(info));
        if let Some(info) = inner.seats.get_mut(&from)
            && info.claimed()
        {
            let silent = silence.unwrap_or_default();
            if silent > lost_after {
                if !info.lost_logged {
                    info.lost_logged = true;
                    self.context.metrics.party_lost();
                    tracing::info!(
                        session = %session.name,
                        seat = %from,
                        silent_secs = silent.as_secs(),
                        "party lost"
                    );
                }
                return Err(Reason::NoContact {
                    from,
                    silent_secs: silent.as_secs_f64(),
                }
                .into());
            }
            recheck_at = Some(Instant::now() + (lost_after - silent) + Duration::from_millis(1));
        }
        Ok(Poll::Waiting { recheck_at })
    }

    /// The notifier of the pair `from`→`to`, creating its (empty) mailbox if needed.
    fn pair_notify(&self, session: &Session, from: Seat, to: Seat) -> Result<Arc<Notify>, Refusal> {
        let mut inner = session.lock();
        if let Some(closed) = inner.closed {
            return Err(closed.refusal(&session.name));
        }
        if let Some(pair) = inner.pairs.get(&(from, to)) {
            return Ok(pair.notify.clone());
        }
        let Some(charge) = self.budget().reserve(PAIR_OVERHEAD) else {
            return Err(self.budget().exhausted());
        };
        inner.charged += charge.keep();
        let pair = Pair::new();
        let notify = pair.notify.clone();
        inner.pairs.insert((from, to), pair);
        Ok(notify)
    }

    fn close(&self, session: &Session, why: Closed) {
        session.close(why, self.budget());
        self.context.metrics.session_finished(why.label());
    }
}

impl Store for MemoryStore {
    fn instance(&self) -> &str {
        &self.instance
    }

    async fn join(&self, session: &str, seat: Seat, req: &JoinRequest) -> Result<Joined, Refusal> {
        if let Some(epoch) = &req.epoch {
            // A heartbeat: never re-create a session the client lost.
            let current = self.get(session);
            match current {
                Some(s) if &s.epoch == epoch => {}
                _ => return Err(Reason::LostSession(session.to_string()).into()),
            }
        }
        self.with_session(session, |s, inner| {
            if let Some(epoch) = &req.epoch
                && &s.epoch != epoch
            {
                return Err(Reason::LostSession(session.to_string()).into());
            }
            self.join_seat(s, inner, seat, req)
        })
    }

    async fn participants(&self, session: &str) -> Result<Vec<u32>, Refusal> {
        Ok(match self.get(session) {
            Some(s) => {
                let mut inner = s.lock();
                inner.last_activity = Instant::now();
                inner
                    .seats
                    .keys()
                    .filter_map(|s| match s {
                        Seat::Party(n) => Some(*n),
                        Seat::Dealer => None,
                    })
                    .collect()
            }
            None => Vec::new(),
        })
    }

    async fn detail(&self, session: &str) -> Result<Option<SessionInfo>, Refusal> {
        Ok(self.get(session).map(|s| {
            s.lock().last_activity = Instant::now();
            s.info()
        }))
    }

    async fn list(&self) -> Result<Vec<SessionInfo>, Refusal> {
        let sessions: Vec<Arc<Session>> = self.map().values().cloned().collect();
        let mut infos: Vec<SessionInfo> = sessions.iter().map(|s| s.info()).collect();
        infos.sort_by(|a, b| a.session.cmp(&b.session));
        Ok(infos)
    }

    async fn delete(&self, name: &str, access: DeleteAccess) -> Result<bool, Refusal> {
        let mut map = self.map();
        let Some(session) = map.get(name).cloned() else {
            return Ok(false);
        };
        if !access.admin {
            let inner = session.lock();
            let holder = access.token.is_some_and(|t| {
                inner
                    .seats
                    .values()
                    .any(|s| s.token.is_some_and(|mine| mine.matches(&t)))
            });
            if !holder {
                return Err(Reason::DeleteForbidden(name.to_string()).into());
            }
        }
        map.remove(name);
        drop(map);
        self.close(&session, Closed::Deleted);
        tracing::info!(session = %name, admin = access.admin, "session deleted");
        Ok(true)
    }

    async fn check_send(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        seq: Option<u64>,
        token: Option<TokenDigest>,
    ) -> Result<Admission, Refusal> {
        self.with_session(session, |s, inner| {
            inner.check_seat(&s.name, from)?;
            inner.check_seat(&s.name, to)?;
            inner.authorize(&s.name, from, token.as_ref(), "sending in its name")?;
            if let Some(info) = inner.seats.get_mut(&from) {
                info.last_seen = Instant::now();
            }
            let next = inner
                .pairs
                .get(&(from, to))
                .map_or(0, |p| p.mailbox.next_seq());
            Ok(admit(seq, next))
        })
    }

    async fn send(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        seq: Option<u64>,
        body: Bytes,
        token: Option<TokenDigest>,
        charge: Reservation,
    ) -> Result<SendOutcome, Refusal> {
        let limits = self.context.limits;
        let budget = self.budget().clone();
        let len = body.len();
        let mut charge = Some(charge);
        let mut body = Some(body);
        let outcome = self.with_session(session, |s, inner| {
            inner.authorize(&s.name, from, token.as_ref(), "sending in its name")?;
            let next = inner
                .pairs
                .get(&(from, to))
                .map_or(0, |p| p.mailbox.next_seq());
            match admit(seq, next) {
                Admission::Duplicate => return Ok(SendOutcome::Duplicate(seq.unwrap_or(next))),
                Admission::Gap { expected } => {
                    return Err(Reason::OutOfOrder {
                        from,
                        to,
                        got: seq.unwrap_or(0),
                        expected,
                    }
                    .into());
                }
                Admission::Next => {}
            }
            let queued = inner
                .pairs
                .get(&(from, to))
                .map_or(0, |p| p.mailbox.bytes());
            if queued + len > limits.max_queue {
                return Err(Reason::QueueLimit {
                    pair: Some((from, to)),
                    queued,
                    limit: limits.max_queue,
                }
                .into());
            }
            if inner.queued_bytes + len > limits.max_session {
                return Err(Reason::SessionLimit {
                    session: s.name.clone(),
                    queued: inner.queued_bytes,
                    limit: limits.max_session,
                }
                .into());
            }
            if !inner.pairs.contains_key(&(from, to)) {
                let Some(pair_charge) = budget.reserve(PAIR_OVERHEAD) else {
                    return Err(budget.exhausted());
                };
                inner.charged += pair_charge.keep();
                inner.pairs.insert((from, to), Pair::new());
            }
            let (Some(charge), Some(body)) = (charge.take(), body.take()) else {
                return Err(Reason::MessageUsedTwice.into());
            };
            inner.charged += charge.keep();
            inner.queued_bytes += len;
            inner.queued_messages += 1;
            let Some(pair) = inner.pairs.get_mut(&(from, to)) else {
                return Err(Reason::MailboxVanished.into());
            };
            let n = pair.mailbox.push(body);
            pair.notify.notify_waiters();
            Ok(SendOutcome::Queued(n))
        })?;
        if let SendOutcome::Queued(_) = outcome {
            self.context.metrics.relayed(len);
        }
        Ok(outcome)
    }

    async fn pop(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        token: Option<TokenDigest>,
    ) -> Result<Bytes, Refusal> {
        let budget = self.budget();
        let no_message = || {
            Refusal::from(Reason::NoMessage {
                session: session.to_string(),
                from,
                to,
            })
        };
        let s = self.get(session).ok_or_else(no_message)?;
        let mut inner = s.lock();
        if let Some(closed) = inner.closed {
            return Err(Refusal::of_kind(Refused::Invalid, closed.reason(session)));
        }
        inner.authorize(session, to, token.as_ref(), "receiving its messages")?;
        inner.last_activity = Instant::now();
        if let Some(info) = inner.seats.get_mut(&to) {
            info.last_seen = Instant::now();
        }
        let (_, msg) = inner.pop_front((from, to), budget).ok_or_else(no_message)?;
        self.context.metrics.delivered(msg.len());
        Ok(msg)
    }

    async fn recv(
        &self,
        name: &str,
        from: Seat,
        to: Seat,
        seq: u64,
        wait: Duration,
        token: Option<TokenDigest>,
    ) -> Result<Option<Bytes>, Refusal> {
        let session = self.with_session(name, |s, inner| {
            inner.check_seat(&s.name, from)?;
            inner.check_seat(&s.name, to)?;
            Ok(s.clone())
        })?;
        let deadline = tokio::time::Instant::now() + wait;
        let _waiting = session.waiter();
        let _counted = self.context.metrics.waiting();
        let notify = self.pair_notify(&session, from, to)?;
        let mut generation = None;
        loop {
            let notified = notify.notified();
            tokio::pin!(notified);
            // Register before looking, so that a message queued right after the look wakes us.
            notified.as_mut().enable();
            let recheck_at =
                match self.poll(&session, from, to, seq, token.as_ref(), &mut generation)? {
                    Poll::Ready(msg) => return Ok(Some(msg)),
                    Poll::Waiting { recheck_at } => recheck_at,
                };
            if tokio::time::Instant::now() >= deadline {
                return Ok(None);
            }
            let recheck = async {
                match recheck_at {
                    Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = notified => {}
                _ = tokio::time::sleep_until(deadline) => {}
                _ = recheck => {}
            }
        }
    }

    async fn expire_idle(&self) {
        let ttl = self.context.limits.session_ttl;
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
            self.close(&session, Closed::Expired);
            tracing::info!(
                session = %session.name,
                idle_secs = ttl.as_secs(),
                "session expired"
            );
        }
    }

    async fn stats(&self) -> Result<StoreStats, Refusal> {
        let sessions: Vec<Arc<Session>> = self.map().values().cloned().collect();
        let mut stats = StoreStats {
            sessions: sessions.len() as u64,
            ..StoreStats::default()
        };
        for session in sessions {
            let inner = session.lock();
            stats.seats += inner.seats.len() as u64;
            stats.queued_messages += inner.queued_messages as u64;
            stats.queued_bytes += inner.queued_bytes as u64;
        }
        Ok(stats)
    }

    async fn shut_down(&self) {
        self.shutting_down.store(true, Ordering::Release);
        let sessions: Vec<Arc<Session>> = self.map().drain().map(|(_, s)| s).collect();
        for session in sessions {
            self.close(&session, Closed::Shutdown);
        }
    }
}
