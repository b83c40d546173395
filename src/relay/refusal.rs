//! Why the relay refuses a request: a [`Reason`] (its text is the response body, worded
//! once here) and the [`Refused`] kind that the routes turn into an HTTP status.

use std::fmt;

use thiserror::Error;

use super::sessions::{Seat, human_bytes};
use crate::net::reply::shorten;

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

/// A request the relay refuses: the kind of refusal and why.
#[derive(Debug, Clone)]
pub struct Refusal {
    /// What kind of refusal (the routes pick the status from it).
    pub kind: Refused,
    /// Why, for the response body.
    pub reason: Reason,
    /// Seconds after which a retry may succeed (`retry-after`), if the relay knows.
    pub retry_after: Option<u64>,
}

impl Refusal {
    /// A refusal of `kind` worded by the routes themselves (the route, method or parameters
    /// of the request).
    pub fn new(kind: Refused, message: impl Into<String>) -> Self {
        Self::of_kind(kind, Reason::Request(message.into()))
    }

    /// A refusal of `kind` for `reason`, where the kind differs from the reason's own.
    pub fn of_kind(kind: Refused, reason: Reason) -> Self {
        Self {
            kind,
            reason,
            retry_after: None,
        }
    }

    /// The store could not be used (e.g. Redis is unreachable): 503, the client retries.
    pub fn store(why: impl fmt::Display) -> Self {
        Reason::StoreFailed(why.to_string()).into()
    }
}

impl From<Reason> for Refusal {
    fn from(reason: Reason) -> Self {
        let retry_after = match &reason {
            Reason::SeatTaken {
                silent_secs,
                lost_after_secs,
                ..
            } => Some((lost_after_secs - silent_secs).max(0.0).ceil().max(1.0) as u64),
            _ => None,
        };
        Self {
            kind: reason.kind(),
            reason,
            retry_after,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.reason.fmt(f)
    }
}

/// Why the relay refuses a request, in the words of its response body. Session names are
/// kept whole and shortened when worded.
#[derive(Debug, Clone, PartialEq, Error)]
pub enum Reason {
    /// The request itself is wrong (route, method, parameter), in the routes' words.
    #[error("{0}")]
    Request(String),
    /// The session store failed.
    #[error("the relay's session store failed: {0}; retry later")]
    StoreFailed(String),
    /// The relay's total memory limit is reached.
    #[error("the relay's total memory limit ({}) is reached; retry later", human_bytes(*.0))]
    MemoryLimit(usize),
    /// The session was deleted.
    #[error("session deleted: '{}' was ended on request", shorten(.0))]
    Deleted(String),
    /// The session expired.
    #[error("session expired: '{}' was idle too long", shorten(.0))]
    Expired(String),
    /// The relay is stopping.
    #[error("the relay is shutting down")]
    ShuttingDown,
    /// A session that is closed again every time it is opened.
    #[error("session '{}' keeps being closed; retry later", shorten(.0))]
    KeepsClosing(String),
    /// A request for a claimed seat without its token.
    #[error(
        "seat {seat} of session '{}' was claimed with a token: {what} needs that token \
         (header x-mpc-token)",
        shorten(.session)
    )]
    NeedsToken {
        /// The session.
        session: String,
        /// The seat.
        seat: Seat,
        /// What the request wanted to do.
        what: String,
    },
    /// A send whose sequence number skips ahead.
    #[error(
        "message {got} from {} to {} is out of order: expected seq {expected}",
        .from.describe(),
        .to.describe()
    )]
    OutOfOrder {
        /// The sender.
        from: Seat,
        /// The receiver.
        to: Seat,
        /// The number sent.
        got: u64,
        /// The number due.
        expected: u64,
    },
    /// A join for another party count than the session's.
    #[error(
        "party count mismatch: session '{}' has {has} parties, but this client was started \
         for {wanted}; start every party (and the dealer) with the same program and party \
         count",
        shorten(.session)
    )]
    PartyCount {
        /// The session.
        session: String,
        /// Its party count.
        has: u32,
        /// The client's.
        wanted: u32,
    },
    /// A seat beyond the session's party count.
    #[error(
        "{} does not exist in session '{}' of {parties} parties (0 to {})",
        .seat.describe(),
        shorten(.session),
        .parties.saturating_sub(1)
    )]
    NoSuchSeat {
        /// The session.
        session: String,
        /// The seat.
        seat: Seat,
        /// The session's party count.
        parties: u32,
    },
    /// A join to a seat another client holds and that is not lost (yet).
    #[error(
        "seat {seat} of session '{}' is already taken by another client (last heard from \
         {silent_secs:.1} s ago); the seat is free again once that client has been silent \
         for {lost_after_secs:.0} s",
        shorten(.session)
    )]
    SeatTaken {
        /// The session.
        session: String,
        /// The seat.
        seat: Seat,
        /// How long its holder has been silent.
        silent_secs: f64,
        /// How long a holder may be silent before it counts as lost.
        lost_after_secs: f64,
    },
    /// A heartbeat for a session incarnation that no longer exists.
    #[error(
        "session lost: '{}' is not the session this client joined (the relay restarted \
         without keeping it, or it was deleted or expired); its messages are gone",
        shorten(.0)
    )]
    LostSession(String),
    /// A delete by someone who holds no seat and is not the operator.
    #[error(
        "only a client holding a seat of session '{}' (its x-mpc-token) or the relay's \
         operator (authorization: Bearer ADMIN-TOKEN) may delete it",
        shorten(.0)
    )]
    DeleteForbidden(String),
    /// The sender's seat was claimed by a new client (`None`: the store did not say whose).
    #[error("{}lost: its seat was reclaimed by a new client", SeatPrefix(*.0))]
    Reclaimed(Option<Seat>),
    /// The sender is lost: silent for longer than the relay waits.
    #[error("{} lost: no contact for {silent_secs:.1} s", .from.describe())]
    NoContact {
        /// The sender.
        from: Seat,
        /// How long it has been silent.
        silent_secs: f64,
    },
    /// A message asked for again after its receiver acknowledged it.
    #[error("message {seq} from {} to {} was already delivered and removed", .from.describe(), .to.describe())]
    Delivered {
        /// The message's number.
        seq: u64,
        /// The sender.
        from: Seat,
        /// The receiver.
        to: Seat,
    },
    /// The same, where the store does not say which message.
    #[error("this message was already delivered and removed")]
    DeliveredUnnamed,
    /// No message waits where one is asked for.
    #[error(
        "no message queued from {} to {} in session '{}'",
        .from.describe(),
        .to.describe(),
        shorten(.session)
    )]
    NoMessage {
        /// The session.
        session: String,
        /// The sender.
        from: Seat,
        /// The receiver.
        to: Seat,
    },
    /// A pair's queue is full.
    #[error(
        "queue limit: the queue {}holds {} (limit {}); retry later",
        PairPrefix(*.pair),
        human_bytes(*.queued),
        human_bytes(*.limit)
    )]
    QueueLimit {
        /// The sender and receiver, where the store names them.
        pair: Option<(Seat, Seat)>,
        /// Bytes queued.
        queued: usize,
        /// The limit.
        limit: usize,
    },
    /// A session's queues are full.
    #[error(
        "session limit: session '{}' holds {} (limit {}); retry later",
        shorten(.session),
        human_bytes(*.queued),
        human_bytes(*.limit)
    )]
    SessionLimit {
        /// The session.
        session: String,
        /// Bytes queued.
        queued: usize,
        /// The limit.
        limit: usize,
    },
    /// A bug: a message reservation used twice.
    #[error("internal error: message used twice; retry")]
    MessageUsedTwice,
    /// A bug: a mailbox disappeared while a message was queued.
    #[error("internal error: mailbox vanished")]
    MailboxVanished,
}

impl Reason {
    /// The kind of refusal this reason makes (the routes pick the status from it).
    pub fn kind(&self) -> Refused {
        match self {
            Reason::Request(_) | Reason::NoSuchSeat { .. } | Reason::NoMessage { .. } => {
                Refused::Invalid
            }
            Reason::NeedsToken { .. } | Reason::DeleteForbidden(_) => Refused::Forbidden,
            Reason::OutOfOrder { .. }
            | Reason::PartyCount { .. }
            | Reason::SeatTaken { .. }
            | Reason::Delivered { .. }
            | Reason::DeliveredUnnamed => Refused::Conflict,
            Reason::MemoryLimit(_) | Reason::QueueLimit { .. } | Reason::SessionLimit { .. } => {
                Refused::Busy
            }
            Reason::Deleted(_)
            | Reason::Expired(_)
            | Reason::LostSession(_)
            | Reason::Reclaimed(_)
            | Reason::NoContact { .. } => Refused::Gone,
            Reason::StoreFailed(_)
            | Reason::ShuttingDown
            | Reason::KeepsClosing(_)
            | Reason::MessageUsedTwice => Refused::Unavailable,
            Reason::MailboxVanished => Refused::Internal,
        }
    }
}

/// "party 1 " before "lost: ...", or nothing.
struct SeatPrefix(Option<Seat>);

impl fmt::Display for SeatPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(seat) => write!(f, "{} ", seat.describe()),
            None => Ok(()),
        }
    }
}

/// "from party 0 to party 1 " after "the queue", or nothing.
struct PairPrefix(Option<(Seat, Seat)>);

impl fmt::Display for PairPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some((from, to)) => write!(f, "from {} to {} ", from.describe(), to.describe()),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_parts_keep_the_wording() {
        let from = Seat::Party(0);
        let to = Seat::Dealer;
        assert_eq!(
            Reason::Reclaimed(Some(from)).to_string(),
            "party 0 lost: its seat was reclaimed by a new client"
        );
        assert_eq!(
            Reason::Reclaimed(None).to_string(),
            "lost: its seat was reclaimed by a new client"
        );
        let queue = |pair| Reason::QueueLimit {
            pair,
            queued: 10,
            limit: 20,
        };
        assert_eq!(
            queue(Some((from, to))).to_string(),
            "queue limit: the queue from party 0 to the dealer holds 10 bytes (limit 20 bytes); \
             retry later"
        );
        assert_eq!(
            queue(None).to_string(),
            "queue limit: the queue holds 10 bytes (limit 20 bytes); retry later"
        );
    }

    #[test]
    fn a_taken_seat_says_when_to_retry() {
        let refusal = Refusal::from(Reason::SeatTaken {
            session: "s".into(),
            seat: Seat::Party(1),
            silent_secs: 1.5,
            lost_after_secs: 10.0,
        });
        assert_eq!(refusal.kind, Refused::Conflict);
        assert_eq!(refusal.retry_after, Some(9));
    }
}
