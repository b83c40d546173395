//! End-to-end tests: real `mpc` processes (relay, dealer, parties) on loopback, checked the
//! way a user sees them: stdout, exit code, the message on stderr, and how long it took.
//!
//! Every test starts its own relay on a free port, so the tests run in parallel. All
//! processes share one compile cache (warmed with `mpc check`), and every process is killed
//! when its handle drops, so a failing test leaks nothing.

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::sleep;
use std::time::{Duration, Instant};

use common::{Finished, Proc, Relay, dealer, finish_all, free_port, party, program, warm};

/// How long a small session may take before the test gives up on it (generous: the tests
/// run in parallel on small machines).
const SMALL_RUN: Duration = Duration::from_secs(30);

/// The inputs of `programs/big.garble.rs` (about one million AND gates, two parties).
const BIG_INPUTS: [&str; 2] = ["[[3u16; 32]; 32]", "[5u16; 32]"];

/// Small chunks spread the big run over several seconds, long enough to kill a process in
/// the middle of it (all participants must use the same value).
const SLOW_CHUNKS: [&str; 2] = ["--chunk-ands", "256"];

/// The path of example program `name`, compiled into the shared cache once per test binary.
fn warmed(name: &str) -> String {
    static WARMED: OnceLock<Mutex<BTreeMap<String, Arc<OnceLock<()>>>>> = OnceLock::new();
    let path = program(name);
    let cell = WARMED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .entry(path.clone())
        .or_default()
        .clone();
    cell.get_or_init(|| warm(&path));
    path
}

/// The last `error: ...` line on stderr (what a user reads first), or a panic with the
/// whole output.
fn error_line(finished: &Finished) -> &str {
    finished
        .stderr
        .lines()
        .rev()
        .find(|line| line.starts_with("error:"))
        .unwrap_or_else(|| panic!("no `error:` line on stderr\n{finished}"))
}

/// Runs one complete session of `programs/add.garble.rs` (dealer and three parties, all
/// with `extra`) and returns the parties' results.
fn add_session(relay: &Relay, session: &str, inputs: [&str; 3], extra: &[&str]) -> Vec<Finished> {
    let add = warmed("add.garble.rs");
    let mut procs = vec![dealer(&relay.url, session, 3, extra)];
    for (i, input) in inputs.iter().enumerate() {
        procs.push(party(&relay.url, session, &add, i, input, extra));
    }
    let mut done = finish_all(procs, SMALL_RUN);
    let dealt = done.remove(0);
    assert_eq!(dealt.code, Some(0), "{dealt}");
    assert_eq!(
        dealt.stdout, "",
        "the dealer prints nothing on stdout\n{dealt}"
    );
    done
}

#[test]
fn three_parties_add_through_the_relay() {
    let relay = Relay::start(&[]);
    for finished in add_session(&relay, "add", ["1u32", "2u32", "3u32"], &[]) {
        finished.assert_result("6");
        assert!(
            !finished.stderr.to_lowercase().contains("error"),
            "a successful party reports no error\n{finished}"
        );
    }
}

#[test]
fn a_party_starting_two_seconds_late_still_gets_the_result() {
    let relay = Relay::start(&[]);
    let add = warmed("add.garble.rs");
    let url = &relay.url;
    let mut procs = vec![
        dealer(url, "late", 3, &[]),
        party(url, "late", &add, 0, "1u32", &[]),
        party(url, "late", &add, 1, "2u32", &[]),
    ];
    sleep(Duration::from_secs(2));
    for p in procs.iter_mut() {
        assert!(p.running(), "{} must wait for the late party", p.name());
    }
    procs.push(party(url, "late", &add, 2, "3u32", &[]));
    let done = finish_all(procs, SMALL_RUN);
    assert_eq!(done[0].code, Some(0), "{}", done[0]);
    for finished in &done[1..] {
        finished.assert_result("6");
    }
}

#[test]
fn twenty_sessions_at_once_on_one_relay() {
    const SESSIONS: u32 = 20;
    let relay = Relay::start(&[]);
    let add = warmed("add.garble.rs");
    let started = Instant::now();
    let mut procs = Vec::new();
    for k in 0..SESSIONS {
        let session = format!("many-{k}");
        // Different inputs per session: k + (2k + 1) + (3k + 2) = 6k + 3.
        let inputs = [k, 2 * k + 1, 3 * k + 2].map(|v| format!("{v}u32"));
        procs.push(dealer(&relay.url, &session, 3, &["--quiet"]));
        for (i, input) in inputs.iter().enumerate() {
            procs.push(party(&relay.url, &session, &add, i, input, &["--quiet"]));
        }
    }
    let done = finish_all(procs, Duration::from_secs(60));
    for (k, session) in done.chunks(4).enumerate() {
        assert_eq!(session[0].code, Some(0), "{}", session[0]);
        let expected = (6 * k + 3).to_string();
        for finished in &session[1..] {
            finished.assert_result(&expected);
        }
    }
    eprintln!(
        "{SESSIONS} sessions ({} processes) in {:.2} s",
        done.len(),
        started.elapsed().as_secs_f64()
    );
}

#[test]
fn a_killed_party_makes_the_others_fail_within_10_s() {
    let relay = Relay::start(&[]);
    let big = warmed("big.garble.rs");
    let url = &relay.url;
    let survivors = vec![
        party(url, "kill-party", &big, 0, BIG_INPUTS[0], &SLOW_CHUNKS),
        dealer(url, "kill-party", 2, &[]),
    ];
    let mut victim = party(url, "kill-party", &big, 1, BIG_INPUTS[1], &SLOW_CHUNKS);
    victim.wait_for_stderr("garbling", SMALL_RUN);
    sleep(Duration::from_millis(300));
    let mut survivors = survivors;
    for p in survivors.iter_mut() {
        assert!(p.running(), "{} finished before the kill", p.name());
    }
    victim.kill();
    let killed = Instant::now();
    for finished in finish_all(survivors, Duration::from_secs(20)) {
        finished.assert_failed(1);
        let after = finished.ended - killed;
        assert!(
            after < Duration::from_secs(10),
            "noticed the lost party only after {after:?}\n{finished}"
        );
        eprintln!("{} exited {after:?} after the kill", finished.name);
        let error = error_line(&finished);
        assert!(
            error.contains("party 1") && error.contains("lost"),
            "the error names the lost party\n{finished}"
        );
    }
}

#[test]
fn a_killed_dealer_makes_the_parties_fail_within_10_s() {
    let relay = Relay::start(&[]);
    let big = warmed("big.garble.rs");
    let url = &relay.url;
    let mut victim = dealer(url, "kill-dealer", 2, &[]);
    let mut parties = vec![
        party(url, "kill-dealer", &big, 0, BIG_INPUTS[0], &SLOW_CHUNKS),
        party(url, "kill-dealer", &big, 1, BIG_INPUTS[1], &SLOW_CHUNKS),
    ];
    victim.wait_for_stderr("dealing", SMALL_RUN);
    sleep(Duration::from_millis(300));
    for p in parties.iter_mut() {
        assert!(p.running(), "{} finished before the kill", p.name());
    }
    victim.kill();
    let killed = Instant::now();
    for finished in finish_all(parties, Duration::from_secs(20)) {
        finished.assert_failed(1);
        let after = finished.ended - killed;
        assert!(
            after < Duration::from_secs(10),
            "noticed the lost dealer only after {after:?}\n{finished}"
        );
        eprintln!("{} exited {after:?} after the kill", finished.name);
        let error = error_line(&finished);
        assert!(
            error.contains("dealer") && error.contains("lost"),
            "the error names the lost dealer\n{finished}"
        );
    }
}

#[test]
fn a_party_with_a_different_program_fails_the_handshake() {
    let relay = Relay::start(&[]);
    let add = warmed("add.garble.rs");
    let dir = tempfile::tempdir().expect("temporary directory");
    let changed = dir.path().join("add.garble.rs");
    let source = std::fs::read_to_string(&add).expect("read add.garble.rs");
    assert!(source.contains("x + y + z"));
    std::fs::write(&changed, source.replace("x + y + z", "x + y + z + 1u32"))
        .expect("write the changed program");
    let changed = changed.to_str().expect("UTF-8 path").to_string();

    let url = &relay.url;
    let procs = vec![
        dealer(url, "differ", 3, &[]),
        party(url, "differ", &add, 0, "1u32", &[]),
        party(url, "differ", &add, 1, "2u32", &[]),
        party(url, "differ", &changed, 2, "3u32", &[]),
    ];
    let done = finish_all(procs, SMALL_RUN);
    assert_eq!(done[0].code, Some(1), "{}", done[0]);
    for finished in &done[1..] {
        finished.assert_failed(1);
        assert!(error_line(finished).contains("handshake"), "{finished}");
    }
    // The parties with the common program name the one that differs, and say what differs.
    for finished in &done[1..3] {
        let error = error_line(finished);
        assert!(
            error.contains("party 2") && error.contains("different program"),
            "the error names the disagreeing party and the program\n{finished}"
        );
    }
}

#[test]
fn parties_with_different_evaluators_fail_the_handshake() {
    let relay = Relay::start(&[]);
    let add = warmed("add.garble.rs");
    let url = &relay.url;
    let procs = vec![
        dealer(url, "evaluator", 3, &[]),
        party(url, "evaluator", &add, 0, "1u32", &[]),
        party(url, "evaluator", &add, 1, "2u32", &["--evaluator", "2"]),
        party(url, "evaluator", &add, 2, "3u32", &[]),
    ];
    let done = finish_all(procs, SMALL_RUN);
    assert_eq!(done[0].code, Some(1), "{}", done[0]);
    for finished in &done[1..] {
        finished.assert_failed(1);
        let error = error_line(finished);
        assert!(
            error.contains("handshake") && error.contains("evaluator"),
            "{finished}"
        );
    }
    // Parties 0 and 2 name party 1 as the one that disagrees.
    for finished in [&done[1], &done[3]] {
        assert!(error_line(finished).contains("party 1"), "{finished}");
    }
}

#[test]
fn usage_program_and_input_errors_exit_2() {
    let add = warmed("add.garble.rs");
    // Nothing listens here: these errors must be found before contacting the relay.
    let url = format!("http://127.0.0.1:{}", free_port());
    let base = ["party", &url, "--session", "usage", "--program", &add];
    let quick = Duration::from_secs(10);
    let with = |extra: &[&str]| {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        Proc::run("party", &args, quick)
    };

    let bad_literal = with(&["--party", "0", "--input", "hello"]);
    bad_literal.assert_failed(2);
    assert!(error_line(&bad_literal).contains("u32"), "{bad_literal}");

    let wrong_type = with(&["--party", "1", "--input", "2u8"]);
    wrong_type.assert_failed(2);
    assert!(error_line(&wrong_type).contains("u32"), "{wrong_type}");

    let out_of_range = with(&["--party", "3", "--input", "1u32"]);
    out_of_range.assert_failed(2);
    assert!(
        error_line(&out_of_range).contains("--party 3"),
        "{out_of_range}"
    );

    let unknown_flag = with(&["--party", "0", "--input", "1u32", "--bogus"]);
    unknown_flag.assert_failed(2);
    unknown_flag.assert_stderr_has(&["--bogus"]);

    let missing = Proc::run(
        "party",
        &[
            "party",
            &url,
            "--session",
            "usage",
            "--program",
            "/nonexistent/missing.garble.rs",
            "--party",
            "0",
            "--input",
            "1u32",
        ],
        quick,
    );
    missing.assert_failed(2);
    assert!(
        error_line(&missing).contains("missing.garble.rs"),
        "{missing}"
    );

    let missing_check = Proc::run("check", &["check", "/nonexistent/missing.garble.rs"], quick);
    missing_check.assert_failed(2);
}

#[test]
fn an_unreachable_relay_exits_1_after_the_timeout() {
    let add = warmed("add.garble.rs");
    let url = format!("http://127.0.0.1:{}", free_port());
    let started = Instant::now();
    let args = [
        "party",
        &url,
        "--session",
        "nobody",
        "--program",
        &add,
        "--party",
        "0",
        "--input",
        "1u32",
        "--timeout",
        "2",
    ];
    let finished = Proc::run("party", &args, Duration::from_secs(20));
    let took = started.elapsed();
    finished.assert_failed(1);
    assert!(took < Duration::from_secs(6), "took {took:?}\n{finished}");
    assert!(error_line(&finished).contains(&url), "{finished}");
}

#[test]
fn a_panicking_program_exits_70_with_garbles_panic_text() {
    let relay = Relay::start(&[]);
    let overflow = warmed("overflow.garble.rs");
    let url = &relay.url;
    let procs = vec![
        dealer(url, "panic", 2, &[]),
        party(url, "panic", &overflow, 0, "200u8", &[]),
        party(url, "panic", &overflow, 1, "100u8", &[]),
    ];
    let done = finish_all(procs, SMALL_RUN);
    assert_eq!(
        done[0].code,
        Some(0),
        "the dealer did its part\n{}",
        done[0]
    );
    for finished in &done[1..] {
        finished.assert_failed(70);
        finished.assert_stderr_has(&["Panic due to Overflow on line"]);
    }
}

#[test]
fn run_and_check_work_without_a_relay() {
    let add = warmed("add.garble.rs");
    let quick = Duration::from_secs(30);
    let args = [
        "run", &add, "--input", "1u32", "--input", "2u32", "--input", "3u32",
    ];
    Proc::run("run", &args, quick).assert_result("6");

    let checked = Proc::run("check", &["check", &add], quick);
    assert_eq!(checked.code, Some(0), "{checked}");
    assert!(
        checked.stdout.contains(" AND"),
        "check reports the AND gate count\n{checked}"
    );
}

#[test]
fn flags_in_the_equals_form_work() {
    let relay = Relay::start(&[]);
    let add = warmed("add.garble.rs");
    let url = &relay.url;
    let program = format!("--program={add}");
    let mut procs = vec![Proc::spawn(
        "dealer",
        common::mpc(["pre", url, "--session=equals", "--parties=3"]),
    )];
    for (i, input) in ["1u32", "2u32", "3u32"].iter().enumerate() {
        let party = format!("--party={i}");
        let input = format!("--input={input}");
        let args = [
            "party",
            url,
            "--session=equals",
            &program,
            &party,
            &input,
            "--dealer",
        ];
        procs.push(Proc::spawn(party.clone(), common::mpc(args)));
    }
    let done = finish_all(procs, SMALL_RUN);
    assert_eq!(done[0].code, Some(0), "{}", done[0]);
    for finished in &done[1..] {
        finished.assert_result("6");
    }
}

#[test]
fn json_format_prints_one_object_with_the_result() {
    let relay = Relay::start(&[]);
    // The dealer has no --format: only the parties get it.
    let add = warmed("add.garble.rs");
    let url = &relay.url;
    let mut procs = vec![dealer(url, "json", 3, &[])];
    for (i, input) in ["1u32", "2u32", "3u32"].iter().enumerate() {
        procs.push(party(url, "json", &add, i, input, &["--format", "json"]));
    }
    let done = finish_all(procs, SMALL_RUN);
    assert_eq!(done[0].code, Some(0), "{}", done[0]);
    for (i, finished) in done[1..].iter().enumerate() {
        assert_eq!(finished.code, Some(0), "{finished}");
        assert_eq!(
            finished.stdout.lines().count(),
            1,
            "one line on stdout\n{finished}"
        );
        let json: serde_json::Value = serde_json::from_str(&finished.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{finished}"));
        assert_eq!(
            json["result"],
            serde_json::json!({"NumUnsigned": [6, "U32"]}),
            "the result is Garble's JSON value of 6u32\n{finished}"
        );
        assert_eq!(json["text"], serde_json::json!("6"), "{finished}");
        assert_eq!(json["party"], serde_json::json!(i), "{finished}");
    }
}

/// Starts party `i` of `session` with `programs/add.garble.rs` and exactly `extra` (no
/// automatic `--dealer`), so the session's own choice of preprocessing is exercised.
fn add_party_as_is(relay: &Relay, session: &str, i: usize, input: &str, extra: &[&str]) -> Proc {
    let add = warmed("add.garble.rs");
    let args = [&["--input", input][..], extra].concat();
    common::party_as_is(&relay.url, session, &add, i, &args)
}

#[test]
fn without_a_dealer_the_parties_make_their_own_randomness() {
    let relay = Relay::start(&[]);
    for (session, extra) in [("auto", &[][..]), ("forced", &["--no-dealer"][..])] {
        let procs = (0..3)
            .map(|i| add_party_as_is(&relay, session, i, &format!("{}u32", i + 1), extra))
            .collect();
        for finished in finish_all(procs, SMALL_RUN) {
            finished.assert_result("6");
            assert!(
                finished.stderr.contains("OT-based preprocessing"),
                "the party says where its randomness comes from\n{finished}"
            );
        }
    }
}

#[test]
fn a_dealer_arriving_after_the_parties_chose_no_dealer_exits_1() {
    let relay = Relay::start(&[]);
    let procs = (0..3)
        .map(|i| add_party_as_is(&relay, "late", i, &format!("{}u32", i + 1), &[]))
        .collect();
    for finished in finish_all(procs, SMALL_RUN) {
        finished.assert_result("6");
    }
    let late = dealer(&relay.url, "late", 3, &[]).finish(SMALL_RUN);
    late.assert_failed(1);
    late.assert_stderr_has(&["without a dealer"]);
}

#[test]
fn an_uninvited_dealer_is_never_used_and_exits_1_saying_why() {
    // The dealer sits in its seat before any party joins (under the old join-order rule it
    // would have become the trusted dealer); the parties were not started with --dealer.
    let relay = Relay::start(&[]);
    let mut early = dealer(&relay.url, "uninvited", 3, &[]);
    early.wait_for_stderr("waiting", SMALL_RUN);
    let procs = (0..3)
        .map(|i| add_party_as_is(&relay, "uninvited", i, &format!("{}u32", i + 1), &[]))
        .collect();
    for finished in finish_all(procs, SMALL_RUN) {
        finished.assert_result("6");
        finished.assert_stderr_has(&["OT-based preprocessing"]);
    }
    let refused = early.finish(SMALL_RUN);
    refused.assert_failed(1);
    refused.assert_stderr_has(&["refused the key exchange", "without a dealer", "--dealer"]);
}

#[test]
fn parties_that_disagree_about_the_dealer_stop_with_a_clear_message() {
    let relay = Relay::start(&[]);
    let mut procs = vec![dealer(&relay.url, "split", 3, &[])];
    procs.push(add_party_as_is(
        &relay,
        "split",
        0,
        "1u32",
        &["--dealer", "--timeout", "20"],
    ));
    procs.push(add_party_as_is(
        &relay,
        "split",
        1,
        "2u32",
        &["--dealer", "--timeout", "20"],
    ));
    procs.push(add_party_as_is(
        &relay,
        "split",
        2,
        "3u32",
        &["--no-dealer", "--timeout", "20"],
    ));
    let done = finish_all(procs, SMALL_RUN);
    for finished in &done[1..] {
        finished.assert_failed(1);
    }
    assert!(
        done[1..]
            .iter()
            .any(|f| f.stderr.contains("dealer") && f.stderr.contains("party")),
        "some party names the disagreement\n{}",
        done[1]
    );
}

/// The traffic budget of issue 9: two parties without a dealer send at most 250 bytes per
/// AND gate in all (garbled gates, OT extension, leaky ANDs, bucketing), as `mpc run
/// --format json` reports it. SHA-256 (about 22,600 AND gates) is large enough for the
/// per-session setup to be a small share and for the bucket size of a large run (B = 4).
/// With 16-byte leaky-AND check values this was 270 bytes per AND gate.
#[test]
fn two_parties_without_a_dealer_send_at_most_250_bytes_per_and_gate() {
    let sha = warmed("sha256.garble.rs");
    let inputs = ["--input", "[7u32; 16]", "--input", "[9u32; 8]"];
    let json = |extra: &[&str]| {
        let args: Vec<&str> = ["run", sha.as_str(), "--format", "json"]
            .into_iter()
            .chain(inputs)
            .chain(extra.iter().copied())
            .collect();
        let finished = Proc::run("run", &args, SMALL_RUN);
        assert_eq!(finished.code, Some(0), "{finished}");
        let value: serde_json::Value = serde_json::from_str(&finished.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e})\n{finished}"));
        value
    };
    let without = json(&["--no-dealer"]);
    let with = json(&[]);
    assert_eq!(
        without["text"], with["text"],
        "the same digest with and without a dealer"
    );
    let ands = without["stats"]["and_gates"].as_u64().expect("and_gates");
    assert!(
        ands > 20_000,
        "SHA-256 has about 22,600 AND gates, got {ands}"
    );
    let sent: u64 = without["bytes_sent_per_party"]
        .as_array()
        .expect("bytes_sent_per_party")
        .iter()
        .map(|b| b.as_u64().expect("a byte count"))
        .sum();
    let per_and = sent as f64 / ands as f64;
    assert!(
        per_and <= 250.0,
        "{per_and:.1} bytes per AND gate in all ({sent} bytes for {ands} AND gates)"
    );
}
