//! Random register circuits (XOR, AND and NOT over the parties' inputs) and random inputs
//! for them, for the tests that check the protocol against plaintext evaluation.

use garble_lang::register_circuit::{And, Circuit, Input, Inst, Not, Op, Reg, Xor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A random register circuit: `n` parties with 1..6 inputs each, `ops` gates, some of
/// which overwrite earlier registers, and a random set of outputs.
pub fn random_circuit(seed: u64, n: usize, ops: usize) -> Circuit {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let input_regs: Vec<usize> = (0..n).map(|_| rng.random_range(1..6)).collect();
    let mut insts = Vec::new();
    for (p, &count) in input_regs.iter().enumerate() {
        for i in 0..count {
            let out = Reg(insts.len() as u32);
            insts.push(Inst {
                out,
                op: Op::Input(Input {
                    party: p as u32,
                    input: i as u32,
                }),
            });
        }
    }
    let mut regs = insts.len();
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
        // Mostly fresh registers, sometimes overwrite one (as register allocation does).
        let out = if rng.random_bool(0.8) {
            regs += 1;
            Reg(regs as u32 - 1)
        } else {
            Reg(rng.random_range(0..regs) as u32)
        };
        insts.push(Inst { out, op });
    }
    let outputs = rng.random_range(1..8);
    let output_regs = (0..outputs)
        .map(|_| Reg(rng.random_range(0..regs) as u32))
        .collect();
    Circuit {
        input_regs,
        insts,
        max_reg_count: regs,
        output_regs,
        and_ops,
    }
}

/// Random inputs for every party of `circuit`, derived from `seed`.
pub fn random_inputs(circuit: &Circuit, seed: u64) -> Vec<Vec<bool>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfeed);
    circuit
        .input_regs
        .iter()
        .map(|&c| (0..c).map(|_| rng.random_bool(0.5)).collect())
        .collect()
}
