//! Security: a test channel flips one bit in one message of each phase in turn. Every run
//! must end in an abort that names the failed check; no party may ever accept a wrong result.

use std::path::Path;
use std::time::Duration;

use mpc::channel::Phase;
use mpc::channel::memory::memory_channels;
use mpc::channel::tamper::{Tamper, TamperPlan};
use mpc::engine::EngineError;
use mpc::local::{LocalOptions, run_local_each};
use mpc::program::Program;

const NEVER: usize = usize::MAX;

struct Run {
    /// Each party's result: Ok(output) or the error text.
    results: Vec<Result<Vec<bool>, String>>,
    /// The failed check named by some honest party, if any.
    check: Option<String>,
    fired: bool,
}

/// Runs add.garble.rs for 3 parties with the dealer; endpoint `cheater` (3 = the dealer)
/// tampers according to `plan`.
fn run_tampered(cheater: usize, plan: TamperPlan) -> (Run, Vec<bool>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/add.garble.rs");
    let program = Program::load(&path).expect("add.garble.rs compiles");
    let inputs: Vec<Vec<bool>> = ["7u32", "11u32", "13u32"]
        .iter()
        .enumerate()
        .map(|(p, lit)| program.parse_input(p, lit).expect("valid input"))
        .collect();
    let expected = program.eval_plain(&inputs);
    let opts = LocalOptions {
        chunk_ands: 64,
        timeout: Duration::from_secs(20),
        ..LocalOptions::default()
    };
    let mut channels: Vec<Tamper<_>> = memory_channels(4, 3, opts.timeout)
        .into_iter()
        .enumerate()
        .map(|(i, ch)| {
            let p = if i == cheater {
                plan
            } else {
                TamperPlan { nth: NEVER, ..plan }
            };
            Tamper::new(ch, p)
        })
        .collect();
    let dealer = channels.pop();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let circuit = program.circuit().clone();
    let hash = program.hash();
    let (results, dealt) = rt.block_on(async {
        let (r, d) = run_local_each(
            &circuit,
            hash,
            &inputs,
            &opts,
            channels.iter().collect(),
            dealer.as_ref(),
        )
        .await;
        (r, d)
    });
    let fired = channels.iter().chain(dealer.iter()).any(|c| c.fired());
    let mut check = None;
    let mut out = Vec::new();
    for r in results
        .into_iter()
        .chain(std::iter::once(dealt.map(|_| None)))
    {
        match r {
            Ok(Some(o)) => out.push(Ok(o.output)),
            Ok(None) => {}
            Err(e) => {
                if let EngineError::Check { check: c, .. } = &e {
                    check = Some(c.to_string());
                }
                out.push(Err(e.to_string()));
            }
        }
    }
    (
        Run {
            results: out,
            check,
            fired,
        },
        expected,
    )
}

/// Asserts that the run aborted with a named check and nobody accepted a wrong output.
fn assert_caught(run: &Run, expected: &[bool], want: &[&str]) {
    assert!(run.fired, "the tamper plan never fired");
    for out in run.results.iter().flatten() {
        assert_eq!(out, expected, "a party accepted a WRONG result");
    }
    let check = run
        .check
        .as_deref()
        .unwrap_or_else(|| panic!("no party named a failed check: {:?}", run.results));
    assert!(
        want.contains(&check),
        "failed check '{check}' is none of {want:?}"
    );
    assert!(
        run.results.iter().any(|r| r.is_err()),
        "nobody aborted: {:?}",
        run.results
    );
}

fn plan(phase: Phase, to: Option<usize>, nth: usize, bit: usize) -> TamperPlan {
    TamperPlan {
        phase,
        to,
        nth,
        bit,
    }
}

#[test]
fn dealer_material() {
    // Message 0 to party 1 is its header; message 1 starts with a 4-byte length, then the
    // MACs of the input masks, which party 1 must present to the inputs' owners.
    let (run, expected) = run_tampered(3, plan(Phase::DealerMaterial, Some(1), 1, 32));
    assert_caught(&run, &expected, &["input mask MAC check"]);
}

#[test]
fn dealer_global_key() {
    let (run, expected) = run_tampered(3, plan(Phase::DealerMaterial, Some(2), 0, 9));
    assert_caught(
        &run,
        &expected,
        &[
            "input mask MAC check",
            "Beaver opening MAC check",
            "garbled row MAC check",
        ],
    );
}

#[test]
fn beaver_opening() {
    let (run, expected) = run_tampered(1, plan(Phase::BeaverOpening, Some(2), 0, 0));
    assert_caught(&run, &expected, &["Beaver opening MAC check"]);
}

#[test]
fn garbled_rows() {
    // Only one of a gate's four rows is ever decrypted (which one depends on the random
    // masks), so a flip in another row changes nothing: every run must be correct or abort,
    // and within a few runs one must hit the decrypted row.
    let mut caught = false;
    for attempt in 0..40 {
        let row = attempt % 4;
        // Garbler 1's rows: 3 blocks each (n = 3); block 0 is its MAC towards the evaluator.
        let bit = row * 3 * 128 + 17;
        let (run, expected) = run_tampered(1, plan(Phase::GarbledRows, Some(0), 0, bit));
        assert!(run.fired);
        for out in run.results.iter().flatten() {
            assert_eq!(out, &expected, "a party accepted a WRONG result");
        }
        if run.check.is_some() {
            assert_caught(&run, &expected, &["garbled row MAC check"]);
            caught = true;
            break;
        }
    }
    assert!(caught, "no tampered row was ever detected");
}

#[test]
fn garbled_row_label() {
    // A flipped label bit in the decrypted row gives the evaluator a wrong label, which
    // fails a later row's MAC check or the output label check.
    let mut caught = false;
    for attempt in 0..40 {
        let row = attempt % 4;
        let bit = row * 3 * 128 + 2 * 128 + 5;
        let (run, expected) = run_tampered(2, plan(Phase::GarbledRows, Some(0), 0, bit));
        for out in run.results.iter().flatten() {
            assert_eq!(out, &expected, "a party accepted a WRONG result");
        }
        if run.check.is_some() {
            assert_caught(
                &run,
                &expected,
                &["garbled row MAC check", "output label check"],
            );
            caught = true;
            break;
        }
    }
    assert!(caught, "no tampered label was ever detected");
}

#[test]
fn input_masks() {
    let (run, expected) = run_tampered(1, plan(Phase::InputMasks, Some(0), 0, 0));
    assert_caught(&run, &expected, &["input mask MAC check"]);
}

#[test]
fn masked_inputs_equivocation() {
    // Party 1 tells party 2 a different masked input than the others.
    let (run, expected) = run_tampered(1, plan(Phase::MaskedInputs, Some(2), 0, 3));
    assert_caught(
        &run,
        &expected,
        &[
            "input consistency check",
            "garbled row MAC check",
            "output label check",
        ],
    );
}

#[test]
fn input_labels() {
    let (run, expected) = run_tampered(1, plan(Phase::InputLabels, Some(0), 0, 7));
    assert_caught(
        &run,
        &expected,
        &["garbled row MAC check", "output label check"],
    );
}

#[test]
fn output_labels() {
    let (run, expected) = run_tampered(0, plan(Phase::OutputLabels, Some(1), 0, 0));
    assert_caught(&run, &expected, &["output label check"]);
}

#[test]
fn output_shares() {
    let (run, expected) = run_tampered(1, plan(Phase::OutputShares, Some(2), 0, 0));
    assert_caught(&run, &expected, &["output share MAC check"]);
}

#[test]
fn every_bit_of_a_beaver_message_matters_or_aborts() {
    // Sweep the first bits of party 2's Beaver opening to party 0: never a wrong result.
    for bit in 0..16 {
        let (run, expected) = run_tampered(2, plan(Phase::BeaverOpening, Some(0), 0, bit));
        assert_caught(&run, &expected, &["Beaver opening MAC check"]);
    }
}
