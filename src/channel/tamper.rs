//! A channel wrapper that corrupts one message on purpose. Security tests use it to play a
//! cheating party: the honest parties must then abort, never return a wrong result.
//!
//! Test only: compiled with the `testing` feature (the integration tests enable it) and for
//! this crate's unit tests.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;

use super::{Channel, ChannelError, Phase};

/// Which message to corrupt and how.
#[derive(Debug, Clone, Copy)]
pub struct TamperPlan {
    /// Only messages of this phase are candidates.
    pub phase: Phase,
    /// Only messages to this peer (None: any peer).
    pub to: Option<usize>,
    /// Corrupt the `nth` candidate message (0-based).
    pub nth: usize,
    /// Bit to flip, counted from the start of the message, modulo its length in bits.
    pub bit: usize,
}

/// Wraps a channel and flips one bit of one outgoing message according to a [`TamperPlan`]
/// (or rewrites it with an edit of the test's own).
pub struct Tamper<C> {
    inner: C,
    plan: TamperPlan,
    edit: Option<fn(&mut Vec<u8>)>,
    seen: AtomicUsize,
    done: AtomicBool,
}

impl<C: Channel> Tamper<C> {
    /// Wraps `inner`; the plan fires at most once.
    pub fn new(inner: C, plan: TamperPlan) -> Self {
        Self {
            inner,
            plan,
            edit: None,
            seen: AtomicUsize::new(0),
            done: AtomicBool::new(false),
        }
    }

    /// Wraps `inner` to rewrite the message the plan picks with `edit` instead of flipping
    /// its bit (the plan's `bit` is not used).
    pub fn rewriting(inner: C, plan: TamperPlan, edit: fn(&mut Vec<u8>)) -> Self {
        Self {
            edit: Some(edit),
            ..Self::new(inner, plan)
        }
    }

    /// Wraps `inner` without ever altering a message, so that honest parties can have the
    /// same channel type as the cheater.
    pub fn honest(inner: C) -> Self {
        let plan = TamperPlan {
            phase: Phase::Handshake,
            to: None,
            nth: usize::MAX,
            bit: 0,
        };
        Self::new(inner, plan)
    }

    /// Takes the wrapped channel back.
    pub fn into_inner(self) -> C {
        self.inner
    }

    /// Whether the corruption has happened (a test that expects an abort checks this first,
    /// so that it never passes without having cheated).
    pub fn fired(&self) -> bool {
        self.done.load(Ordering::SeqCst)
    }

    /// The wrapped channel (e.g. an inner `Tamper`, so that a test can alter two messages).
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C: Channel> Channel for Tamper<C> {
    fn me(&self) -> usize {
        self.inner.me()
    }

    fn peers(&self) -> usize {
        self.inner.peers()
    }

    async fn send(&self, to: usize, phase: Phase, data: Bytes) -> Result<(), ChannelError> {
        let candidate = phase == self.plan.phase && self.plan.to.is_none_or(|t| t == to);
        let data = if candidate
            && !data.is_empty()
            && self.seen.fetch_add(1, Ordering::SeqCst) == self.plan.nth
        {
            let mut bytes = data.to_vec();
            match self.edit {
                Some(edit) => edit(&mut bytes),
                None => {
                    let bit = self.plan.bit % (bytes.len() * 8);
                    bytes[bit / 8] ^= 1 << (bit % 8);
                }
            }
            self.done.store(true, Ordering::SeqCst);
            Bytes::from(bytes)
        } else {
            data
        };
        self.inner.send(to, phase, data).await
    }

    async fn recv(&self, from: usize, phase: Phase) -> Result<Bytes, ChannelError> {
        self.inner.recv(from, phase).await
    }

    async fn abort(&self, reason: &str) {
        self.inner.abort(reason).await
    }

    fn bytes_sent(&self) -> u64 {
        self.inner.bytes_sent()
    }

    #[cfg(feature = "testing")]
    fn cheat(&self) -> Option<&crate::cheat::Cheat> {
        self.inner.cheat()
    }
}
