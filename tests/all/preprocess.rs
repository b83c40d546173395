//! Source B (OT-based preprocessing without a dealer): the full protocol against plaintext
//! evaluation, the relations of the produced material checked directly, and cheating in
//! every preprocessing phase.

use crate::verdict;

use std::time::Duration;

use futures_util::future::join_all;
use garble_lang::register_circuit::{Inst, Op, Reg, Xor};
use mpc::channel::Phase;
use mpc::channel::memory::memory_channels;
use mpc::channel::tamper::{Tamper, TamperPlan};
use mpc::cheat::{Cheat, Cheating};
use mpc::engine::preprocess::ot::{MAX_BATCH_LEAKY, OtSource};
use mpc::engine::preprocess::{ITEMS_PER_AND, Source, SourceKind};
use mpc::engine::share::{AuthBits, Block, Slots};
use mpc::engine::{EngineError, NoProgress};
use mpc::local::{LocalOptions, run_local, run_local_each};
use mpc::program::random::{circuit_from_seed, inputs_from_seed};
use verdict::{Blame, End, Verdict, assert_detected, ends, judge};

fn ot_options(evaluator: usize, chunk: usize) -> LocalOptions {
    LocalOptions {
        source: SourceKind::Ot,
        evaluator,
        chunk_ands: chunk,
        timeout: Duration::from_secs(60),
        ..LocalOptions::default()
    }
}

fn check_random(seed: u64, n: usize, ops: usize, chunk: usize) {
    let circuit = circuit_from_seed(seed, n, ops);
    let inputs = inputs_from_seed(&circuit, seed);
    let expected = circuit.eval(&inputs);
    let opts = ot_options((seed as usize) % n, chunk);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
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

#[test]
fn two_parties_random_circuits() {
    for seed in 0..6 {
        check_random(seed, 2, 20 + 37 * seed as usize, 1 + 7 * seed as usize);
    }
}

#[test]
fn three_parties_random_circuits() {
    for seed in 10..15 {
        check_random(seed, 3, 30 + 41 * (seed as usize - 10), 3 + seed as usize);
    }
}

#[test]
fn four_parties_random_circuits() {
    for seed in 20..24 {
        check_random(seed, 4, 25 + 53 * (seed as usize - 20), 2 + seed as usize);
    }
}

#[test]
fn five_parties() {
    check_random(31, 5, 300, 50);
}

#[test]
fn circuit_without_and_gates() {
    let mut circuit = circuit_from_seed(5, 2, 0);
    circuit.insts.push(Inst {
        out: Reg(0),
        op: Op::Xor(Xor(Reg(0), Reg(1))),
    });
    let inputs = inputs_from_seed(&circuit, 5);
    let expected = circuit.eval(&inputs);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let outcomes = rt
        .block_on(run_local(&circuit, [5; 32], &inputs, &ot_options(1, 16)))
        .expect("run");
    for o in &outcomes {
        assert_eq!(o.output.as_ref(), Some(&expected));
    }
}

/// Several batches produced while the online phase runs (more than 600,000 AND gates do not
/// fit one batch at B = 3; the planner makes two of about 325,000 with B = 4), so
/// preprocessing messages and garbled rows interleave on the same channel.
#[test]
fn batches_during_the_online_phase() {
    let circuit = circuit_from_seed(77, 2, 1_300_000);
    assert!(
        circuit.and_ops > MAX_BATCH_LEAKY / 3,
        "{} AND gates",
        circuit.and_ops
    );
    let inputs = inputs_from_seed(&circuit, 77);
    let expected = circuit.eval(&inputs);
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let outcomes = rt
        .block_on(run_local(
            &circuit,
            [77; 32],
            &inputs,
            &ot_options(1, 1 << 14),
        ))
        .expect("run");
    for o in &outcomes {
        assert_eq!(o.output.as_ref(), Some(&expected));
    }
}

/// Runs n sources over memory channels and takes `inputs` aBits, then the AND material in
/// the given chunk sizes. Returns each party's Δ and material.
fn produce(n: usize, inputs: usize, chunks: &[usize], cap: usize) -> Vec<(Block, AuthBits)> {
    let ands: usize = chunks.iter().sum();
    let channels = memory_channels(n, n, Duration::from_secs(60));
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let parties = channels.iter().enumerate().map(|(me, ch)| async move {
            let slots = Slots { me, n };
            let mut src = OtSource::start_with_batch_cap(
                ch,
                slots,
                [7; 32],
                inputs as u64,
                ands as u64,
                cap,
                &NoProgress,
            )
            .await?;
            let mut all = src.take(inputs).await?;
            for &c in chunks {
                all.append(src.take(c * ITEMS_PER_AND).await?);
            }
            Ok::<_, EngineError>((src.delta(), all))
        });
        join_all(parties)
            .await
            .into_iter()
            .map(|r| r.expect("preprocessing"))
            .collect()
    })
}

/// Every MAC against its key and Δ, and c = a ∧ b for every triple.
fn check_relations(n: usize, inputs: usize, ands: usize, mat: &[(Block, AuthBits)]) {
    let m = n - 1;
    let total = inputs + ITEMS_PER_AND * ands;
    for (i, (delta, bits)) in mat.iter().enumerate() {
        assert_eq!(delta & 1, 1, "Δ of party {i} must have its lowest bit set");
        assert_eq!(bits.len(), total, "party {i}");
    }
    for t in 0..total {
        for i in 0..n {
            let si = Slots { me: i, n };
            let x = mat[i].1.bits[t];
            for j in si.others() {
                let sj = Slots { me: j, n };
                let mac = mat[i].1.mk(t)[si.slot(j)];
                let key = mat[j].1.mk(t)[m + sj.slot(i)];
                let expected = if x { key ^ mat[j].0 } else { key };
                assert_eq!(
                    mac, expected,
                    "share {t}: MAC of party {i}'s bit towards {j}"
                );
            }
        }
    }
    let value = |t: usize| mat.iter().fold(false, |acc, (_, b)| acc ^ b.bits[t]);
    let mut ones = [0usize; 3];
    for g in 0..ands {
        let base = inputs + ITEMS_PER_AND * g;
        let (a, b, c) = (value(base), value(base + 1), value(base + 2));
        assert_eq!(c, a & b, "triple {g}");
        ones[0] += a as usize;
        ones[1] += b as usize;
        ones[2] += value(base + 3) as usize;
    }
    if ands >= 200 {
        // The shared values are random, not constant.
        for o in ones {
            assert!(o > ands / 4 && o < 3 * ands / 4, "{ones:?} of {ands}");
        }
    }
}

#[test]
fn material_satisfies_its_relations() {
    for n in 2..=4 {
        let chunks = [3, 100, 1, 250, 46];
        let ands: usize = chunks.iter().sum();
        let mat = produce(n, 13, &chunks, 1 << 19);
        check_relations(n, 13, ands, &mat);
    }
}

#[test]
fn material_of_many_batches() {
    // Batches of at most 90 gates: takes straddle batch boundaries.
    for n in [2, 3] {
        let chunks = [64, 64, 64, 64, 44];
        let ands: usize = chunks.iter().sum();
        let mat = produce(n, 5, &chunks, 90);
        check_relations(n, 5, ands, &mat);
    }
}

const NEVER: usize = usize::MAX;

/// One run: how every party ended (judged by tests/all/verdict) and whether the cheater cheated.
struct Run {
    ends: Vec<End>,
    cheater: usize,
    fired: bool,
}

/// Runs a random 3-party circuit with Source B; party `cheater` tampers with one message
/// according to `plan` (if any) and deviates inside the engine as `cheat` says (if any).
fn run_cheating(
    cheater: usize,
    plan: Option<TamperPlan>,
    cheat: Option<Cheat>,
) -> (Run, Vec<bool>) {
    run_rewriting(cheater, plan, None, cheat)
}

/// [`run_cheating`], with the planned message rewritten by `edit` instead of one bit
/// flipped.
fn run_rewriting(
    cheater: usize,
    plan: Option<TamperPlan>,
    edit: Option<fn(&mut Vec<u8>)>,
    cheat: Option<Cheat>,
) -> (Run, Vec<bool>) {
    let n = 3;
    let circuit = circuit_from_seed(99, n, 200);
    let inputs = inputs_from_seed(&circuit, 99);
    let expected = circuit.eval(&inputs);
    let opts = LocalOptions {
        timeout: Duration::from_secs(20),
        ..ot_options(0, 32)
    };
    let inert = TamperPlan {
        phase: Phase::Handshake,
        to: None,
        nth: NEVER,
        bit: 0,
    };
    let channels: Vec<Cheating<Tamper<_>>> = memory_channels(n, n, opts.timeout)
        .into_iter()
        .enumerate()
        .map(|(i, ch)| {
            if i == cheater {
                let plan = plan.unwrap_or(inert);
                let tamper = match edit {
                    Some(edit) => Tamper::rewriting(ch, plan, edit),
                    None => Tamper::new(ch, plan),
                };
                Cheating::new(tamper, cheat)
            } else {
                Cheating::new(Tamper::new(ch, inert), None)
            }
        })
        .collect();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (results, dealt) = rt.block_on(run_local_each(
        &circuit,
        [9; 32],
        &inputs,
        &opts,
        channels.iter().collect(),
        None::<&Cheating<Tamper<mpc::channel::Framed<mpc::channel::memory::MemoryTransport>>>>,
    ));
    // An engine-level cheat always happens; a tamper plan must have fired.
    let fired = plan.is_none() || channels[cheater].inner().fired();
    (
        Run {
            ends: ends(results, dealt, false),
            cheater,
            fired,
        },
        expected,
    )
}

fn run_tampered(cheater: usize, plan: TamperPlan) -> (Run, Vec<bool>) {
    run_cheating(cheater, Some(plan), None)
}

impl Run {
    fn judge(&self, expected: &[bool], want: &[&str], blame: &Blame) -> Verdict {
        assert!(self.fired, "the tamper plan never fired");
        judge(&self.ends, 3, self.cheater, expected, want, blame)
    }
}

/// Asserts that an honest party detected the cheating with one of `want`, blaming only the
/// cheater, and that no honest party accepted a wrong output.
fn assert_caught(run: &Run, expected: &[bool], want: &[&str]) -> Verdict {
    assert_caught_blaming(run, expected, want, &Blame::only(run.cheater))
}

fn assert_caught_blaming(run: &Run, expected: &[bool], want: &[&str], blame: &Blame) -> Verdict {
    assert!(run.fired, "the tamper plan never fired");
    assert_detected(&run.ends, 3, run.cheater, expected, want, blame)
}

/// The cheater or, for checks that cannot tell which of two parties lies, also the other
/// honest party next to it.
fn cheater_or_other(cheater: usize) -> Blame {
    let others: Vec<usize> = (0..3).filter(|&p| p != cheater).collect();
    Blame::among(cheater, &others)
}

fn plan(phase: Phase, nth: usize, bit: usize) -> TamperPlan {
    TamperPlan {
        phase,
        to: Some(0),
        nth,
        bit,
    }
}

#[test]
fn cheating_base_ot() {
    let checks = ["base OT", "OT extension consistency check"];
    // Message 0 is the cheater's request as base-OT receiver ((r_0, r_1) per OT, 64 bytes),
    // message 1 its answer as sender ((B_0, B_1) per OT). The lowest bit of a canonical
    // Ristretto255 encoding is always 0: flipping it is caught by party 0's base OT check
    // itself, in either message and whichever branch the receiver chose.
    for (nth, bit) in [
        (0, 0),
        (0, 8 * (64 * 5 + 32)),
        (1, 8 * 64 * 9),
        (1, 8 * (64 * 100 + 32)),
    ] {
        let (run, expected) = run_tampered(1, plan(Phase::BaseOt, nth, bit));
        let v = assert_caught(&run, &expected, &["base OT"]);
        assert_eq!(v.detectors, [0]);
    }
    // Any other bit of the request changes the chosen branch's key-agreement message (the
    // element itself, or the hash of the other one it is reconstructed with). If the element
    // still decodes, the keys party 1 receives for its own key-holder side no longer match
    // party 0's: that spoils only the cheater's keys, so its own OT extension check fails
    // and it aborts; the session never completes, and never with a wrong result.
    for bit in [3, 8 * 64 * 7 + 100, 8 * (64 * 40 + 32) + 9] {
        let (run, expected) = run_tampered(1, plan(Phase::BaseOt, 0, bit));
        let v = run.judge(&expected, &checks, &Blame::only(1));
        assert!(
            v.detectors.is_empty() || v.detectors == [0],
            "only party 0 got the bad request: {v:?}"
        );
        assert!(
            v.correct.is_empty(),
            "a spoilt base OT went unnoticed: {v:?}"
        );
    }
    // A bit of the answer reaches the keys only in the branch the receiver chose. Of each
    // pair of runs below (same OT, branch 0 and branch 1) exactly one hits the chosen
    // branch and must be caught by party 0; the other must be caught or correct.
    for l in 0..6 {
        let mut caught = 0;
        for j in 0..2 {
            let bit = 8 * (64 * (l * 21 + 1) + 32 * j) + 50 + l;
            let (run, expected) = run_tampered(1, plan(Phase::BaseOt, 1, bit));
            let v = run.judge(&expected, &checks, &Blame::only(1));
            if v.caught() {
                assert_eq!(v.detectors, [0]);
                caught += 1;
            }
        }
        assert!(
            caught > 0,
            "a flip in the chosen branch of OT {} went unnoticed",
            l * 21 + 1
        );
    }
}

/// Flips bit `bit` (modulo the bits there are) of a message after its 32-byte head, the
/// coin commitment that rides on it.
fn flip_after_commitment(msg: &mut [u8], bit: usize) {
    let body = (msg.len() - 32) * 8;
    let bit = 32 * 8 + bit % body;
    msg[bit / 8] ^= 1 << (bit % 8);
}

#[test]
fn cheating_ot_extension() {
    // Message 0 is the coin commitment (32 bytes) followed by the first chunk of
    // corrections (one bit per row and tree). A flip in tree i's correction reaches the key
    // holder's keys in column ik+j when bit ik+j of its Δ is 1, so it is missed only if that
    // tree's k bits of Δ are all 0: every run must be correct or caught, and with 8
    // different bits some run is caught.
    let flips: [fn(&mut Vec<u8>); 8] = [
        |m| flip_after_commitment(m, 12_345),
        |m| flip_after_commitment(m, 1_012_348),
        |m| flip_after_commitment(m, 2_012_351),
        |m| flip_after_commitment(m, 3_012_354),
        |m| flip_after_commitment(m, 4_012_357),
        |m| flip_after_commitment(m, 5_012_360),
        |m| flip_after_commitment(m, 6_012_363),
        |m| flip_after_commitment(m, 7_012_366),
    ];
    let mut caught = 0;
    for flip in flips {
        let (run, expected) =
            run_rewriting(1, Some(plan(Phase::OtExtension, 0, 0)), Some(flip), None);
        let v = run.judge(
            &expected,
            &["OT extension consistency check"],
            &Blame::only(1),
        );
        if v.caught() {
            assert_eq!(v.detectors, [0]);
            caught += 1;
        }
    }
    assert!(caught > 0, "no flipped u bit was ever detected");
    let (run, expected) = run_tampered(2, plan(Phase::OtExtension, 0, 17));
    let v = assert_caught(&run, &expected, &["coin toss commitment check"]);
    assert_eq!(v.detectors, [0]);
}

/// A malicious MAC holder's punctured OTs (SoftSpokenOT): message 2 of the base-OT phase
/// carries, for every tree and level, the XOR of the left children masked with k^1 and the
/// XOR of the right children masked with k^0. The key holder can unmask exactly one of the
/// two (the side opposite its bit of Δ). A flip there is a tree that is no tree: the key
/// holder reconstructs wrong leaves from that level down, its keys no longer match, and its
/// OT extension consistency check aborts naming the cheater. A flip in the other half
/// changes nothing.
#[test]
fn cheating_punctured_ot() {
    use mpc::engine::preprocess::ot::ggm::{K, TREES};
    let bit =
        |tree: usize, level: usize, side: usize| 8 * 16 * (2 * (tree * K + level) + side) + 37;
    let judge = |b: usize| {
        let (run, expected) = run_tampered(1, plan(Phase::BaseOt, 2, b));
        run.judge(
            &expected,
            &["OT extension consistency check"],
            &Blame::only(1),
        )
    };
    // Level 1 of tree 0 hangs on bit 0 of Δ, which is always 1: party 0 unmasks the left
    // half (side 0), never the right one.
    let v = judge(bit(0, 0, 0));
    assert_eq!(v.detectors, [0], "{v:?}");
    let v = judge(bit(0, 0, 1));
    assert_eq!(v.correct, [0, 2], "{v:?}");
    // Elsewhere which half matters depends on party 0's random Δ: every run is caught by
    // party 0 or correct.
    for (tree, level) in [(TREES / 2, K - 1), (TREES - 1, K / 2)] {
        for side in 0..2 {
            let v = judge(bit(tree, level, side));
            assert!(
                v.detectors == [0] || v.correct == [0, 2],
                "tree {tree}, level {level}, side {side}: {v:?}"
            );
        }
    }
}

#[test]
fn cheating_ot_check() {
    // Message 0 opens the coin, message 1 carries x̃ and t̃.
    let (run, expected) = run_tampered(1, plan(Phase::OtCheck, 0, 200));
    assert_caught(&run, &expected, &["coin toss commitment check"]);
    for bit in [5, 128 + 77] {
        let (run, expected) = run_tampered(2, plan(Phase::OtCheck, 1, bit));
        let v = assert_caught(&run, &expected, &["OT extension consistency check"]);
        assert_eq!(v.detectors, [0]);
    }
}

#[test]
fn cheating_abit_check() {
    // Party 1 alters its echo to party 0 of party 0's x̃ (bit 0), its own (bit 130) or party
    // 2's (bit 300). In the last case party 0 cannot tell whether party 1 lies or party 2
    // used different bits towards them.
    for bit in [0, 130, 300] {
        let (run, expected) = run_tampered(1, plan(Phase::ABitCheck, 0, bit));
        let blame = if bit == 300 {
            cheater_or_other(1)
        } else {
            Blame::only(1)
        };
        let v = assert_caught_blaming(&run, &expected, &["aBit consistency check"], &blame);
        assert_eq!(v.detectors, [0]);
    }
}

/// The attack the aBit consistency check exists for: party 1 authenticates one of its bits
/// as x towards party 0 and as ¬x towards party 2. It flips that bit in its OT-extension
/// correction of every tree it sends to party 2 and sends party 2 the x̃ of the flipped bits, so party
/// 2's OT extension consistency check passes (its keys are consistent keys for ¬x); only the
/// comparison of x̃ across parties sees that party 1 used different bits towards them.
///
/// Party 2 holds party 1's own echo, which contradicts what party 1 sent it, so it blames
/// party 1; party 0 only sees that party 2's echo differs from its own value, so it blames
/// "one of party 1, party 2".
#[test]
fn cheating_abit_equivocation() {
    // Rows in the first and the second 128-row block of the batch, towards either peer.
    for (towards, row) in [(2, 0), (2, 77), (0, 200)] {
        let cheat = Cheat::ABitEquivocation {
            towards,
            row,
            batch: 0,
        };
        let (run, expected) = run_cheating(1, None, Some(cheat));
        let v = assert_caught_blaming(
            &run,
            &expected,
            &["aBit consistency check"],
            &cheater_or_other(1),
        );
        assert_eq!(v.detectors, [0, 2], "both honest parties compare the x̃");
        match &run.ends[towards] {
            End::Failed(EngineError::Check { peer, .. }) => {
                assert_eq!(
                    peer, "party 1",
                    "party {towards} saw party 1 contradict itself"
                )
            }
            other => panic!("party {towards} did not detect: {other:?}"),
        }
    }
}

#[test]
fn cheating_leaky_and() {
    // Message 1 is the coin commitment (32 bytes), then e = z ⊕ r: a flip in e changes an
    // authenticated share, which the leaky AND check always catches; a flip in the
    // commitment fails the opening. Messages 2, 3 and 4 are the coin opening, the
    // commitment and the opening of the check value. A wrong sum cannot be pinned on one
    // party, so the leaky AND check may name every other party.
    let (run, expected) = run_tampered(1, plan(Phase::LeakyAnd, 1, 32 * 8 + 9));
    assert_caught_blaming(&run, &expected, &["leaky AND check"], &cheater_or_other(1));
    for (nth, bit) in [(1, 9), (2, 9)] {
        let (run, expected) = run_tampered(2, plan(Phase::LeakyAnd, nth, bit));
        assert_caught(&run, &expected, &["coin toss commitment check"]);
    }
    for nth in [3, 4] {
        let (run, expected) = run_tampered(1, plan(Phase::LeakyAnd, nth, 100));
        assert_caught_blaming(&run, &expected, &["leaky AND check"], &cheater_or_other(1));
    }
    // Message 0 (half-AND bits, then the U blocks) only matters where the receiver's x bit
    // is 1: every run must be correct or caught, and some must be caught.
    let mut caught = 0;
    for bit in 0..12 {
        let (run, expected) = run_tampered(1, plan(Phase::LeakyAnd, 0, bit * 37));
        if run
            .judge(&expected, &["leaky AND check"], &cheater_or_other(1))
            .caught()
        {
            caught += 1;
        }
    }
    assert!(caught > 0, "no flipped half-AND bit was ever detected");
}

/// Flips bit `bit` of byte `from_end` bytes before the end of a message.
fn flip_from_end(msg: &mut [u8], from_end: usize, bit: u8) {
    let at = msg.len() - 1 - from_end;
    msg[at] ^= 1 << bit;
}

/// The U values of the leaky AND check travel as 64 of their 128 bits. A flipped bit of a
/// U that reaches the check (the receiver's x is 1) must be caught, whichever of the 64
/// bits it is: the check compares exactly the bits that are sent. Message 0 ends with the U
/// of the batch's last triples, 8 bytes each.
#[test]
fn cheating_leaky_and_u_values() {
    let edits: [fn(&mut Vec<u8>); 24] = [
        |m| flip_from_end(m, 0, 7),
        |m| flip_from_end(m, 7, 0),
        |m| flip_from_end(m, 8, 3),
        |m| flip_from_end(m, 19, 5),
        |m| flip_from_end(m, 24, 1),
        |m| flip_from_end(m, 37, 6),
        |m| flip_from_end(m, 40, 0),
        |m| flip_from_end(m, 55, 7),
        |m| flip_from_end(m, 58, 2),
        |m| flip_from_end(m, 66, 4),
        |m| flip_from_end(m, 79, 7),
        |m| flip_from_end(m, 80, 0),
        |m| flip_from_end(m, 93, 3),
        |m| flip_from_end(m, 100, 6),
        |m| flip_from_end(m, 111, 1),
        |m| flip_from_end(m, 116, 5),
        |m| flip_from_end(m, 127, 7),
        |m| flip_from_end(m, 130, 2),
        |m| flip_from_end(m, 141, 0),
        |m| flip_from_end(m, 150, 4),
        |m| flip_from_end(m, 159, 6),
        |m| flip_from_end(m, 164, 3),
        |m| flip_from_end(m, 175, 7),
        |m| flip_from_end(m, 183, 1),
    ];
    let mut caught = 0;
    for edit in edits {
        let (run, expected) = run_rewriting(1, Some(plan(Phase::LeakyAnd, 0, 0)), Some(edit), None);
        if run
            .judge(&expected, &["leaky AND check"], &cheater_or_other(1))
            .caught()
        {
            caught += 1;
        }
    }
    // Each U is checked with probability 1/2 (the receiver's x bit): 24 misses in a row
    // happen with probability 2^-24.
    assert!(caught > 0, "no flipped bit of a U value was ever detected");
}

#[test]
fn cheating_bucketing() {
    for bit in [0, 3, 8 * 40] {
        let (run, expected) = run_tampered(2, plan(Phase::Bucketing, 0, bit));
        let v = assert_caught(&run, &expected, &["bucketing MAC check"]);
        assert_eq!(v.detectors, [0]);
    }
}

/// Not a test: throughput of the whole protocol with Source B
/// (`cargo test --release --test all preprocess::probe -- --ignored --nocapture`).
#[test]
#[ignore]
fn probe_throughput() {
    let sizes: Vec<usize> = std::env::var("PROBE_PARTIES")
        .ok()
        .map(|s| s.split(',').filter_map(|x| x.parse().ok()).collect())
        .unwrap_or_else(|| vec![2, 3, 4]);
    let ops: usize = std::env::var("PROBE_OPS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    for n in sizes {
        let circuit = circuit_from_seed(1, n, ops);
        let inputs: Vec<Vec<bool>> = circuit.input_regs.iter().map(|&c| vec![true; c]).collect();
        let mut opts = ot_options(0, 1 << 14);
        if std::env::var("PROBE_DEALER").is_ok() {
            // For comparison: the same run with the trusted dealer.
            opts.source = SourceKind::Dealer;
        }
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let t = std::time::Instant::now();
        let outcomes = rt
            .block_on(run_local(&circuit, [0; 32], &inputs, &opts))
            .expect("run");
        let secs = t.elapsed().as_secs_f64();
        let bytes: u64 = outcomes.iter().map(|o| o.stats.bytes_sent).sum();
        println!(
            "n={n}: {} ANDs in {secs:.2} s = {:.0} AND/s, {:.0} bytes sent per AND per party",
            circuit.and_ops,
            circuit.and_ops as f64 / secs,
            bytes as f64 / n as f64 / circuit.and_ops as f64
        );
        for p in &outcomes[0].stats.phases {
            println!("    {:<28} {:.2} s", p.phase, p.secs);
        }
    }
}

/// Not a test: the 1M-AND benchmark programs with Source B
/// (`cargo test --release --test all preprocess::probe_programs -- --ignored --nocapture`).
#[test]
#[ignore]
fn probe_programs() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let runs: [(&str, &[&str]); 2] = [
        (
            "programs/big.garble.rs",
            &["[[3u16; 32]; 32]", "[5u16; 32]"],
        ),
        (
            "programs/big3.garble.rs",
            &["[[3u16; 32]; 32]", "[5u16; 32]", "[1u16; 32]"],
        ),
    ];
    for (path, literals) in runs {
        let program = mpc::program::Program::load(&root.join(path)).expect("program compiles");
        let inputs: Vec<Vec<bool>> = literals
            .iter()
            .enumerate()
            .map(|(p, lit)| program.parse_input(p, lit).expect("valid input"))
            .collect();
        let circuit = program.circuit();
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        let t = std::time::Instant::now();
        let outcomes = rt
            .block_on(run_local(
                circuit,
                program.hash(),
                &inputs,
                &ot_options(0, 1 << 14),
            ))
            .expect("run");
        let secs = t.elapsed().as_secs_f64();
        assert_eq!(outcomes[0].output, Some(program.eval_plain(&inputs)));
        let bytes: u64 = outcomes.iter().map(|o| o.stats.bytes_sent).sum();
        let n = inputs.len();
        println!(
            "{path} (n={n}): {} ANDs in {secs:.2} s = {:.0} AND/s, {:.0} bytes sent per AND per party",
            circuit.and_ops,
            circuit.and_ops as f64 / secs,
            bytes as f64 / n as f64 / circuit.and_ops as f64
        );
    }
}
