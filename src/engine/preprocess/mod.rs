//! Function-independent preprocessing: where Δ, the authenticated bits and the AND triples
//! come from. The online protocol consumes them through [`Source`] and does not know which
//! source it has.
//!
//! Material order (the same for every source): one authenticated bit per circuit input bit,
//! in input order; then, per AND gate in circuit order, four authenticated shares
//! `[a], [b], [c], [λ_γ]` with `c = a ∧ b` and `λ_γ` the mask of the gate's output wire.

pub mod dealer;
pub mod faand;
pub mod ot;

use std::future::Future;

use super::EngineError;
use super::share::{AuthBits, Block};

/// Shares consumed per AND gate: a, b, c and the output mask.
pub const ITEMS_PER_AND: usize = 4;

/// Which source of correlated randomness a session uses (part of the handshake).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A trusted dealer (`mpc pre`).
    Dealer,
    /// The parties' own OT-based preprocessing.
    Ot,
}

impl SourceKind {
    /// Wire code for the handshake.
    pub fn code(self) -> u8 {
        match self {
            SourceKind::Dealer => 0,
            SourceKind::Ot => 1,
        }
    }

    /// A short description for messages.
    pub fn describe(self) -> &'static str {
        match self {
            SourceKind::Dealer => "a trusted dealer",
            SourceKind::Ot => "OT-based preprocessing without a dealer",
        }
    }
}

/// A party's supply of correlated randomness, consumed in material order.
pub trait Source: Send {
    /// This party's global key Δ.
    fn delta(&self) -> Block;

    /// The next `count` authenticated shares.
    fn take(&mut self, count: usize) -> impl Future<Output = Result<AuthBits, EngineError>> + Send;

    /// The digest of this party's transcript of the run so far (the run id and every coin
    /// toss result, see [`crate::engine::transcript`]); the parties compare it before any
    /// output is released.
    fn transcript(&self) -> [u8; 32];
}
