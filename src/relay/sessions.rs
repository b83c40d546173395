//! What every session store shares: seats, refusals, the claims a request makes on a seat,
//! the per-message bookkeeping charge and the JSON description of a session.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use super::refusal::{Reason, Refusal, Refused};
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

    /// The reason given to a request that was waiting in (or raced with) the closed
    /// session.
    pub fn reason(self, session: &str) -> Reason {
        match self {
            Closed::Deleted => Reason::Deleted(session.to_string()),
            Closed::Expired => Reason::Expired(session.to_string()),
            Closed::Shutdown => Reason::ShuttingDown,
        }
    }

    /// The refusal of such a request.
    pub fn refusal(self, session: &str) -> Refusal {
        self.reason(session).into()
    }
}

/// A fresh random id (for relay instances and session incarnations).
pub fn random_id() -> String {
    hex::encode(rand::random::<[u8; 12]>())
}
