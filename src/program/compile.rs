//! Compiling Garble source to a register circuit, on a thread with a large stack, and
//! garble's errors and panics as messages.

use super::*;

/// Stack size of the thread that runs garble's (recursive) compiler.
pub(super) const COMPILER_STACK_BYTES: usize = 256 << 20;

/// Compiles Garble source to a register circuit; returns the program (with its circuit field
/// emptied) and the circuit.
pub(super) fn compile_garble(
    path: &Path,
    source: &str,
    consts: HashMap<String, HashMap<String, Literal>>,
) -> Result<(GarbleProgram, Circuit), ProgramError> {
    let options = CompileOptions {
        circuit_kind: CircuitKind::Register,
        optimize_duplicate_gates: true,
        consts,
    };
    let compiled = with_big_stack(|| garble_lang::compile_with_options(source, options));
    let mut program = match compiled {
        Ok(Ok(program)) => program,
        Ok(Err(e)) => {
            return Err(ProgramError::Compile {
                path: path.to_path_buf(),
                pretty: e.prettify(source),
            });
        }
        Err(panic) => {
            return Err(ProgramError::CompilerCrash {
                path: path.to_path_buf(),
                message: panic_message(&panic),
            });
        }
    };
    let circuit = match mem::replace(&mut program.circuit, CircuitType::Register(empty_circuit())) {
        CircuitType::Register(circuit) => circuit,
        CircuitType::Ssa(circuit) => Circuit::from(circuit),
    };
    Ok((program, circuit))
}

/// Runs `f` on a thread with a large stack (garble's compiler recurses over the program), or
/// on this thread when no thread can be started; a panic in `f` is returned as `Err`.
pub(super) fn with_big_stack<T: Send>(
    f: impl FnOnce() -> T + Send,
) -> Result<T, Box<dyn std::any::Any + Send>> {
    let slot = std::sync::Mutex::new(Some(f));
    let take = || slot.lock().ok().and_then(|mut guard| guard.take());
    let spawned = std::thread::scope(|scope| {
        let handle = std::thread::Builder::new()
            .name("garble-compiler".into())
            .stack_size(COMPILER_STACK_BYTES)
            .spawn_scoped(scope, || take().map(|f| catch_unwind(AssertUnwindSafe(f))))
            .ok()?;
        handle.join().ok().flatten()
    });
    match spawned {
        Some(result) => result,
        None => match take() {
            Some(f) => catch_unwind(AssertUnwindSafe(f)),
            None => Err(Box::new("the compiler thread failed")),
        },
    }
}

pub(super) fn empty_circuit() -> Circuit {
    Circuit {
        input_regs: vec![],
        insts: vec![],
        max_reg_count: 0,
        output_regs: vec![],
        and_ops: 0,
    }
}

/// A one-line description of a literal parse error: each error's message with its column.
pub(super) fn one_line_error(e: &CompileTimeError) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut push = |kind: &str, msg: String, col: usize| {
        parts.push(format!("{kind} at column {}: {msg}", col + 1));
    };
    match e {
        CompileTimeError::ScanErrors(errs) => {
            for err in errs {
                push("scan error", err.0.to_string(), err.1.start.1);
            }
        }
        CompileTimeError::ParseError(errs) => {
            for err in errs {
                push("parse error", err.0.to_string(), err.1.start.1);
            }
        }
        CompileTimeError::TypeError(errs) => {
            for err in errs {
                push("type error", err.0.to_string(), err.1.start.1);
            }
        }
        CompileTimeError::CompilerError(errs) => {
            for err in errs {
                parts.push(err.to_string());
            }
        }
    }
    if parts.is_empty() {
        "not a valid literal".to_string()
    } else {
        parts.join("; ")
    }
}

pub(super) fn panic_message(panic: &Box<dyn std::any::Any + Send>) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "unknown panic".to_string()
    }
}
