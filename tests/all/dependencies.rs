//! The dependency tree holds one generation of the RustCrypto cipher crates.
//!
//! Two generations side by side double the audited surface and the binary's cipher code;
//! `snow`'s default primitives and `aes` 0.8 used to pull in `cipher` 0.4 beside 0.5. This
//! reads Cargo.lock, which lists every package the build resolved (for every target, the
//! dev-dependencies included), so the check needs neither cargo nor the network.

use std::collections::BTreeMap;

/// Package name → versions, from Cargo.lock's `[[package]]` entries.
fn locked_versions() -> BTreeMap<String, Vec<String>> {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock"))
        .expect("Cargo.lock is in the repository");
    let mut packages: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut name = None;
    for line in lock.lines() {
        let quoted = |key: &str| {
            line.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(" = \""))
                .and_then(|rest| rest.strip_suffix('"'))
                .map(str::to_string)
        };
        if line == "[[package]]" {
            name = None;
        } else if let Some(n) = quoted("name") {
            name = Some(n);
        } else if let (Some(v), Some(n)) = (quoted("version"), name.take()) {
            packages.entry(n).or_default().push(v);
        }
    }
    packages
}

#[test]
fn one_generation_of_cipher_crates() {
    let packages = locked_versions();
    assert!(packages.contains_key("mpc"), "Cargo.lock was not read");
    for (name, expected) in [
        ("cipher", "0.5."),
        ("aes", "0.9."),
        ("aes-gcm", "0.11."),
        ("chacha20", "0.10."),
        ("chacha20poly1305", "0.11."),
        ("curve25519-dalek", "5."),
    ] {
        let found = packages.get(name).cloned().unwrap_or_default();
        assert!(
            !found.is_empty() && found.iter().all(|v| v.starts_with(expected)),
            "{name}: expected only {expected}x, Cargo.lock has {found:?}"
        );
    }
}
