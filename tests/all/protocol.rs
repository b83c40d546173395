//! The protocol against garble_lang's plaintext evaluation, on random circuits mixing
//! XOR, AND and NOT, for 2, 3 and 4 parties, with the dealer, over the memory channel; and on
//! the example programs, AES-128 and SHA-256 (Garble and exported Bristol) with the dealer
//! and with the parties' own OT preprocessing.

use mpc::engine::preprocess::SourceKind;
use mpc::local::{LocalOptions, run_local};
use mpc::program::random::{circuit_from_seed, inputs_from_seed};
use proptest::prelude::*;

fn check_random(seed: u64, n: usize, ops: usize, chunk: usize) {
    let circuit = circuit_from_seed(seed, n, ops);
    let inputs = inputs_from_seed(&circuit, seed);
    let expected = circuit.eval(&inputs);
    let opts = LocalOptions {
        evaluator: (seed as usize) % n,
        chunk_ands: chunk,
        ..LocalOptions::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcomes = rt
        .block_on(run_local(&circuit, [seed as u8; 32], &inputs, &opts))
        .unwrap_or_else(|e| panic!("seed {seed}, n {n}: {e}"));
    for (p, o) in outcomes.iter().enumerate() {
        assert_eq!(
            o.output.as_ref(),
            Some(&expected),
            "party {p} of {n}, seed {seed}"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn two_parties(seed in any::<u64>(), ops in 1usize..120, chunk in 1usize..40) {
        check_random(seed, 2, ops, chunk);
    }

    #[test]
    fn three_parties(seed in any::<u64>(), ops in 1usize..120, chunk in 1usize..40) {
        check_random(seed, 3, ops, chunk);
    }

    #[test]
    fn four_parties(seed in any::<u64>(), ops in 1usize..120, chunk in 1usize..40) {
        check_random(seed, 4, ops, chunk);
    }
}

#[test]
fn larger_circuit_spanning_many_chunks() {
    check_random(7, 3, 5000, 256);
}

#[test]
fn five_parties() {
    check_random(11, 5, 300, 50);
}

/// Not a test: a quick throughput probe (`cargo test --release --test all protocol::probe -- --ignored --nocapture`).
#[test]
#[ignore]
fn probe_throughput() {
    for n in [2, 3] {
        let circuit = circuit_from_seed(1, n, 2_000_000);
        let inputs: Vec<Vec<bool>> = circuit.input_regs.iter().map(|&c| vec![true; c]).collect();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let t = std::time::Instant::now();
        rt.block_on(run_local(
            &circuit,
            [0; 32],
            &inputs,
            &LocalOptions::default(),
        ))
        .unwrap();
        let secs = t.elapsed().as_secs_f64();
        println!(
            "n={n}: {} ANDs in {secs:.2} s = {:.0} AND/s",
            circuit.and_ops,
            circuit.and_ops as f64 / secs
        );
    }
}

fn program(path: &str) -> mpc::program::Program {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    mpc::program::Program::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Runs `program` with `literals` through the protocol (dealer, memory channel), checks
/// every party against the plaintext evaluation, and returns the formatted output.
fn mpc_vs_plain(program: &mpc::program::Program, literals: &[&str], evaluator: usize) -> String {
    mpc_vs_plain_with(program, literals, evaluator, SourceKind::Dealer)
}

/// Like [`mpc_vs_plain`], with the correlated randomness from `source`.
fn mpc_vs_plain_with(
    program: &mpc::program::Program,
    literals: &[&str],
    evaluator: usize,
    source: SourceKind,
) -> String {
    let inputs: Vec<Vec<bool>> = literals
        .iter()
        .enumerate()
        .map(|(p, l)| program.parse_input(p, l).unwrap())
        .collect();
    let expected = program.eval_plain(&inputs);
    let opts = LocalOptions {
        source,
        evaluator,
        chunk_ands: 1000,
        ..LocalOptions::default()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let outcomes = rt
        .block_on(run_local(program.circuit(), program.hash(), &inputs, &opts))
        .unwrap();
    for o in &outcomes {
        assert_eq!(o.output.as_ref(), Some(&expected));
    }
    program
        .format_output(
            outcomes[0]
                .output
                .as_deref()
                .expect("party 0 learns the output"),
        )
        .unwrap()
        .to_string()
}

#[test]
fn example_programs_match_plaintext() {
    let add = program("programs/add.garble.rs");
    assert_eq!(mpc_vs_plain(&add, &["1u32", "2u32", "3u32"], 0), "6");
    assert_eq!(mpc_vs_plain(&add, &["100u32", "20u32", "3u32"], 2), "123");
    let mill = program("programs/millionaires.garble.rs");
    assert_eq!(
        mpc_vs_plain(&mill, &["10u64", "20u64"], 1),
        "Richer::Party1"
    );
    assert_eq!(
        mpc_vs_plain(&mill, &["20u64", "10u64"], 0),
        "Richer::Party0"
    );
    assert_eq!(mpc_vs_plain(&mill, &["7u64", "7u64"], 0), "Richer::Tie");
    let stats = program("programs/stats.garble.rs");
    assert_eq!(
        mpc_vs_plain(&stats, &["4000u32", "5500u32", "3000u32"], 2),
        "Stats {max: 5500, min: 3000, sum: 12500}"
    );
    let auction = program("programs/auction.garble.rs");
    assert_eq!(
        mpc_vs_plain(&auction, &["100u32", "250u32", "180u32", "90u32"], 3),
        "Sale {price: 180, winner: 1}"
    );
    let join = program("programs/join.garble.rs");
    assert_eq!(
        mpc_vs_plain(
            &join,
            &[
                "[1u32, 2u32, 3u32, 4u32, 5u32, 6u32, 7u32, 8u32]",
                "[2u32, 4u32, 6u32, 8u32, 10u32, 12u32, 14u32, 16u32]"
            ],
            0
        ),
        "4"
    );
}

#[test]
fn overflow_panic_reaches_every_party() {
    let p = program("programs/overflow.garble.rs");
    let out = mpc_vs_plain(&p, &["200u8", "100u8"], 0);
    assert!(out.starts_with("Panic due to Overflow on line"), "{out}");
}

/// The Bristol Fashion circuit exported from example program `name` (`mpc check
/// --bristol-out`), read back from a file in `dir`.
fn exported(name: &str, dir: &std::path::Path) -> mpc::program::Program {
    let bristol = program(&format!("programs/{name}"))
        .to_bristol()
        .unwrap_or_else(|e| panic!("{e}"));
    let path = dir.join(name.replace(".garble.rs", ".txt"));
    std::fs::write(&path, bristol.text).expect("write the exported circuit");
    mpc::program::Program::load_uncached(&path)
        .unwrap_or_else(|e| panic!("{e}"))
        .0
}

/// The decimal bytes of a hex string as a Garble `[u8; N]` literal.
fn bytes_literal(hex: &str) -> String {
    let bytes: Vec<String> = (0..hex.len())
        .step_by(2)
        .map(|i| format!("{}u8", u8::from_str_radix(&hex[i..i + 2], 16).unwrap()))
        .collect();
    format!("[{}]", bytes.join(", "))
}

const AES_KEY: &str = "000102030405060708090a0b0c0d0e0f";
const AES_PLAINTEXT: &str = "00112233445566778899aabbccddeeff";
const AES_CIPHERTEXT: &str = "69c4e0d86a7b0430d8cdb78070b4c55a";

#[test]
fn aes_128_through_the_protocol_matches_fips_197() {
    // FIPS 197 appendix C.1, with the dealer and with OT preprocessing, evaluated by either
    // party.
    let aes = program("programs/aes128.garble.rs");
    let expected = format!(
        "{:?}",
        (0..16)
            .map(|i| u8::from_str_radix(&AES_CIPHERTEXT[2 * i..2 * i + 2], 16).unwrap())
            .collect::<Vec<_>>()
    );
    let (key, plaintext) = (bytes_literal(AES_KEY), bytes_literal(AES_PLAINTEXT));
    for (evaluator, source) in [(0, SourceKind::Dealer), (1, SourceKind::Ot)] {
        let out = mpc_vs_plain_with(&aes, &[&key, &plaintext], evaluator, source);
        assert_eq!(out, expected, "{source:?}");
    }
}

#[test]
fn exported_aes_128_through_the_protocol_matches_fips_197() {
    let dir = tempfile::tempdir().expect("temp dir");
    let aes = exported("aes128.garble.rs", dir.path());
    for (evaluator, source) in [
        (0, SourceKind::Dealer),
        (1, SourceKind::Dealer),
        (0, SourceKind::Ot),
    ] {
        let out = mpc_vs_plain_with(&aes, &[AES_KEY, AES_PLAINTEXT], evaluator, source);
        assert_eq!(out, AES_CIPHERTEXT, "{source:?}");
    }
}

#[test]
fn sha256_through_the_protocol() {
    // The FIPS 180-4 example "abc": the Garble program with OT preprocessing, the exported
    // circuit with the dealer.
    let sha = program("programs/sha256.garble.rs");
    let block = format!("[1633837952u32, {}24u32]", "0u32, ".repeat(14));
    let iv = "[1779033703u32, 3144134277u32, 1013904242u32, 2773480762u32, 1359893119u32, \
              2600822924u32, 528734635u32, 1541459225u32]";
    assert_eq!(
        mpc_vs_plain_with(&sha, &[&block, iv], 1, SourceKind::Ot),
        "[3128432319, 2399260650, 1094795486, 1571693091, 2953011619, 2518121116, 3021012833, \
         4060091821]"
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let sha = exported("sha256.garble.rs", dir.path());
    let iv = "6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19";
    let empty = format!("80{}", "0".repeat(126));
    assert_eq!(
        mpc_vs_plain(&sha, &[&empty, iv], 0),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
}
