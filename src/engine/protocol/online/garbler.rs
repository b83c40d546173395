//! Garbler: the four rows of every AND gate of a chunk, encrypted under the gate's input
//! labels, for the evaluator (three or more parties; two use [`super::half_gates`]).

use bytes::Bytes;
use garble_lang::register_circuit::Inst;
use rayon::prelude::*;

use super::Online;
use super::chunk::ChunkData;
use crate::engine::EngineError;
use crate::engine::garble::{RowHasher, RowInput};
use crate::engine::share::{AuthBits, Block};

/// AND gates a garbling task takes: a chunk of at least two pieces is garbled on every core
/// (smaller pieces cost more in hand-offs than they save).
const GARBLING_PIECE: usize = 1024;

/// What garbling the rows of a chunk needs besides the chunk itself.
#[derive(Clone, Copy)]
struct RowContext {
    m: usize,
    n: usize,
    delta: Block,
    /// Global number of the chunk's first AND gate (for the hash tweak).
    first_gate: u64,
    garbler: usize,
}

impl RowContext {
    /// Writes the garbled rows of the chunk's gates `gates` into `out` (exactly their size,
    /// 4·n blocks per gate, in gate order).
    fn garble(
        &self,
        hasher: &mut RowHasher,
        data: &ChunkData,
        shares: &AuthBits,
        gates: std::ops::Range<usize>,
        out: &mut [u8],
    ) {
        let (m, n, delta) = (self.m, self.n, self.delta);
        let w = 2 * m;
        const BATCH: usize = 64;
        let mut inputs = Vec::with_capacity(BATCH * 4);
        let mut pads = vec![0; BATCH * 4 * n];
        let mut at = 0;
        for start in gates.clone().step_by(BATCH) {
            let end = (start + BATCH).min(gates.end);
            inputs.clear();
            for t in start..end {
                let (la0, lb0) = (data.labels[3 * t], data.labels[3 * t + 1]);
                for (u, v) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    inputs.push(RowInput {
                        la: if u == 1 { la0 ^ delta } else { la0 },
                        lb: if v == 1 { lb0 ^ delta } else { lb0 },
                        gate: self.first_gate + t as u64,
                        garbler: self.garbler,
                        u,
                        v,
                    });
                }
            }
            let pads = &mut pads[..inputs.len() * n];
            hasher.pads(&inputs, n, pads);
            for t in start..end {
                let lg = data.labels[3 * t + 2];
                for row in 0..4 {
                    let r = 4 * t + row;
                    let share = &shares.mk[r * w..r * w + w];
                    let pad = &pads[(r - 4 * start) * n..(r - 4 * start) * n + n];
                    for s in 0..m {
                        out[at..at + 16].copy_from_slice(&(share[s] ^ pad[s]).to_le_bytes());
                        at += 16;
                    }
                    let mut label = lg;
                    for key in &share[m..w] {
                        label ^= key;
                    }
                    if shares.bits[r] {
                        label ^= delta;
                    }
                    out[at..at + 16].copy_from_slice(&(label ^ pad[m]).to_le_bytes());
                    at += 16;
                }
            }
        }
        debug_assert_eq!(at, out.len());
    }
}

impl Online<'_> {
    /// Garbler: garbles the chunk `insts` (prepared by pass A into `data`, with this
    /// party's `shares` from [`Online::and_shares`]): the message to the evaluator, `None`
    /// for a chunk without AND gates.
    pub(crate) fn garble(
        &mut self,
        insts: Vec<Inst>,
        data: &ChunkData,
        shares: &AuthBits,
    ) -> Result<Option<Bytes>, EngineError> {
        if self.half_gates {
            return self.garble_half(insts, shares);
        }
        Ok((data.gates > 0).then(|| self.garble_rows(data, shares)))
    }

    /// Garbler with four rows: encrypts the four rows of every gate of the chunk. A large
    /// chunk is garbled in pieces on every core, each writing its part of the message in
    /// place.
    fn garble_rows(&mut self, data: &ChunkData, shares: &AuthBits) -> Bytes {
        let rows = RowContext {
            m: self.m(),
            n: self.cfg.parties,
            delta: self.delta,
            first_gate: self.gates_done,
            garbler: self.cfg.me,
        };
        let gate_bytes = 4 * rows.n * 16;
        let mut msg = vec![0u8; data.gates * gate_bytes];
        if data.gates >= 2 * GARBLING_PIECE {
            // Pieces of a chunk on every core (the rows of different gates are independent).
            msg.par_chunks_mut(GARBLING_PIECE * gate_bytes)
                .enumerate()
                .for_each_init(RowHasher::new, |hasher, (i, out)| {
                    let start = i * GARBLING_PIECE;
                    let end = (start + GARBLING_PIECE).min(data.gates);
                    rows.garble(hasher, data, shares, start..end, out);
                });
        } else {
            rows.garble(&mut self.hasher, data, shares, 0..data.gates, &mut msg);
        }
        Bytes::from(msg)
    }
}
