//! Test-only protocol deviations (compiled only with the `testing` feature, which nothing but
//! the crate's own integration tests enable).
//!
//! Most cheating can be played on the wire ([`crate::channel::tamper`]), but some deviations
//! change what a party computes, e.g. a party that uses different bits towards different
//! parties must also compute its check values from the coin-tossed challenges. A security
//! test wraps the cheater's channel in [`Cheating`]; the engine asks its channel for a
//! [`Cheat`] at the few places that have a hook, and every real channel answers `None`.
//! Without the feature neither this module nor the hooks exist.

use bytes::Bytes;

use crate::channel::{Channel, ChannelError, Phase};

/// One deviation from the protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cheat {
    /// OT-based preprocessing (FaBit^n): in batch `batch`, authenticate bit `row` flipped
    /// towards party `towards` only, i.e. flip that bit in the OT-extension correction of
    /// every tree sent to it and send it the x̃ of the flipped bits, so that its OT extension
    /// consistency check passes and only the aBit consistency check can notice.
    ABitEquivocation {
        /// The party that gets the flipped bit.
        towards: usize,
        /// The aBit (row of the OT extension) to flip.
        row: usize,
        /// The preprocessing batch.
        batch: u64,
    },
    /// Two-party garbling: the garbler adds its global key Δ to G_0 of AND gate `gate`. The
    /// evaluator then gets the label of Λ_γ ⊕ Λ_α, consistent with the masked value it
    /// derives from it, so the garbler's own masked AND output check passes and only the
    /// evaluator's AND gate check can notice (when Λ_α = 1, i.e. with probability 1/2).
    HalfGateOffset {
        /// The AND gate (global number, in circuit order).
        gate: u64,
    },
}

/// A channel that makes its endpoint deviate as its [`Cheat`] says (test only).
pub struct Cheating<C> {
    inner: C,
    cheat: Option<Cheat>,
}

impl<C: Channel> Cheating<C> {
    /// Wraps an endpoint's channel: the cheater's with `Some(cheat)`, an honest endpoint's
    /// with `None` (so that every endpoint of a test session has the same channel type).
    pub fn new(inner: C, cheat: Option<Cheat>) -> Self {
        Self { inner, cheat }
    }

    /// The wrapped channel.
    pub fn inner(&self) -> &C {
        &self.inner
    }
}

impl<C: Channel> Channel for Cheating<C> {
    fn me(&self) -> usize {
        self.inner.me()
    }

    fn peers(&self) -> usize {
        self.inner.peers()
    }

    async fn send(&self, to: usize, phase: Phase, data: Bytes) -> Result<(), ChannelError> {
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

    fn cheat(&self) -> Option<&Cheat> {
        self.cheat.as_ref()
    }
}
