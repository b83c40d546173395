//! Parties that share one stderr (a shell script that starts them all with `&`, a CI log)
//! never write into each other's lines: each line leaves a process in one write.
//!
//! Three direct-mode parties log at debug level into one file opened for appending, the way
//! a shell's `2>>log` does; every line of the file must be whole: it starts with one of the
//! prefixes a line can have, and each party's own lines are all there. When a line is written
//! in pieces (Rust's stderr is unbuffered, so `eprintln!("{who}: {msg}")` is several writes),
//! the pieces of concurrent parties land inside each other's lines: with lines written in two
//! pieces, one round caught it in 2 of 5 tries here, so the test plays several rounds.

use crate::common;

use std::fs::OpenOptions;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{free_port, mpc, program};

const PREFIXES: [&str; 8] = [
    "party 0: ",
    "party 1: ",
    "party 2: ",
    "debug: [",
    "info: [",
    "trace: [",
    "warning: ",
    "error: ",
];

/// Rounds of three parties (each round about half a second).
const ROUNDS: usize = 6;

#[test]
fn concurrent_parties_never_split_a_line() {
    for round in 0..ROUNDS {
        one_round(&format!("lines{round}"));
    }
}

fn one_round(session: &str) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let log = dir.path().join("stderr.log");
    let peers = (0..3)
        .map(|_| format!("http://127.0.0.1:{}", free_port()))
        .collect::<Vec<_>>()
        .join(",");
    let mut children = Vec::new();
    for party in 0..3 {
        let stderr = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .expect("open the shared log");
        let child = mpc([
            "party",
            "--peers",
            &peers,
            "--session",
            session,
            "--program",
            &program("add.garble.rs"),
            "--party",
            &party.to_string(),
            "--input",
            &format!("{}u32", party + 1),
            "--timeout",
            "30",
        ])
        .env("MPC_LOG", "debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(stderr))
        .spawn()
        .expect("start a party");
        children.push(child);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    for (party, child) in children.into_iter().enumerate() {
        let out = child.wait_with_output().expect("party exits");
        assert!(Instant::now() < deadline, "the parties took too long");
        assert!(out.status.success(), "party {party} failed");
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "6");
    }
    let text = std::fs::read_to_string(&log).expect("read the shared log");
    for line in text.lines() {
        assert!(
            PREFIXES.iter().any(|p| line.starts_with(p)),
            "a line was split or mixed with another party's: {line:?}\n--- whole log ---\n{text}"
        );
        // A whole line carries exactly one prefix: a second one inside it is another
        // party's line that landed in the middle.
        let inner = PREFIXES
            .iter()
            .filter(|p| p.starts_with("party"))
            .filter(|p| line[1..].contains(*p))
            .count();
        assert_eq!(inner, 0, "two lines ran together: {line:?}\n{text}");
    }
    for party in 0..3 {
        for needle in ["handshake done", "garbling and evaluating done"] {
            let wanted = format!("party {party}: {needle}");
            assert!(
                text.lines().any(|l| l.starts_with(&wanted)),
                "missing {wanted:?}:\n{text}"
            );
        }
    }
}
