//! Evaluator: checks the size of the garblers' rows for a chunk, then evaluates the chunk's
//! gates with them, checking every decrypted row against its IT-MAC (three or more
//! parties; two use [`super::half_gates`]).

use bytes::Bytes;
use garble_lang::register_circuit::{And, Inst, Not, Op, Xor};
use subtle::ConstantTimeEq;

use super::Online;
use crate::channel::Phase;
use crate::engine::EngineError;
use crate::engine::garble::RowInput;
use crate::engine::share::{AuthBits, Slots, block_at};

/// A chunk the evaluator has prepared and evaluates once every garbler's rows for it
/// arrived (while the garblers garble the next one).
pub(crate) struct PendingChunk {
    /// Its instructions.
    pub(super) insts: Vec<Inst>,
    /// This party's shares for garbling every AND gate ([`Online::and_shares`]).
    pub(super) shares: AuthBits,
    /// Global number of its first AND gate.
    pub(super) base: u64,
    /// Its number of AND gates.
    pub(super) gates: usize,
}

impl PendingChunk {
    /// Its number of AND gates.
    pub(crate) fn gates(&self) -> usize {
        self.gates
    }
}

impl Online<'_> {
    /// Evaluator: keeps the chunk of instructions `insts` and its row shares until its rows
    /// arrive.
    pub(crate) fn pending(&self, insts: Vec<Inst>, gates: usize, shares: AuthBits) -> PendingChunk {
        PendingChunk {
            insts,
            shares,
            base: self.gates_done,
            gates,
        }
    }

    /// Evaluator: checks the sizes of every garbler's rows (`rows`, in the order of
    /// [`Online::others`]) for a chunk of `gates` AND gates.
    pub(crate) fn check_rows(&self, gates: usize, rows: &[Bytes]) -> Result<(), EngineError> {
        let n = self.cfg.parties;
        let expected = if self.half_gates {
            super::half_gates::message_len(gates)
        } else {
            gates * 4 * n * 16
        };
        for (i, msg) in self.slots.others().zip(rows) {
            if msg.len() != expected {
                return Err(self.malformed(
                    i,
                    Phase::GarbledRows,
                    format!(
                        "expected {expected} bytes for {gates} gates, got {}",
                        msg.len()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Evaluator: evaluates a chunk's gates with every garbler's garbled gates for it
    /// (none for a chunk without AND gates). With half gates, returns the message for the
    /// garbler's part of the end check.
    pub(crate) fn evaluate(
        &mut self,
        chunk: PendingChunk,
        rows: &[Bytes],
    ) -> Result<Option<Bytes>, EngineError> {
        if self.half_gates {
            let msg = rows.first().map_or(&[][..], |r| &r[..]);
            return self.evaluate_half(chunk, msg).map(Some);
        }
        self.evaluate_rows(chunk, rows)?;
        Ok(None)
    }

    /// Evaluator with four rows per gate: evaluates a chunk, checking every decrypted row
    /// against its IT-MAC.
    fn evaluate_rows(&mut self, chunk: PendingChunk, rows: &[Bytes]) -> Result<(), EngineError> {
        let insts = &chunk.insts;
        let (shares, base) = (&chunk.shares, chunk.base);
        let (m, w, n) = (self.m(), self.w, self.cfg.parties);
        let garblers: Vec<usize> = self.slots.others().collect();
        let e = self.cfg.evaluator;
        // For each garbler slot s: the slot of the evaluator and of every other party in
        // that garbler's own slot order.
        let their_slots: Vec<Slots> = garblers.iter().map(|&i| Slots { me: i, n }).collect();
        let mut inputs = Vec::with_capacity(m);
        let mut pads = vec![0; m * n];
        let mut dec = vec![0; m * n];
        let mut t = 0;
        for inst in insts {
            let o = inst.out.0 as usize;
            match inst.op {
                Op::Xor(Xor(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    self.ev_m[o] = self.ev_m[a] ^ self.ev_m[b];
                    for s in 0..m {
                        self.ev_labels[o * m + s] =
                            self.ev_labels[a * m + s] ^ self.ev_labels[b * m + s];
                    }
                }
                Op::Not(Not(a)) => {
                    let a = a.0 as usize;
                    self.ev_m[o] = !self.ev_m[a];
                    if o != a {
                        self.ev_labels.copy_within(a * m..a * m + m, o * m);
                    }
                }
                Op::And(And(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    let (u, v) = (self.ev_m[a] as usize, self.ev_m[b] as usize);
                    let gate = base + t as u64;
                    inputs.clear();
                    for (s, &garbler) in garblers.iter().enumerate() {
                        inputs.push(RowInput {
                            la: self.ev_labels[a * m + s],
                            lb: self.ev_labels[b * m + s],
                            gate,
                            garbler,
                            u,
                            v,
                        });
                    }
                    self.hasher.pads(&inputs, n, &mut pads);
                    let r = 4 * t + 2 * u + v;
                    for s in 0..m {
                        for k in 0..n {
                            dec[s * n + k] = block_at(&rows[s], r * n + k) ^ pads[s * n + k];
                        }
                    }
                    let mine = &shares.mk[r * w..r * w + w];
                    let mut value = shares.bits[r];
                    for s in 0..m {
                        let mac = dec[s * n + their_slots[s].slot(e)];
                        let key = mine[m + s];
                        let bit = (mac ^ key) & 1 == 1;
                        let expected = if bit { key ^ self.delta } else { key };
                        if !bool::from(mac.ct_eq(&expected)) {
                            return Err(EngineError::Check {
                                check: "garbled row MAC check",
                                peer: self.names.name(garblers[s]),
                                detail: format!(
                                    "the decrypted row of AND gate {gate} is not authentic"
                                ),
                            });
                        }
                        value ^= bit;
                    }
                    for s in 0..m {
                        let i = garblers[s];
                        let mut label = dec[s * n + m] ^ mine[s];
                        for s2 in 0..m {
                            if s2 != s {
                                label ^= dec[s2 * n + their_slots[s2].slot(i)];
                            }
                        }
                        self.ev_labels[o * m + s] = label;
                    }
                    self.ev_m[o] = value;
                    t += 1;
                }
                Op::Input(_) => {
                    return Err(EngineError::Setup(
                        "the circuit loads an input after its first gate".into(),
                    ));
                }
            }
        }
        Ok(())
    }
}
