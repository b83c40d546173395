//! The dependency tree holds one generation of the RustCrypto cipher crates.
//!
//! Two generations side by side double the audited surface and the binary's cipher code;
//! `snow`'s default primitives and `aes` 0.8 used to pull in `cipher` 0.4 beside 0.5. This
//! asks cargo itself (from Cargo.lock, offline) what `mpc` is built from.

use std::process::Command;

#[test]
fn one_generation_of_cipher_crates() {
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo runs");
    assert!(
        out.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = String::from_utf8_lossy(&out.stdout);
    let versions = |name: &str| -> Vec<String> {
        let mut v: Vec<String> = tree
            .lines()
            .filter_map(|l| l.strip_prefix(&format!("{name} v")))
            .map(|rest| rest.split_whitespace().next().unwrap_or("").to_string())
            .collect();
        v.sort();
        v.dedup();
        v
    };
    for (name, expected) in [
        ("cipher", "0.5"),
        ("aes", "0.9"),
        ("chacha20", "0.10"),
        ("chacha20poly1305", "0.11"),
        ("curve25519-dalek", "5."),
    ] {
        let found = versions(name);
        assert!(
            !found.is_empty() && found.iter().all(|v| v.starts_with(expected)),
            "{name}: expected only {expected}.x, the tree has {found:?}"
        );
    }
}
