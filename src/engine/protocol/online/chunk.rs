//! One chunk of gates before it is garbled: pass A (masks and labels of every register,
//! what each AND gate needs later) and the batched Beaver opening of d = λ_α ⊕ a and
//! f = λ_β ⊕ b, which gives every party its shares of the four rows of every AND gate
//! (with half gates, of λ_α ∧ λ_β ⊕ λ_γ, λ_α and λ_β).
//!
//! Chunking of the Beaver opening: the d, f values of each chunk are opened in one batch
//! before that chunk is garbled. The number of rounds grows with the number of chunks (a
//! few dozen for a million AND gates), not with the circuit's depth; in exchange, memory is
//! bounded by the chunk size.

use bytes::Bytes;
use garble_lang::register_circuit::{And, Inst, Not, Op, Xor};
use subtle::ConstantTimeEq;

use super::Online;
use crate::channel::Phase;
use crate::engine::EngineError;
use crate::engine::preprocess::ITEMS_PER_AND;
use crate::engine::share::{AuthBits, Block, MacDigest, bit_at, pack_bits, packed_len};

/// Per-chunk data kept between the passes.
pub(crate) struct ChunkData {
    pub(crate) gates: usize,
    /// λ_α and λ_β of each gate, interleaved.
    pub(super) lam: AuthBits,
    /// a, b, c, λ_γ of each gate.
    pub(super) mat: AuthBits,
    /// Garbler with four rows: L_α, L_β, L_γ zero-labels of each gate (half gates make
    /// the labels as they garble).
    pub(super) labels: Vec<Block>,
}

impl Online<'_> {
    /// Pass A over one chunk: masks and labels of every register, and what each AND gate
    /// needs later (its input masks and labels, its preprocessed shares `mat`: the next
    /// `gates` · [`ITEMS_PER_AND`] from the source).
    pub(crate) fn pass_a(
        &mut self,
        insts: &[Inst],
        gates: usize,
        mat: AuthBits,
    ) -> Result<ChunkData, EngineError> {
        let w = self.w;
        let mut data = ChunkData {
            gates,
            lam: AuthBits::new(self.m()),
            mat,
            labels: Vec::new(),
        };
        data.lam.bits.reserve(2 * gates);
        data.lam.mk.reserve(2 * gates * w);
        // Half gates derive the labels of AND outputs from the hashes, so the garbler
        // propagates labels while it garbles, not here.
        let row_labels = !self.is_eval && !self.half_gates;
        let mut fresh = vec![0; if row_labels { gates } else { 0 }];
        self.prg.fill(&mut fresh);
        if row_labels {
            data.labels.reserve(3 * gates);
        }

        // Pass A.
        let mut t = 0;
        for inst in insts {
            let o = inst.out.0 as usize;
            match inst.op {
                Op::Xor(Xor(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    self.bits[o] = self.bits[a] ^ self.bits[b];
                    for x in 0..w {
                        self.mk[o * w + x] = self.mk[a * w + x] ^ self.mk[b * w + x];
                    }
                    if row_labels {
                        self.labels[o] = self.labels[a] ^ self.labels[b];
                    }
                }
                Op::Not(Not(a)) => {
                    let a = a.0 as usize;
                    self.bits[o] = self.bits[a];
                    if o != a {
                        self.mk.copy_within(a * w..a * w + w, o * w);
                    }
                    if row_labels {
                        self.labels[o] = self.labels[a] ^ self.delta;
                    }
                }
                Op::And(And(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    data.lam.bits.push(self.bits[a]);
                    data.lam.bits.push(self.bits[b]);
                    data.lam.mk.extend_from_slice(&self.mk[a * w..a * w + w]);
                    data.lam.mk.extend_from_slice(&self.mk[b * w..b * w + w]);
                    let item = t * ITEMS_PER_AND + 3;
                    self.bits[o] = data.mat.bits[item];
                    self.mk[o * w..o * w + w].copy_from_slice(data.mat.mk(item));
                    if row_labels {
                        data.labels.push(self.labels[a]);
                        data.labels.push(self.labels[b]);
                        data.labels.push(fresh[t]);
                        self.labels[o] = fresh[t];
                    }
                    t += 1;
                }
                Op::Input(_) => {
                    return Err(EngineError::Setup(
                        "the circuit loads an input after its first gate".into(),
                    ));
                }
            }
        }
        Ok(data)
    }

    /// This party's shares of d = λ_α ⊕ a and f = λ_β ⊕ b for every gate of the chunk.
    fn differences(&self, data: &ChunkData) -> (Vec<bool>, Vec<bool>) {
        let item = |t: usize, k: usize| t * ITEMS_PER_AND + k;
        let d = (0..data.gates)
            .map(|t| data.lam.bits[2 * t] ^ data.mat.bits[item(t, 0)])
            .collect();
        let f = (0..data.gates)
            .map(|t| data.lam.bits[2 * t + 1] ^ data.mat.bits[item(t, 1)])
            .collect();
        (d, f)
    }

    /// The batched opening of d and f to every other party: the share bits and one digest
    /// of their MACs per peer.
    pub(crate) fn opening_messages(&self, data: &ChunkData) -> Vec<(usize, Bytes)> {
        let g = data.gates;
        let item = |t: usize, k: usize| t * ITEMS_PER_AND + k;
        let (d, f) = self.differences(data);
        let packed = pack_bits((0..g).flat_map(|t| [d[t], f[t]]));
        self.slots
            .others()
            .map(|j| {
                let s = self.slots.slot(j);
                let mut digest = MacDigest::with_capacity(2 * g);
                for t in 0..g {
                    digest.push(data.lam.mk(2 * t)[s] ^ data.mat.mk(item(t, 0))[s]);
                    digest.push(data.lam.mk(2 * t + 1)[s] ^ data.mat.mk(item(t, 1))[s]);
                }
                let mut msg = packed.clone();
                msg.extend_from_slice(&digest.finish());
                (j, Bytes::from(msg))
            })
            .collect()
    }

    /// Checks every peer's opening against this party's keys and returns the opened d, f.
    pub(crate) fn verify_openings(
        &self,
        data: &ChunkData,
        others: &[usize],
        received: &[Bytes],
    ) -> Result<(Vec<bool>, Vec<bool>), EngineError> {
        let (m, g) = (self.m(), data.gates);
        let item = |t: usize, k: usize| t * ITEMS_PER_AND + k;
        let (mut d, mut f) = self.differences(data);
        let nb = packed_len(2 * g);
        for (&j, msg) in others.iter().zip(received) {
            if msg.len() != nb + 32 {
                return Err(self.malformed(
                    j,
                    Phase::BeaverOpening,
                    format!("expected {} bytes, got {}", nb + 32, msg.len()),
                ));
            }
            let s = self.slots.slot(j);
            let mut digest = MacDigest::with_capacity(2 * g);
            for t in 0..g {
                let (dj, fj) = (bit_at(msg, 2 * t), bit_at(msg, 2 * t + 1));
                let kd = data.lam.mk(2 * t)[m + s] ^ data.mat.mk(item(t, 0))[m + s];
                let kf = data.lam.mk(2 * t + 1)[m + s] ^ data.mat.mk(item(t, 1))[m + s];
                digest.push(if dj { kd ^ self.delta } else { kd });
                digest.push(if fj { kf ^ self.delta } else { kf });
                d[t] ^= dj;
                f[t] ^= fj;
            }
            if !bool::from(digest.finish().ct_eq(&msg[nb..])) {
                return Err(EngineError::Check {
                    check: "Beaver opening MAC check",
                    peer: self.names.name(j),
                    detail: format!(
                        "its shares of d, f for AND gates {}..{} do not match their MACs",
                        self.gates_done,
                        self.gates_done + g as u64
                    ),
                });
            }
        }
        Ok((d, f))
    }

    /// This party's shares of what garbling every gate of the chunk takes. Four rows: of
    /// r_{u,v} = ((λ_α ⊕ u) ∧ (λ_β ⊕ v)) ⊕ λ_γ for the four rows (row index 2u + v). Half
    /// gates: of r_{0,0} = (λ_α ∧ λ_β) ⊕ λ_γ, λ_α and λ_β, in that order.
    pub(crate) fn and_shares(&self, data: &ChunkData, d: &[bool], f: &[bool]) -> AuthBits {
        let w = self.w;
        let mut out = AuthBits::new(self.m());
        let per_gate = if self.half_gates { 3 } else { 4 };
        out.bits.reserve(per_gate * data.gates);
        out.mk.reserve(per_gate * data.gates * w);
        let mut base = vec![0; w];
        for t in 0..data.gates {
            let item = |k: usize| t * ITEMS_PER_AND + k;
            let (a, b, c, lg) = (item(0), item(1), item(2), item(3));
            let (la, lb) = (data.lam.mk(2 * t), data.lam.mk(2 * t + 1));
            let (ma, mb, mc, mg) = (
                data.mat.mk(a),
                data.mat.mk(b),
                data.mat.mk(c),
                data.mat.mk(lg),
            );
            // [λ_α ∧ λ_β] = [c] ⊕ d[b] ⊕ f[a] ⊕ df, then ⊕ [λ_γ].
            let mut bit = data.mat.bits[c] ^ data.mat.bits[lg];
            if d[t] {
                bit ^= data.mat.bits[b];
            }
            if f[t] {
                bit ^= data.mat.bits[a];
            }
            for x in 0..w {
                let mut v = mc[x] ^ mg[x];
                if d[t] {
                    v ^= mb[x];
                }
                if f[t] {
                    v ^= ma[x];
                }
                base[x] = v;
            }
            if d[t] & f[t] {
                self.add_one(&mut bit, &mut base);
            }
            let (ba, bb) = (data.lam.bits[2 * t], data.lam.bits[2 * t + 1]);
            if self.half_gates {
                out.mk.extend_from_slice(&base);
                out.mk.extend_from_slice(la);
                out.mk.extend_from_slice(lb);
                out.bits.extend_from_slice(&[bit, ba, bb]);
                continue;
            }
            let first = out.mk.len();
            out.mk.extend_from_slice(&base);
            out.mk.extend(base.iter().zip(la).map(|(x, y)| x ^ y));
            out.mk.extend(base.iter().zip(lb).map(|(x, y)| x ^ y));
            out.mk
                .extend(base.iter().zip(la).zip(lb).map(|((x, y), z)| x ^ y ^ z));
            let mut last = bit ^ ba ^ bb;
            self.add_one(&mut last, &mut out.mk[first + 3 * w..first + 4 * w]);
            out.bits.extend_from_slice(&[bit, bit ^ ba, bit ^ bb, last]);
        }
        out
    }
}
