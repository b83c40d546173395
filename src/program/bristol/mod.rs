//! The Bristol Fashion circuit format: reading a circuit file into a register circuit, and
//! writing any loaded program out as one (`mpc check --bristol-out`).
//!
//! The format (<https://nigelsmart.github.io/MPC-Circuits/>): a header line `ngates nwires`,
//! a line `niv width...` with the widths of the input values, a line `nov width...` with the
//! widths of the output values, then one gate per line, `nin nout in... out... TYPE`. The
//! inputs are wires `0..` in order, the outputs the last wires. Wire `j` of a value is bit `j`
//! of that value read as a number (see the module docs of [`crate::program`]).

use std::{fmt::Write as _, path::Path};

use garble_lang::{
    circuit::{Circuit as SsaCircuit, Gate},
    register_circuit::{And, Circuit, Not, Op, Reg, Xor},
};
use serde::{Deserialize, Serialize};

use super::ProgramError;

/// Bristol Fashion metadata: widths of the input and output values.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct BristolInfo {
    /// Width of each input value (input value `i` is party `i`'s input).
    pub(super) inputs: Vec<usize>,
    /// Width of each output value.
    pub(super) outputs: Vec<usize>,
}

/// Parses hex into `width` bits in Bristol wire order (wire `j` = bit `j` of the number).
pub(super) fn hex_to_bits(text: &str, width: usize) -> Result<Vec<bool>, String> {
    let t = text.trim();
    let digits = t
        .strip_prefix("0x")
        .or_else(|| t.strip_prefix("0X"))
        .unwrap_or(t);
    let want = width.div_ceil(4);
    if digits.len() != want {
        return Err(format!(
            "expected exactly {want} hex digits ({width} bits), found {}",
            digits.chars().count()
        ));
    }
    let mut nibbles = Vec::with_capacity(want);
    for (i, c) in digits.chars().enumerate() {
        let v = c
            .to_digit(16)
            .ok_or_else(|| format!("'{c}' at position {} is not a hex digit", i + 1))?;
        nibbles.push(v as u8);
    }
    // Wire j is bit j of the number; the last digit holds bits 0..4.
    let mut bits = vec![false; want * 4];
    for (k, nib) in nibbles.iter().rev().enumerate() {
        for b in 0..4 {
            bits[4 * k + b] = (nib >> b) & 1 == 1;
        }
    }
    if bits[width..].iter().any(|&b| b) {
        return Err(format!("the value does not fit in {width} bits"));
    }
    bits.truncate(width);
    Ok(bits)
}

/// Formats bits in Bristol wire order (wire `j` = bit `j`) as lowercase hex.
pub(super) fn bits_to_hex(bits: &[bool]) -> String {
    let digits = bits.len().div_ceil(4);
    let mut out = String::with_capacity(digits);
    for k in (0..digits).rev() {
        let mut nib = 0u32;
        for b in 0..4 {
            if bits.get(4 * k + b).copied().unwrap_or(false) {
                nib |= 1 << b;
            }
        }
        out.push(char::from_digit(nib, 16).unwrap_or('?'));
    }
    out
}

mod read;
mod write;

pub(super) use read::parse_bristol;
pub use write::BristolText;
pub(super) use write::{Layout, write_bristol};

#[cfg(test)]
mod tests {
    use super::*;

    use garble_lang::register_circuit::Inst;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use crate::program::random::{random_circuit, random_inputs};

    #[test]
    fn written_circuits_read_back_to_the_same_function() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        for round in 0..200 {
            let parties = rng.random_range(1..4);
            let widths: Vec<usize> = (0..parties).map(|_| rng.random_range(1..7)).collect();
            let ops = rng.random_range(0..80);
            let circuit = random_circuit(&mut rng, &widths, ops);
            let n = circuit.output_regs.len();
            let split = rng.random_range(0..n);
            let output_widths: Vec<usize> =
                [split, n - split].into_iter().filter(|&w| w > 0).collect();
            let msb_first = rng.random_bool(0.5);
            let layout = Layout {
                outputs: &circuit.output_regs,
                output_widths: &output_widths,
                panic: None,
                msb_first,
            };
            let written = write_bristol(&circuit, &layout).expect("writes");
            let (info, read) = parse_bristol(Path::new("random.txt"), &written.text)
                .unwrap_or_else(|e| panic!("round {round}: {e}\n{}", written.text));
            assert_eq!(info.inputs, widths);
            assert_eq!(info.outputs, output_widths);
            assert_eq!(read.and_ops, written.and_gates);
            assert!(written.and_gates <= circuit.and_ops);
            let header = format!("{} {}\n", written.gates, written.wires);
            assert!(written.text.starts_with(&header));
            // Bit k of a value is wire w - 1 - k when msb_first.
            let flip = |bits: &[bool], widths: &[usize]| -> Vec<bool> {
                let mut out = Vec::new();
                let mut offset = 0;
                for &w in widths {
                    let value = &bits[offset..offset + w];
                    if msb_first {
                        out.extend(value.iter().rev());
                    } else {
                        out.extend(value);
                    }
                    offset += w;
                }
                out
            };
            for _ in 0..8 {
                let inputs = random_inputs(&mut rng, &widths);
                let flipped: Vec<Vec<bool>> = inputs.iter().map(|v| flip(v, &[v.len()])).collect();
                assert_eq!(
                    flip(&read.eval(&flipped), &output_widths),
                    circuit.eval(&inputs),
                    "round {round}:\n{}",
                    written.text
                );
            }
        }
    }

    #[test]
    fn constants_and_repeated_outputs_are_copied() {
        // Outputs: input bit 1, constant true, the AND, the AND again, constant false.
        let text = "1 3\n1 2\n1 1\n\n2 1 0 1 2 AND\n";
        let (_, circuit) = parse_bristol(Path::new("x.txt"), text).expect("parses");
        let mut circuit = circuit;
        let and = circuit.output_regs[0];
        let one = Reg(circuit.max_reg_count as u32);
        let zero = Reg(circuit.max_reg_count as u32 + 1);
        circuit.insts.push(Inst {
            out: zero,
            op: Op::Xor(Xor(Reg(0), Reg(0))),
        });
        circuit.insts.push(Inst {
            out: one,
            op: Op::Not(Not(zero)),
        });
        circuit.max_reg_count += 2;
        circuit.output_regs = vec![Reg(1), one, and, and, zero];
        let written = write_bristol(
            &circuit,
            &Layout {
                outputs: &circuit.output_regs,
                output_widths: &[5],
                panic: None,
                msb_first: false,
            },
        )
        .expect("writes");
        let (_, read) = parse_bristol(Path::new("x.txt"), &written.text).expect("reads back");
        for (a, b) in [(false, false), (false, true), (true, false), (true, true)] {
            assert_eq!(
                read.eval(&[vec![a, b]]),
                vec![b, true, a & b, a & b, false],
                "{}",
                written.text
            );
        }
        assert_eq!(written.and_gates, 1);
        assert!(written.text.contains(" EQW\n"), "{}", written.text);
    }

    #[test]
    fn a_possible_panic_is_refused() {
        let text = "1 3\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n";
        let (_, circuit) = parse_bristol(Path::new("x.txt"), text).expect("parses");
        let layout = Layout {
            outputs: &circuit.output_regs,
            output_widths: &[1],
            panic: Some(circuit.output_regs[0]),
            msb_first: true,
        };
        let err = write_bristol(&circuit, &layout).expect_err("the panic bit is not constant");
        assert!(err.contains("can panic"), "{err}");
        let layout = Layout {
            panic: Some(Reg(0)),
            ..layout
        };
        assert!(write_bristol(&circuit, &layout).is_err());
    }

    #[test]
    fn hex_round_trip() {
        let bits = hex_to_bits("0x0f1", 12).unwrap();
        assert_eq!(bits_to_hex(&bits), "0f1");
        assert!(bits[0] && !bits[1] && bits[4]);
        assert!(hex_to_bits("f", 3).is_err());
        assert_eq!(hex_to_bits("7", 3).unwrap(), vec![true, true, true]);
        assert!(hex_to_bits("0g", 8).is_err());
        assert!(hex_to_bits("000", 8).is_err());
    }

    #[test]
    fn bristol_rejects_malformed() {
        let p = Path::new("x.txt");
        for text in [
            "",
            "1 3\n2 1 1\n1 1\n2 1 0 1 2 FOO\n",
            "1 3\n2 1 1\n1 1\n2 1 0 7 2 XOR\n",
            "2 3\n2 1 1\n1 1\n2 1 0 1 2 XOR\n",
            "1 3\n2 1 1\n1 1\n2 1 0 5 2 XOR\n",
            "1 4\n2 1 1\n1 1\n2 1 0 1 2 XOR\n",
        ] {
            assert!(parse_bristol(p, text).is_err(), "accepted {text:?}");
        }
        let (info, c) = parse_bristol(p, "1 3\n2 1 1\n1 1\n\n2 1 0 1 2 AND\n").unwrap();
        assert_eq!(info.inputs, vec![1, 1]);
        assert_eq!(c.eval(&[vec![true], vec![true]]), vec![true]);
        assert_eq!(c.eval(&[vec![true], vec![false]]), vec![false]);
    }
}
