//! Two parties: authenticated half gates with one check at the end (Katz–Ranellucci–
//! Rosulek–Wang, CRYPTO 2018), in place of WRK17's four authenticated rows per AND gate.
//!
//! Notation: the garbler G has global key Δ_G (lsb 1), which is also the free-XOR offset; the
//! evaluator E has Δ_E. Every mask λ = g ⊕ e is shared with IT-MACs: G holds g, M_E[g] and
//! K_G[e]; E holds e, M_G[e] and K_E[g] (M_X[y] = K_X[y] ⊕ y·Δ_X). So
//! [λ]·Δ_G = (g·Δ_G ⊕ K_G[e]) ⊕ M_G[e] is split between G and E without a message. For an AND
//! gate γ = α ∧ β, let r = (λ_α ∧ λ_β) ⊕ λ_γ (from the Beaver opening, [`super::chunk`]).
//!
//! **Garbling** (G, per gate, with H the tweakable correlation-robust hash of
//! [`crate::engine::garble`] under tweaks of the gate number and the side):
//! - G_0 = H(L_α,0) ⊕ H(L_α,1) ⊕ [λ_β]Δ_G's G-part;
//! - G_1 = H(L_β,0) ⊕ H(L_β,1) ⊕ L_α,0 ⊕ [λ_α]Δ_G's G-part;
//! - L_γ,0 = H(L_α,0) ⊕ H(L_β,0) ⊕ [r]Δ_G's G-part, and d = lsb(L_γ,0).
//!
//! G sends G_0, G_1 and d: 32 bytes and one bit per gate, where four rows of two blocks
//! took 128 bytes.
//!
//! **Evaluating** (E, holding Λ_α, Λ_β and L_α,Λ_α, L_β,Λ_β):
//! X = H(L_α,Λ_α) ⊕ H(L_β,Λ_β) ⊕ Λ_α(G_0 ⊕ M_G[e_β]) ⊕ Λ_β(G_1 ⊕ L_α,Λ_α ⊕ M_G[e_α]) ⊕ M_G[e_r]
//! = L_γ,0 ⊕ (Λ_αΛ_β ⊕ Λ_αλ_β ⊕ Λ_βλ_α ⊕ r)·Δ_G = L_γ,Λ_γ, and Λ_γ = d ⊕ lsb(X) since
//! lsb(Δ_G) = 1.
//!
//! **The check.** Nothing above stops G from sending other values, which would give E a
//! wrong Λ_γ. For every gate, c = Λ_αΛ_β ⊕ Λ_αλ_β ⊕ Λ_βλ_α ⊕ r ⊕ Λ_γ must be 0, and with the
//! Λ known, c is a linear function of authenticated shares: c = t_E ⊕ t_G with E's part
//! t_E = Λ_αΛ_β ⊕ Λ_γ ⊕ Λ_αe_β ⊕ Λ_βe_α ⊕ e_r and G's part t_G = Λ_αg_β ⊕ Λ_βg_α ⊕ g_r. G's
//! MAC on t_G, M_E[t_G] = M_E[g_r] ⊕ Λ_αM_E[g_β] ⊕ Λ_βM_E[g_α], equals E's value
//! t_E·Δ_E ⊕ K_E[g_r] ⊕ Λ_αK_E[g_β] ⊕ Λ_βK_E[g_α] exactly when t_G = t_E, i.e. c = 0;
//! otherwise G would have to know Δ_E. So E sends its masked AND outputs chunk by chunk
//! ([`Phase::MaskedAndOutputs`]), G derives every Λ from them by replaying the chunk's
//! XORs, and at the end sends one digest of all its values ([`Phase::GateCheck`]); E
//! compares it with the digest of its own before it sends or accepts anything of the
//! output. A mismatch aborts with the *AND gate check*.
//!
//! What G learns: the masked values Λ_γ = z_γ ⊕ g_γ ⊕ e_γ are uniform to it (e_γ is fresh
//! and never opened unless γ is an output), and whatever it altered changes E's values only
//! as a function of Λs, so the values E sends and whether the check passes tell it nothing
//! about E's inputs (the selective-failure test checks this).
//!
//! What E must not do: lie about a masked output. G's digest is a function of the Λs that E
//! sends and of G's share bits (E holds the keys and Δ_E), so a Λ_γ flipped on purpose would
//! turn G's values for the gates that read γ into functions of G's shares of the other
//! input masks, which E could test against the digest, learning wire values. So E sends,
//! with each chunk's masked outputs, a digest of its labels L_γ,Λ_γ of those outputs; G
//! recomputes it from L_γ,0 and the claimed Λ_γ and aborts (*masked AND output check*)
//! before it uses a claimed Λ. E cannot produce the label of the other value without Δ_G.
//! With every Λ authentic, G's digest is what E can compute anyway.

mod evaluate;
mod garble;
mod wave;

use std::collections::VecDeque;

use bytes::Bytes;
use garble_lang::register_circuit::Inst;
use subtle::ConstantTimeEq;

use super::Online;
use crate::channel::Phase;
use crate::engine::EngineError;
use crate::engine::share::{Block, MacDigest, bit_at, packed_len};
use wave::{Side, walk};

pub(crate) use wave::Wave;

/// Bytes of the garbler's message for `gates` AND gates: G_0 and G_1 of every gate, then the
/// gates' d bits, packed.
pub(super) fn message_len(gates: usize) -> usize {
    gates * 32 + packed_len(gates)
}

/// Blocks the garbler keeps per AND gate until the evaluator's masked outputs arrive:
/// L_γ,0, then its MACs towards the evaluator on its shares of r, λ_α and λ_β.
const KEPT: usize = 4;

/// A chunk the garbler garbled, kept until the evaluator's masked AND outputs for it arrive.
struct Garbled {
    /// Its chunk number.
    chunk: u64,
    /// Global number of its first AND gate.
    base: u64,
    /// Its instructions, to replay the masked values.
    insts: Vec<Inst>,
    /// [`KEPT`] blocks per AND gate.
    kept: Vec<Block>,
}

/// The end check's state.
pub(crate) struct GateCheck {
    /// Garbler: chunks garbled and not yet checked, oldest first.
    waiting: VecDeque<Garbled>,
    /// This party's check values of every gate so far, in gate order.
    values: MacDigest,
}

impl Default for GateCheck {
    fn default() -> Self {
        Self {
            waiting: VecDeque::new(),
            values: MacDigest::with_capacity(1 << 12),
        }
    }
}

/// The garbler's replay of a chunk once the evaluator's masked AND outputs arrived: the
/// masked value of every register, the labels the evaluator must hold, and every gate's
/// check value.
struct Replay<'m, 'k> {
    delta: Block,
    /// The evaluator's message: the masked AND outputs, then the digest of their labels.
    msg: &'m [u8],
    /// [`KEPT`] blocks per AND gate, from garbling the chunk.
    kept: &'k [Block],
    /// The digest of the labels of the claimed masked outputs.
    labels: MacDigest,
}

impl Side for Replay<'_, '_> {
    fn xor(&mut self, st: &mut Online<'_>, o: usize, a: usize, b: usize) {
        st.ev_m[o] = st.ev_m[a] ^ st.ev_m[b];
    }

    fn not(&mut self, st: &mut Online<'_>, o: usize, a: usize) {
        st.ev_m[o] = !st.ev_m[a];
    }

    /// Nothing to hash: each gate is done at once and the wave stays empty, so the walker
    /// never flushes it.
    fn and(&mut self, st: &mut Online<'_>, _: &mut Wave, [t, o, a, b]: [usize; 4]) {
        let (ma, mb) = (st.ev_m[a], st.ev_m[b]);
        let mg = bit_at(self.msg, t);
        let kept = &self.kept[KEPT * t..KEPT * t + KEPT];
        self.labels
            .push(if mg { kept[0] ^ self.delta } else { kept[0] });
        let mut value = kept[1];
        if ma {
            value ^= kept[3];
        }
        if mb {
            value ^= kept[2];
        }
        st.check.values.push(value);
        st.ev_m[o] = mg;
    }

    fn flush(&mut self, _: &mut Online<'_>, _: &mut Wave) {}
}

impl Online<'_> {
    /// Garbler: whether the evaluator has sent the masked outputs of the oldest chunk still
    /// waiting. It sends them once it has evaluated that chunk, which it does one chunk
    /// behind the garbler, so those of chunk k come before any message of chunk k + 2.
    pub(crate) fn masked_outputs_due(&self) -> bool {
        self.check
            .waiting
            .front()
            .is_some_and(|g| g.chunk + 2 <= self.chunks_done)
    }

    /// Garbler: whether any garbled chunk still waits for its masked outputs.
    pub(crate) fn masked_outputs_waiting(&self) -> bool {
        !self.check.waiting.is_empty()
    }

    /// Garbler: takes the evaluator's masked AND outputs of the oldest waiting chunk, checks
    /// them against the labels it garbled, replays the chunk's masked values and adds
    /// every gate's check value.
    pub(crate) fn take_masked_outputs(&mut self, msg: &[u8]) -> Result<(), EngineError> {
        let e = self.cfg.evaluator;
        let Some(chunk) = self.check.waiting.pop_front() else {
            return Err(self.malformed(
                e,
                Phase::MaskedAndOutputs,
                "masked outputs for a chunk this party did not garble".into(),
            ));
        };
        let gates = chunk.kept.len() / KEPT;
        let nb = packed_len(gates);
        if msg.len() != nb + 32 {
            return Err(self.malformed(
                e,
                Phase::MaskedAndOutputs,
                format!("expected {} bytes, got {}", nb + 32, msg.len()),
            ));
        }
        let mut replay = Replay {
            delta: self.delta,
            msg,
            kept: &chunk.kept,
            labels: MacDigest::with_capacity(gates),
        };
        walk(self, &chunk.insts, &mut replay)?;
        let labels = replay.labels;
        if !bool::from(labels.finish().ct_eq(&msg[nb..])) {
            return Err(EngineError::Check {
                check: "masked AND output check",
                peer: self.names.name(e),
                detail: format!(
                    "the labels of the masked outputs of AND gates {}..{} are not the ones \
                     this party garbled (a masked output was altered)",
                    chunk.base,
                    chunk.base + gates as u64
                ),
            });
        }
        Ok(())
    }

    /// Garbler: the digest of its check values of every gate, for the evaluator (once every
    /// chunk's masked outputs arrived).
    pub(crate) fn gate_check(&self) -> Bytes {
        Bytes::copy_from_slice(&self.check.values.finish())
    }

    /// Evaluator: compares the garbler's digest `msg` with its own; equal digests mean that
    /// every masked value it computed is the one the authenticated masks define.
    pub(crate) fn verify_gate_check(&self, msg: &[u8]) -> Result<(), EngineError> {
        // Two parties: the garbler is the other one.
        let g = 1 - self.cfg.me;
        if msg.len() != 32 {
            return Err(self.malformed(
                g,
                Phase::GateCheck,
                format!("expected 32 bytes, got {}", msg.len()),
            ));
        }
        if !bool::from(self.check.values.finish().ct_eq(msg)) {
            return Err(EngineError::Check {
                check: "AND gate check",
                peer: self.names.name(g),
                detail: "its half gates gave masked values that the authenticated masks do \
                         not allow (a garbled gate or its bit was altered)"
                    .into(),
            });
        }
        Ok(())
    }

    /// Test only: a garbled chunk `msg` of `gates` AND gates with the garbler's
    /// [`crate::cheat::Cheat::HalfGateOffset`] applied, if its gate is in the chunk (call
    /// before [`Online::chunk_done`]).
    #[cfg(feature = "testing")]
    pub(crate) fn offset_half_gate(
        &self,
        cheat: Option<&crate::cheat::Cheat>,
        gates: usize,
        msg: Bytes,
    ) -> Bytes {
        let Some(&crate::cheat::Cheat::HalfGateOffset { gate }) = cheat else {
            return msg;
        };
        let t = gate.wrapping_sub(self.gates_done) as usize;
        if !self.half_gates || gate < self.gates_done || t >= gates {
            return msg;
        }
        let mut msg = msg.to_vec();
        let g0 = crate::engine::share::block_at(&msg, 2 * t) ^ self.delta;
        msg[32 * t..32 * t + 16].copy_from_slice(&g0.to_le_bytes());
        Bytes::from(msg)
    }

    /// Whether this run garbles with half gates and ends with the AND gate check.
    pub(crate) fn uses_half_gates(&self) -> bool {
        self.half_gates
    }
}
