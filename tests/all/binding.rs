//! What binds a run together: the session id and the nonces of the handshake (which make the
//! run id), the transcript the parties compare after the handshake and before the output,
//! and the limit on the number of parties.

use std::path::Path;
use std::time::Duration;

use futures_util::future::join_all;
use mpc::channel::Phase;
use mpc::channel::memory::memory_channels;
use mpc::channel::tamper::{Tamper, TamperPlan};
use mpc::engine::preprocess::SourceKind;
use mpc::engine::transcript::TRANSCRIPT_CHECK;
use mpc::engine::{EngineError, MAX_PARTIES, NoProgress, PartyConfig, run_party, session_id};
use mpc::local::{LocalOptions, run_local_each};
use mpc::program::Program;

const NEVER: usize = usize::MAX;

/// Where the nonce starts in a handshake message (magic, version, program hash, party
/// count, index, evaluator, source, chunk size, session id).
const NONCE_AT: usize = 4 + 1 + 32 + 4 + 4 + 4 + 1 + 4 + 32;

fn add_program() -> (Program, Vec<Vec<bool>>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/add.garble.rs");
    let program = Program::load(&path).expect("add.garble.rs compiles");
    let inputs = ["7u32", "11u32", "13u32"]
        .iter()
        .enumerate()
        .map(|(p, lit)| program.parse_input(p, lit).expect("valid input"))
        .collect();
    (program, inputs)
}

/// What a tampered run left behind.
struct Run {
    /// Every party's output or error.
    results: Vec<Result<Vec<bool>, EngineError>>,
    /// The correct output.
    expected: Vec<bool>,
    /// Whether the tampering happened.
    fired: bool,
    /// The tampering party.
    cheater: usize,
}

/// Runs add.garble.rs for 3 parties with `source`; party `cheater` tampers according to
/// `plan`.
fn run_tampered(source: SourceKind, cheater: usize, plan: TamperPlan) -> Run {
    let (program, inputs) = add_program();
    let expected = program.eval_plain(&inputs);
    let opts = LocalOptions {
        source,
        chunk_ands: 64,
        timeout: Duration::from_secs(20),
        ..LocalOptions::default()
    };
    let peers = if source == SourceKind::Dealer { 4 } else { 3 };
    let mut channels: Vec<Tamper<_>> = memory_channels(peers, 3, opts.timeout)
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
    let dealer = if source == SourceKind::Dealer {
        channels.pop()
    } else {
        None
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (results, _) = rt.block_on(run_local_each(
        program.circuit(),
        program.hash(),
        &inputs,
        &opts,
        channels.iter().collect(),
        dealer.as_ref(),
    ));
    let fired = channels.iter().chain(dealer.iter()).any(|c| c.fired());
    let results = results
        .into_iter()
        .map(|r| {
            r.map(|o| {
                o.expect("a party has an outcome")
                    .output
                    .expect("every party learns the output")
            })
        })
        .collect();
    Run {
        results,
        expected,
        fired,
        cheater,
    }
}

/// Every honest party (all but `cheater`) aborts with the transcript check; nobody returns
/// a wrong result.
fn assert_transcript_caught(run: &Run) {
    let Run {
        results,
        expected,
        fired,
        cheater,
    } = run;
    let cheater = *cheater;
    assert!(fired, "the tamper plan never fired");
    for (p, r) in results.iter().enumerate() {
        match r {
            Ok(out) => assert_eq!(out, expected, "party {p} accepted a WRONG result"),
            Err(_) if p == cheater => {}
            Err(EngineError::Check { check, .. }) => {
                assert_eq!(
                    *check,
                    TRANSCRIPT_CHECK,
                    "party {p}: {}",
                    r.as_ref().unwrap_err()
                )
            }
            Err(e) => {
                // An honest party may only stop because another told it so.
                assert!(e.is_peer_abort(), "party {p} failed otherwise: {e}");
            }
        }
    }
    assert!(
        results.iter().enumerate().any(|(p, r)| p != cheater
            && matches!(r, Err(EngineError::Check { check, .. }) if *check == TRANSCRIPT_CHECK)),
        "no honest party named the transcript check: {results:?}"
    );
    assert!(
        results
            .iter()
            .enumerate()
            .all(|(p, r)| p == cheater || r.is_err()),
        "an honest party released an output: {results:?}"
    );
}

/// Party 1 sends party 2 another nonce than party 0: the two honest parties compute
/// different run ids, and the comparison right after the handshake catches it, before any
/// preprocessing (so no honest party is blamed by a failed commitment).
#[test]
fn nonce_equivocation_is_caught_after_the_handshake() {
    for source in [SourceKind::Dealer, SourceKind::Ot] {
        let plan = TamperPlan {
            phase: Phase::Handshake,
            to: Some(2),
            nth: 0,
            bit: NONCE_AT * 8 + 13,
        };
        assert_transcript_caught(&run_tampered(source, 1, plan));
    }
}

/// Party 1 lies about the run id it computed.
#[test]
fn a_wrong_run_id_echo_is_caught() {
    let plan = TamperPlan {
        phase: Phase::Handshake,
        to: Some(0),
        nth: 1,
        bit: 100,
    };
    assert_transcript_caught(&run_tampered(SourceKind::Ot, 1, plan));
}

/// The transcript is compared again before the output (a message of its own after the
/// evaluation): a party whose transcript differs there stops everyone.
#[test]
fn a_different_transcript_before_the_output_is_caught() {
    for source in [SourceKind::Dealer, SourceKind::Ot] {
        let plan = TamperPlan {
            phase: Phase::InputConsistency,
            to: Some(0),
            // Message 0 is the masked-input digests (after input processing), message 1 the
            // transcript digest compared before the output.
            nth: 1,
            bit: 77,
        };
        assert_transcript_caught(&run_tampered(source, 2, plan));
    }
}

fn config(me: usize, parties: usize, session: &str, program_hash: [u8; 32]) -> PartyConfig {
    PartyConfig {
        me,
        parties,
        evaluator: 0,
        program_hash,
        session_id: session_id(session, b""),
        source: SourceKind::Ot,
        chunk_ands: 64,
        outputs: PartyConfig::all_learn(parties),
    }
}

/// Parties that bind the run to different sessions refuse each other in the handshake.
#[test]
fn parties_of_different_sessions_refuse_each_other() {
    let (program, inputs) = add_program();
    let channels = memory_channels(3, 3, Duration::from_secs(20));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let results = rt.block_on(join_all(channels.iter().enumerate().map(|(me, ch)| {
        let session = if me == 2 { "payroll" } else { "auction" };
        let cfg = config(me, 3, session, program.hash());
        let circuit = program.circuit();
        let input = &inputs[me];
        async move {
            let r = run_party(ch, &cfg, circuit, input, &NoProgress).await;
            if let Err(e) = &r {
                mpc::channel::Channel::abort(ch, &e.to_string()).await;
            }
            r
        }
    })));
    for (me, r) in results.iter().enumerate() {
        match r {
            Err(EngineError::Handshake(why)) => {
                assert!(why.to_string().contains("session"), "{why}")
            }
            Err(e) if e.is_peer_abort() => {}
            other => panic!("party {me} did not refuse: {other:?}"),
        }
    }
    assert!(
        results.iter().any(
            |r| matches!(r, Err(EngineError::Handshake(why)) if why.to_string().contains("another session"))
        ),
        "{results:?}"
    );
}

/// A configuration with more parties than the limit is refused before anything is sent.
#[test]
fn more_parties_than_the_limit_are_refused() {
    let (program, inputs) = add_program();
    let channels = memory_channels(2, 2, Duration::from_secs(5));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cfg = config(0, MAX_PARTIES + 1, "big", program.hash());
    let r = rt.block_on(run_party(
        &channels[0],
        &cfg,
        program.circuit(),
        &inputs[0],
        &NoProgress,
    ));
    match r {
        Err(EngineError::Config(why)) => {
            assert!(why.to_string().contains(&MAX_PARTIES.to_string()), "{why}")
        }
        other => panic!(
            "a session of {} parties was not refused: {other:?}",
            MAX_PARTIES + 1
        ),
    }
}
