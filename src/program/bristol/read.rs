//! Reading a Bristol Fashion circuit file into a register circuit.

use super::*;

/// Parses a Bristol Fashion circuit into a register circuit (via garble's SSA circuit and its
/// register allocator).
pub(in crate::program) fn parse_bristol(
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
