//! Evaluator: a chunk's half gates evaluated, with every gate's check value.

use bytes::Bytes;

use super::super::Online;
use super::super::evaluator::PendingChunk;
use super::wave::{Side, Wave, walk};
use crate::engine::EngineError;
use crate::engine::share::{AuthBits, Block, MacDigest, bit_at, block_at, pack_bits, times};

/// The evaluator's side of a chunk.
struct Evaluator<'s, 'm> {
    base: u64,
    shares: &'s AuthBits,
    delta: Block,
    /// The garbler's message for the chunk.
    msg: &'m [u8],
    gates: usize,
    /// Per gate of the wave: the masked values of its inputs.
    masks: Vec<(bool, bool)>,
    /// The masked output of every AND gate of the chunk.
    masked: Vec<bool>,
    /// The digest of their labels.
    labels: MacDigest,
}

impl Side for Evaluator<'_, '_> {
    fn xor(&mut self, st: &mut Online<'_>, o: usize, a: usize, b: usize) {
        st.ev_m[o] = st.ev_m[a] ^ st.ev_m[b];
        st.ev_labels[o] = st.ev_labels[a] ^ st.ev_labels[b];
    }

    fn not(&mut self, st: &mut Online<'_>, o: usize, a: usize) {
        st.ev_m[o] = !st.ev_m[a];
        st.ev_labels[o] = st.ev_labels[a];
    }

    fn and(&mut self, st: &mut Online<'_>, wave: &mut Wave, [t, o, a, b]: [usize; 4]) {
        let (la, lb) = (st.ev_labels[a], st.ev_labels[b]);
        wave.add(t, o, la, &[la, lb]);
        self.masks.push((st.ev_m[a], st.ev_m[b]));
    }

    /// Evaluates the gates of the wave (hashes: L_α, L_β per gate) and adds their check
    /// values.
    fn flush(&mut self, st: &mut Online<'_>, wave: &mut Wave) {
        let (base, gates) = (self.base, &wave.gates);
        st.hasher
            .half_gate_hashes(&mut wave.hashes, |i| (base + gates[i / 2].0 as u64, i % 2));
        let (shares, msg) = (self.shares, self.msg);
        let dbits = &msg[self.gates * 32..];
        for ((&(t, o, la), h), &(ma, mb)) in wave
            .gates
            .iter()
            .zip(wave.hashes.chunks_exact(2))
            .zip(&self.masks)
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
            value ^= times(bit ^ (ma & mb) ^ mg, self.delta);
            st.check.values.push(value);
            self.labels.push(x);
            self.masked[t] = mg;
            st.ev_m[o] = mg;
            st.ev_labels[o] = x;
        }
        self.masks.clear();
    }
}

impl Online<'_> {
    /// Evaluator: evaluates a chunk with the garbler's half gates `msg` (sizes checked),
    /// adds every gate's check value, and returns the masked AND outputs with the digest of
    /// their labels, for the garbler.
    pub(in crate::engine::protocol::online) fn evaluate_half(
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
        let mut evaluator = Evaluator {
            base,
            shares: &shares,
            delta: self.delta,
            msg,
            gates,
            masks: Vec::new(),
            masked: vec![false; gates],
            labels: MacDigest::with_capacity(gates),
        };
        walk(self, &insts, &mut evaluator)?;
        let mut reply = pack_bits(evaluator.masked);
        reply.extend_from_slice(&evaluator.labels.finish());
        Ok(Bytes::from(reply))
    }
}
