//! Tests of `mpc::program`: the example programs, input parsing, output and panic
//! formatting (compared with what `garble run` prints), the program hash and the compile
//! cache. The circuits themselves (AES-128 and SHA-256 against the FIPS known answers,
//! Bristol circuits exported and read back) are tested in `program_circuits.rs`.

use crate::common;

use std::{fs, path::PathBuf, time::Instant};

use common::programs::{example, exported, garble_run, load, run};
use mpc::program::{GARBLE_LANG_VERSION, Outcome, Program, ProgramError, ProgramKind};

struct Case {
    file: &'static str,
    inputs: &'static [&'static str],
    expected: &'static str,
}

const CASES: &[Case] = &[
    Case {
        file: "add.garble.rs",
        inputs: &["1u32", "2u32", "3u32"],
        expected: "6",
    },
    Case {
        file: "millionaires.garble.rs",
        inputs: &["5000000u64", "7000000u64"],
        expected: "Richer::Party1",
    },
    Case {
        file: "millionaires.garble.rs",
        inputs: &["7u64", "7u64"],
        expected: "Richer::Tie",
    },
    Case {
        file: "auction.garble.rs",
        inputs: &["100u32", "250u32", "180u32", "90u32"],
        expected: "Sale {price: 180, winner: 1}",
    },
    Case {
        file: "auction.garble.rs",
        inputs: &["5u32", "5u32", "5u32", "5u32"],
        expected: "Sale {price: 5, winner: 0}",
    },
    Case {
        file: "join.garble.rs",
        inputs: &[
            "[1u32, 2u32, 3u32, 4u32, 5u32, 6u32, 7u32, 8u32]",
            "[2u32, 4u32, 6u32, 8u32, 10u32, 12u32, 14u32, 16u32]",
        ],
        expected: "4",
    },
    Case {
        file: "stats.garble.rs",
        inputs: &["4000u32", "5500u32", "3000u32"],
        expected: "Stats {max: 5500, min: 3000, sum: 12500}",
    },
    Case {
        file: "overflow.garble.rs",
        inputs: &["100u8", "55u8"],
        expected: "155",
    },
];

#[test]
fn example_programs_compute_expected_outputs() {
    for case in CASES {
        let program = load(&example(case.file));
        assert_eq!(program.kind(), ProgramKind::Garble);
        assert_eq!(program.parties(), case.inputs.len(), "{}", case.file);
        let outcome = run(&program, case.inputs);
        assert_eq!(
            outcome,
            Outcome::Value(case.expected.to_string()),
            "{}",
            case.file
        );
    }
}

#[test]
fn outputs_match_garble_run() {
    // auction.garble.rs takes one array whose elements are the parties' inputs, which
    // `garble run` cannot feed; every other example is compared with garble's own output.
    for case in CASES.iter().filter(|c| c.file != "auction.garble.rs") {
        let source = fs::read_to_string(example(case.file)).expect("example exists");
        let expected = garble_run(&source, case.inputs).expect("garble run succeeds");
        let program = load(&example(case.file));
        assert_eq!(run(&program, case.inputs), Outcome::Value(expected));
    }
}

#[test]
fn panic_is_formatted_like_garble_run() {
    let path = example("overflow.garble.rs");
    let program = load(&path);
    let outcome = run(&program, &["200u8", "100u8"]);
    let expected = "Panic due to Overflow on line 11:5.\n\
                    \n       | \n       | pub fn main(x: u8, y: u8) -> u8 {\n  11 > |     x + y\n     > |     ^^^^^\n       | }\n";
    assert_eq!(outcome, Outcome::Panic(expected.to_string()));

    let source = fs::read_to_string(&path).expect("example exists");
    let from_garble = garble_run(&source, &["200u8", "100u8"]).expect_err("garble panics");
    assert_eq!(outcome, Outcome::Panic(from_garble));
}

#[test]
fn corrupt_output_bits_are_errors_not_crashes() {
    let program = load(&example("millionaires.garble.rs"));
    let n = program.circuit().output_regs.len();
    assert!(matches!(
        program.format_output(&vec![false; n - 1]),
        Err(ProgramError::OutputLength { .. })
    ));
    // All zeros: panic reason 0 does not exist.
    assert!(matches!(
        program.format_output(&vec![false; n]),
        Err(ProgramError::BadOutput { .. })
    ));
    // All ones: a panic at a location far outside the source.
    assert!(matches!(
        program.format_output(&vec![true; n]),
        Err(ProgramError::BadOutput { .. })
    ));
    // No panic, reason "overflow", enum tag 3 (there are only three variants).
    let mut bits = vec![false; n];
    bits[32] = true;
    bits[n - 2] = true;
    bits[n - 1] = true;
    assert!(program.format_output(&bits).is_err());
}

#[test]
fn bad_literal_names_parameter_and_type() {
    let program = load(&example("add.garble.rs"));
    for bad in ["2u8", "abc", "", "(1u32, 2u32)", "-1"] {
        let err = program.parse_input(1, bad).expect_err(bad);
        let msg = err.to_string();
        assert!(
            matches!(err, ProgramError::BadInput { party: 1, .. }),
            "{msg}"
        );
        assert!(msg.contains("`y: u32`"), "{msg}");
        assert!(!msg.contains('\n'), "one line: {msg}");
    }
    let msg = program.parse_input(1, "2u8").unwrap_err().to_string();
    assert!(msg.contains("Expected type u32, but found u8"), "{msg}");

    let err = program.parse_input(3, "1u32").unwrap_err();
    assert!(matches!(
        err,
        ProgramError::NoSuchParty {
            party: 3,
            parties: 3,
            ..
        }
    ));

    // When `main` takes one array, each element is one party's parameter.
    let auction = load(&example("auction.garble.rs"));
    assert_eq!(auction.parties(), 4);
    assert_eq!(
        auction.parse_input(3, "7u32").map(|b| b.len()).ok(),
        Some(32)
    );
    let msg = auction.parse_input(2, "true").unwrap_err().to_string();
    assert!(msg.contains("`bids[2]: u32`"), "{msg}");
}

#[test]
fn literals_of_compound_types_parse() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("compound.garble.rs");
    let source = "enum Op {\n    Zero,\n    Div(u8, u8),\n}\n\nconst N: usize = 3usize;\n\n\
                  pub fn main(op: Op, pair: (u8, bool), xs: [u8; N]) -> u8 {\n    \
                  let (a, flag) = pair;\n    let mut s = a;\n    for x in xs {\n        s = s + x;\n    }\n    \
                  match op {\n        Op::Zero => 0u8,\n        Op::Div(x, y) => if flag { x / y + s } else { s },\n    }\n}\n";
    fs::write(&path, source).expect("write program");
    let program = load(&path);
    // `garble run` cannot parse a literal for `[u8; N]`; it runs the same code with `[u8; 3]`
    // (same lines and columns, so the same panic locations).
    let literal_size = source.replace("[u8; N]", "[u8; 3]");
    let inputs = ["Op::Div(8u8, 2u8)", "(1u8, true)", "[1u8, 2u8, 3u8]"];
    assert_eq!(run(&program, &inputs), Outcome::Value("11".into()));
    assert_eq!(
        run(&program, &inputs),
        Outcome::Value(garble_run(&literal_size, &inputs).expect("garble runs"))
    );
    let summary = program.summary();
    assert_eq!(summary.parties[1].ty, "(u8, bool)");
    assert_eq!(summary.parties[2].bits, 24);
    // Division by zero panics, formatted like garble run.
    let inputs = ["Op::Div(8u8, 0u8)", "(1u8, true)", "[1u8, 2u8, 3u8]"];
    let Outcome::Panic(text) = run(&program, &inputs) else {
        panic!("expected a panic");
    };
    assert!(
        text.starts_with("Panic due to Division By Zero on line 16:"),
        "{text}"
    );
    assert_eq!(Err(text), garble_run(&literal_size, &inputs));
}

#[test]
fn compile_error_is_pretty() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("bad.garble.rs");
    fs::write(
        &path,
        "pub fn main(x: u32, y: u32) -> u32 {\n    x + true\n}\n",
    )
    .expect("write");
    let err = Program::load_with_cache(&path, Some(dir.path())).expect_err("type error");
    let ProgramError::Compile { pretty, .. } = &err else {
        panic!("expected a compile error, got {err}");
    };
    assert!(pretty.contains("Type error on line 2:5."), "{pretty}");
    assert!(pretty.contains("   2 > |     x + true"), "{pretty}");
    let msg = err.to_string();
    assert!(msg.contains("bad.garble.rs"), "{msg}");

    let missing = dir.path().join("missing.garble.rs");
    let err = Program::load(&missing).expect_err("missing file");
    assert!(matches!(err, ProgramError::Read { .. }));
    assert!(err.to_string().contains("missing.garble.rs"));
}

#[test]
fn hash_identifies_the_program() {
    let add = load(&example("add.garble.rs"));
    let again = load(&example("add.garble.rs"));
    assert_eq!(add.hash(), again.hash());
    assert_ne!(add.hash(), load(&example("overflow.garble.rs")).hash());
    let dir = tempfile::tempdir().expect("temp dir");
    let aes = exported("aes128.garble.rs", dir.path(), "aes_128.txt");
    assert_ne!(add.hash(), load(&aes).hash());

    // Garble bakes panic locations (line and column) into the circuit, so the same code on
    // the same lines gives the same hash ...
    let same = dir.path().join("same.garble.rs");
    fs::write(
        &same,
        fs::read_to_string(example("add.garble.rs"))
            .expect("read")
            .replace("// ", "//   "),
    )
    .expect("write");
    assert_eq!(add.hash(), load(&same).hash());
    // ... but the signature does: same circuit, different parameter names.
    let renamed = dir.path().join("renamed.garble.rs");
    fs::write(
        &renamed,
        fs::read_to_string(example("add.garble.rs"))
            .expect("read")
            .replace("x: u32, y: u32, z: u32", "a: u32, b: u32, c: u32")
            .replace("x + y + z", "a + b + c"),
    )
    .expect("write");
    let renamed = load(&renamed);
    assert_eq!(add.circuit(), renamed.circuit());
    assert_ne!(add.hash(), renamed.hash());
}

#[test]
fn cache_hit_gives_identical_program() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cache = dir.path().join("cache");
    for path in [
        example("auction.garble.rs"),
        example("overflow.garble.rs"),
        exported("aes128.garble.rs", dir.path(), "aes_128.txt"),
    ] {
        let (first, report) =
            Program::load_with_cache(&path, Some(&cache)).expect("first load compiles");
        assert!(!report.from_cache);
        let cache_file = report.cache_file.expect("a cache file");
        assert!(cache_file.exists());
        let (second, report) = Program::load_with_cache(&path, Some(&cache)).expect("second load");
        assert!(report.from_cache, "{}", path.display());
        assert_eq!(first.hash(), second.hash());
        assert_eq!(first.circuit(), second.circuit());
        assert_eq!(first.summary().parties, second.summary().parties);
    }
    // Formatting from a cached program works, panics included.
    let (overflow, report) =
        Program::load_with_cache(&example("overflow.garble.rs"), Some(&cache)).expect("load");
    assert!(report.from_cache);
    let Outcome::Panic(text) = run(&overflow, &["255u8", "1u8"]) else {
        panic!("expected a panic");
    };
    assert!(text.starts_with("Panic due to Overflow on line 11:5."));
    // No temporary files are left behind.
    for entry in fs::read_dir(&cache).expect("cache dir") {
        let name = entry.expect("entry").file_name();
        assert!(name.to_string_lossy().ends_with(".bin"), "{name:?}");
    }
}

#[test]
fn corrupt_cache_entry_is_ignored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = example("stats.garble.rs");
    let (original, report) = Program::load_with_cache(&path, Some(dir.path())).expect("load");
    let cache_file = report.cache_file.expect("cache file");
    let bytes = fs::read(&cache_file).expect("read cache");

    let mut flipped = bytes.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x40;
    let corruptions: Vec<Vec<u8>> = vec![
        flipped,
        bytes[..bytes.len() / 2].to_vec(),
        Vec::new(),
        b"not a cache file at all".to_vec(),
    ];
    for corrupt in corruptions {
        fs::write(&cache_file, &corrupt).expect("corrupt the cache");
        let (program, report) =
            Program::load_with_cache(&path, Some(dir.path())).expect("recompiles");
        assert!(!report.from_cache);
        assert_eq!(program.hash(), original.hash());
        // The entry was rewritten and is good again.
        let (_, report) = Program::load_with_cache(&path, Some(dir.path())).expect("load");
        assert!(report.from_cache);
    }

    // An unwritable cache location is not an error either.
    let blocker = dir.path().join("file");
    fs::write(&blocker, b"x").expect("write");
    let (_, report) = Program::load_with_cache(&path, Some(&blocker.join("sub"))).expect("load");
    assert!(!report.from_cache);
}

#[test]
fn garble_lang_version_matches_cargo_lock() {
    let lock = fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("Cargo.lock"))
        .expect("Cargo.lock");
    let entry = format!("name = \"garble_lang\"\nversion = \"{GARBLE_LANG_VERSION}\"");
    assert!(
        lock.contains(&entry),
        "update GARBLE_LANG_VERSION in src/program.rs to the garble_lang version in Cargo.lock"
    );
}

/// Compiles big.garble.rs, then loads it from the cache, printing both times (never asserted:
/// timings depend on the machine).
#[test]
fn big_program_compile_vs_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = example("big.garble.rs");
    let started = Instant::now();
    let (compiled, report) = Program::load_with_cache(&path, Some(dir.path())).expect("compiles");
    assert!(!report.from_cache);
    let compile_time = started.elapsed();
    let (cached, report) = Program::load_with_cache(&path, Some(dir.path())).expect("cached");
    assert!(report.from_cache);
    assert_eq!(compiled.hash(), cached.hash());
    let summary = cached.summary();
    let cache_size = report
        .cache_file
        .and_then(|f| fs::metadata(f).ok())
        .map_or(0, |m| m.len());
    println!(
        "big.garble.rs: {} AND, {} XOR, {} NOT, {} registers; compile {:.2?}, cache hit {:.2?} ({} bytes)",
        summary.and_gates,
        summary.xor_gates,
        summary.not_gates,
        summary.max_registers,
        compile_time,
        report.elapsed,
        cache_size
    );
    assert_eq!(summary.and_gates, 1_074_784);
    let expected = format!("[{}]", vec!["480"; 32].join(", "));
    assert_eq!(
        run(&cached, &["[[3u16; 32]; 32]", "[5u16; 32]"]),
        Outcome::Value(expected)
    );
}

/// Prints the gate counts of every example (for the README and benchmarks).
#[test]
fn example_gate_counts() {
    let names = [
        "add.garble.rs",
        "aes128.garble.rs",
        "auction.garble.rs",
        "join.garble.rs",
        "millionaires.garble.rs",
        "overflow.garble.rs",
        "sha256.garble.rs",
        "stats.garble.rs",
    ];
    for name in names {
        let s = load(&example(name)).summary();
        println!(
            "{name}: {} parties, {} AND, {} XOR, {} NOT, {} registers",
            s.parties.len(),
            s.and_gates,
            s.xor_gates,
            s.not_gates,
            s.max_registers
        );
    }
}
#[test]
fn odd_literals_are_errors_not_crashes() {
    let join = load(&example("join.garble.rs"));
    assert_eq!(
        join.parse_input(0, "[0u32; 8]").map(|b| b.len()).ok(),
        Some(256)
    );
    assert_eq!(
        join.parse_input(1, "0u32..8u32").map(|b| b.len()).ok(),
        Some(256)
    );
    let deep = format!("{}1u32{}", "[".repeat(100_000), "]".repeat(100_000));
    let huge = "1".repeat(1 << 20);
    for bad in [
        "[0u32; 99999999999]",
        "0u32..99999999999u32",
        "[1u32, 2u32]",
        "300u8",
        "Richer::Party0",
        "[",
        "\u{0}",
        deep.as_str(),
        huge.as_str(),
    ] {
        let err = join.parse_input(0, bad).expect_err("rejected");
        let msg = err.to_string();
        assert!(msg.contains("`ids0: [u32; 8]`"), "{msg}");
        assert!(msg.len() < 1000, "the message stays short: {}", msg.len());
    }
    let millionaires = load(&example("millionaires.garble.rs"));
    assert!(millionaires.parse_input(0, "18446744073709551616").is_err());
    assert!(millionaires.parse_input(0, "18446744073709551615").is_ok());
}

#[test]
fn program_is_shareable_between_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Program>();
}
