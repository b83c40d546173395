//! Programs whose instructions stay in the compile cache file and are streamed from it
//! during a run: the protocol gives what garble_lang's plaintext evaluation gives, over many
//! chunks, with and without a dealer; a cache file that is damaged or cut off after the
//! program was loaded stops the run with an error that names the file and what to do; and a
//! truncated cache file found at load is recompiled.

use std::fs;
use std::path::{Path, PathBuf};

use mpc::engine::EngineError;
use mpc::engine::preprocess::SourceKind;
use mpc::local::{LocalOptions, run_local_streamed};
use mpc::program::{LoadOptions, Program};

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("programs")
        .join(name)
}

/// Loads `name` through the cache in `dir`, streaming every circuit found there.
fn load(name: &str, dir: &Path) -> (Program, bool) {
    let opts = LoadOptions {
        cache: Some(dir),
        stream_from: Some(0),
        ..LoadOptions::default()
    };
    let (program, report) = Program::load_with(&example(name), &opts).expect("loads");
    (program, report.from_cache)
}

/// The program compiled into `dir`'s cache, then loaded again with its instructions left
/// on disk; also the in-memory program of the first load.
fn streamed(name: &str, dir: &Path) -> (Program, Program) {
    let (memory, from_cache) = load(name, dir);
    assert!(!from_cache && !memory.is_streamed());
    let (program, from_cache) = load(name, dir);
    assert!(
        from_cache && program.is_streamed(),
        "the second load streams"
    );
    assert!(
        program.circuit().insts.is_empty(),
        "no instructions in memory"
    );
    assert_eq!(program.hash(), memory.hash());
    assert_eq!(program.shape(), memory.shape());
    (program, memory)
}

fn run(
    program: &Program,
    inputs: &[Vec<bool>],
    source: SourceKind,
    chunk_ands: usize,
) -> Result<Vec<Option<Vec<bool>>>, EngineError> {
    let opts = LocalOptions {
        source,
        chunk_ands,
        ..LocalOptions::default()
    };
    let shape = program.shape();
    let open = || program.open_instructions();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcomes = rt.block_on(run_local_streamed(
        &shape,
        &open,
        program.hash(),
        inputs,
        &opts,
    ))?;
    Ok(outcomes.into_iter().map(|o| o.output).collect())
}

fn parse(program: &Program, literals: &[&str]) -> Vec<Vec<bool>> {
    literals
        .iter()
        .enumerate()
        .map(|(p, l)| program.parse_input(p, l).unwrap())
        .collect()
}

const AES_KEY: &str =
    "[0u8, 1u8, 2u8, 3u8, 4u8, 5u8, 6u8, 7u8, 8u8, 9u8, 10u8, 11u8, 12u8, 13u8, 14u8, 15u8]";
const AES_PT: &str = "[0u8, 17u8, 34u8, 51u8, 68u8, 85u8, 102u8, 119u8, 136u8, 153u8, 170u8, 187u8, 204u8, 221u8, 238u8, 255u8]";

#[test]
fn a_streamed_program_matches_plaintext_evaluation_over_many_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let (program, memory) = streamed("aes128.garble.rs", dir.path());
    let inputs = parse(&program, &[AES_KEY, AES_PT]);
    let expected = memory.eval_plain(&inputs);
    // AES-128 has about 6,800 AND gates: over a hundred chunks of 64, more than one block
    // of the file.
    for source in [SourceKind::Ot, SourceKind::Dealer] {
        let outputs = run(&program, &inputs, source, 64).unwrap();
        for (p, out) in outputs.iter().enumerate() {
            assert_eq!(out.as_ref(), Some(&expected), "party {p}, {source:?}");
        }
    }
    let out = program.format_output(&expected).unwrap().to_string();
    assert_eq!(
        out, "[105, 196, 224, 216, 106, 123, 4, 48, 216, 205, 183, 128, 112, 180, 197, 90]",
        "FIPS 197 appendix C.1"
    );

    // Three parties, one AND gate per chunk.
    let (add, memory) = streamed("add.garble.rs", dir.path());
    let inputs = parse(&add, &["100u32", "20u32", "3u32"]);
    let expected = memory.eval_plain(&inputs);
    let outputs = run(&add, &inputs, SourceKind::Ot, 1).unwrap();
    for out in outputs {
        assert_eq!(out.as_ref(), Some(&expected));
    }
    assert_eq!(add.format_output(&expected).unwrap().to_string(), "123");
}

fn cache_file(dir: &Path) -> PathBuf {
    let files: Vec<PathBuf> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "bin"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

fn instruction_error(e: EngineError) -> String {
    assert!(matches!(e, EngineError::Instructions(_)), "{e:?}");
    e.to_string()
}

#[test]
fn a_damaged_cache_file_stops_the_run_and_says_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let (program, _) = streamed("aes128.garble.rs", dir.path());
    let inputs = parse(&program, &[AES_KEY, AES_PT]);
    let file = cache_file(dir.path());
    let good = fs::read(&file).unwrap();

    // One flipped byte near the end: inside the instructions, after the head.
    let mut bad = good.clone();
    let at = bad.len() - 100;
    bad[at] ^= 0x40;
    fs::write(&file, &bad).unwrap();
    let e = instruction_error(run(&program, &inputs, SourceKind::Dealer, 256).unwrap_err());
    assert!(e.contains(&file.display().to_string()), "{e}");
    assert!(
        e.contains("is corrupt") && e.contains("fails its checksum"),
        "{e}"
    );
    assert!(e.contains("delete the file"), "{e}");

    // Cut off in the middle of the instructions.
    fs::write(&file, &good[..good.len() / 2]).unwrap();
    let e = instruction_error(run(&program, &inputs, SourceKind::Dealer, 256).unwrap_err());
    assert!(
        e.contains("is truncated") && e.contains("delete the file"),
        "{e}"
    );

    // Gone.
    fs::remove_file(&file).unwrap();
    let e = instruction_error(run(&program, &inputs, SourceKind::Dealer, 256).unwrap_err());
    assert!(e.contains("cannot read the compiled circuit"), "{e}");
}

#[test]
fn a_truncated_cache_file_found_at_load_is_compiled_again() {
    let dir = tempfile::tempdir().unwrap();
    let (_, memory) = streamed("add.garble.rs", dir.path());
    let file = cache_file(dir.path());
    let good = fs::read(&file).unwrap();
    fs::write(&file, &good[..good.len() - 10]).unwrap();
    let (again, from_cache) = load("add.garble.rs", dir.path());
    assert!(
        !from_cache && !again.is_streamed(),
        "refused and recompiled"
    );
    assert_eq!(again.circuit(), memory.circuit());
    assert_eq!(fs::read(&file).unwrap(), good, "the entry is written again");
    let (streamed, from_cache) = load("add.garble.rs", dir.path());
    assert!(from_cache && streamed.is_streamed());
}
