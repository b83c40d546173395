//! Random register circuits and inputs, for the tests that compare a computation with
//! plaintext evaluation: the protocol (integration tests, through the `testing` feature) and
//! the Bristol writer and reader (this crate's unit tests).

use garble_lang::register_circuit::{And, Circuit, Input, Inst, Not, Op, Reg, Xor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random register circuit over `widths` (input bits per party) with `ops` XOR, AND and
/// NOT gates, about half of them AND. Like the circuits garble builds, it starts with a
/// constant false and true, overwrites registers now and then (never an input), and outputs
/// 1 to 11 registers, inputs, constants and repeats included.
pub fn random_circuit(rng: &mut impl Rng, widths: &[usize], ops: usize) -> Circuit {
    let mut insts = Vec::new();
    for (party, &width) in widths.iter().enumerate() {
        for bit in 0..width {
            insts.push(Inst {
                out: Reg(insts.len() as u32),
                op: Op::Input(Input {
                    party: party as u32,
                    input: bit as u32,
                }),
            });
        }
    }
    let inputs = insts.len();
    let mut regs = inputs;
    // A constant false and true, built as garble builds them.
    insts.push(Inst {
        out: Reg(regs as u32),
        op: Op::Xor(Xor(Reg(0), Reg(0))),
    });
    insts.push(Inst {
        out: Reg(regs as u32 + 1),
        op: Op::Not(Not(Reg(regs as u32))),
    });
    regs += 2;
    let mut and_ops = 0;
    for _ in 0..ops {
        let a = Reg(rng.random_range(0..regs) as u32);
        let b = Reg(rng.random_range(0..regs) as u32);
        let op = match rng.random_range(0..10) {
            0..=4 => {
                and_ops += 1;
                Op::And(And(a, b))
            }
            5..=8 => Op::Xor(Xor(a, b)),
            _ => Op::Not(Not(a)),
        };
        let out = if rng.random_bool(0.8) {
            regs += 1;
            Reg(regs as u32 - 1)
        } else {
            Reg(rng.random_range(inputs..regs) as u32)
        };
        insts.push(Inst { out, op });
    }
    let outputs = rng.random_range(1..12);
    let output_regs = (0..outputs)
        .map(|_| Reg(rng.random_range(0..regs) as u32))
        .collect();
    Circuit {
        input_regs: widths.to_vec(),
        insts,
        max_reg_count: regs,
        output_regs,
        and_ops,
    }
}

/// Random input bits for `widths`.
pub fn random_inputs(rng: &mut impl Rng, widths: &[usize]) -> Vec<Vec<bool>> {
    widths
        .iter()
        .map(|&w| (0..w).map(|_| rng.random_bool(0.5)).collect())
        .collect()
}

/// The random circuit of `seed`: `parties` parties with 1 to 5 input bits each and `ops`
/// gates (see [`random_circuit`]).
pub fn circuit_from_seed(seed: u64, parties: usize, ops: usize) -> Circuit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let widths: Vec<usize> = (0..parties).map(|_| rng.random_range(1..6)).collect();
    random_circuit(&mut rng, &widths, ops)
}

/// Random inputs of every party of `circuit`, derived from `seed`.
pub fn inputs_from_seed(circuit: &Circuit, seed: u64) -> Vec<Vec<bool>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfeed);
    random_inputs(&mut rng, &circuit.input_regs)
}
