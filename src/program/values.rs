//! A program's inputs and outputs: parsing party inputs into bits, decoding output bits
//! into a result (or a panic) exactly as `garble run` prints it, and plaintext evaluation.

use super::*;

/// Deepest bracket nesting accepted in an input literal: garble's literal parser is
/// recursive, so deeper input could overflow the stack. Real types are far shallower.
pub(super) const MAX_LITERAL_NESTING: usize = 128;

/// Longest input echoed back in an error message.
pub(super) const MAX_ECHOED_INPUT: usize = 80;

/// Bits of a `u32`/`usize` field in garble's panic header.
pub(super) const PANIC_FIELD_BITS: usize = 32;

impl Program {
    /// Parses party `party`'s input into its input bits.
    ///
    /// Garble: a Garble literal of the party's parameter type (e.g. `2u32`, `(1u8, true)`,
    /// `[1u8, 2u8]`, `Op::Div(4u8, 2u8)`); a bad literal gives an error naming the party's
    /// parameter and the expected type. Bristol: hex with exactly as many digits as the
    /// input's width needs, with or without `0x` (see the module docs for the bit order).
    pub fn parse_input(&self, party: usize, literal: &str) -> Result<Vec<bool>, ProgramError> {
        let Some(&width) = self.circuit.input_regs.get(party) else {
            return Err(ProgramError::NoSuchParty {
                party,
                parties: self.parties(),
                path: self.path.clone(),
            });
        };
        match &self.inner {
            Inner::Garble { program, .. } => {
                let (name, ty) =
                    self.garble_param(program, party)
                        .ok_or_else(|| ProgramError::NoSuchParty {
                            party,
                            parties: self.parties(),
                            path: self.path.clone(),
                        })?;
                let bad = |reason: String| ProgramError::BadInput {
                    party,
                    name: name.clone(),
                    ty: ty.to_string(),
                    input: echo(literal),
                    reason,
                };
                if nesting_depth(literal) > MAX_LITERAL_NESTING {
                    return Err(bad(format!(
                        "brackets are nested more than {MAX_LITERAL_NESTING} levels deep"
                    )));
                }
                let ty = resolve_const_sizes(&ty, &program.const_sizes);
                let parsed = catch_unwind(AssertUnwindSafe(|| {
                    Literal::parse(&program.program, &ty, literal)
                        .map(|lit| lit.as_bits(&program.program, &program.const_sizes))
                }));
                let bits = match parsed {
                    Ok(Ok(bits)) => bits,
                    Ok(Err(e)) => return Err(bad(one_line_error(&e))),
                    Err(panic) => {
                        return Err(bad(format!(
                            "garble_lang crashed while parsing it: {}",
                            panic_message(&panic)
                        )));
                    }
                };
                if bits.len() != width {
                    return Err(bad(format!(
                        "it encodes to {} bits but the circuit expects {width}",
                        bits.len()
                    )));
                }
                Ok(bits)
            }
            Inner::Bristol(_) => {
                hex_to_bits(literal, width).map_err(|reason| ProgramError::BadInput {
                    party,
                    name: format!("input {party}"),
                    ty: format!("{width}-bit hex"),
                    input: echo(literal),
                    reason,
                })
            }
        }
    }

    /// Formats the circuit's output bits exactly as `garble run` prints them (garble's
    /// `Literal` display: `6` for a `u32` six, `Richer::Party0`, `(1, true)`), or, when the
    /// program panicked (garble's panic bits), [`Outcome::Panic`] with exactly what
    /// `garble run` writes to stderr for it. Bristol: lowercase hex per output value,
    /// separated by spaces.
    pub fn format_output(&self, bits: &[bool]) -> Result<Outcome, ProgramError> {
        let expected = self.circuit.output_regs.len();
        if bits.len() != expected {
            return Err(ProgramError::OutputLength {
                path: self.path.clone(),
                expected,
                actual: bits.len(),
            });
        }
        match &self.inner {
            Inner::Garble { source, program } => self.format_garble_output(source, program, bits),
            Inner::Bristol(info) => {
                let mut out = String::new();
                let mut offset = 0;
                for (i, &width) in info.outputs.iter().enumerate() {
                    if i > 0 {
                        out.push(' ');
                    }
                    out.push_str(&bits_to_hex(&bits[offset..offset + width]));
                    offset += width;
                }
                Ok(Outcome::Value(out))
            }
        }
    }

    /// The result as JSON, for `--format json`: Garble's own JSON form of the returned
    /// `Literal` (as serde writes it, e.g. `{"NumUnsigned":[6,"U32"]}`, the form polytune
    /// and garble's tooling exchange), or, for a Bristol circuit, the output values as an
    /// array of hex strings. `None` when the bits hold a panic or do not decode.
    pub fn result_json(&self, bits: &[bool]) -> Option<serde_json::Value> {
        if bits.len() != self.circuit.output_regs.len() {
            return None;
        }
        match &self.inner {
            Inner::Garble { program, .. } => {
                if bits.first().copied().unwrap_or(true) {
                    return None;
                }
                let literal = catch_unwind(AssertUnwindSafe(|| {
                    Literal::from_result_bits(
                        &program.program,
                        &program.main.ty,
                        bits,
                        &program.const_sizes,
                    )
                    .ok()
                }))
                .ok()
                .flatten()?;
                serde_json::to_value(literal).ok()
            }
            Inner::Bristol(info) => {
                let mut values = Vec::with_capacity(info.outputs.len());
                let mut offset = 0;
                for &width in &info.outputs {
                    values.push(serde_json::Value::String(bits_to_hex(
                        &bits[offset..offset + width],
                    )));
                    offset += width;
                }
                Some(serde_json::Value::Array(values))
            }
        }
    }

    pub(super) fn format_garble_output(
        &self,
        source: &str,
        program: &GarbleProgram,
        bits: &[bool],
    ) -> Result<Outcome, ProgramError> {
        let bad = |reason: String| ProgramError::BadOutput {
            path: self.path.clone(),
            reason,
        };
        // garble's decoder panics on an unknown panic reason and on panic locations outside
        // the source; check the header before handing the bits over.
        let field = |i: usize| bits_to_u64(&bits[1 + i * PANIC_FIELD_BITS..][..PANIC_FIELD_BITS]);
        let reason = field(0);
        if !(1..=3).contains(&reason) {
            return Err(bad(format!("unknown panic reason code {reason}")));
        }
        if bits[0] {
            let (start_line, start_col, end_line, end_col) =
                (field(1), field(2), field(3), field(4));
            let lines: Vec<&str> = source.lines().collect();
            let line_len = |l: u64| lines.get(l as usize).map(|s| s.len() as u64);
            let valid = start_line <= end_line
                && line_len(start_line).is_some_and(|len| start_col <= len + 1)
                && line_len(end_line).is_some_and(|len| end_col <= len + 1);
            if !valid {
                return Err(bad(format!(
                    "panic location {}:{}-{}:{} is outside the program source",
                    start_line + 1,
                    start_col + 1,
                    end_line + 1,
                    end_col + 1
                )));
            }
        }
        let decoded = catch_unwind(AssertUnwindSafe(|| {
            Literal::from_result_bits(
                &program.program,
                &program.main.ty,
                bits,
                &program.const_sizes,
            )
            .map_err(|e| match e {
                EvalError::Panic(_) => Ok(e.prettify(source)),
                other => Err(other.to_string()),
            })
        }));
        match decoded {
            Ok(Ok(literal)) => Ok(Outcome::Value(literal.to_string())),
            Ok(Err(Ok(panic))) => Ok(Outcome::Panic(panic)),
            Ok(Err(Err(reason))) => Err(bad(reason)),
            Err(panic) => Err(bad(format!(
                "they are not a valid {}: {}",
                program.main.ty,
                panic_message(&panic)
            ))),
        }
    }

    /// Plaintext evaluation with garble_lang's own register-circuit evaluator, for tests and
    /// `mpc run` cross-checks. `inputs[i]` are party `i`'s bits from [`Program::parse_input`].
    ///
    /// # Panics
    ///
    /// If the inputs do not fit the circuit (wrong number of parties or bits), or if the
    /// instructions of a streamed program cannot be read back; use
    /// [`Program::try_eval_plain`] for inputs that did not come from `parse_input`.
    pub fn eval_plain(&self, inputs: &[Vec<bool>]) -> Vec<bool> {
        match self.try_eval_plain(inputs) {
            Ok(bits) => bits,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`Program::eval_plain`], but returns an error when the inputs do not fit the
    /// circuit (or a streamed program's instructions cannot be read back).
    pub fn try_eval_plain(&self, inputs: &[Vec<bool>]) -> Result<Vec<bool>, ProgramError> {
        let bad = |reason: String| ProgramError::BadEvalInputs {
            path: self.path.clone(),
            reason,
        };
        if inputs.len() != self.parties() {
            return Err(bad(format!(
                "{} inputs given, the program has {} parties",
                inputs.len(),
                self.parties()
            )));
        }
        for (party, (input, &width)) in inputs.iter().zip(&self.circuit.input_regs).enumerate() {
            if input.len() != width {
                return Err(bad(format!(
                    "party {party} gave {} bits, its input has {width}",
                    input.len()
                )));
            }
        }
        Ok(self.whole_circuit()?.eval(inputs))
    }
}

/// The deepest nesting of `(`, `[` and `{` in a literal.
pub(super) fn nesting_depth(literal: &str) -> usize {
    let (mut depth, mut max) = (0usize, 0usize);
    for c in literal.chars() {
        match c {
            '(' | '[' | '{' => {
                depth += 1;
                max = max.max(depth);
            }
            ')' | ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// An input as shown in error messages: shortened when long.
pub(super) fn echo(input: &str) -> String {
    if input.chars().count() <= MAX_ECHOED_INPUT {
        input.to_string()
    } else {
        let head: String = input.chars().take(MAX_ECHOED_INPUT).collect();
        format!("{head}…")
    }
}

/// Big-endian (first bit most significant) bits to a number; at most 64 bits.
pub(super) fn bits_to_u64(bits: &[bool]) -> u64 {
    bits.iter().fold(0, |n, &b| (n << 1) | b as u64)
}
