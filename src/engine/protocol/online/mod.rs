//! The online protocol state of one party: input processing, garbling and evaluation chunk
//! by chunk, and the output. Nothing here awaits: each step takes the messages that arrived
//! (and the preprocessed material the driver took from the [`crate::engine::preprocess::Source`])
//! and returns the messages to send; [`super::driver`] moves them over the channel.
//!
//! Garbling: with three or more parties every garbler sends four authenticated rows per
//! AND gate (WRK17, [`garbler`], [`evaluator`]); with two, the garbler sends two half-gate
//! ciphertexts and one bit, checked once at the end ([`half_gates`]).

mod chunk;
mod evaluator;
mod garbler;
mod half_gates;
mod inputs;
mod outputs;

use bytes::Bytes;
use subtle::ConstantTimeEq;

use super::PartyConfig;
use super::circuit::CircuitShape;
use crate::channel::{PeerNames, Phase};
use crate::engine::EngineError;
use crate::engine::aes::Prg;
use crate::engine::garble::RowHasher;
use crate::engine::share::{Block, MacDigest, Slots, bit_at, pack_bits, packed_len};

pub(crate) use evaluator::PendingChunk;
pub(crate) use outputs::OUTPUT_DONE;

/// The online protocol state of one party.
pub(crate) struct Online<'a> {
    cfg: &'a PartyConfig,
    circuit: &'a CircuitShape,
    slots: Slots,
    names: PeerNames,
    delta: Block,
    is_eval: bool,
    /// Two parties: half gates and the end check ([`half_gates`]) instead of four rows.
    half_gates: bool,
    /// Width of MACs+keys per share.
    w: usize,
    /// λ shares of every register: bits and MACs/keys.
    bits: Vec<bool>,
    mk: Vec<Block>,
    /// Garbler only: zero-labels of every register.
    labels: Vec<Block>,
    /// Masked values of every register: the evaluator's, and with half gates the garbler's
    /// copy, made from the evaluator's masked AND outputs for the end check.
    ev_m: Vec<bool>,
    /// Evaluator only: the garblers' labels (m per register).
    ev_labels: Vec<Block>,
    prg: Prg,
    hasher: RowHasher,
    /// AND gates processed so far (global gate numbers for the hash tweak).
    gates_done: u64,
    /// Chunks processed so far.
    chunks_done: u64,
    /// Half gates: the end check's state.
    check: half_gates::GateCheck,
    /// Half gates: the wave of AND gates hashed together.
    wave: half_gates::Wave,
}

impl<'a> Online<'a> {
    /// The state of party `cfg.me` with global key `delta`, before input processing.
    pub(crate) fn new(cfg: &'a PartyConfig, circuit: &'a CircuitShape, delta: Block) -> Self {
        let slots = Slots {
            me: cfg.me,
            n: cfg.parties,
        };
        let m = slots.m();
        let regs = circuit.max_reg_count;
        let is_eval = cfg.me == cfg.evaluator;
        let half_gates = cfg.parties == 2;
        Self {
            cfg,
            circuit,
            delta,
            slots,
            names: PeerNames::new(cfg.parties),
            is_eval,
            half_gates,
            w: 2 * m,
            bits: vec![false; regs],
            mk: vec![0; regs * 2 * m],
            labels: if is_eval { Vec::new() } else { vec![0; regs] },
            ev_m: if is_eval || half_gates {
                vec![false; regs]
            } else {
                Vec::new()
            },
            ev_labels: if is_eval {
                vec![0; regs * m]
            } else {
                Vec::new()
            },
            prg: Prg::from_entropy(),
            hasher: RowHasher::new(),
            gates_done: 0,
            chunks_done: 0,
            check: half_gates::GateCheck::default(),
            wave: half_gates::Wave::default(),
        }
    }

    /// Whether this party evaluates.
    pub(crate) fn is_evaluator(&self) -> bool {
        self.is_eval
    }

    /// Every party but this one, in index order.
    pub(crate) fn others(&self) -> Vec<usize> {
        self.slots.others().collect()
    }

    fn m(&self) -> usize {
        self.slots.m()
    }

    fn malformed(&self, peer: usize, phase: Phase, detail: String) -> EngineError {
        EngineError::Malformed {
            peer: self.names.name(peer),
            phase,
            detail,
        }
    }

    /// Counts the AND gates of a finished chunk (global gate numbers for the hash tweak).
    pub(crate) fn chunk_done(&mut self, gates: usize) {
        self.gates_done += gates as u64;
        self.chunks_done += 1;
    }

    /// Opens this party's shares of registers `regs` to party `j`: the share bits and one
    /// digest of their MACs towards `j`.
    fn share_opening(&self, regs: &[usize], j: usize) -> Bytes {
        let s = self.slots.slot(j);
        let mut msg = pack_bits(regs.iter().map(|&r| self.bits[r]));
        let mut digest = MacDigest::with_capacity(regs.len());
        for &r in regs {
            digest.push(self.mk[r * self.w + s]);
        }
        msg.extend_from_slice(&digest.finish());
        Bytes::from(msg)
    }

    /// Checks party `j`'s opening of its shares of `regs` (see [`Self::share_opening`])
    /// against this party's keys, and XORs the opened bits into `acc`.
    #[allow(clippy::too_many_arguments)]
    fn check_share_opening(
        &self,
        regs: &[usize],
        j: usize,
        msg: &[u8],
        acc: &mut [bool],
        phase: Phase,
        check: &'static str,
        detail: &str,
    ) -> Result<(), EngineError> {
        let nb = packed_len(regs.len());
        if msg.len() != nb + 32 {
            return Err(self.malformed(
                j,
                phase,
                format!("expected {} bytes, got {}", nb + 32, msg.len()),
            ));
        }
        let at = self.m() + self.slots.slot(j);
        let mut digest = MacDigest::with_capacity(regs.len());
        for (x, &r) in regs.iter().enumerate() {
            let b = bit_at(msg, x);
            acc[x] ^= b;
            let key = self.mk[r * self.w + at];
            digest.push(if b { key ^ self.delta } else { key });
        }
        if !bool::from(digest.finish().ct_eq(&msg[nb..])) {
            return Err(EngineError::Check {
                check,
                peer: self.names.name(j),
                detail: detail.into(),
            });
        }
        Ok(())
    }

    /// Adds a public 1 to a share: the evaluator flips its bit, everyone else its key on the
    /// evaluator's share.
    #[inline]
    fn add_one(&self, bit: &mut bool, mk: &mut [Block]) {
        if self.is_eval {
            *bit = !*bit;
        } else {
            mk[self.m() + self.slots.slot(self.cfg.evaluator)] ^= self.delta;
        }
    }
}
