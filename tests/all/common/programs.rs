//! Loading and evaluating programs in plaintext, for the tests of `mpc::program`.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use garble_lang::{check, circuit_type::CircuitType, eval::Evaluator, literal::Literal};
use mpc::program::{Outcome, Program};

/// The path of example program `name` in `programs/`.
pub fn example(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("programs")
        .join(name)
}

/// Loads a program, compiling it without the cache.
pub fn load(path: &Path) -> Program {
    match Program::load_uncached(path) {
        Ok((program, _)) => program,
        Err(e) => panic!("{e}"),
    }
}

/// Parses one input per party, evaluates in plaintext and formats the output.
pub fn run(program: &Program, inputs: &[&str]) -> Outcome {
    let bits: Vec<Vec<bool>> = inputs
        .iter()
        .enumerate()
        .map(|(party, input)| match program.parse_input(party, input) {
            Ok(bits) => bits,
            Err(e) => panic!("{e}"),
        })
        .collect();
    let output = program.eval_plain(&bits);
    match program.format_output(&output) {
        Ok(outcome) => outcome,
        Err(e) => panic!("{e}"),
    }
}

/// What `garble run FILE INPUTS...` prints: `Ok(stdout line)` or `Err(stderr text)`, computed
/// the way garble_lang's own `main.rs` does it.
pub fn garble_run(source: &str, inputs: &[&str]) -> Result<String, String> {
    let program = check(source).map_err(|e| e.prettify(source))?;
    let (circuit, main_fn) = program
        .compile("main")
        .map_err(|errs| format!("{errs:?}"))?;
    let const_sizes = Default::default();
    let circuit = CircuitType::Register(circuit.into());
    let mut evaluator = Evaluator::new(&program, main_fn, &circuit, &const_sizes);
    let params = evaluator.main_fn.params.clone();
    for (param, input) in params.iter().zip(inputs) {
        let literal = Literal::parse(&program, &param.ty, input)
            .map_err(|e| format!("input not of type {}: {}", param.ty, e.prettify(input)))?;
        evaluator
            .set_literal(literal)
            .map_err(|e| e.prettify(source))?;
    }
    let output = evaluator.run().map_err(|e| e.prettify(source))?;
    output
        .into_literal()
        .map(|l| l.to_string())
        .map_err(|e| e.prettify(source))
}

/// A Bristol Fashion circuit exported from example program `name` (`mpc check
/// --bristol-out`), written into `dir` as `file`. The export is made once per test binary.
pub fn exported(name: &str, dir: &Path, file: &str) -> PathBuf {
    static AES: OnceLock<String> = OnceLock::new();
    static SHA: OnceLock<String> = OnceLock::new();
    let cell = match name {
        "aes128.garble.rs" => &AES,
        "sha256.garble.rs" => &SHA,
        other => panic!("no cached export for {other}"),
    };
    let text = cell.get_or_init(|| {
        let program = load(&example(name));
        match program.to_bristol() {
            Ok(bristol) => bristol.text,
            Err(e) => panic!("{e}"),
        }
    });
    let path = dir.join(file);
    fs::write(&path, text).expect("write the exported circuit");
    path
}
