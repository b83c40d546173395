//! What every session store shares: seats, refusals, the claims a request makes on a seat,
//! the per-message bookkeeping charge and the JSON description of a session.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::net::reply::shorten;

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

    /// Whether the seat exists in a session of `parties` computing parties (the dealer
    /// seat always does).
    pub fn fits(self, parties: Option<u32>) -> bool {
        match (self, parties) {
            (Seat::Party(n), Some(p)) => n < p,
            _ => true,
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

/// Why the relay refuses a request, by kind; the routes turn a kind into an HTTP status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The request is malformed, or names a seat or message that does not exist.
    Invalid,
    /// The request lacks the token of the seat it acts for, or the operator's.
    Forbidden,
    /// No such route or session.
    NotFound,
    /// The route exists, but not with this method.
    Method,
    /// The request contradicts the session: out of order, a seat taken, another party count.
    Conflict,
    /// The message is larger than the relay accepts.
    TooLarge,
    /// The message body stopped arriving.
    Stalled,
    /// A limit is reached for now; the client retries later.
    Busy,
    /// The session (or the incarnation the client joined) is gone.
    Gone,
    /// The relay cannot serve now (its store failed, it is stopping); retry later.
    Unavailable,
    /// A bug in the relay.
    Internal,
}

/// A request the relay refuses: the kind of refusal and a sentence saying why.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// What kind of refusal (the routes pick the status from it).
    pub kind: Refused,
    /// Why, for the response body.
    pub message: String,
    /// Seconds after which a retry may succeed (`retry-after`), if the relay knows.
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// A refusal of `kind`, saying `message`.
    pub fn new(kind: Refused, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The store could not be used (e.g. Redis is unreachable): 503, the client retries.
    pub fn store(why: impl fmt::Display) -> Self {
        Self::new(
            Refused::Unavailable,
            format!("the relay's session store failed: {why}; retry later"),
        )
    }
}

/// The SHA-256 digest of a client token: stores keep the digest, never the token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct TokenDigest(pub [u8; 32]);

impl TokenDigest {
    /// The digest of `token`.
    pub fn of(token: &str) -> Self {
        Self(Sha256::digest(token.as_bytes()).into())
    }

    /// Compares in constant time.
    pub fn matches(&self, other: &TokenDigest) -> bool {
        self.0.ct_eq(&other.0).into()
    }

    /// Hex, for stores that keep strings.
    pub fn to_hex(self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for TokenDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenDigest(..)")
    }
}

/// Who claims a seat with `PUT /join`: a client id (`x-mpc-client`), a token
/// (`x-mpc-token`), both or neither (anonymous, as polytune's clients join), plus what the
/// client knows about the session.
#[derive(Debug, Clone, Default)]
pub struct JoinRequest {
    /// The client id: a seat claimed with one is re-joined only by it.
    pub client: Option<String>,
    /// The token's digest: a seat claimed with one is read, acknowledged and written only
    /// with it.
    pub token: Option<TokenDigest>,
    /// The number of computing parties the client was started for (`?parties=N`); the
    /// first count given is the session's, a different one is refused.
    pub parties: Option<u32>,
    /// The session incarnation the client joined before (`x-mpc-session-epoch`, sent with
    /// heartbeats): a session that is gone or was re-created is reported, not re-created.
    pub epoch: Option<String>,
}

impl JoinRequest {
    /// Whether the request carries neither a client id nor a token.
    pub fn anonymous(&self) -> bool {
        self.client.is_none() && self.token.is_none()
    }
}

/// The answer to a successful join.
#[derive(Debug, Clone)]
pub struct Joined {
    /// The session's incarnation: changes when a session is deleted or expires and a
    /// session of the same name is created again.
    pub epoch: String,
}

/// What happened to a sent message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendOutcome {
    /// Queued with this sequence number.
    Queued(u64),
    /// A retry of a message already queued (or delivered): ignored.
    Duplicate(u64),
}

/// A JSON description of a session, for `GET /sessions` and `GET /sessions/{session}`.
#[derive(Debug, Clone, Serialize)]
pub struct SessionInfo {
    /// The session name.
    pub session: String,
    /// The number of computing parties, once a client said it.
    pub parties: Option<u32>,
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
    /// The word used in logs and metrics.
    pub fn label(self) -> &'static str {
        match self {
            Closed::Deleted => "deleted",
            Closed::Expired => "expired",
            Closed::Shutdown => "shutdown",
        }
    }

    /// Parses [`label`](Self::label).
    pub fn from_label(label: &str) -> Option<Closed> {
        match label {
            "deleted" => Some(Closed::Deleted),
            "expired" => Some(Closed::Expired),
            "shutdown" => Some(Closed::Shutdown),
            _ => None,
        }
    }

    /// The answer to a request that was waiting in (or raced with) the closed session.
    pub fn refusal(self, session: &str) -> Refusal {
        match self {
            Closed::Deleted => Refusal::new(
                Refused::Gone,
                format!(
                    "session deleted: '{}' was ended on request",
                    shorten(session)
                ),
            ),
            Closed::Expired => Refusal::new(
                Refused::Gone,
                format!("session expired: '{}' was idle too long", shorten(session)),
            ),
            Closed::Shutdown => Refusal::new(Refused::Unavailable, "the relay is shutting down"),
        }
    }
}

/// Refuses a request acting for `seat` without the token it was claimed with.
pub fn needs_token(session: &str, seat: Seat, what: &str) -> Refusal {
    Refusal::new(
        Refused::Forbidden,
        format!(
            "seat {seat} of session '{}' was claimed with a token: {what} needs that token \
             (header x-mpc-token)",
            shorten(session)
        ),
    )
}

/// Refuses a send whose sequence number skips ahead.
pub fn gap_refusal(from: Seat, to: Seat, got: u64, expected: u64) -> Refusal {
    Refusal::new(
        Refused::Conflict,
        format!(
            "message {got} from {} to {} is out of order: expected seq {expected}",
            from.describe(),
            to.describe()
        ),
    )
}

/// Refuses a join that names another party count than the session's.
pub fn parties_refusal(session: &str, has: u32, wanted: u32) -> Refusal {
    Refusal::new(
        Refused::Conflict,
        format!(
            "party count mismatch: session '{}' has {has} parties, but this client was started \
             for {wanted}; start every party (and the dealer) with the same program and party \
             count",
            shorten(session)
        ),
    )
}

/// Refuses a seat beyond the session's party count.
pub fn seat_refusal(session: &str, seat: Seat, parties: u32) -> Refusal {
    Refusal::new(
        Refused::Invalid,
        format!(
            "{} does not exist in session '{}' of {parties} parties (0 to {})",
            seat.describe(),
            shorten(session),
            parties.saturating_sub(1)
        ),
    )
}

/// Refuses a join to a seat that another client holds and that is not lost (yet).
pub fn taken_refusal(session: &str, seat: Seat, silent_secs: f64, lost_after_secs: f64) -> Refusal {
    let wait = (lost_after_secs - silent_secs).max(0.0);
    let mut refusal = Refusal::new(
        Refused::Conflict,
        format!(
            "seat {seat} of session '{}' is already taken by another client (last heard from \
             {silent_secs:.1} s ago); the seat is free again once that client has been silent \
             for {lost_after_secs:.0} s",
            shorten(session)
        ),
    );
    refusal.retry_after = Some(wait.ceil().max(1.0) as u64);
    refusal
}

/// The answer to a heartbeat for a session incarnation that no longer exists.
pub fn lost_session_refusal(session: &str) -> Refusal {
    Refusal::new(
        Refused::Gone,
        format!(
            "session lost: '{}' is not the session this client joined (the relay restarted \
             without keeping it, or it was deleted or expired); its messages are gone",
            shorten(session)
        ),
    )
}

/// A fresh random id (for relay instances and session incarnations).
pub fn random_id() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}
