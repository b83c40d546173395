//! Security: one endpoint cheats (a test channel flips bits of its messages) and the honest
//! ones must never accept a wrong result. Each run is judged party by party (tests/all/verdict):
//! an honest party that stops must have failed one of the expected checks itself, blaming the
//! cheater, or stopped on the abort notice of a party that did.

use crate::verdict;

use std::path::Path;
use std::time::Duration;

use garble_lang::register_circuit::{And, Circuit, Input, Inst, Op, Reg, Xor};
use mpc::channel::memory::{MemoryTransport, memory_channels};
use mpc::channel::tamper::{Tamper, TamperPlan};
use mpc::channel::{Framed, Phase};
use mpc::cheat::{Cheat, Cheating};
use mpc::local::{LocalOptions, run_local_each};
use mpc::program::Program;
use mpc::program::random::{circuit_from_seed, inputs_from_seed};
use verdict::{Blame, End, Verdict, assert_detected, ends, judge};

const NEVER: usize = usize::MAX;

/// A session: circuit, program hash, every party's input and the correct output.
struct Session {
    circuit: Circuit,
    hash: [u8; 32],
    inputs: Vec<Vec<bool>>,
    expected: Vec<bool>,
}

impl Session {
    /// add.garble.rs for 3 parties.
    fn add() -> Session {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/add.garble.rs");
        let program = Program::load(&path).expect("add.garble.rs compiles");
        let inputs: Vec<Vec<bool>> = ["7u32", "11u32", "13u32"]
            .iter()
            .enumerate()
            .map(|(p, lit)| program.parse_input(p, lit).expect("valid input"))
            .collect();
        Session {
            expected: program.eval_plain(&inputs),
            circuit: program.circuit().clone(),
            hash: program.hash(),
            inputs,
        }
    }

    /// A hand-made circuit with the given inputs.
    fn circuit(circuit: Circuit, inputs: Vec<Vec<bool>>) -> Session {
        Session {
            expected: circuit.eval(&inputs),
            circuit,
            hash: [7; 32],
            inputs,
        }
    }
}

/// Every endpoint's channel: two tamper layers, so that a cheater can alter two messages,
/// under a layer through which it may deviate inside the engine.
type Chan = Cheating<Tamper<Tamper<Framed<MemoryTransport>>>>;

/// One run: how every endpoint ended, and whether the cheater's first tamper plan fired.
struct Run {
    ends: Vec<End>,
    parties: usize,
    cheater: usize,
    fired: bool,
}

impl Run {
    /// Judges the run; see tests/all/verdict.
    fn judge(&self, expected: &[bool], checks: &[&str], blame: &Blame) -> Verdict {
        assert!(self.fired, "the tamper plan never fired");
        judge(
            &self.ends,
            self.parties,
            self.cheater,
            expected,
            checks,
            blame,
        )
    }
}

/// Runs `session` with the dealer (endpoint n) over memory channels; endpoint `cheater`
/// tampers according to `plans` (at most two, each altering one message).
fn run_session(
    rt: &tokio::runtime::Runtime,
    session: &Session,
    chunk_ands: usize,
    cheater: usize,
    plans: &[TamperPlan],
) -> Run {
    run_cheating(rt, session, chunk_ands, cheater, plans, None)
}

/// [`run_session`], and the cheater deviates inside the engine as `cheat` says (an
/// engine-level cheat needs no tamper plan: with `plans` empty nothing is altered on the
/// wire).
fn run_cheating(
    rt: &tokio::runtime::Runtime,
    session: &Session,
    chunk_ands: usize,
    cheater: usize,
    plans: &[TamperPlan],
    cheat: Option<Cheat>,
) -> Run {
    assert!(plans.len() <= 2 && (!plans.is_empty() || cheat.is_some()));
    let inert = TamperPlan {
        phase: Phase::Handshake,
        to: None,
        nth: NEVER,
        bit: 0,
    };
    let n = session.inputs.len();
    let opts = LocalOptions {
        chunk_ands,
        timeout: Duration::from_secs(20),
        ..LocalOptions::default()
    };
    let mut channels: Vec<Chan> = memory_channels(n + 1, n, opts.timeout)
        .into_iter()
        .enumerate()
        .map(|(i, ch)| {
            let (p0, p1, c) = if i == cheater {
                (
                    plans.first().copied().unwrap_or(inert),
                    plans.get(1).copied().unwrap_or(inert),
                    cheat,
                )
            } else {
                (inert, inert, None)
            };
            Cheating::new(Tamper::new(Tamper::new(ch, p0), p1), c)
        })
        .collect();
    let dealer = channels.pop();
    let (results, dealt) = rt.block_on(run_local_each(
        &session.circuit,
        session.hash,
        &session.inputs,
        &opts,
        channels.iter().collect(),
        dealer.as_ref(),
    ));
    let cheating = channels
        .iter()
        .chain(dealer.iter())
        .nth(cheater)
        .expect("the cheater is an endpoint");
    // The first plan must fire; a later one may come after the abort that the first causes.
    // An engine-level cheat always happens.
    let fired = plans.is_empty() || cheating.inner().inner().fired();
    Run {
        ends: ends(results, dealt, true),
        parties: n,
        cheater,
        fired,
    }
}

/// add.garble.rs for 3 parties with the dealer; endpoint `cheater` (3 = the dealer) tampers
/// according to `plan`.
fn run_tampered(cheater: usize, plan: TamperPlan) -> (Run, Vec<bool>) {
    let session = Session::add();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let run = run_session(&rt, &session, 64, cheater, &[plan]);
    (run, session.expected)
}

/// Asserts that an honest party detected the cheating with one of `want`, blaming the
/// cheater, and that nobody honest accepted a wrong output.
fn assert_caught(run: &Run, expected: &[bool], want: &[&str]) -> Verdict {
    assert_caught_blaming(run, expected, want, &Blame::only(run.cheater))
}

fn assert_caught_blaming(run: &Run, expected: &[bool], want: &[&str], blame: &Blame) -> Verdict {
    assert!(run.fired, "the tamper plan never fired");
    assert_detected(&run.ends, run.parties, run.cheater, expected, want, blame)
}

fn plan(phase: Phase, to: Option<usize>, nth: usize, bit: usize) -> TamperPlan {
    TamperPlan {
        phase,
        to,
        nth,
        bit,
    }
}

/// A corrupt dealer is outside the threat model (the dealer is trusted): the parties cannot
/// tell its bad material from a bad party, so their checks blame the party whose message
/// failed. These tests only demand an abort with a named check and never a wrong result.
fn any_party() -> Blame {
    Blame {
        must: vec![0, 1, 2],
        may: vec![0, 1, 2],
    }
}

#[test]
fn dealer_material() {
    // Message 0 to party 1 is its header; message 1 starts with a 4-byte length, then the
    // MACs of the input masks, which party 1 must present to the inputs' owners.
    let (run, expected) = run_tampered(3, plan(Phase::DealerMaterial, Some(1), 1, 32));
    let v = assert_caught_blaming(&run, &expected, &["input mask MAC check"], &any_party());
    // The owners (parties 0 and 2) check party 1's opening and blame it.
    assert!(v.detectors.iter().all(|&d| d == 0 || d == 2), "{v:?}");
}

#[test]
fn dealer_global_key() {
    let (run, expected) = run_tampered(3, plan(Phase::DealerMaterial, Some(2), 0, 9));
    assert_caught_blaming(
        &run,
        &expected,
        &[
            "input mask MAC check",
            "Beaver opening MAC check",
            "garbled row MAC check",
        ],
        &any_party(),
    );
}

#[test]
fn beaver_opening() {
    let (run, expected) = run_tampered(1, plan(Phase::BeaverOpening, Some(2), 0, 0));
    let v = assert_caught(&run, &expected, &["Beaver opening MAC check"]);
    assert_eq!(v.detectors, [2], "party 2 received the bad opening");
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
        let v = run.judge(&expected, &["garbled row MAC check"], &Blame::only(1));
        if v.caught() {
            assert_eq!(v.detectors, [0], "the evaluator decrypts the rows");
            caught = true;
            break;
        }
    }
    assert!(caught, "no tampered row was ever detected");
}

#[test]
fn garbled_row_label() {
    // A flipped label bit in the decrypted row gives the evaluator a wrong label of garbler
    // 2, which fails a later row's MAC check (at the evaluator) or, on an output wire, the
    // output label check at party 2, i.e. the cheater itself; only the first counts.
    let mut caught = false;
    for attempt in 0..40 {
        let row = attempt % 4;
        let bit = row * 3 * 128 + 2 * 128 + 5;
        let (run, expected) = run_tampered(2, plan(Phase::GarbledRows, Some(0), 0, bit));
        let v = run.judge(
            &expected,
            &["garbled row MAC check", "output label check"],
            &Blame::only(2),
        );
        if v.caught() {
            caught = true;
            break;
        }
    }
    assert!(caught, "no tampered label was ever detected");
}

#[test]
fn input_masks() {
    let (run, expected) = run_tampered(1, plan(Phase::InputMasks, Some(0), 0, 0));
    let v = assert_caught(&run, &expected, &["input mask MAC check"]);
    assert_eq!(
        v.detectors,
        [0],
        "party 0 owns the inputs whose masks were opened"
    );
}

#[test]
fn masked_inputs_equivocation() {
    // Party 1 tells party 2 a different masked input than the others. The input consistency
    // check runs before anything is garbled, so it is what catches this: party 2 sees that
    // party 1's own report contradicts what party 1 sent it (blaming party 1 alone), and
    // party 0 sees party 2's report differ from its own (blaming "one of party 1, party 2":
    // it cannot tell whether party 1 equivocated or party 2 misreports). No honest garbler is
    // blamed by a later garbled-row or output-label check.
    let (run, expected) = run_tampered(1, plan(Phase::MaskedInputs, Some(2), 0, 3));
    let v = assert_caught_blaming(
        &run,
        &expected,
        &["input consistency check"],
        &Blame::among(1, &[2]),
    );
    assert!(
        v.detectors.contains(&2),
        "party 2 compares party 1's report with what it got: {v:?}"
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
    let v = assert_caught(&run, &expected, &["output label check"]);
    assert_eq!(v.detectors, [1], "party 1 received the bad labels");
}

#[test]
fn output_shares() {
    let (run, expected) = run_tampered(1, plan(Phase::OutputShares, Some(2), 0, 0));
    let v = assert_caught(&run, &expected, &["output share MAC check"]);
    assert_eq!(v.detectors, [2], "party 2 received the bad shares");
}

#[test]
fn every_bit_of_a_beaver_message_matters_or_aborts() {
    // Sweep the first bits of party 2's Beaver opening to party 0: never a wrong result.
    for bit in 0..16 {
        let (run, expected) = run_tampered(2, plan(Phase::BeaverOpening, Some(0), 0, bit));
        let v = assert_caught(&run, &expected, &["Beaver opening MAC check"]);
        assert_eq!(v.detectors, [0]);
    }
}

fn input(reg: u32, party: u32, index: u32) -> Inst {
    Inst {
        out: Reg(reg),
        op: Op::Input(Input {
            party,
            input: index,
        }),
    }
}

/// Input equivocation that nothing but the input consistency check can stop: a corrupt
/// evaluator (party 0) that owns an input.
///
/// Outputs: `x0 ⊕ x1 ⊕ x2` and `x1 ∧ x2`. Party 0 sends masked input m to party 1 and ¬m to
/// party 2. Party 2 therefore sends the evaluator its label for ¬m, which the evaluator
/// (corrupt, so it does not mind) never feeds into an AND gate: x0 only reaches the XOR
/// output. Its label for that output is party 2's label of the *flipped* masked output, so
/// the evaluator announces to party 2 the flipped masked output, and to party 1 the true one:
/// each output label check passes, the garbled row and output share MAC checks have nothing
/// to object to, and without the input consistency check party 2 would output the XOR for
/// x0 ⊕ 1 while party 1 outputs it for x0: the honest parties would disagree, i.e. the
/// cheater used two different inputs. Only the comparison of the masked inputs every party
/// received (before any output share is released) catches it.
///
/// The parties cannot tell from one digest who sent whom what, so the check names the
/// suspects: party 1 blames "one of party 0, party 2", party 2 "one of party 0, party 1".
#[test]
fn masked_inputs_only_the_consistency_check_sees() {
    let circuit = Circuit {
        input_regs: vec![1, 1, 1],
        insts: vec![
            input(0, 0, 0),
            input(1, 1, 0),
            input(2, 2, 0),
            Inst {
                out: Reg(3),
                op: Op::Xor(Xor(Reg(0), Reg(1))),
            },
            Inst {
                out: Reg(3),
                op: Op::Xor(Xor(Reg(3), Reg(2))),
            },
            Inst {
                out: Reg(4),
                op: Op::And(And(Reg(1), Reg(2))),
            },
        ],
        max_reg_count: 5,
        output_regs: vec![Reg(3), Reg(4)],
        and_ops: 1,
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for (x0, x1, x2) in [
        (false, true, true),
        (true, false, true),
        (true, true, false),
    ] {
        let session = Session::circuit(circuit.clone(), vec![vec![x0], vec![x1], vec![x2]]);
        let run = run_session(
            &rt,
            &session,
            64,
            0,
            &[
                // Party 0's only masked input, to party 2 ...
                plan(Phase::MaskedInputs, Some(2), 0, 0),
                // ... and the first masked output it announces to party 2.
                plan(Phase::OutputLabels, Some(2), 0, 0),
            ],
        );
        let v = assert_caught_blaming(
            &run,
            &session.expected,
            &["input consistency check"],
            &Blame::among(0, &[1, 2]),
        );
        assert_eq!(
            v.detectors,
            [1, 2],
            "both honest parties compare the masked inputs"
        );
    }
}

/// Selective failure: garbler 1 adds its Δ to G_0 of the only AND gate `x0 ∧ x1`
/// ([`Cheat::HalfGateOffset`]), so the evaluator derives the masked output Λ_γ ⊕ Λ_α with
/// the label that matches it: the garbler's masked AND output check passes, and when
/// Λ_α = 1 only the evaluator's AND gate check stands between it and a wrong output (x1 = 0,
/// so the output is 0, and the offset would flip it). Λ_α = x0 ⊕ λ_α with λ_α uniform and
/// the evaluator's share of it secret, so the run aborts with probability exactly 1/2,
/// whatever x0. Every run must abort (AND gate check, found by the evaluator) or be
/// correct, and the abort counts A_0, A_1 over N runs with x0 = 0 and x0 = 1 must not
/// reveal x0.
///
/// Bounds (N = 1000 runs per input; A_x ~ Binomial(1000, 1/2) for a correct implementation;
/// tails summed exactly over the binomial distributions):
/// - P(|A_0 − A_1| > 130) = Σ_{|d| > 130} Σ_i P(A = i)·P(A = i − d) ≈ 5.1e-9;
/// - P(|A_x − 500| > 90) ≈ 9.5e-9 for each x.
///
/// So a correct implementation fails with probability below 2.5e-8 (union bound), and abort
/// rates that differ by 0.15 between the inputs are caught with probability ≈ 0.8 (the
/// difference of the counts has mean 150 and standard deviation about 22). Were the mask
/// known to the garbler (λ_α = 0, an unmasked input), Λ_α would be x0: every run with
/// x0 = 1 would abort and none with x0 = 0, A_1 − A_0 = 1000, far outside both bounds.
/// Without the AND gate check, every run with Λ_α = 1 gives the evaluator a wrong output,
/// which the judge rejects.
#[test]
fn selective_failure_does_not_depend_on_the_input() {
    const N: usize = 1000;
    let circuit = Circuit {
        input_regs: vec![1, 1],
        insts: vec![
            input(0, 0, 0),
            input(1, 1, 0),
            Inst {
                out: Reg(2),
                op: Op::And(And(Reg(0), Reg(1))),
            },
        ],
        max_reg_count: 3,
        output_regs: vec![Reg(2)],
        and_ops: 1,
    };
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let cheat = Cheat::HalfGateOffset { gate: 0 };
    let mut aborts = [0usize; 2];
    for (x0, count) in aborts.iter_mut().enumerate() {
        let session = Session::circuit(circuit.clone(), vec![vec![x0 == 1], vec![false]]);
        for _ in 0..N {
            let run = run_cheating(&rt, &session, 64, 1, &[], Some(cheat));
            let v = run.judge(&session.expected, &["AND gate check"], &Blame::only(1));
            if v.caught() {
                assert_eq!(v.detectors, [0], "the evaluator runs the AND gate check");
                *count += 1;
            } else {
                assert_eq!(
                    v.correct,
                    [0, 2],
                    "no abort, so everyone honest has the output"
                );
            }
        }
    }
    let [a0, a1] = aborts;
    println!("aborts: {a0} of {N} runs with x0 = 0, {a1} with x0 = 1");
    assert!(
        a0.abs_diff(a1) <= 130,
        "abort counts depend on the honest input: {a0} of {N} runs with x0 = 0, {a1} with x0 = 1"
    );
    for a in aborts {
        assert!(
            a.abs_diff(N / 2) <= 90,
            "abort count {a} of {N} is far from N/2 (counts {aborts:?})"
        );
    }
}

/// A two-party session: a random circuit of about 300 instructions (several chunks of 64
/// AND gates), with the dealer.
fn two_party_session() -> Session {
    let circuit = circuit_from_seed(41, 2, 300);
    let inputs = inputs_from_seed(&circuit, 41);
    Session::circuit(circuit, inputs)
}

/// The garbler's Δ offset on G_0 of gates across several chunks: whenever it matters
/// (Λ_α = 1) the evaluator's AND gate check catches it, blaming the garbler; otherwise the
/// output is right. Over the gates tried, at least one must be caught.
#[test]
fn half_gate_offsets_are_caught_by_the_and_gate_check() {
    let session = two_party_session();
    assert!(
        session.circuit.and_ops > 64,
        "the session spans several chunks"
    );
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let mut caught = 0;
    let gates = session.circuit.and_ops as u64;
    for gate in [0, 1, 5, 63, 64, 65, gates / 2, gates - 1] {
        let cheat = Cheat::HalfGateOffset { gate };
        let run = run_cheating(&rt, &session, 64, 1, &[], Some(cheat));
        let v = run.judge(&session.expected, &["AND gate check"], &Blame::only(1));
        if v.caught() {
            assert_eq!(v.detectors, [0], "the evaluator runs the AND gate check");
            caught += 1;
        }
    }
    assert!(caught > 0, "no offset gate was ever caught");
}

/// Bits of the garbler's half gates flipped on the wire (G_0, G_1 and the bit d of a gate):
/// the evaluator's labels or masked values go wrong, which the garbler's own masked AND
/// output check or the evaluator's AND gate check stops; never a wrong result. A flipped d
/// always changes the masked value, so that run must abort.
#[test]
fn flipped_half_gate_bits_never_give_a_wrong_result() {
    let session = two_party_session();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    // The first chunk has 64 gates: G_0, G_1 (256 bits per gate), then the d bits.
    let d_bits = 64 * 256;
    for bit in [0, 5, 128, 130, 256 * 7 + 1, d_bits, d_bits + 9] {
        let run = run_session(
            &rt,
            &session,
            64,
            1,
            &[plan(Phase::GarbledRows, Some(0), 0, bit)],
        );
        let v = run.judge(
            &session.expected,
            &["AND gate check", "output label check"],
            &Blame::only(1),
        );
        if bit >= d_bits {
            assert!(
                !v.correct.contains(&0),
                "a flipped d bit (bit {bit}) must stop the evaluator: {v:?}"
            );
        }
    }
}

/// The evaluator (party 0) flips one of its masked AND outputs to the garbler. Were the
/// garbler to use it, its check values would become functions of its shares of other wire
/// masks, which the evaluator could test against the garbler's digest; the garbler's masked
/// AND output check (labels against claimed values) stops it first, blaming the evaluator.
#[test]
fn masked_and_outputs_are_checked_by_the_garbler() {
    let session = two_party_session();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    for (nth, bit) in [(0, 0), (0, 13), (1, 2)] {
        let run = run_session(
            &rt,
            &session,
            64,
            0,
            &[plan(Phase::MaskedAndOutputs, Some(1), nth, bit)],
        );
        let v = assert_caught(&run, &session.expected, &["masked AND output check"]);
        assert_eq!(v.detectors, [1], "the garbler checks the masked outputs");
    }
}

/// The garbler's digest of its check values, altered: the evaluator's AND gate check fails.
#[test]
fn gate_check_digest() {
    let session = two_party_session();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let run = run_session(
        &rt,
        &session,
        64,
        1,
        &[plan(Phase::GateCheck, Some(0), 0, 77)],
    );
    let v = assert_caught(&run, &session.expected, &["AND gate check"]);
    assert_eq!(v.detectors, [0]);
}
