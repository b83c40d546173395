//! Writing a loaded program as a Bristol Fashion circuit (`mpc check --bristol-out`).

use super::*;

/// How the bits of a register circuit map onto the values of a Bristol Fashion circuit.
pub(in crate::program) struct Layout<'a> {
    /// The output registers that carry the result, value after value.
    pub(in crate::program) outputs: &'a [Reg],
    /// Width of each output value (they add up to `outputs.len()`).
    pub(in crate::program) output_widths: &'a [usize],
    /// A register that is true when the program panicked (garble's first output bit). Bristol
    /// Fashion cannot report a panic, so it must be the constant false.
    pub(in crate::program) panic: Option<Reg>,
    /// Garble numbers the bits of a value from the most significant, Bristol wires from the
    /// least: with `msb_first` bit `k` of a `w`-bit value becomes wire `w - 1 - k` of it, so
    /// that hex in and out read the same as the Garble values' bytes.
    pub(in crate::program) msb_first: bool,
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
pub(in crate::program) fn write_bristol(
    circuit: &Circuit,
    layout: &Layout<'_>,
) -> Result<BristolText, String> {
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
