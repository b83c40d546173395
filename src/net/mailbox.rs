//! Per-pair sequence admission, the one place that decides what a numbered message does to
//! an ordered pair of endpoints: the relay's sessions (in memory and, through the same
//! [`admit`], in Redis) and direct-mode endpoints both use it. No I/O and no clock: callers
//! lock, ask, and act on the answer (a status code is the routes' business).
//!
//! Senders number their messages per ordered pair from 0. The number expected next is
//! accepted; a smaller one is a retry whose answer was lost (ignored, answered as done); a
//! larger one skips messages and is refused, since delivery must stay in order.

use std::collections::VecDeque;

use bytes::Bytes;

/// What to do with a numbered message arriving on a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The number expected next (or no number given): accept it.
    Next,
    /// Already received: ignore it, and say it arrived.
    Duplicate,
    /// Beyond the next expected number: refuse it.
    Gap {
        /// The number expected next.
        expected: u64,
    },
}

/// Checks `seq` (`None`: the sender does not number its messages) against `next`, the number
/// expected next on a pair.
pub fn admit(seq: Option<u64>, next: u64) -> Admission {
    match seq {
        None => Admission::Next,
        Some(n) if n < next => Admission::Duplicate,
        Some(n) if n == next => Admission::Next,
        Some(_) => Admission::Gap { expected: next },
    }
}

/// The messages of one ordered pair that were accepted and not yet taken, in order, with the
/// number the next one gets.
#[derive(Debug, Default)]
pub(crate) struct Mailbox {
    /// Queued messages with their numbers, oldest first, numbers consecutive.
    queue: VecDeque<(u64, Bytes)>,
    /// The number the next accepted message gets.
    next_seq: u64,
    /// Payload bytes queued.
    bytes: usize,
}

impl Mailbox {
    /// An empty mailbox expecting message 0.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// What to do with message `seq`; see [`admit`].
    pub(crate) fn admit(&self, seq: Option<u64>) -> Admission {
        admit(seq, self.next_seq)
    }

    /// The number the next accepted message gets.
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Payload bytes queued.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether nothing is queued.
    pub(crate) fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Queues an admitted message under the next number and returns that number.
    pub(crate) fn push(&mut self, body: Bytes) -> u64 {
        let n = self.next_seq;
        self.next_seq += 1;
        self.bytes += body.len();
        self.queue.push_back((n, body));
        n
    }

    /// The oldest queued message, with its number.
    pub(crate) fn front(&self) -> Option<&(u64, Bytes)> {
        self.queue.front()
    }

    /// Removes the oldest queued message.
    pub(crate) fn pop_front(&mut self) -> Option<(u64, Bytes)> {
        let (n, body) = self.queue.pop_front()?;
        self.bytes -= body.len();
        Some((n, body))
    }

    /// Takes message `seq` if it is queued, dropping every older one on the way (the
    /// receiver asking for `seq` has them already); `None` if it has not arrived yet.
    pub(crate) fn take(&mut self, seq: u64) -> Option<Bytes> {
        while let Some((n, _)) = self.queue.front() {
            if *n > seq {
                break;
            }
            let (n, body) = self.pop_front()?;
            if n == seq {
                return Some(body);
            }
        }
        None
    }

    /// Starts the numbering again from 0; the queue must have been emptied first (the
    /// caller releases what each message was charged).
    pub(crate) fn restart(&mut self) {
        debug_assert!(self.queue.is_empty());
        self.next_seq = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_in_order_ignores_retries_refuses_gaps() {
        let mut mailbox = Mailbox::new();
        assert_eq!(mailbox.admit(Some(0)), Admission::Next);
        assert_eq!(mailbox.admit(Some(1)), Admission::Gap { expected: 0 });
        assert_eq!(mailbox.push(Bytes::from_static(b"ab")), 0);
        assert_eq!(mailbox.admit(Some(0)), Admission::Duplicate);
        assert_eq!(mailbox.admit(Some(1)), Admission::Next);
        assert_eq!(mailbox.admit(None), Admission::Next);
        assert_eq!(mailbox.bytes(), 2);
    }

    #[test]
    fn take_drops_older_messages_and_waits_for_newer() {
        let mut mailbox = Mailbox::new();
        for body in [&b"a"[..], b"bb", b"ccc"] {
            mailbox.push(Bytes::copy_from_slice(body));
        }
        assert_eq!(mailbox.take(1).as_deref(), Some(&b"bb"[..]));
        assert_eq!(mailbox.bytes(), 3);
        assert_eq!(mailbox.take(3), None);
        assert!(mailbox.is_empty());
        assert_eq!(mailbox.bytes(), 0);
        mailbox.restart();
        assert_eq!(mailbox.next_seq(), 0);
    }
}
