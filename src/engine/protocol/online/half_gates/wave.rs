//! Waves of AND gates: the instructions of a chunk, walked in order, with the AND gates
//! gathered into waves so that their hashes take one AES call (a call for a few blocks
//! costs its set-up several times over).

use garble_lang::register_circuit::{And, Inst, Not, Op, Xor};

use super::super::Online;
use crate::engine::EngineError;
use crate::engine::share::Block;

/// AND gates at most in one wave.
const WAVE: usize = 64;

/// A wave of AND gates garbled or evaluated together. A gate joins the wave unless it
/// reads or overwrites the output of a gate in it; any other instruction that would
/// flushes the wave first.
#[derive(Default)]
pub(crate) struct Wave {
    /// `busy[r] == epoch`: register r is the output of a gate in the wave.
    busy: Vec<u32>,
    epoch: u32,
    /// Per gate: its number in the chunk, its output register and its first input label.
    pub(super) gates: Vec<(usize, usize, Block)>,
    /// The labels to hash, then their hashes, in gate order.
    pub(super) hashes: Vec<Block>,
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

    /// Adds AND gate `t` with output register `out`: its first input label and the labels
    /// to hash.
    #[inline]
    pub(super) fn add(&mut self, t: usize, out: usize, first_label: Block, labels: &[Block]) {
        self.busy[out] = self.epoch;
        self.gates.push((t, out, first_label));
        self.hashes.extend_from_slice(labels);
    }
}

/// What a party does with a chunk's instructions.
pub(super) trait Side {
    /// `o = a ⊕ b`.
    fn xor(&mut self, st: &mut Online<'_>, o: usize, a: usize, b: usize);
    /// `o = ¬a`.
    fn not(&mut self, st: &mut Online<'_>, o: usize, a: usize);
    /// AND gate `t` of the chunk, `o = a ∧ b`: done at once, or added to the wave.
    fn and(&mut self, st: &mut Online<'_>, wave: &mut Wave, gate: [usize; 4]);
    /// Finishes the gates of the wave, which is never empty here ([`walk`] empties it
    /// after).
    fn flush(&mut self, st: &mut Online<'_>, wave: &mut Wave);
}

/// Finishes the gates of the wave, if there are any, and empties it.
fn flush(st: &mut Online<'_>, side: &mut impl Side, wave: &mut Wave) {
    if !wave.gates.is_empty() {
        side.flush(st, wave);
        wave.clear();
    }
}

/// Walks the instructions `insts` of a chunk in order for `side`, in waves.
pub(super) fn walk(
    st: &mut Online<'_>,
    insts: &[Inst],
    side: &mut impl Side,
) -> Result<(), EngineError> {
    let mut wave = std::mem::take(&mut st.wave);
    wave.start(st.circuit.max_reg_count);
    let walked = walk_with(st, insts, side, &mut wave);
    st.wave = wave;
    walked
}

fn walk_with(
    st: &mut Online<'_>,
    insts: &[Inst],
    side: &mut impl Side,
    wave: &mut Wave,
) -> Result<(), EngineError> {
    let mut t = 0;
    for inst in insts {
        let o = inst.out.0 as usize;
        match inst.op {
            Op::Xor(Xor(a, b)) => {
                let (a, b) = (a.0 as usize, b.0 as usize);
                if wave.touches(&[a, b, o]) {
                    flush(st, side, wave);
                }
                side.xor(st, o, a, b);
            }
            Op::Not(Not(a)) => {
                let a = a.0 as usize;
                if wave.touches(&[a, o]) {
                    flush(st, side, wave);
                }
                side.not(st, o, a);
            }
            Op::And(And(a, b)) => {
                let (a, b) = (a.0 as usize, b.0 as usize);
                if wave.touches(&[a, b, o]) {
                    flush(st, side, wave);
                }
                side.and(st, wave, [t, o, a, b]);
                if wave.gates.len() == WAVE {
                    flush(st, side, wave);
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
    flush(st, side, wave);
    Ok(())
}
