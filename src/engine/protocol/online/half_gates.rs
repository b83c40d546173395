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

use std::collections::VecDeque;

use bytes::Bytes;
use garble_lang::register_circuit::{And, Inst, Not, Op, Xor};
use subtle::ConstantTimeEq;

use super::Online;
use super::evaluator::PendingChunk;
use crate::channel::Phase;
use crate::engine::EngineError;
use crate::engine::garble::RowHasher;
use crate::engine::share::{AuthBits, Block, MacDigest, bit_at, block_at, pack_bits, packed_len};

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

/// AND gates at most in one wave.
const WAVE: usize = 64;

/// A wave of AND gates garbled or evaluated together, so that their hashes take one AES
/// call. A gate joins the wave unless it reads or overwrites the output of a gate in it;
/// any other instruction that would flushes the wave first.
#[derive(Default)]
pub(crate) struct Wave {
    /// `busy[r] == epoch`: register r is the output of a gate in the wave.
    busy: Vec<u32>,
    epoch: u32,
    /// Per gate: its number in the chunk, its output register and its first input label.
    gates: Vec<(usize, usize, Block)>,
    /// Evaluator, per gate: the masked values of its inputs.
    masks: Vec<(bool, bool)>,
    /// The labels to hash, then their hashes, in gate order.
    hashes: Vec<Block>,
}

impl Wave {
    /// Ready for a chunk of a circuit with `regs` registers.
    fn start(&mut self, regs: usize) {
        if self.busy.len() != regs {
            self.busy = vec![0; regs];
            self.epoch = 1;
        }
        self.clear();
    }

    /// Empties the wave.
    fn clear(&mut self) {
        self.gates.clear();
        self.masks.clear();
        self.hashes.clear();
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.busy.fill(0);
            self.epoch = 1;
        }
    }

    /// Whether an instruction on registers `regs` must wait for the wave.
    #[inline]
    fn touches(&self, regs: &[usize]) -> bool {
        !self.gates.is_empty() && regs.iter().any(|&r| self.busy[r] == self.epoch)
    }

    #[inline]
    fn add(&mut self, t: usize, out: usize, first_label: Block, labels: &[Block]) {
        self.busy[out] = self.epoch;
        self.gates.push((t, out, first_label));
        self.hashes.extend_from_slice(labels);
    }

    #[inline]
    fn is_full(&self) -> bool {
        self.gates.len() == WAVE
    }
}

/// What the garbler's waves write: the message and the kept blocks of a chunk.
struct GarbleOut<'s, 'm> {
    base: u64,
    shares: &'s AuthBits,
    delta: Block,
    kept: Vec<Block>,
    msg: &'m mut [u8],
    gates: usize,
}

impl GarbleOut<'_, '_> {
    /// Garbles the gates of the wave (hashes: L_α,0, L_α,1, L_β,0, L_β,1 per gate).
    fn flush(&mut self, wave: &mut Wave, hasher: &mut RowHasher, labels: &mut [Block]) {
        if wave.gates.is_empty() {
            return;
        }
        let (base, gates) = (self.base, &wave.gates);
        hasher.half_gate_hashes(&mut wave.hashes, |i| {
            (base + gates[i / 4].0 as u64, (i / 2) % 2)
        });
        let (shares, delta) = (self.shares, self.delta);
        let (tables, dbits) = self.msg.split_at_mut(self.gates * 32);
        for (&(t, o, la), h) in wave.gates.iter().zip(wave.hashes.chunks_exact(4)) {
            let (r, sa, sb) = (3 * t, 3 * t + 1, 3 * t + 2);
            let g0 = h[0] ^ h[1] ^ delta_part(shares.bits[sb], shares.mk(sb), delta);
            let g1 = h[2] ^ h[3] ^ la ^ delta_part(shares.bits[sa], shares.mk(sa), delta);
            let lg = h[0] ^ h[2] ^ delta_part(shares.bits[r], shares.mk(r), delta);
            tables[32 * t..32 * t + 16].copy_from_slice(&g0.to_le_bytes());
            tables[32 * t + 16..32 * t + 32].copy_from_slice(&g1.to_le_bytes());
            dbits[t / 8] |= ((lg & 1) as u8) << (t % 8);
            labels[o] = lg;
            self.kept
                .extend_from_slice(&[lg, shares.mk(r)[0], shares.mk(sa)[0], shares.mk(sb)[0]]);
        }
        wave.clear();
    }
}

/// What the evaluator's waves write besides its registers.
struct EvalOut<'s, 'm> {
    base: u64,
    shares: &'s AuthBits,
    delta: Block,
    /// The garbler's message for the chunk.
    msg: &'m [u8],
    gates: usize,
    /// The masked output of every AND gate of the chunk.
    masked: Vec<bool>,
    /// The digest of their labels.
    labels: MacDigest,
}

impl EvalOut<'_, '_> {
    /// Evaluates the gates of the wave (hashes: L_α, L_β per gate) and adds their check
    /// values.
    fn flush(&mut self, wave: &mut Wave, st: &mut Online<'_>) {
        if wave.gates.is_empty() {
            return;
        }
        let (base, gates) = (self.base, &wave.gates);
        st.hasher
            .half_gate_hashes(&mut wave.hashes, |i| (base + gates[i / 2].0 as u64, i % 2));
        let (shares, msg) = (self.shares, self.msg);
        let dbits = &msg[self.gates * 32..];
        for ((&(t, o, la), h), &(ma, mb)) in wave
            .gates
            .iter()
            .zip(wave.hashes.chunks_exact(2))
            .zip(&wave.masks)
        {
            let (r, sa, sb) = (3 * t, 3 * t + 1, 3 * t + 2);
            let (kr, ka, kb) = (shares.mk(r), shares.mk(sa), shares.mk(sb));
            // The label, and E's part of c: the masked values are public to E, so
            // branching on them leaks nothing.
            let mut x = h[0] ^ h[1] ^ kr[0];
            let mut bit = shares.bits[r];
            let mut value = kr[1];
            if ma {
                x ^= block_at(msg, 2 * t) ^ kb[0];
                bit ^= shares.bits[sb];
                value ^= kb[1];
            }
            if mb {
                x ^= block_at(msg, 2 * t + 1) ^ la ^ ka[0];
                bit ^= shares.bits[sa];
                value ^= ka[1];
            }
            let mg = bit_at(dbits, t) ^ (x & 1 == 1);
            if bit ^ (ma & mb) ^ mg {
                value ^= self.delta;
            }
            st.check.values.push(value);
            self.labels.push(x);
            self.masked[t] = mg;
            st.ev_m[o] = mg;
            st.ev_labels[o] = x;
        }
        wave.clear();
    }
}

/// G's part of [λ]·Δ_G for a share with bit `bit` and MAC/key pair `mk` (two parties).
#[inline]
fn delta_part(bit: bool, mk: &[Block], delta: Block) -> Block {
    if bit { mk[1] ^ delta } else { mk[1] }
}

impl Online<'_> {
    /// Garbler: garbles the chunk `insts` with half gates from `shares` (r, λ_α, λ_β per
    /// AND gate, see [`Online::and_shares`]), propagating labels through its XORs and NOTs,
    /// and keeps what the end check needs. The message is `None` for a chunk without AND
    /// gates.
    pub(super) fn garble_half(&mut self, insts: Vec<Inst>, shares: &AuthBits) -> Option<Bytes> {
        let gates = shares.len() / 3;
        let delta = self.delta;
        let mut msg = vec![0u8; message_len(gates)];
        let mut out = GarbleOut {
            base: self.gates_done,
            shares,
            delta,
            kept: Vec::with_capacity(KEPT * gates),
            msg: &mut msg,
            gates,
        };
        let mut wave = std::mem::take(&mut self.wave);
        wave.start(self.circuit.max_reg_count);
        let mut t = 0;
        for inst in &insts {
            let o = inst.out.0 as usize;
            match inst.op {
                Op::Xor(Xor(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    if wave.touches(&[a, b, o]) {
                        out.flush(&mut wave, &mut self.hasher, &mut self.labels);
                    }
                    self.labels[o] = self.labels[a] ^ self.labels[b];
                }
                Op::Not(Not(a)) => {
                    let a = a.0 as usize;
                    if wave.touches(&[a, o]) {
                        out.flush(&mut wave, &mut self.hasher, &mut self.labels);
                    }
                    self.labels[o] = self.labels[a] ^ delta;
                }
                Op::And(And(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    if wave.touches(&[a, b, o]) {
                        out.flush(&mut wave, &mut self.hasher, &mut self.labels);
                    }
                    let (la, lb) = (self.labels[a], self.labels[b]);
                    wave.add(t, o, la, &[la, la ^ delta, lb, lb ^ delta]);
                    if wave.is_full() {
                        out.flush(&mut wave, &mut self.hasher, &mut self.labels);
                    }
                    t += 1;
                }
                // Pass A has rejected the chunk if it loads an input.
                Op::Input(_) => {}
            }
        }
        out.flush(&mut wave, &mut self.hasher, &mut self.labels);
        self.wave = wave;
        let kept = out.kept;
        self.check.waiting.push_back(Garbled {
            chunk: self.chunks_done,
            base: self.gates_done,
            insts,
            kept,
        });
        (gates > 0).then(|| Bytes::from(msg))
    }

    /// Evaluator: evaluates a chunk with the garbler's half gates `msg` (sizes checked),
    /// adds every gate's check value, and returns the masked AND outputs with the digest of
    /// their labels, for the garbler.
    pub(super) fn evaluate_half(
        &mut self,
        chunk: PendingChunk,
        msg: &[u8],
    ) -> Result<Bytes, EngineError> {
        let PendingChunk {
            insts,
            shares,
            base,
            gates,
        } = chunk;
        let mut out = EvalOut {
            base,
            shares: &shares,
            delta: self.delta,
            msg,
            gates,
            masked: vec![false; gates],
            labels: MacDigest::with_capacity(gates),
        };
        let mut wave = std::mem::take(&mut self.wave);
        wave.start(self.circuit.max_reg_count);
        let mut t = 0;
        for inst in &insts {
            let o = inst.out.0 as usize;
            match inst.op {
                Op::Xor(Xor(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    if wave.touches(&[a, b, o]) {
                        out.flush(&mut wave, self);
                    }
                    self.ev_m[o] = self.ev_m[a] ^ self.ev_m[b];
                    self.ev_labels[o] = self.ev_labels[a] ^ self.ev_labels[b];
                }
                Op::Not(Not(a)) => {
                    let a = a.0 as usize;
                    if wave.touches(&[a, o]) {
                        out.flush(&mut wave, self);
                    }
                    self.ev_m[o] = !self.ev_m[a];
                    self.ev_labels[o] = self.ev_labels[a];
                }
                Op::And(And(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    if wave.touches(&[a, b, o]) {
                        out.flush(&mut wave, self);
                    }
                    let (la, lb) = (self.ev_labels[a], self.ev_labels[b]);
                    wave.add(t, o, la, &[la, lb]);
                    wave.masks.push((self.ev_m[a], self.ev_m[b]));
                    if wave.is_full() {
                        out.flush(&mut wave, self);
                    }
                    t += 1;
                }
                Op::Input(_) => {
                    self.wave = wave;
                    return Err(EngineError::Setup(
                        "the circuit loads an input after its first gate".into(),
                    ));
                }
            }
        }
        out.flush(&mut wave, self);
        self.wave = wave;
        let mut reply = pack_bits(out.masked);
        reply.extend_from_slice(&out.labels.finish());
        Ok(Bytes::from(reply))
    }

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
        let delta = self.delta;
        let mut labels = MacDigest::with_capacity(gates);
        let mut t = 0;
        for inst in &chunk.insts {
            let o = inst.out.0 as usize;
            match inst.op {
                Op::Xor(Xor(a, b)) => {
                    self.ev_m[o] = self.ev_m[a.0 as usize] ^ self.ev_m[b.0 as usize];
                }
                Op::Not(Not(a)) => self.ev_m[o] = !self.ev_m[a.0 as usize],
                Op::And(And(a, b)) => {
                    let (ma, mb) = (self.ev_m[a.0 as usize], self.ev_m[b.0 as usize]);
                    let mg = bit_at(msg, t);
                    let kept = &chunk.kept[KEPT * t..KEPT * t + KEPT];
                    labels.push(if mg { kept[0] ^ delta } else { kept[0] });
                    let mut value = kept[1];
                    if ma {
                        value ^= kept[3];
                    }
                    if mb {
                        value ^= kept[2];
                    }
                    self.check.values.push(value);
                    self.ev_m[o] = mg;
                    t += 1;
                }
                Op::Input(_) => {}
            }
        }
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
        let g0 = block_at(&msg, 2 * t) ^ self.delta;
        msg[32 * t..32 * t + 16].copy_from_slice(&g0.to_le_bytes());
        Bytes::from(msg)
    }

    /// Whether this run garbles with half gates and ends with the AND gate check.
    pub(crate) fn uses_half_gates(&self) -> bool {
        self.half_gates
    }
}
