//! What a program is: its summary for `mpc check`, the hash the parties compare, and its
//! export as a Bristol Fashion circuit.

use super::*;

impl Program {
    /// The program as a Bristol Fashion circuit (`mpc check --bristol-out`) that this module
    /// reads back as the same function: input value `i` is party `i`'s input, and the output
    /// is one value with every output bit (a Garble program's return value, without garble's
    /// panic information) or the circuit's own output values. Hex in and out read like the
    /// Garble values: bits are numbered from the most significant, so a `[u8; 16]` is its
    /// bytes in order and a `[u32; 8]` its big-endian words (see the module docs).
    ///
    /// Constants are folded and unused gates dropped, so the AND count does not grow. A
    /// Garble program that can panic is refused: Bristol Fashion cannot report a panic.
    pub fn to_bristol(&self) -> Result<BristolText, ProgramError> {
        let outputs = &self.circuit.output_regs;
        let (values, panic, msb_first, widths) = match &self.inner {
            Inner::Garble { .. } => {
                let values = &outputs[PANIC_RESULT_SIZE_IN_BITS..];
                (values, outputs.first().copied(), true, vec![values.len()])
            }
            Inner::Bristol(info) => (&outputs[..], None, false, info.outputs.clone()),
        };
        let layout = Layout {
            outputs: values,
            output_widths: &widths,
            panic,
            msb_first,
        };
        let circuit = self.whole_circuit()?;
        write_bristol(&circuit, &layout).map_err(|reason| ProgramError::BristolExport {
            path: self.path.clone(),
            reason,
        })
    }

    /// For `mpc check`: each party's parameter (name, type, bits), the output type, the
    /// AND/XOR/NOT counts and the register count.
    pub fn summary(&self) -> Summary {
        let (mut and_gates, mut xor_gates, mut not_gates) = (0, 0, 0);
        if let Some(stored) = &self.stored {
            and_gates = self.circuit.and_ops;
            xor_gates = stored.xor_ops as usize;
            not_gates = stored.not_ops as usize;
        }
        for inst in &self.circuit.insts {
            match inst.op {
                Op::And(_) => and_gates += 1,
                Op::Xor(_) => xor_gates += 1,
                Op::Not(_) => not_gates += 1,
                Op::Input(_) => {}
            }
        }
        let widths = &self.circuit.input_regs;
        let mut definitions = Vec::new();
        let (parties, output_type, output_bits, panic_bits) = match &self.inner {
            Inner::Garble { program, .. } => {
                let parties = (0..self.parties())
                    .map(|party| {
                        let (name, ty) = self
                            .garble_param(program, party)
                            .unwrap_or_else(|| (format!("party {party}"), Type::Bool));
                        PartyParam {
                            name,
                            ty: ty.to_string(),
                            bits: widths[party],
                        }
                    })
                    .collect();
                let bits = self.circuit.output_regs.len() - PANIC_RESULT_SIZE_IN_BITS;
                let mut seen = HashSet::new();
                for party in 0..self.parties() {
                    if let Some((_, ty)) = self.garble_param(program, party) {
                        collect_definitions(&ty, &program.program, &mut seen, &mut definitions);
                    }
                }
                collect_definitions(
                    &program.main.ty,
                    &program.program,
                    &mut seen,
                    &mut definitions,
                );
                (
                    parties,
                    program.main.ty.to_string(),
                    bits,
                    PANIC_RESULT_SIZE_IN_BITS,
                )
            }
            Inner::Bristol(info) => {
                let parties = widths
                    .iter()
                    .enumerate()
                    .map(|(party, &bits)| PartyParam {
                        name: format!("input {party}"),
                        ty: format!("{bits}-bit hex"),
                        bits,
                    })
                    .collect();
                let output_type = info
                    .outputs
                    .iter()
                    .map(|w| format!("{w}-bit hex"))
                    .collect::<Vec<_>>()
                    .join(", ");
                (parties, output_type, self.circuit.output_regs.len(), 0)
            }
        };
        Summary {
            path: self.path.clone(),
            kind: self.kind(),
            parties,
            output_type,
            output_bits,
            panic_bits,
            and_gates,
            xor_gates,
            not_gates,
            max_registers: self.circuit.max_reg_count,
            definitions,
        }
    }

    /// The parameter (name, declared type) that party `party` supplies. When `main` takes a
    /// single array, garble makes each element one party's input.
    pub(super) fn garble_param(
        &self,
        program: &GarbleProgram,
        party: usize,
    ) -> Option<(String, Type)> {
        let params = &program.main.params;
        if let [param] = params.as_slice() {
            let elem = match &param.ty {
                Type::Array(elem, _) | Type::ArrayConst(elem, _) => Some(elem),
                _ => None,
            };
            if let Some(elem) = elem {
                return (party < self.parties())
                    .then(|| (format!("{}[{party}]", param.name), (**elem).clone()));
            }
        }
        params
            .get(party)
            .map(|param| (param.name.clone(), param.ty.clone()))
    }

    pub(super) fn compute_hash(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"mpc program hash v1\0");
        h.update(&[self.kind().tag()]);
        let mut signature = String::new();
        match &self.inner {
            Inner::Garble { program, .. } => {
                for party in 0..self.parties() {
                    if let Some((name, ty)) = self.garble_param(program, party) {
                        let _ = write!(signature, "param {name}: ");
                        describe_type(&ty, program, &mut signature, &mut HashSet::new());
                        signature.push('\n');
                    }
                }
                signature.push_str("returns ");
                describe_type(
                    &program.main.ty,
                    program,
                    &mut signature,
                    &mut HashSet::new(),
                );
            }
            Inner::Bristol(info) => {
                let _ = write!(
                    signature,
                    "bristol inputs {:?} outputs {:?}",
                    info.inputs, info.outputs
                );
            }
        }
        h.update(&(signature.len() as u64).to_le_bytes());
        h.update(signature.as_bytes());

        let c = &self.circuit;
        let mut buf = Vec::with_capacity(1 << 16);
        let put = |buf: &mut Vec<u8>, n: u64| buf.extend_from_slice(&n.to_le_bytes());
        put(&mut buf, c.input_regs.len() as u64);
        for &w in &c.input_regs {
            put(&mut buf, w as u64);
        }
        put(&mut buf, c.max_reg_count as u64);
        put(&mut buf, c.and_ops as u64);
        put(&mut buf, c.insts.len() as u64);
        for inst in &c.insts {
            let (code, a, b) = match inst.op {
                Op::Input(i) => (0u8, i.party, i.input),
                Op::Xor(x) => (1, x.0.0, x.1.0),
                Op::And(x) => (2, x.0.0, x.1.0),
                Op::Not(x) => (3, x.0.0, 0),
            };
            buf.push(code);
            buf.extend_from_slice(&inst.out.0.to_le_bytes());
            buf.extend_from_slice(&a.to_le_bytes());
            buf.extend_from_slice(&b.to_le_bytes());
            if buf.len() >= 1 << 16 {
                h.update(&buf);
                buf.clear();
            }
        }
        put(&mut buf, c.output_regs.len() as u64);
        for r in &c.output_regs {
            buf.extend_from_slice(&r.0.to_le_bytes());
        }
        h.update(&buf);
        *h.finalize().as_bytes()
    }
}

/// Writes a canonical description of `ty`, expanding struct and enum definitions (once each).
pub(super) fn describe_type(
    ty: &Type,
    program: &GarbleProgram,
    out: &mut String,
    seen: &mut HashSet<String>,
) {
    let prg: &TypedProgram = &program.program;
    match ty {
        Type::Array(elem, n) => {
            out.push('[');
            describe_type(elem, program, out, seen);
            let _ = write!(out, "; {n}]");
        }
        Type::ArrayConst(elem, name) => {
            out.push('[');
            describe_type(elem, program, out, seen);
            let size = program.const_sizes.get(name);
            let _ = write!(out, "; {name}={size:?}]");
        }
        Type::ArrayConstExpr(elem, expr) => {
            out.push('[');
            describe_type(elem, program, out, seen);
            let _ = write!(out, "; {expr}]");
        }
        Type::Tuple(fields) => {
            out.push('(');
            for (i, f) in fields.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                describe_type(f, program, out, seen);
            }
            out.push(')');
        }
        Type::Struct(name) => {
            let _ = write!(out, "struct {name}");
            if seen.insert(name.clone())
                && let Some(def) = prg.struct_defs.get(name)
            {
                out.push_str(" {");
                for (field, fty) in &def.fields {
                    let _ = write!(out, " {field}: ");
                    describe_type(fty, program, out, seen);
                    out.push(',');
                }
                out.push_str(" }");
            }
        }
        Type::Enum(name) => {
            let _ = write!(out, "enum {name}");
            if seen.insert(name.clone())
                && let Some(def) = prg.enum_defs.get(name)
            {
                out.push_str(" {");
                for variant in &def.variants {
                    match variant {
                        Variant::Unit(v) => {
                            let _ = write!(out, " {v},");
                        }
                        Variant::Tuple(v, types) => {
                            let _ = write!(out, " {v}(");
                            for (i, t) in types.iter().enumerate() {
                                if i > 0 {
                                    out.push_str(", ");
                                }
                                describe_type(t, program, out, seen);
                            }
                            out.push_str("),");
                        }
                    }
                }
                out.push_str(" }");
            }
        }
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

/// Appends the definitions of the structs and enums that `ty` uses (each once, in the order
/// they are first used), formatted like Garble source on one line.
pub(super) fn collect_definitions(
    ty: &Type,
    prg: &TypedProgram,
    seen: &mut HashSet<String>,
    out: &mut Vec<String>,
) {
    match ty {
        Type::Array(elem, _) | Type::ArrayConst(elem, _) | Type::ArrayConstExpr(elem, _) => {
            collect_definitions(elem, prg, seen, out)
        }
        Type::Tuple(fields) => {
            for f in fields {
                collect_definitions(f, prg, seen, out);
            }
        }
        Type::Struct(name) if seen.insert(name.clone()) => {
            if let Some(def) = prg.struct_defs.get(name) {
                let fields: Vec<String> = def
                    .fields
                    .iter()
                    .map(|(field, fty)| format!("{field}: {fty}"))
                    .collect();
                out.push(format!("struct {name} {{ {} }}", fields.join(", ")));
                for (_, fty) in &def.fields {
                    collect_definitions(fty, prg, seen, out);
                }
            }
        }
        Type::Enum(name) if seen.insert(name.clone()) => {
            if let Some(def) = prg.enum_defs.get(name) {
                let variants: Vec<String> = def
                    .variants
                    .iter()
                    .map(|v| match v {
                        Variant::Unit(v) => v.clone(),
                        Variant::Tuple(v, types) => {
                            let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
                            format!("{v}({})", types.join(", "))
                        }
                    })
                    .collect();
                out.push(format!("enum {name} {{ {} }}", variants.join(", ")));
                for v in &def.variants {
                    if let Variant::Tuple(_, types) = v {
                        for t in types {
                            collect_definitions(t, prg, seen, out);
                        }
                    }
                }
            }
        }
        _ => {}
    }
}

/// Replaces array sizes given by named constants (`[u8; N]`) with their values, so that
/// literals like `[1u8, 2u8, 3u8]` type-check against the parameter type.
pub(super) fn resolve_const_sizes(ty: &Type, const_sizes: &HashMap<String, usize>) -> Type {
    match ty {
        Type::ArrayConst(elem, name) => {
            let elem = Box::new(resolve_const_sizes(elem, const_sizes));
            match const_sizes.get(name) {
                Some(&n) => Type::Array(elem, n),
                None => Type::ArrayConst(elem, name.clone()),
            }
        }
        Type::Array(elem, n) => Type::Array(Box::new(resolve_const_sizes(elem, const_sizes)), *n),
        Type::ArrayConstExpr(elem, expr) => Type::ArrayConstExpr(
            Box::new(resolve_const_sizes(elem, const_sizes)),
            expr.clone(),
        ),
        Type::Tuple(fields) => Type::Tuple(
            fields
                .iter()
                .map(|f| resolve_const_sizes(f, const_sizes))
                .collect(),
        ),
        other => other.clone(),
    }
}
