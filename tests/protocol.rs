//! The protocol against garble_lang's plaintext evaluation, on random circuits mixing
//! XOR, AND and NOT, for 2, 3 and 4 parties, with the dealer, over the memory channel.

use garble_lang::register_circuit::{And, Circuit, Input, Inst, Not, Op, Reg, Xor};
use mpc::local::{LocalOptions, run_local};
use proptest::prelude::*;
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

fn check_random(seed: u64, n: usize, ops: usize, chunk: usize) {
    let circuit = random_circuit(seed, n, ops);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xfeed);
    let inputs: Vec<Vec<bool>> = circuit
        .input_regs
        .iter()
        .map(|&c| (0..c).map(|_| rng.random_bool(0.5)).collect())
        .collect();
    let expected = circuit.eval(&inputs);
    let opts = LocalOptions {
        evaluator: (seed as usize) % n,
        chunk_ands: chunk,
        ..LocalOptions::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcomes = rt
        .block_on(run_local(&circuit, [seed as u8; 32], &inputs, &opts))
        .unwrap_or_else(|e| panic!("seed {seed}, n {n}: {e}"));
    for (p, o) in outcomes.iter().enumerate() {
        assert_eq!(o.output, expected, "party {p} of {n}, seed {seed}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn two_parties(seed in any::<u64>(), ops in 1usize..120, chunk in 1usize..40) {
        check_random(seed, 2, ops, chunk);
    }

    #[test]
    fn three_parties(seed in any::<u64>(), ops in 1usize..120, chunk in 1usize..40) {
        check_random(seed, 3, ops, chunk);
    }

    #[test]
    fn four_parties(seed in any::<u64>(), ops in 1usize..120, chunk in 1usize..40) {
        check_random(seed, 4, ops, chunk);
    }
}

#[test]
fn larger_circuit_spanning_many_chunks() {
    check_random(7, 3, 5000, 256);
}

#[test]
fn five_parties() {
    check_random(11, 5, 300, 50);
}
