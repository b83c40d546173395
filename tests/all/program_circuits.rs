//! Tests of the circuits `mpc::program` compiles and reads: AES-128 and SHA-256 written in
//! Garble against the FIPS known answers, and Bristol Fashion circuits exported by the crate
//! itself (`mpc check --bristol-out`) and read back.

use crate::common;

use std::fs;

use common::programs::{example, exported, garble_run, load, run};
use garble_lang::{check, circuit_type::CircuitType, eval::Evaluator, literal::Literal};
use mpc::program::{Outcome, Program, ProgramError, ProgramKind};

/// Hex to bytes (test vectors only).
fn unhex(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A Garble array literal of `values` with the type suffix `suffix`: `[1u8, 2u8]`.
fn array_literal(values: impl IntoIterator<Item = impl std::fmt::Display>, suffix: &str) -> String {
    let items: Vec<String> = values.into_iter().map(|v| format!("{v}{suffix}")).collect();
    format!("[{}]", items.join(", "))
}

/// The numbers of a printed Garble array such as `[1, 2, 3]`.
fn printed_numbers(outcome: &Outcome) -> Vec<u64> {
    let Outcome::Value(text) = outcome else {
        panic!("expected a value, got {outcome}");
    };
    text.trim_matches(|c| c == '[' || c == ']')
        .split(", ")
        .map(|n| n.parse().expect("a number"))
        .collect()
}

/// The FIPS 197 S-box computed from its definition (5.1.1): the inverse in GF(2^8) modulo
/// x^8 + x^4 + x^3 + x + 1 (0 maps to 0), then the affine transformation with 0x63.
fn fips_197_sbox(x: u8) -> u8 {
    let mul = |mut a: u8, mut b: u8| {
        let mut product = 0u8;
        while b != 0 {
            if b & 1 == 1 {
                product ^= a;
            }
            a = (a << 1) ^ if a & 0x80 != 0 { 0x1b } else { 0 };
            b >>= 1;
        }
        product
    };
    let inverse = (1..=255u8).find(|&y| mul(x, y) == 1).unwrap_or(0);
    inverse
        ^ inverse.rotate_left(1)
        ^ inverse.rotate_left(2)
        ^ inverse.rotate_left(3)
        ^ inverse.rotate_left(4)
        ^ 0x63
}

/// FIPS 197 known answers: (key, plaintext, ciphertext) of appendices B and C.1.
const AES_128_VECTORS: [(&str, &str, &str); 2] = [
    (
        "000102030405060708090a0b0c0d0e0f",
        "00112233445566778899aabbccddeeff",
        "69c4e0d86a7b0430d8cdb78070b4c55a",
    ),
    (
        "2b7e151628aed2a6abf7158809cf4f3c",
        "3243f6a8885a308d313198a2e0370734",
        "3925841d02dc09fbdc118597196a0b32",
    ),
];

/// The SHA-256 initial hash value (FIPS 180-4, 5.3.3).
const SHA_256_IV: &str = "6a09e667bb67ae853c6ef372a54ff53a510e527f9b05688c1f83d9ab5be0cd19";

/// The 32-bit big-endian words of a hex string, as a Garble `[u32; N]` literal.
fn words_literal(hex: &str) -> String {
    let bytes = unhex(hex);
    array_literal(
        bytes
            .chunks(4)
            .map(|w| u32::from_be_bytes([w[0], w[1], w[2], w[3]])),
        "u32",
    )
}

/// A printed `[u32; 8]` as big-endian hex.
fn words_hex(outcome: &Outcome) -> String {
    printed_numbers(outcome)
        .into_iter()
        .map(|w| format!("{w:08x}"))
        .collect()
}

/// The message padded to whole 64-byte blocks (FIPS 180-4, 5.1.1), as hex per block.
fn sha256_padded_blocks(message: &[u8]) -> Vec<String> {
    let mut padded = message.to_vec();
    padded.push(0x80);
    while padded.len() % 64 != 56 {
        padded.push(0);
    }
    padded.extend_from_slice(&((message.len() as u64) * 8).to_be_bytes());
    padded.chunks(64).map(hex::encode).collect()
}

#[test]
fn aes128_garble_fips_197_known_answers() {
    let path = example("aes128.garble.rs");
    let program = load(&path);
    assert_eq!(program.kind(), ProgramKind::Garble);
    let summary = program.summary();
    assert_eq!(summary.parties[0].ty, "[u8; 16]");
    assert_eq!(summary.parties[1].name, "plaintext");
    // 200 S-boxes (160 in the rounds, 40 in the key schedule) of 34 AND gates; the rest of
    // AES is linear.
    assert_eq!(summary.and_gates, 200 * 34);
    let source = fs::read_to_string(&path).expect("read");
    for (key, plaintext, ciphertext) in AES_128_VECTORS {
        let inputs = [
            array_literal(unhex(key), "u8"),
            array_literal(unhex(plaintext), "u8"),
        ];
        let inputs = [inputs[0].as_str(), inputs[1].as_str()];
        let expected = format!("{:?}", unhex(ciphertext));
        assert_eq!(run(&program, &inputs), Outcome::Value(expected.clone()));
        assert_eq!(garble_run(&source, &inputs), Ok(expected));
    }
    // The example line of the program's comment: the key as a range literal.
    let plaintext = array_literal(unhex(AES_128_VECTORS[0].1), "u8");
    assert_eq!(
        run(&program, &["0u8..16u8", &plaintext]),
        Outcome::Value(format!("{:?}", unhex(AES_128_VECTORS[0].2)))
    );
}

#[test]
fn aes128_garble_sbox_is_fips_197_for_every_byte() {
    assert_eq!((fips_197_sbox(0x00), fips_197_sbox(0x53)), (0x63, 0xed));
    // The program's own `sbox`, applied to all 256 bytes through a second entry point (two
    // parameters: garble gives each element of a single array parameter to its own party).
    let source = fs::read_to_string(example("aes128.garble.rs")).expect("read")
        + "\npub fn every_byte(low: [u8; 128], high: [u8; 128]) -> [u8; 256] {\n    \
           let mut out = [0u8; 256];\n    for i in 0usize..128usize {\n        \
           out[i] = sbox(low[i]);\n        out[i + 128usize] = sbox(high[i]);\n    }\n    \
           out\n}\n";
    let program = check(&source).unwrap_or_else(|e| panic!("{}", e.prettify(&source)));
    let (circuit, entry) = program
        .compile("every_byte")
        .unwrap_or_else(|e| panic!("{e:?}"));
    let circuit = CircuitType::Register(circuit.into());
    let const_sizes = Default::default();
    let mut evaluator = Evaluator::new(&program, entry, &circuit, &const_sizes);
    let params = evaluator.main_fn.params.clone();
    for (param, half) in params.iter().zip([0..=127u8, 128..=255u8]) {
        let literal =
            Literal::parse(&program, &param.ty, &array_literal(half, "u8")).expect("literal");
        evaluator.set_literal(literal).expect("input");
    }
    let output = evaluator
        .run()
        .expect("runs")
        .into_literal()
        .expect("value");
    let expected = format!("{:?}", (0..=255u8).map(fips_197_sbox).collect::<Vec<_>>());
    assert_eq!(output.to_string(), expected);
}

#[test]
fn sha256_garble_fips_180_4_known_answers() {
    let path = example("sha256.garble.rs");
    let program = load(&path);
    let summary = program.summary();
    assert_eq!(summary.parties[0].ty, "[u32; 16]");
    assert_eq!(summary.parties[1].ty, "[u32; 8]");
    // 64 rounds of 7 additions, Ch and Maj; 48 schedule words of 3 additions; 8 final
    // additions. An addition costs at most 31 AND gates (fewer where the low bits of a round
    // constant fold away), Ch and Maj 32 each: at most 22,696.
    assert_eq!(summary.and_gates, 22_573);
    let source = fs::read_to_string(&path).expect("read");
    // FIPS 180-4 examples (one block and two blocks) and the empty message.
    let abcdbcde = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    for (message, digest) in [
        (
            "abc",
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
        ),
        (
            abcdbcde,
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
        ),
        (
            "",
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        ),
    ] {
        let mut chaining = SHA_256_IV.to_string();
        for block in sha256_padded_blocks(message.as_bytes()) {
            let inputs = [words_literal(&block), words_literal(&chaining)];
            let inputs = [inputs[0].as_str(), inputs[1].as_str()];
            let outcome = run(&program, &inputs);
            assert_eq!(garble_run(&source, &inputs), Ok(outcome.to_string()));
            chaining = words_hex(&outcome);
        }
        assert_eq!(chaining, digest, "SHA-256({message:?})");
    }
    // The example line of the program's comment.
    let block = format!("[1633837952u32, {}24u32]", "0u32, ".repeat(14));
    let iv = "[1779033703u32, 3144134277u32, 1013904242u32, 2773480762u32, 1359893119u32, \
              2600822924u32, 528734635u32, 1541459225u32]";
    assert_eq!(
        run(&program, &[&block, iv]).to_string(),
        "[3128432319, 2399260650, 1094795486, 1571693091, 2953011619, 2518121116, 3021012833, \
         4060091821]"
    );
}

#[test]
fn sha256_garble_matches_sha2_on_random_messages() {
    use rand::{Rng, SeedableRng};
    use sha2::{Digest, Sha256};
    let program = load(&example("sha256.garble.rs"));
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(256);
    for len in [1, 31, 55, 56, 64, 100] {
        let message: Vec<u8> = (0..len).map(|_| rng.random()).collect();
        let mut chaining = SHA_256_IV.to_string();
        for block in sha256_padded_blocks(&message) {
            let outcome = run(
                &program,
                &[&words_literal(&block), &words_literal(&chaining)],
            );
            chaining = words_hex(&outcome);
        }
        assert_eq!(
            chaining,
            hex::encode(Sha256::digest(&message)),
            "{len} bytes"
        );
    }
}

#[test]
fn aes_128_fips_197_known_answer() {
    // The Bristol circuit that `mpc check --bristol-out` writes for aes128.garble.rs.
    let dir = tempfile::tempdir().expect("temp dir");
    let program = load(&exported("aes128.garble.rs", dir.path(), "aes_128.txt"));
    assert_eq!(program.kind(), ProgramKind::Bristol);
    assert_eq!(program.parties(), 2);
    let outcome = run(
        &program,
        &[
            "000102030405060708090a0b0c0d0e0f",
            "0x00112233445566778899aabbccddeeff",
        ],
    );
    assert_eq!(
        outcome,
        Outcome::Value("69c4e0d86a7b0430d8cdb78070b4c55a".into())
    );
    // FIPS-197 appendix B.
    let outcome = run(
        &program,
        &[
            "2b7e151628aed2a6abf7158809cf4f3c",
            "3243f6a8885a308d313198a2e0370734",
        ],
    );
    assert_eq!(
        outcome,
        Outcome::Value("3925841d02dc09fbdc118597196a0b32".into())
    );
    let summary = program.summary();
    assert_eq!(summary.and_gates, 6800);
    assert_eq!(summary.parties[0].ty, "128-bit hex");
    assert_eq!(summary.output_type, "128-bit hex");

    let err = program.parse_input(0, "0011").unwrap_err().to_string();
    assert!(err.contains("expected exactly 32 hex digits"), "{err}");
    assert!(program.parse_input(1, &"zz".repeat(16)).is_err());
}

#[test]
fn sha256_compression_known_answers() {
    // The Bristol circuit that `mpc check --bristol-out` writes for sha256.garble.rs.
    let dir = tempfile::tempdir().expect("temp dir");
    let program = load(&exported("sha256.garble.rs", dir.path(), "sha256.txt"));
    assert_eq!(program.circuit().input_regs, vec![512, 256]);
    let iv = SHA_256_IV;
    // The padded empty message.
    let empty = format!("80{}", "0".repeat(126));
    assert_eq!(
        run(&program, &[&empty, iv]),
        Outcome::Value("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855".into())
    );
    // The padded message "abc" (FIPS 180-4 example).
    let abc = format!("61626380{}18", "0".repeat(118));
    assert_eq!(
        run(&program, &[&abc, iv]),
        Outcome::Value("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into())
    );
    assert_eq!(program.summary().and_gates, 22_573);
}

#[test]
fn bristol_export_round_trips() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases: &[(&str, &[&[&str]])] = &[
        (
            "aes128.garble.rs",
            &[&["0u8..16u8", "[7u8; 16]"], &["[255u8; 16]", "0u8..16u8"]],
        ),
        (
            "sha256.garble.rs",
            &[
                &["[0u32; 16]", "[4294967295u32; 8]"],
                &["0u32..16u32", "0u32..8u32"],
            ],
        ),
        (
            "millionaires.garble.rs",
            &[
                &["5u64", "7u64"],
                &["7u64", "7u64"],
                &["18446744073709551615u64", "0u64"],
            ],
        ),
        (
            "stats.garble.rs",
            &[
                &["4000u32", "5500u32", "3000u32"],
                &["4294967295u32", "4294967295u32", "1u32"],
            ],
        ),
    ];
    for (name, inputs) in cases {
        let garble = load(&example(name));
        let bristol = garble.to_bristol().expect("exports");
        let path = dir.path().join(name.replace(".garble.rs", ".txt"));
        fs::write(&path, &bristol.text).expect("write");
        let read = load(&path);
        assert_eq!(read.kind(), ProgramKind::Bristol);
        assert_eq!(read.circuit().input_regs, garble.circuit().input_regs);
        // Constant folding and dead gates aside, the AND gates are the program's own.
        assert_eq!(
            read.summary().and_gates,
            garble.summary().and_gates,
            "{name}"
        );
        assert_eq!(bristol.and_gates, garble.summary().and_gates, "{name}");
        // Writing the circuit read back gives the same file.
        assert_eq!(read.to_bristol().expect("exports again").text, bristol.text);
        for literals in *inputs {
            let bits: Vec<Vec<bool>> = literals
                .iter()
                .enumerate()
                .map(|(p, l)| garble.parse_input(p, l).expect("input"))
                .collect();
            let out = garble.eval_plain(&bits);
            // Bristol numbers each value's bits from the least significant: reversed.
            let reversed: Vec<Vec<bool>> = bits
                .iter()
                .map(|b| b.iter().rev().copied().collect())
                .collect();
            let mut value = out[out.len() - read.circuit().output_regs.len()..].to_vec();
            value.reverse();
            assert_eq!(read.eval_plain(&reversed), value, "{name} {literals:?}");
        }
    }
}

#[test]
fn bristol_export_refuses_programs_that_can_panic() {
    for name in ["add.garble.rs", "overflow.garble.rs"] {
        let err = match load(&example(name)).to_bristol() {
            Ok(_) => panic!("{name} was exported"),
            Err(e) => e.to_string(),
        };
        assert!(err.contains("can panic") && err.contains(name), "{err}");
    }
}

#[test]
fn garble_source_in_a_txt_file_is_garble() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("prog.txt");
    fs::write(&path, "pub fn main(x: u8, y: u8) -> bool { x < y }\n").expect("write");
    let program = load(&path);
    assert_eq!(program.kind(), ProgramKind::Garble);
    assert_eq!(
        run(&program, &["1u8", "2u8"]),
        Outcome::Value("true".into())
    );

    let path = dir.path().join("broken.txt");
    fs::write(&path, "1 3\n2 1 1\n1 1\n2 1 0 1 2 NAND\n").expect("write");
    let err = Program::load_uncached(&path).expect_err("bad gate");
    assert!(
        matches!(err, ProgramError::Bristol { line: 4, .. }),
        "{err}"
    );
}

#[test]
fn bristol_eqw_eq_and_mand_gates() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("small.bristol");
    // out = [a0 & b0, a1 & b1, !a0, copy of b1, constant 1]
    let text = "6 10\n2 2 2\n1 5\n4 2 0 1 2 3 9 5 MAND\n1 1 0 6 INV\n1 1 3 7 EQW\n1 1 1 8 EQ\n\
                2 1 9 9 4 XOR\n2 1 4 4 9 XOR\n";
    // The last two gates would make wire 9 written twice: rejected.
    fs::write(&path, text).expect("write");
    assert!(Program::load_uncached(&path).is_err());

    let text = "4 10\n2 2 2\n1 5\n4 2 0 1 2 3 5 6 MAND\n1 1 0 7 INV\n1 1 3 8 EQW\n1 1 1 9 EQ\n";
    fs::write(&path, text).expect("write");
    let program = load(&path);
    // Wire j of a value is bit j of its hex number: "1" sets wire 0, "2" wire 1.
    let out = |a: &str, b: &str| run(&program, &[a, b]).to_string();
    // Outputs (wire 5..9 = bits 0..4): a0&b0, a1&b1, !a0, b1, 1.
    assert_eq!(out("3", "3"), format!("{:02x}", 0b11011));
    assert_eq!(out("0", "0"), format!("{:02x}", 0b10100));
    assert_eq!(out("1", "2"), format!("{:02x}", 0b11000));
}
