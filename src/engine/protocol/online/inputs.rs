//! Input processing: open each input wire's mask to its owner, broadcast the masked values,
//! check that everyone received the same ones (the broadcast-consistency check), and send
//! the garblers' matching labels to the evaluator.

use bytes::Bytes;
use garble_lang::register_circuit::{Inst, Op};
use subtle::ConstantTimeEq;

use super::Online;
use crate::channel::Phase;
use crate::engine::EngineError;
use crate::engine::share::{AuthBits, Block, bit_at, block_at, pack_bits, packed_len, put_blocks};

/// What input processing keeps between its rounds.
pub(crate) struct InputRound {
    /// Owner and owner's input index of every input wire.
    owner: Vec<(usize, usize)>,
    /// The masked value of every input wire, as far as known.
    masked: Vec<bool>,
}

impl InputRound {
    /// The input wires of party `p`.
    fn wires_of(&self, p: usize) -> Vec<usize> {
        (0..self.owner.len())
            .filter(|&k| self.owner[k].0 == p)
            .collect()
    }
}

impl Online<'_> {
    /// Round 1: loads the input wires' authenticated masks `abits` (one per input bit, for
    /// the circuit's input instructions `insts`) and returns, for every other party, this
    /// party's shares of that party's input masks.
    pub(crate) fn start_inputs(
        &mut self,
        abits: AuthBits,
        insts: &[Inst],
    ) -> (InputRound, Vec<(usize, Bytes)>) {
        let total = self.circuit.total_inputs();
        let w = self.w;
        let mut owner = Vec::with_capacity(total);
        for (k, inst) in insts[..total].iter().enumerate() {
            if let Op::Input(inp) = inst.op {
                owner.push((inp.party as usize, inp.input as usize));
            }
            self.bits[k] = abits.bits[k];
            self.mk[k * w..k * w + w].copy_from_slice(abits.mk(k));
        }
        if !self.is_eval {
            self.prg.fill(&mut self.labels[..total]);
        }
        let round = InputRound {
            owner,
            masked: vec![false; total],
        };
        let out = self
            .slots
            .others()
            .map(|p| (p, self.share_opening(&round.wires_of(p), p)))
            .collect();
        (round, out)
    }

    /// Round 2: checks the other parties' shares of this party's input masks (`received`,
    /// in the order of [`Online::others`]) and returns this party's masked inputs, for
    /// every other party.
    pub(crate) fn mask_inputs(
        &self,
        round: &mut InputRound,
        input: &[bool],
        received: &[Bytes],
    ) -> Result<Bytes, EngineError> {
        let my_wires = round.wires_of(self.cfg.me);
        let mut lambda: Vec<bool> = my_wires.iter().map(|&k| self.bits[k]).collect();
        for (j, msg) in self.slots.others().zip(received) {
            self.check_share_opening(
                &my_wires,
                j,
                msg,
                &mut lambda,
                Phase::InputMasks,
                "input mask MAC check",
                "its shares of this party's input masks do not match their MACs",
            )?;
        }
        for (x, &k) in my_wires.iter().enumerate() {
            round.masked[k] = input[round.owner[k].1] ^ lambda[x];
        }
        Ok(Bytes::from(pack_bits(
            my_wires.iter().map(|&k| round.masked[k]),
        )))
    }

    /// Round 3: takes the other parties' masked inputs and returns, for every other party,
    /// per input owner a digest of the masked values this party has from that owner.
    pub(crate) fn receive_masked_inputs(
        &self,
        round: &mut InputRound,
        received: &[Bytes],
    ) -> Result<Bytes, EngineError> {
        for (p, msg) in self.slots.others().zip(received) {
            let wires = round.wires_of(p);
            if msg.len() != packed_len(wires.len()) {
                return Err(self.malformed(
                    p,
                    Phase::MaskedInputs,
                    format!(
                        "expected {} bytes for {} input bits, got {}",
                        packed_len(wires.len()),
                        wires.len(),
                        msg.len()
                    ),
                ));
            }
            for (x, &k) in wires.iter().enumerate() {
                round.masked[k] = bit_at(msg, x);
            }
        }
        Ok(Bytes::from(self.masked_digests(round).concat()))
    }

    /// Per input owner, a digest of the masked values this party has from that owner.
    fn masked_digests(&self, round: &InputRound) -> Vec<[u8; 32]> {
        (0..self.cfg.parties)
            .map(|p| {
                let mut h = blake3::Hasher::new();
                h.update(b"mpc masked inputs v1");
                h.update(&(p as u32).to_le_bytes());
                h.update(&pack_bits(
                    round.wires_of(p).iter().map(|&k| round.masked[k]),
                ));
                *h.finalize().as_bytes()
            })
            .collect()
    }

    /// Whom a differing digest of owner `p`'s masked inputs from party `j` implicates: `j`
    /// alone when `p` is `j` (it contradicts what it sent) or this party (it contradicts
    /// what this party sent everyone); otherwise `j` (it misreports) or `p` (it sent `j`
    /// other values), which this party cannot tell apart.
    fn consistency_suspects(&self, j: usize, p: usize) -> String {
        if p == j || p == self.cfg.me {
            self.names.name(j)
        } else {
            format!("one of {}, {}", self.names.name(p), self.names.name(j))
        }
    }

    /// The broadcast-consistency check on the other parties' digests (`received`): nothing
    /// is garbled with masked values that not every party received.
    pub(crate) fn check_masked_inputs(
        &self,
        round: &InputRound,
        received: &[Bytes],
    ) -> Result<(), EngineError> {
        let n = self.cfg.parties;
        let digests = self.masked_digests(round);
        let mut mismatches = Vec::new();
        for (j, msg) in self.slots.others().zip(received) {
            if msg.len() != 32 * n {
                return Err(self.malformed(
                    j,
                    Phase::InputConsistency,
                    format!("expected {} bytes, got {}", 32 * n, msg.len()),
                ));
            }
            for (p, digest) in digests.iter().enumerate() {
                if self.circuit.input_regs[p] > 0
                    && !bool::from(msg[p * 32..p * 32 + 32].ct_eq(digest))
                {
                    mismatches.push((j, p));
                }
            }
        }
        // Name the mismatch that points at one party if there is one: a party whose report
        // of its own inputs, or of this party's, differs from what it sent.
        let worst = mismatches
            .iter()
            .find(|&&(j, p)| p == j || p == self.cfg.me)
            .or(mismatches.first());
        if let Some(&(j, p)) = worst {
            return Err(EngineError::Check {
                check: "input consistency check",
                peer: self.consistency_suspects(j, p),
                detail: format!(
                    "{} reports other masked inputs of {} than this party received (an input \
                     owner sent different values to different parties, or a party misreports \
                     them)",
                    self.names.name(j),
                    self.names.name(p)
                ),
            });
        }
        Ok(())
    }

    /// Round 4, garbler: the labels of the masked input values, for the evaluator. With
    /// half gates it also keeps the masked inputs, from which the end check replays the
    /// masked values of the circuit.
    pub(crate) fn input_labels(&mut self, round: &InputRound) -> Bytes {
        if self.half_gates {
            self.ev_m[..round.masked.len()].copy_from_slice(&round.masked);
        }
        let labels: Vec<Block> = (0..round.masked.len())
            .map(|k| {
                if round.masked[k] {
                    self.labels[k] ^ self.delta
                } else {
                    self.labels[k]
                }
            })
            .collect();
        let mut msg = Vec::new();
        put_blocks(&mut msg, &labels);
        Bytes::from(msg)
    }

    /// Round 4, evaluator: takes every garbler's input labels (`received`, in the order of
    /// [`Online::others`]).
    pub(crate) fn receive_input_labels(
        &mut self,
        round: InputRound,
        received: &[Bytes],
    ) -> Result<(), EngineError> {
        let total = round.masked.len();
        let m = self.m();
        for (i, msg) in self.slots.others().zip(received) {
            let s = self.slots.slot(i);
            if msg.len() != total * 16 {
                return Err(self.malformed(
                    i,
                    Phase::InputLabels,
                    format!("expected {} labels, got {} bytes", total, msg.len()),
                ));
            }
            for k in 0..total {
                self.ev_labels[k * m + s] = block_at(msg, k);
            }
        }
        self.ev_m[..total].copy_from_slice(&round.masked);
        Ok(())
    }
}
