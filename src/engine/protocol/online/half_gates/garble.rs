//! Garbler: the half gates of a chunk, and what it keeps of them for the end check.

use bytes::Bytes;
use garble_lang::register_circuit::Inst;

use super::super::Online;
use super::wave::{Side, Wave, walk};
use super::{Garbled, KEPT, message_len};
use crate::engine::EngineError;
use crate::engine::share::{AuthBits, Block, times};

/// G's part of [λ]·Δ_G for a share with bit `bit` and MAC/key pair `mk` (two parties).
#[inline]
fn delta_part(bit: bool, mk: &[Block], delta: Block) -> Block {
    mk[1] ^ times(bit, delta)
}

/// The garbler's side of a chunk: writes the message and the kept blocks.
struct Garbler<'s, 'm> {
    base: u64,
    shares: &'s AuthBits,
    delta: Block,
    kept: Vec<Block>,
    msg: &'m mut [u8],
    gates: usize,
}

impl Side for Garbler<'_, '_> {
    fn xor(&mut self, st: &mut Online<'_>, o: usize, a: usize, b: usize) {
        st.labels[o] = st.labels[a] ^ st.labels[b];
    }

    fn not(&mut self, st: &mut Online<'_>, o: usize, a: usize) {
        st.labels[o] = st.labels[a] ^ self.delta;
    }

    fn and(&mut self, st: &mut Online<'_>, wave: &mut Wave, [t, o, a, b]: [usize; 4]) {
        let (la, lb, delta) = (st.labels[a], st.labels[b], self.delta);
        wave.add(t, o, la, &[la, la ^ delta, lb, lb ^ delta]);
    }

    /// Garbles the gates of the wave (hashes: L_α,0, L_α,1, L_β,0, L_β,1 per gate).
    fn flush(&mut self, st: &mut Online<'_>, wave: &mut Wave) {
        let (base, gates) = (self.base, &wave.gates);
        st.hasher.half_gate_hashes(&mut wave.hashes, |i| {
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
            st.labels[o] = lg;
            self.kept
                .extend_from_slice(&[lg, shares.mk(r)[0], shares.mk(sa)[0], shares.mk(sb)[0]]);
        }
    }
}

impl Online<'_> {
    /// Garbler: garbles the chunk `insts` with half gates from `shares` (r, λ_α, λ_β per
    /// AND gate, see [`Online::and_shares`]), propagating labels through its XORs and NOTs,
    /// and keeps what the end check needs. The message is `None` for a chunk without AND
    /// gates.
    pub(in crate::engine::protocol::online) fn garble_half(
        &mut self,
        insts: Vec<Inst>,
        shares: &AuthBits,
    ) -> Result<Option<Bytes>, EngineError> {
        let gates = shares.len() / 3;
        let mut msg = vec![0u8; message_len(gates)];
        let mut garbler = Garbler {
            base: self.gates_done,
            shares,
            delta: self.delta,
            kept: Vec::with_capacity(KEPT * gates),
            msg: &mut msg,
            gates,
        };
        walk(self, &insts, &mut garbler)?;
        let kept = garbler.kept;
        self.check.waiting.push_back(Garbled {
            chunk: self.chunks_done,
            base: self.gates_done,
            insts,
            kept,
        });
        Ok((gates > 0).then(|| Bytes::from(msg)))
    }
}
