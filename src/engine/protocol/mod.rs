//! The phases of protocol.md for one party: handshake, preprocessing (through a
//! [`crate::engine::preprocess::Source`]), input processing with its broadcast-consistency check, garbling and
//! evaluation streamed chunk by chunk, and the output.
//!
//! Order of the online phases. Garbled rows are produced, sent and consumed in gate order,
//! one chunk of AND gates at a time, so neither side ever holds the whole garbled circuit.
//! That requires the evaluator to hold the input labels before the first chunk, so input
//! processing runs *before* garbling. This is safe: the masked inputs `x ⊕ λ` are one-time
//! padded by the honest parties' shares of λ, and every garbled row the evaluator decrypts is
//! checked against its IT-MAC, so whether a corrupted row is hit depends only on masked
//! values, which are independent of the inputs (the argument of WRK17 §3 does not depend on
//! when the masked inputs are sent).
//!
//! The broadcast-consistency check runs right after the masked inputs are exchanged, before
//! anything is garbled: every party tells every other, per input owner, a digest of the
//! masked values it received from that owner. An owner that sent different values to
//! different parties is then named by the check that is meant to catch it (with the party
//! whose report differs, when a third party cannot tell which of the two lies), instead of
//! surfacing later as a garbled-row failure that points at an honest garbler.
//!
//!
//! Layout: [`circuit`] the circuit's shape and its instructions as a checked stream,
//! [`config`] holds what a party knows about the session and its one validation,
//! [`handshake`] the handshake message and its checks, [`online`] the online phases as
//! state that takes what arrived and returns what to send, and [`driver`] the one async
//! loop that moves those messages over a [`crate::channel::Channel`].

mod circuit;
mod config;
mod driver;
mod handshake;
mod online;

pub use circuit::{CircuitShape, InstSource, InstSourceError, SliceSource};
pub use config::{ConfigError, DEFAULT_CHUNK_ANDS, PartyConfig};
pub use driver::{PartyOutcome, run_party, run_party_streamed};
pub use handshake::{HandshakeError, OutputSet};
