//! What a newcomer meets on the command line: private inputs from files or stdin, Garble's
//! party constants, chosen output parties, one JSON schema, `--version` everywhere, units
//! on durations, plain one-line warnings and errors that say their cause once. Real `mpc`
//! processes on loopback; results checked against garble_lang's plaintext evaluation.

use crate::common;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::time::Duration;

use common::{Proc, Relay, finish_all, mpc, program};
use mpc::program::{ConstValues, DeclaredConstants, Program};

const RUN: Duration = Duration::from_secs(120);

/// The expected result of `program` on `inputs` by plaintext evaluation, as `mpc` prints it.
fn expected(program: &Program, inputs: &[&str]) -> String {
    let bits: Vec<Vec<bool>> = inputs
        .iter()
        .enumerate()
        .map(|(p, lit)| program.parse_input(p, lit).expect("a valid input"))
        .collect();
    program
        .format_output(&program.eval_plain(&bits))
        .expect("decodes")
        .to_string()
}

/// A party of `session` without a dealer, with exactly `extra`.
fn party(relay: &Relay, session: &str, prog: &str, i: usize, extra: &[&str]) -> Proc {
    let args = [&["--timeout", "60s"][..], extra].concat();
    common::party_as_is(&relay.url, session, prog, i, &args)
}

#[test]
fn a_private_input_comes_from_a_file_or_stdin_and_never_from_argv() {
    let relay = Relay::start(&[]);
    let add = program("add.garble.rs");
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("bob.txt");
    std::fs::write(&file, "  20u32\n").expect("write the input file");
    let file_arg = file.display().to_string();

    let p0 = party(&relay, "files", &add, 0, &["--input", "1u32"]);
    let p1 = party(&relay, "files", &add, 1, &["--input-file", &file_arg]);
    // Party 2 reads its input from stdin, as `secret-tool lookup ... | mpc party` would.
    let stdin_party = mpc([
        "party",
        &relay.url,
        "--session",
        "files",
        "--program",
        &add,
        "--party",
        "2",
        "--input-file",
        "-",
    ]);
    let p2 = Proc::spawn_with_stdin("party 2 of files", stdin_party, b"300u32\n");
    let want = expected(
        &Program::load(Path::new(&add)).expect("add"),
        &["1u32", "20u32", "300u32"],
    );
    assert_eq!(want, "321");
    let done = finish_all(vec![p0, p1, p2], RUN);
    for finished in &done {
        finished.assert_result(&want);
    }

    // An empty or missing file is a usage error naming it, before anyone waits.
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "\n").expect("write");
    let empty_arg = empty.display().to_string();
    let out = party(&relay, "empty", &add, 0, &["--input-file", &empty_arg]).finish(RUN);
    out.assert_failed(2);
    out.assert_stderr_has(&["empty.txt is empty"]);
    let out = party(
        &relay,
        "missing",
        &add,
        0,
        &["--input-file", "/nonexistent/in.txt"],
    )
    .finish(RUN);
    out.assert_failed(2);
    out.assert_stderr_has(&["cannot read the input file /nonexistent/in.txt"]);
}

#[test]
fn run_takes_inputs_and_input_files_in_command_line_order() {
    let millionaires = program("millionaires.garble.rs");
    let dir = tempfile::tempdir().expect("temporary directory");
    let rich = dir.path().join("rich.txt");
    std::fs::write(&rich, "9000000u64\n").expect("write");
    let rich_arg = rich.display().to_string();
    // The file comes first on the command line: it is party 0's wealth.
    let out = Proc::run(
        "run",
        &[
            "run",
            &millionaires,
            "--input-file",
            &rich_arg,
            "--input",
            "5u64",
        ],
        RUN,
    );
    out.assert_result("Richer::Party0");
    let out = Proc::run(
        "run",
        &[
            "run",
            &millionaires,
            "--input",
            "5u64",
            "--input-file",
            &rich_arg,
        ],
        RUN,
    );
    out.assert_result("Richer::Party1");
    // Too few inputs: the message counts both kinds.
    let out = Proc::run(
        "run",
        &["run", &millionaires, "--input-file", &rich_arg],
        RUN,
    );
    out.assert_failed(2);
    out.assert_stderr_has(&["takes inputs from 2 parties, but 1 were given"]);
}

#[test]
fn party_constants_are_swapped_before_compiling() {
    let sum_rows = program("sum_rows.garble.rs");
    let path = Path::new(&sum_rows);
    let declared = DeclaredConstants::of(path)
        .expect("type-checks")
        .expect("declares party constants");
    let mut values = ConstValues::new();
    values.insert(0, BTreeMap::from([("ROWS".to_string(), "2".to_string())]));
    values.insert(1, BTreeMap::from([("ROWS".to_string(), "3".to_string())]));
    let (compiled, _) =
        Program::load_with_constants(path, None, &declared, &values).expect("compiles");
    let inputs = ["[1u32, 2u32]", "[30u32, 40u32, 50u32]"];
    let want = expected(&compiled, &inputs);
    assert_eq!(want, "123");

    let relay = Relay::start(&[]);
    let p0 = party(
        &relay,
        "consts",
        &sum_rows,
        0,
        &["--const", "ROWS=2", "--input", inputs[0]],
    );
    let p1 = party(
        &relay,
        "consts",
        &sum_rows,
        1,
        &["--const", "PARTY_1::ROWS=3", "--input", inputs[1]],
    );
    for finished in finish_all(vec![p0, p1], RUN) {
        finished.assert_result(&want);
    }

    // mpc run takes every party's constants.
    let out = Proc::run(
        "run",
        &[
            "run",
            &sum_rows,
            "--const",
            "PARTY_0::ROWS=2",
            "--const",
            "PARTY_1::ROWS=3",
            "--input",
            inputs[0],
            "--input",
            inputs[1],
        ],
        RUN,
    );
    out.assert_result(&want);

    // A constant the program does not declare, or one missing, is a usage error before
    // joining; a party that sets another party's constant too.
    let out = party(
        &relay,
        "bad1",
        &sum_rows,
        0,
        &["--const", "COLS=2", "--input", inputs[0]],
    )
    .finish(RUN);
    out.assert_failed(2);
    out.assert_stderr_has(&["no constant PARTY_0::COLS", "ROWS: usize"]);
    let out = party(&relay, "bad2", &sum_rows, 0, &["--input", inputs[0]]).finish(RUN);
    out.assert_failed(2);
    out.assert_stderr_has(&["party 0 must provide PARTY_0::ROWS: usize"]);
    let out = party(
        &relay,
        "bad3",
        &sum_rows,
        0,
        &[
            "--const",
            "ROWS=2",
            "--const",
            "PARTY_1::ROWS=9",
            "--input",
            inputs[0],
        ],
    )
    .finish(RUN);
    out.assert_failed(2);
    out.assert_stderr_has(&["not party 1's"]);
    let add = program("add.garble.rs");
    let out = party(
        &relay,
        "bad4",
        &add,
        0,
        &["--const", "ROWS=2", "--input", "1u32"],
    )
    .finish(RUN);
    out.assert_failed(2);
    out.assert_stderr_has(&["declares no party constants"]);
}

#[test]
fn only_the_output_parties_learn_the_result() {
    let relay = Relay::start(&[]);
    let add = program("add.garble.rs");
    let inputs = ["1u32", "20u32", "300u32"];
    let procs = (0..3)
        .map(|i| {
            party(
                &relay,
                "outs",
                &add,
                i,
                &["--input", inputs[i], "--outputs", "0,2"],
            )
        })
        .collect();
    let done = finish_all(procs, RUN);
    done[0].assert_result("321");
    done[2].assert_result("321");
    assert_eq!(done[1].code, Some(0), "{}", done[1]);
    assert_eq!(done[1].stdout, "", "party 1 learns nothing\n{}", done[1]);
    done[1].assert_stderr_has(&["does not learn it"]);

    // The evaluator (party 0 by default) need not learn it either.
    let procs = (0..3)
        .map(|i| {
            party(
                &relay,
                "outs2",
                &add,
                i,
                &["--input", inputs[i], "--outputs", "1"],
            )
        })
        .collect();
    let done = finish_all(procs, RUN);
    done[1].assert_result("321");
    for i in [0, 2] {
        assert_eq!(done[i].code, Some(0), "{}", done[i]);
        assert_eq!(done[i].stdout, "", "{}", done[i]);
    }

    // Parties that disagree stop at the handshake, naming the difference.
    let procs = (0..3)
        .map(|i| {
            let outs = if i == 2 { "2" } else { "0,2" };
            party(
                &relay,
                "outs3",
                &add,
                i,
                &["--input", inputs[i], "--outputs", outs],
            )
        })
        .collect();
    let done = finish_all(procs, RUN);
    assert!(
        done.iter()
            .all(|d| d.code == Some(1) && d.stdout.is_empty()),
        "{done:#?}"
    );
    assert!(
        done.iter().any(|d| d.stderr.contains("--outputs")),
        "the mismatch is named\n{done:#?}"
    );
}

#[test]
fn json_results_have_one_schema_for_run_and_party() {
    let add = program("add.garble.rs");
    let inputs = ["1u32", "2u32", "3u32"];
    let run = Proc::run(
        "run",
        &[
            "run", &add, "--input", inputs[0], "--input", inputs[1], "--input", inputs[2],
            "--format", "json",
        ],
        RUN,
    );
    assert_eq!(run.code, Some(0), "{run}");
    let relay = Relay::start(&[]);
    let procs = (0..3)
        .map(|i| {
            party(
                &relay,
                "json",
                &add,
                i,
                &["--input", inputs[i], "--format", "json"],
            )
        })
        .collect();
    let done = finish_all(procs, RUN);
    let parse = |out: &str| -> serde_json::Value {
        serde_json::from_str(out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    };
    let run_json = parse(&run.stdout);
    let garble_value = serde_json::json!({"NumUnsigned": [6, "U32"]});
    assert_eq!(run_json["result"], garble_value, "{run}");
    assert_eq!(run_json["text"], "6");
    let keys = |v: &serde_json::Value| -> Vec<String> {
        let mut k: Vec<String> = v.as_object().expect("an object").keys().cloned().collect();
        k.sort();
        k
    };
    for (i, finished) in done.iter().enumerate() {
        assert_eq!(finished.code, Some(0), "{finished}");
        let json = parse(&finished.stdout);
        assert_eq!(keys(&json), keys(&run_json), "one schema\n{finished}");
        assert_eq!(json["result"], garble_value, "{finished}");
        assert_eq!(json["party"], i, "{finished}");
    }
}

#[test]
fn every_subcommand_answers_version_and_completions_are_generated() {
    let version = format!(" {}\n", env!("CARGO_PKG_VERSION"));
    for sub in ["serve", "party", "pre", "run", "check", "keygen", "cert"] {
        let out = Proc::run(sub, &[sub, "--version"], RUN);
        assert_eq!(out.code, Some(0), "{out}");
        assert!(out.stdout.ends_with(&version), "{out}");
    }
    let out = Proc::run("completions", &["completions", "bash"], RUN);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(
        out.stdout.contains("_mpc()") && out.stdout.contains("--input-file"),
        "{out}"
    );
}

#[test]
fn durations_take_units_and_absurd_ones_are_refused() {
    let add = program("add.garble.rs");
    let args = |timeout: &'static str| {
        vec![
            "party",
            "http://127.0.0.1:9",
            "--session",
            "u",
            "--program",
            &add,
            "--party",
            "0",
            "--input",
            "1u32",
            "--timeout",
            timeout,
        ]
        .into_iter()
        .map(String::from)
        .collect::<Vec<_>>()
    };
    let huge: Vec<String> = args("1e20");
    let out = Proc::spawn("huge timeout", mpc(&huge)).finish(RUN);
    out.assert_failed(2);
    out.assert_stderr_has(&["too long"]);
    // Units are accepted: the party gets as far as failing to reach the relay (port 9
    // refuses) within its one-second timeout.
    let short: Vec<String> = args("1s");
    let out = Proc::spawn("short timeout", mpc(&short)).finish(RUN);
    assert_eq!(out.code, Some(1), "{out}");
    assert!(out.elapsed < Duration::from_secs(30), "{out}");
}

#[test]
fn logs_are_plain_lines_for_mpc_and_each_cause_is_said_once() {
    // Two relays on one port: the second cannot listen, and says why once.
    let first = Relay::start(&[]);
    let addr = first.url.trim_start_matches("http://").to_string();
    let out = Proc::run("second relay", &["serve", "--listen", &addr], RUN);
    assert_eq!(out.code, Some(1), "{out}");
    let line = out
        .stderr
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_else(|| panic!("an error line\n{out}"));
    assert_eq!(
        line.matches("in use").count(),
        1,
        "the cause is said once: {line}"
    );

    // MPC_LOG=debug shows mpc's own debug lines, none of its dependencies', all plain.
    let mut cmd = mpc([
        "run",
        &program("add.garble.rs"),
        "--input",
        "1u32",
        "--input",
        "2u32",
        "--input",
        "3u32",
    ]);
    cmd.env("MPC_LOG", "debug");
    let out = Proc::spawn("debug run", cmd).finish(RUN);
    out.assert_result("6");
    for l in out.stderr.lines().filter(|l| l.starts_with("debug:")) {
        assert!(l.starts_with("debug: [mpc"), "only mpc's targets: {l}");
    }
    assert!(
        !out.stderr.contains("\u{1b}["),
        "no colour codes in logs\n{out}"
    );
}

#[test]
fn a_warning_is_one_plain_line() {
    // A corrupt compile cache entry is only a warning: the program is compiled again.
    let dir = tempfile::tempdir().expect("temporary directory");
    let add = program("add.garble.rs");
    let mut warm = mpc(["check", &add]);
    warm.env("MPC_CACHE_DIR", dir.path());
    let out = Proc::spawn("warm", warm).finish(RUN);
    assert_eq!(out.code, Some(0), "{out}");
    for entry in std::fs::read_dir(dir.path()).expect("cache dir") {
        let path = entry.expect("entry").path();
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .expect("open");
        f.write_all(b"garbage").expect("corrupt");
    }
    let mut again = mpc(["check", &add]);
    again.env("MPC_CACHE_DIR", dir.path());
    let out = Proc::spawn("again", again).finish(RUN);
    assert_eq!(out.code, Some(0), "{out}");
    let warnings: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("corrupt"))
        .collect();
    assert_eq!(warnings.len(), 1, "{out}");
    assert!(warnings[0].starts_with("warning: "), "{out}");
}
