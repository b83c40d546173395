//! The protocol engine: multi-party authenticated garbling (WRK17) as protocol.md specifies.
//! It knows nothing of HTTP: it drives a [`crate::channel::Channel`].

pub(crate) mod aes;
pub(crate) mod garble;
pub mod preprocess;
pub mod protocol;
pub mod share;
pub mod transcript;

use std::time::Duration;

use bytes::Bytes;
use futures_util::future::{try_join, try_join_all};
use thiserror::Error;

use crate::channel::{Channel, ChannelError, Phase};

pub use protocol::{
    CircuitShape, ConfigError, HandshakeError, InstSource, InstSourceError, PartyConfig,
    PartyOutcome, SliceSource, run_party, run_party_streamed,
};
pub use transcript::session_id;

/// Most computing parties in one session. Hash tweaks give a party index 16 bits, so this
/// could grow to 2^16 without changing them; the limit is practical: every party exchanges
/// O(n) blocks per authenticated bit with every other, so sessions of hundreds of parties
/// are already far beyond what the protocol does well. Checked where a party's
/// configuration is validated, by the dealer and by the OT-based source.
pub const MAX_PARTIES: usize = 256;

/// Bits a party index takes in a hash tweak (see `garble::tweak` and `faand::tweak`).
pub(crate) const PARTY_BITS: u32 = 16;

const _: () = assert!(MAX_PARTIES <= 1 << PARTY_BITS);

/// Everything that stops the protocol. Every variant says which check or peer failed.
#[derive(Debug, Error)]
pub enum EngineError {
    /// The channel failed: timeout, lost peer, a peer's abort notice, transport error.
    #[error(transparent)]
    Channel(#[from] ChannelError),
    /// The parties disagree about the computation.
    #[error("handshake failed: {0}")]
    Handshake(#[from] HandshakeError),
    /// This party's configuration cannot make a session (party count, indices, outputs).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// A cryptographic check failed: someone cheated or a message was altered in transit.
    #[error(
        "{check} failed on a message from {peer}: {detail} (a party cheated or the message was altered in transit)"
    )]
    Check {
        /// The check that failed, e.g. "Beaver opening MAC check".
        check: &'static str,
        /// The peer whose message failed it.
        peer: String,
        /// Specifics (gate, bit).
        detail: String,
    },
    /// A message of the wrong size or shape.
    #[error("malformed '{phase}' message from {peer}: {detail}")]
    Malformed {
        /// Its sender.
        peer: String,
        /// Its phase.
        phase: Phase,
        /// What is wrong with it.
        detail: String,
    },
    /// The dealer refused the request or sent something unusable.
    #[error("dealer: {0}")]
    Dealer(String),
    /// The local setup is unusable (circuit, index, input size).
    #[error("{0}")]
    Setup(String),
    /// The circuit's instructions could not be read (e.g. a corrupt file); the message says
    /// what to do.
    #[error("cannot read the circuit's instructions: {0}")]
    Instructions(protocol::InstSourceError),
}

impl EngineError {
    /// Whether this error was caused by a peer's abort notice (so we need not forward it).
    pub fn is_peer_abort(&self) -> bool {
        matches!(self, EngineError::Channel(ChannelError::PeerAborted { .. }))
    }

    /// What to tell the peers when this error stops the session: the failed check and whom
    /// it blames, never the gate or bit where it failed (positions of failed checks can
    /// depend on secret masks, and the peers need only know that, and why, we stop).
    pub fn notice(&self) -> String {
        match self {
            EngineError::Check { check, peer, .. } => {
                format!("{check} failed on a message from {peer}")
            }
            EngineError::Malformed { peer, phase, .. } => {
                format!("malformed '{phase}' message from {peer}")
            }
            EngineError::Channel(ChannelError::Authentication { peer, .. }) => {
                format!("a message from {peer} failed authentication")
            }
            // Local detail (file names) is no business of the peers.
            EngineError::Instructions(_) => {
                "a party could not read its circuit's instructions".to_string()
            }
            other => other.to_string(),
        }
    }
}

/// Receives progress reports; the CLI draws them, tests ignore them.
pub trait Progress: Send + Sync {
    /// A new phase starts with `total` units of work (0 when unknown).
    fn phase(&self, name: &str, total: u64);
    /// `delta` units of the current phase are done.
    fn advance(&self, delta: u64);
    /// What the current phase is busy with right now, e.g. a preprocessing batch made while
    /// the garbling phase waits for it (empty: back to the phase itself).
    fn detail(&self, _what: &str) {}
    /// The current phase is finished.
    fn finish(&self);
}

/// A [`Progress`] that ignores everything.
pub struct NoProgress;

impl Progress for NoProgress {
    fn phase(&self, _: &str, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Time spent in one phase.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PhaseTime {
    /// Phase name.
    pub phase: String,
    /// Wall time in seconds.
    pub secs: f64,
}

/// Figures about one run, for `--format json` and benchmarks.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Stats {
    /// AND gates evaluated.
    pub and_gates: u64,
    /// Payload bytes this endpoint sent.
    pub bytes_sent: u64,
    /// Wall time per phase.
    pub phases: Vec<PhaseTime>,
    /// Peak resident memory of the process in bytes, when the caller measured it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peak_rss_bytes: Option<u64>,
}

impl Stats {
    pub(crate) fn record(&mut self, phase: &str, took: Duration) {
        self.phases.push(PhaseTime {
            phase: phase.to_string(),
            secs: took.as_secs_f64(),
        });
    }
}

/// Sends `outgoing` and receives one message from each of `incoming`, all concurrently (so
/// large messages in both directions cannot deadlock); results follow `incoming`'s order.
pub(crate) async fn exchange<C: Channel>(
    ch: &C,
    phase: Phase,
    outgoing: Vec<(usize, Bytes)>,
    incoming: &[usize],
) -> Result<Vec<Bytes>, EngineError> {
    let sends = try_join_all(
        outgoing
            .into_iter()
            .map(|(to, data)| ch.send(to, phase, data)),
    );
    let recvs = try_join_all(incoming.iter().map(|&from| ch.recv(from, phase)));
    let (_, received) = try_join(sends, recvs).await?;
    Ok(received)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abort_notices_name_the_check_not_where_it_failed() {
        let e = EngineError::Check {
            check: "garbled row MAC check",
            peer: "party 1".into(),
            detail: "gate 1733, row (0, 1), bit 5".into(),
        };
        assert_eq!(
            e.notice(),
            "garbled row MAC check failed on a message from party 1"
        );
        let e = EngineError::Malformed {
            peer: "party 2".into(),
            phase: Phase::GarbledRows,
            detail: "expected 4096 bytes at gate 12".into(),
        };
        assert!(!e.notice().contains("12"), "{}", e.notice());
    }
}
