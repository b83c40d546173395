//! Where the relay keeps its sessions: seats, per-pair queues with sequence numbers, and
//! byte counters. [`Store`] is what the routes need; [`memory`] keeps everything in this
//! process (the default), [`redis`] in a Redis server shared by any number of relays, so
//! that a relay can restart, or another take over, without losing a session.
//!
//! Every operation checks the caller's claim on the seat it acts for: a seat claimed with a
//! token is read, acknowledged and written only with that token.

pub mod memory;
pub mod redis;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::budget::{Budget, Reservation};
use super::metrics::{Metrics, StoreStats};
use super::sessions::{JoinRequest, Joined, Refusal, Seat, SendOutcome, SessionInfo, TokenDigest};
use crate::net::mailbox::Admission;

/// Which store a relay uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreKind {
    /// In this process (`--store memory`).
    #[default]
    Memory,
    /// In Redis (`--store redis://HOST:PORT[/DB]`).
    Redis(String),
}

impl StoreKind {
    /// Parses `--store`: `memory` or a `redis://` (or `rediss://`) URL.
    pub fn parse(raw: &str) -> Result<StoreKind, String> {
        if raw == "memory" {
            return Ok(StoreKind::Memory);
        }
        if raw.starts_with("redis://") || raw.starts_with("rediss://") {
            return Ok(StoreKind::Redis(raw.to_string()));
        }
        Err(format!(
            "'{raw}' is not a store: give `memory` or a Redis URL like redis://127.0.0.1:6379/0"
        ))
    }
}

/// The limits and timings every store enforces.
#[derive(Debug, Clone, Copy)]
pub struct StoreLimits {
    /// Most payload bytes queued from one seat to another.
    pub max_queue: usize,
    /// Most payload bytes queued in one session.
    pub max_session: usize,
    /// A session with no request for this long is removed.
    pub session_ttl: Duration,
    /// A seat claimed by a client and silent for this long is lost.
    pub lost_after: Duration,
}

/// What a store shares with the rest of the relay.
#[derive(Clone)]
pub struct StoreContext {
    /// Limits and timings.
    pub limits: StoreLimits,
    /// The relay's memory budget (the memory store charges queued messages to it).
    pub budget: Arc<Budget>,
    /// Counters for `/metrics`.
    pub metrics: Arc<Metrics>,
}

/// Who may end a session: a holder of one of its seat tokens, or the relay's operator.
#[derive(Debug, Clone, Copy)]
pub struct DeleteAccess {
    /// The token the request carries, if any.
    pub token: Option<TokenDigest>,
    /// Whether the request carries the relay's admin token.
    pub admin: bool,
}

/// A session store (see the module documentation). Operations that fail because the
/// store cannot be reached answer 503, which clients retry.
pub trait Store: Send + Sync {
    /// The id this store reports as the relay's instance: it changes when the sessions a
    /// client relied on may be gone (a new process for the memory store, a new Redis
    /// data set for the Redis store).
    fn instance(&self) -> &str;

    /// Claims or re-joins `seat` (also the heartbeat of clients with an id).
    fn join(
        &self,
        session: &str,
        seat: Seat,
        req: &JoinRequest,
    ) -> impl Future<Output = Result<Joined, Refusal>> + Send;

    /// The joined numeric seats, in order (empty for an unknown session).
    fn participants(&self, session: &str)
    -> impl Future<Output = Result<Vec<u32>, Refusal>> + Send;

    /// The session's description, if it exists.
    fn detail(
        &self,
        session: &str,
    ) -> impl Future<Output = Result<Option<SessionInfo>, Refusal>> + Send;

    /// Every session's description, by name.
    fn list(&self) -> impl Future<Output = Result<Vec<SessionInfo>, Refusal>> + Send;

    /// Ends a session; `Ok(false)` if there is none.
    fn delete(
        &self,
        session: &str,
        access: DeleteAccess,
    ) -> impl Future<Output = Result<bool, Refusal>> + Send;

    /// Checks a send before its body is read: the caller's claim on `from` and the
    /// sequence number (creating the session if needed, as polytune's clients expect).
    fn check_send(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        seq: Option<u64>,
        token: Option<TokenDigest>,
    ) -> impl Future<Output = Result<Admission, Refusal>> + Send;

    /// Queues `body` from `from` to `to`; `charge` covers the body and its bookkeeping in
    /// the relay's memory budget (kept by the memory store, released by others).
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        seq: Option<u64>,
        body: Bytes,
        token: Option<TokenDigest>,
        charge: Reservation,
    ) -> impl Future<Output = Result<SendOutcome, Refusal>> + Send;

    /// Takes the oldest message from `from` to `to` (polytune's receive; 400 if none).
    fn pop(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        token: Option<TokenDigest>,
    ) -> impl Future<Output = Result<Bytes, Refusal>> + Send;

    /// Acknowledges the messages of `from`→`to` numbered below `seq` and returns message
    /// `seq` as soon as it is there, or `None` after `wait`. A sender that is lost, or
    /// whose seat was reclaimed by a new client meanwhile, is refused with 410.
    #[allow(clippy::too_many_arguments)]
    fn recv(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        seq: u64,
        wait: Duration,
        token: Option<TokenDigest>,
    ) -> impl Future<Output = Result<Option<Bytes>, Refusal>> + Send;

    /// Removes the sessions idle for longer than the time-to-live.
    fn expire_idle(&self) -> impl Future<Output = ()> + Send;

    /// Counts of sessions, seats and queued messages, for `/metrics`.
    fn stats(&self) -> impl Future<Output = Result<StoreStats, Refusal>> + Send;

    /// The relay is stopping: wake every waiting request (the memory store also drops its
    /// sessions; a shared store keeps them for the other relays and the next start).
    fn shut_down(&self) -> impl Future<Output = ()> + Send;
}

/// The store a relay was configured with.
pub enum AnyStore {
    /// In this process.
    Memory(memory::MemoryStore),
    /// In Redis.
    Redis(redis::RedisStore),
}

impl AnyStore {
    /// Opens the store `kind` (connecting to Redis, for a Redis store).
    pub async fn open(kind: &StoreKind, context: StoreContext) -> Result<AnyStore, String> {
        match kind {
            StoreKind::Memory => Ok(AnyStore::Memory(memory::MemoryStore::new(context))),
            StoreKind::Redis(url) => Ok(AnyStore::Redis(
                redis::RedisStore::open(url, context).await?,
            )),
        }
    }

    /// The store's kind, for the start-up line.
    pub fn describe(&self) -> String {
        match self {
            AnyStore::Memory(_) => "sessions in memory".to_string(),
            AnyStore::Redis(_) => "sessions in Redis".to_string(),
        }
    }
}

macro_rules! delegate {
    ($self:ident, $store:ident => $call:expr) => {
        match $self {
            AnyStore::Memory($store) => $call,
            AnyStore::Redis($store) => $call,
        }
    };
}

impl Store for AnyStore {
    fn instance(&self) -> &str {
        delegate!(self, s => s.instance())
    }

    async fn join(&self, session: &str, seat: Seat, req: &JoinRequest) -> Result<Joined, Refusal> {
        delegate!(self, s => s.join(session, seat, req).await)
    }

    async fn participants(&self, session: &str) -> Result<Vec<u32>, Refusal> {
        delegate!(self, s => s.participants(session).await)
    }

    async fn detail(&self, session: &str) -> Result<Option<SessionInfo>, Refusal> {
        delegate!(self, s => s.detail(session).await)
    }

    async fn list(&self) -> Result<Vec<SessionInfo>, Refusal> {
        delegate!(self, s => s.list().await)
    }

    async fn delete(&self, session: &str, access: DeleteAccess) -> Result<bool, Refusal> {
        delegate!(self, s => s.delete(session, access).await)
    }

    async fn check_send(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        seq: Option<u64>,
        token: Option<TokenDigest>,
    ) -> Result<Admission, Refusal> {
        delegate!(self, s => s.check_send(session, from, to, seq, token).await)
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
        delegate!(self, s => s.send(session, from, to, seq, body, token, charge).await)
    }

    async fn pop(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        token: Option<TokenDigest>,
    ) -> Result<Bytes, Refusal> {
        delegate!(self, s => s.pop(session, from, to, token).await)
    }

    async fn recv(
        &self,
        session: &str,
        from: Seat,
        to: Seat,
        seq: u64,
        wait: Duration,
        token: Option<TokenDigest>,
    ) -> Result<Option<Bytes>, Refusal> {
        delegate!(self, s => s.recv(session, from, to, seq, wait, token).await)
    }

    async fn expire_idle(&self) {
        delegate!(self, s => s.expire_idle().await)
    }

    async fn stats(&self) -> Result<StoreStats, Refusal> {
        delegate!(self, s => s.stats().await)
    }

    async fn shut_down(&self) {
        delegate!(self, s => s.shut_down().await)
    }
}
