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

/// Parses a Bristol Fashion circuit into a register circuit (via garble's SSA circuit and its
/// register allocator).
pub(super) fn parse_bristol(
    path: &Path,
    text: &str,
) -> Result<(BristolInfo, Circuit), ProgramError> {
    let err = |line: usize, reason: String| ProgramError::Bristol {
        path: path.to_path_buf(),
        line,
        reason,
    };
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty());
    let mut numbers = |what: &str| -> Result<(usize, Vec<usize>), ProgramError> {
        let (no, line) = lines
            .next()
            .ok_or_else(|| err(0, format!("the file ends before the {what} line")))?;
        let nums = line
            .split_whitespace()
            .map(|p| p.parse::<usize>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| err(no, format!("the {what} line must contain only numbers")))?;
        Ok((no, nums))
    };
    let (no, header) = numbers("header (`ngates nwires`)")?;
    let [ngates, nwires] = header[..] else {
        return Err(err(no, "the header must be `ngates nwires`".into()));
    };
    let (no, inputs) = numbers("inputs (`niv width...`)")?;
    let Some((&niv, inputs)) = inputs.split_first() else {
        return Err(err(no, "empty inputs line".into()));
    };
    if niv == 0 || inputs.len() != niv || inputs.contains(&0) {
        return Err(err(
            no,
            format!("the inputs line must be `niv` followed by niv non-zero widths (niv = {niv})"),
        ));
    }
    let (no, outputs) = numbers("outputs (`nov width...`)")?;
    let Some((&nov, outputs)) = outputs.split_first() else {
        return Err(err(no, "empty outputs line".into()));
    };
    if nov == 0 || outputs.len() != nov || outputs.contains(&0) {
        return Err(err(
            no,
            format!("the outputs line must be `nov` followed by nov non-zero widths (nov = {nov})"),
        ));
    }
    let total_in = inputs.iter().try_fold(0usize, |a, &w| a.checked_add(w));
    let total_out = outputs.iter().try_fold(0usize, |a, &w| a.checked_add(w));
    let (Some(total_in), Some(total_out)) = (total_in, total_out) else {
        return Err(err(no, "input or output widths overflow".into()));
    };
    if total_in > nwires || total_out > nwires {
        return Err(err(
            0,
            format!("{nwires} wires cannot hold {total_in} input and {total_out} output bits"),
        ));
    }

    // Gates. Memory is bounded by the file size: every gate is a line.
    struct RawGate<'a> {
        line: usize,
        ins: Vec<usize>,
        outs: Vec<usize>,
        kind: &'a str,
    }
    let mut raw = Vec::new();
    for (no, line) in lines {
        let parts: Vec<&str> = line.split_whitespace().collect();
        let bad = |reason: &str| err(no, format!("{reason}: `{}`", line.trim()));
        if parts.len() < 3 {
            return Err(bad("a gate needs `nin nout wires... TYPE`"));
        }
        let nin: usize = parts[0].parse().map_err(|_| bad("bad input count"))?;
        let nout: usize = parts[1].parse().map_err(|_| bad("bad output count"))?;
        if nin.checked_add(nout).and_then(|n| n.checked_add(3)) != Some(parts.len()) {
            return Err(bad("the number of wires does not match `nin nout`"));
        }
        let wires = parts[2..2 + nin + nout]
            .iter()
            .map(|w| match w.parse::<usize>() {
                Ok(w) if w < nwires => Ok(w),
                _ => Err(bad(&format!("wire `{w}` is not a number below {nwires}"))),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let (ins, outs) = wires.split_at(nin);
        raw.push(RawGate {
            line: no,
            ins: ins.to_vec(),
            outs: outs.to_vec(),
            kind: parts[parts.len() - 1],
        });
    }
    if raw.len() != ngates {
        return Err(err(
            0,
            format!(
                "the header announces {ngates} gates but the file has {}",
                raw.len()
            ),
        ));
    }

    // Map Bristol wires to SSA gate indices (inputs are SSA wires 0..total_in).
    let mut map: Vec<Option<usize>> = vec![None; nwires];
    for (i, slot) in map.iter_mut().take(total_in).enumerate() {
        *slot = Some(i);
    }
    let mut gates: Vec<Gate> = Vec::with_capacity(raw.len());
    let mut constants: [Option<usize>; 2] = [None, None];
    for g in &raw {
        let bad = |reason: String| err(g.line, reason);
        let get =
            |w: usize| map[w].ok_or_else(|| bad(format!("wire {w} is read before it is written")));
        let mut produced: Vec<usize> = Vec::with_capacity(g.outs.len());
        match (g.kind, g.ins.len(), g.outs.len()) {
            ("XOR", 2, 1) | ("AND", 2, 1) => {
                let (a, b) = (get(g.ins[0])?, get(g.ins[1])?);
                gates.push(if g.kind == "XOR" {
                    Gate::Xor(a, b)
                } else {
                    Gate::And(a, b)
                });
                produced.push(total_in + gates.len() - 1);
            }
            ("INV" | "NOT", 1, 1) => {
                gates.push(Gate::Not(get(g.ins[0])?));
                produced.push(total_in + gates.len() - 1);
            }
            ("EQW", 1, 1) => produced.push(get(g.ins[0])?),
            ("EQ", 1, 1) => {
                let value = match g.ins[0] {
                    0 => 0,
                    1 => 1,
                    v => return Err(bad(format!("EQ needs the constant 0 or 1, found {v}"))),
                };
                let zero = match constants[0] {
                    Some(z) => z,
                    None => {
                        gates.push(Gate::Xor(0, 0));
                        constants[0] = Some(total_in + gates.len() - 1);
                        total_in + gates.len() - 1
                    }
                };
                let wire = if value == 0 {
                    zero
                } else if let Some(one) = constants[1] {
                    one
                } else {
                    gates.push(Gate::Not(zero));
                    constants[1] = Some(total_in + gates.len() - 1);
                    total_in + gates.len() - 1
                };
                produced.push(wire);
            }
            ("MAND", nin, nout) if nout > 0 && nin == 2 * nout => {
                for i in 0..nout {
                    let (a, b) = (get(g.ins[i])?, get(g.ins[nout + i])?);
                    gates.push(Gate::And(a, b));
                    produced.push(total_in + gates.len() - 1);
                }
            }
            (kind @ ("XOR" | "AND" | "INV" | "NOT" | "EQW" | "EQ" | "MAND"), nin, nout) => {
                return Err(bad(format!(
                    "a {kind} gate cannot have {nin} inputs and {nout} outputs"
                )));
            }
            (kind, _, _) => {
                return Err(bad(format!(
                    "unsupported gate type `{kind}` (supported: XOR, AND, INV, NOT, MAND, EQW, EQ)"
                )));
            }
        }
        for (&w, ssa) in g.outs.iter().zip(produced) {
            if map[w].is_some() {
                return Err(bad(format!("wire {w} is written twice")));
            }
            map[w] = Some(ssa);
        }
    }
    let mut output_gates = Vec::with_capacity(total_out);
    let first_output = nwires - total_out;
    for (i, slot) in map[first_output..].iter().enumerate() {
        let wire = first_output + i;
        output_gates
            .push(slot.ok_or_else(|| err(0, format!("output wire {wire} is never written")))?);
    }
    let ssa = SsaCircuit {
        input_gates: inputs.to_vec(),
        gates,
        output_gates,
    };
    ssa.validate().map_err(|e| ProgramError::InvalidCircuit {
        path: path.to_path_buf(),
        reason: format!("{e:?}"),
    })?;
    let circuit = Circuit::from(ssa);
    let info = BristolInfo {
        inputs: inputs.to_vec(),
        outputs: outputs.to_vec(),
    };
    Ok((info, circuit))
}

/// How the bits of a register circuit map onto the values of a Bristol Fashion circuit.
pub(super) struct Layout<'a> {
    /// The output registers that carry the result, value after value.
    pub(super) outputs: &'a [Reg],
    /// Width of each output value (they add up to `outputs.len()`).
    pub(super) output_widths: &'a [usize],
    /// A register that is true when the program panicked (garble's first output bit). Bristol
    /// Fashion cannot report a panic, so it must be the constant false.
    pub(super) panic: Option<Reg>,
    /// Garble numbers the bits of a value from the most significant, Bristol wires from the
    /// least: with `msb_first` bit `k` of a `w`-bit value becomes wire `w - 1 - k` of it, so
    /// that hex in and out read the same as the Garble values' bytes.
    pub(super) msb_first: bool,
}

/// A circuit written in Bristol Fashion by [`crate::program::Program::to_bristol`].
#[derive(Clone)]
pub struct BristolText {
    /// The file's content.
    pub text: String,
    /// Number of gates (the header's first number).
    pub gates: usize,
    /// Number of wires (the header's second number).
    pub wires: usize,
    /// Number of AND gates.
    pub and_gates: usize,
}

impl std::fmt::Debug for BristolText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The text can be megabytes long: show its size, not its content.
        f.debug_struct("BristolText")
            .field("text", &format_args!("{} bytes", self.text.len()))
            .field("gates", &self.gates)
            .field("wires", &self.wires)
            .field("and_gates", &self.and_gates)
            .finish()
    }
}

/// A value while the circuit is translated: a constant, or the wire of an input bit
/// (`0..total_in`) or of a gate (`total_in + gate index`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    Const(bool),
    Wire(usize),
}

/// A gate of the written circuit; operands are node wires.
#[derive(Debug, Clone, Copy)]
enum WGate {
    Xor(usize, usize),
    And(usize, usize),
    Inv(usize),
}

/// The gates of the circuit under construction, with constant folding: the register
/// circuit's constants (garble builds them from input 0) and what only depends on them
/// become [`Node::Const`], so the panic bits of a panic-free program fold away.
struct Builder {
    total_in: usize,
    gates: Vec<WGate>,
    const_wires: [Option<usize>; 2],
}

impl Builder {
    fn push(&mut self, gate: WGate) -> Node {
        self.gates.push(gate);
        Node::Wire(self.total_in + self.gates.len() - 1)
    }

    fn gate_of(&self, wire: usize) -> Option<WGate> {
        wire.checked_sub(self.total_in)
            .and_then(|i| self.gates.get(i).copied())
    }

    fn xor(&mut self, a: Node, b: Node) -> Node {
        match (a, b) {
            (Node::Const(x), Node::Const(y)) => Node::Const(x ^ y),
            (Node::Const(false), n) | (n, Node::Const(false)) => n,
            (Node::Const(true), n) | (n, Node::Const(true)) => self.not(n),
            (Node::Wire(x), Node::Wire(y)) if x == y => Node::Const(false),
            (Node::Wire(x), Node::Wire(y)) => self.push(WGate::Xor(x, y)),
        }
    }

    fn and(&mut self, a: Node, b: Node) -> Node {
        match (a, b) {
            (Node::Const(x), Node::Const(y)) => Node::Const(x & y),
            (Node::Const(false), _) | (_, Node::Const(false)) => Node::Const(false),
            (Node::Const(true), n) | (n, Node::Const(true)) => n,
            (Node::Wire(x), Node::Wire(y)) if x == y => a,
            (Node::Wire(x), Node::Wire(y)) => self.push(WGate::And(x, y)),
        }
    }

    fn not(&mut self, a: Node) -> Node {
        match a {
            Node::Const(x) => Node::Const(!x),
            Node::Wire(x) => match self.gate_of(x) {
                Some(WGate::Inv(y)) => Node::Wire(y),
                _ => self.push(WGate::Inv(x)),
            },
        }
    }

    /// A wire carrying a constant (Bristol Fashion has no constants): input 0 XOR itself,
    /// and its inverse.
    fn const_wire(&mut self, value: bool) -> usize {
        if let Some(wire) = self.const_wires[value as usize] {
            return wire;
        }
        let zero = match self.const_wires[0] {
            Some(wire) => wire,
            None => {
                self.gates.push(WGate::Xor(0, 0));
                self.total_in + self.gates.len() - 1
            }
        };
        self.const_wires[0] = Some(zero);
        if !value {
            return zero;
        }
        self.gates.push(WGate::Inv(zero));
        let one = self.total_in + self.gates.len() - 1;
        self.const_wires[1] = Some(one);
        one
    }
}

/// Writes `circuit` as a Bristol Fashion circuit: one input value per party (its width is the
/// party's input bits), the output values of `layout`. Constants are folded and gates that no
/// output needs are left out; an output that is an input bit, a constant or a repeated wire is
/// copied with an `EQW` gate. Fails (with the reason) when the circuit cannot be expressed:
/// a party without input bits, no output, or a program that can panic.
pub(super) fn write_bristol(circuit: &Circuit, layout: &Layout<'_>) -> Result<BristolText, String> {
    let widths = &circuit.input_regs;
    if let Some(party) = widths.iter().position(|&w| w == 0) {
        return Err(format!(
            "party {party} has no input bits, and a Bristol Fashion input value cannot be empty"
        ));
    }
    if layout.outputs.is_empty()
        || layout.output_widths.contains(&0)
        || layout.output_widths.iter().sum::<usize>() != layout.outputs.len()
    {
        return Err("the program has no output bits (Bristol Fashion needs at least one)".into());
    }
    let offsets: Vec<usize> = widths
        .iter()
        .scan(0, |acc, &w| {
            let start = *acc;
            *acc += w;
            Some(start)
        })
        .collect();
    let total_in: usize = widths.iter().sum();
    let mut b = Builder {
        total_in,
        gates: Vec::with_capacity(circuit.insts.len()),
        const_wires: [None, None],
    };
    let mut regs: Vec<Option<Node>> = vec![None; circuit.max_reg_count];
    let read = |regs: &[Option<Node>], r: Reg, i: usize| {
        regs.get(r.0 as usize).copied().flatten().ok_or_else(|| {
            format!(
                "instruction {i} reads register {} before it is written",
                r.0
            )
        })
    };
    for (i, inst) in circuit.insts.iter().enumerate() {
        let node = match inst.op {
            Op::Input(input) => {
                let (party, bit) = (input.party as usize, input.input as usize);
                let width = *widths
                    .get(party)
                    .filter(|&&w| bit < w)
                    .ok_or_else(|| format!("instruction {i} reads a bit no party has"))?;
                let bit = if layout.msb_first {
                    width - 1 - bit
                } else {
                    bit
                };
                Node::Wire(offsets[party] + bit)
            }
            Op::Xor(Xor(x, y)) => {
                let (x, y) = (read(&regs, x, i)?, read(&regs, y, i)?);
                b.xor(x, y)
            }
            Op::And(And(x, y)) => {
                let (x, y) = (read(&regs, x, i)?, read(&regs, y, i)?);
                b.and(x, y)
            }
            Op::Not(Not(x)) => {
                let x = read(&regs, x, i)?;
                b.not(x)
            }
        };
        let slot = regs
            .get_mut(inst.out.0 as usize)
            .ok_or_else(|| format!("instruction {i} writes a register beyond the circuit's"))?;
        *slot = Some(node);
    }
    let end = circuit.insts.len();
    if let Some(panic) = layout.panic
        && read(&regs, panic, end)? != Node::Const(false)
    {
        return Err(
            "the program can panic (an overflow, a division by zero or an index out of \
                    bounds), and a Bristol Fashion circuit cannot report a panic; make every \
                    operation panic-free (e.g. widen integers before adding them) to export it"
                .into(),
        );
    }

    // The output bits in Bristol order, each as a wire (constants get a gate).
    let mut out_wires = Vec::with_capacity(layout.outputs.len());
    let mut offset = 0;
    for &width in layout.output_widths {
        for j in 0..width {
            let k = if layout.msb_first { width - 1 - j } else { j };
            let wire = match read(&regs, layout.outputs[offset + k], end)? {
                Node::Wire(w) => w,
                Node::Const(value) => b.const_wire(value),
            };
            out_wires.push(wire);
        }
        offset += width;
    }

    // Keep the gates that an output needs (operands come before their gate).
    let mut live = vec![false; b.gates.len()];
    for &w in &out_wires {
        if let Some(i) = w.checked_sub(total_in) {
            live[i] = true;
        }
    }
    for i in (0..b.gates.len()).rev() {
        if !live[i] {
            continue;
        }
        let (x, y) = match b.gates[i] {
            WGate::Xor(x, y) | WGate::And(x, y) => (x, Some(y)),
            WGate::Inv(x) => (x, None),
        };
        for w in std::iter::once(x).chain(y) {
            if let Some(j) = w.checked_sub(total_in) {
                live[j] = true;
            }
        }
    }

    // The outputs are the last wires: a gate computing output k writes wire `first_out + k`
    // directly; an output that is an input bit or a wire already used by an earlier output
    // is copied there by an EQW gate.
    let mut claimed: Vec<Option<usize>> = vec![None; b.gates.len()];
    let mut copies = Vec::new();
    for (k, &w) in out_wires.iter().enumerate() {
        match w.checked_sub(total_in) {
            Some(i) if claimed[i].is_none() => claimed[i] = Some(k),
            _ => copies.push((k, w)),
        }
    }
    let live_gates = live.iter().filter(|&&l| l).count();
    let n_out = out_wires.len();
    let gates = live_gates + copies.len();
    let wires = total_in + gates;
    let first_out = wires - n_out;
    let mut wire_of = vec![usize::MAX; b.gates.len()];
    let mut next = total_in;
    for i in 0..b.gates.len() {
        if !live[i] {
            continue;
        }
        wire_of[i] = match claimed[i] {
            Some(k) => first_out + k,
            None => {
                next += 1;
                next - 1
            }
        };
    }
    let wire = |w: usize| match w.checked_sub(total_in) {
        Some(i) => wire_of[i],
        None => w,
    };

    let mut text = String::with_capacity(gates * 16 + 64);
    let list = |values: &[usize]| {
        values
            .iter()
            .map(|v| v.to_string())
            .collect::<Vec<_>>()
            .join(" ")
    };
    let _ = writeln!(text, "{gates} {wires}");
    let _ = writeln!(text, "{} {}", widths.len(), list(widths));
    let _ = writeln!(
        text,
        "{} {}",
        layout.output_widths.len(),
        list(layout.output_widths)
    );
    text.push('\n');
    let mut and_gates = 0;
    for (i, gate) in b.gates.iter().enumerate() {
        if !live[i] {
            continue;
        }
        let out = wire_of[i];
        let _ = match *gate {
            WGate::Xor(x, y) => writeln!(text, "2 1 {} {} {out} XOR", wire(x), wire(y)),
            WGate::And(x, y) => {
                and_gates += 1;
                writeln!(text, "2 1 {} {} {out} AND", wire(x), wire(y))
            }
            WGate::Inv(x) => writeln!(text, "1 1 {} {out} INV", wire(x)),
        };
    }
    for (k, w) in copies {
        let _ = writeln!(text, "1 1 {} {} EQW", wire(w), first_out + k);
    }
    Ok(BristolText {
        text,
        gates,
        wires,
        and_gates,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    use garble_lang::register_circuit::{Input, Inst};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// A random register circuit over `widths` with `ops` XOR/AND/NOT gates, registers
    /// sometimes overwritten (as garble's allocator does), a constant among the operands and
    /// random outputs, repeated ones and input bits included.
    fn random_circuit(rng: &mut ChaCha8Rng, widths: &[usize], ops: usize) -> Circuit {
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
        let mut regs = insts.len();
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
                0..=3 => {
                    and_ops += 1;
                    Op::And(And(a, b))
                }
                4..=7 => Op::Xor(Xor(a, b)),
                _ => Op::Not(Not(a)),
            };
            let out = if rng.random_bool(0.8) {
                regs += 1;
                Reg(regs as u32 - 1)
            } else {
                Reg(rng.random_range(widths.iter().sum::<usize>()..regs) as u32)
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

    fn random_inputs(rng: &mut ChaCha8Rng, widths: &[usize]) -> Vec<Vec<bool>> {
        widths
            .iter()
            .map(|&w| (0..w).map(|_| rng.random_bool(0.5)).collect())
            .collect()
    }

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
