//! Tests of the base OTs: keys agree, unchosen keys stay hidden, bad messages fail the
//! base OT check naming their sender.

use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::*;
use crate::channel::PeerNames;
use crate::channel::memory::memory_channels;
use crate::channel::tamper::{Tamper, TamperPlan};
use crate::engine::share::Slots;

const RUN: [u8; 32] = [7; 32];

fn channels(n: usize) -> Vec<Tamper<impl Channel>> {
    memory_channels(n, n, Duration::from_secs(20))
        .into_iter()
        .map(Tamper::honest)
        .collect()
}

/// Runs the base OTs of all parties as futures of one task (as `mpc run` does); a party
/// that fails tells the others, as the engine does.
fn run_parties<C: Channel>(
    channels: &[C],
    deltas: &[Block],
    run_id: [u8; 32],
) -> Vec<Result<Vec<PairSeeds>, EngineError>> {
    let n = channels.len();
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(join_all(channels.iter().enumerate().map(|(me, ch)| {
        let slots = Slots { me, n };
        let delta = deltas[me];
        async move {
            let mut ctx = Ctx {
                ch,
                slots,
                others: slots.others().collect(),
                names: PeerNames::new(n),
                delta,
                batch: 0,
                run_id,
                rng: Prg::from_entropy(),
                transcript: crate::engine::transcript::Transcript::new(&run_id),
            };
            let out = run(&mut ctx).await;
            if let Err(e) = &out {
                ch.abort(&e.to_string()).await;
            }
            out
        }
    })))
}

fn random_deltas(n: usize) -> Vec<Block> {
    let mut rng = Prg::from_entropy();
    (0..n).map(|_| rng.block() | 1).collect()
}

fn bit(choices: Block, l: usize) -> usize {
    ((choices >> l) & 1) as usize
}

/// One batch of OTs between a receiver and a sender, run directly.
struct Batch {
    sent: Vec<[Key; 2]>,
    chosen: Vec<Key>,
    receiver: Receiver,
    answer: Bytes,
}

fn direct(dom: Domain, choices: Block, receive_coins: &[Coin], send_coins: &[Coin]) -> Batch {
    let receiver = Receiver::start(dom, choices, receive_coins);
    let answered = answer(dom, &receiver.request, send_coins).expect("honest request");
    let chosen = receiver.finish(&answered.msg).expect("honest answer");
    Batch {
        sent: answered.keys,
        chosen,
        receiver,
        answer: answered.msg,
    }
}

fn fresh(dom: Domain, choices: Block) -> Batch {
    let mut rng = Prg::from_entropy();
    let (rc, sc) = (coins(&mut rng, 2 * KAPPA), coins(&mut rng, 2 * KAPPA));
    direct(dom, choices, &rc, &sc)
}

#[test]
fn keys_agree_for_every_choice_pattern() {
    let dom = Domain::new(RUN, 1, 0);
    let mut rng = Prg::from_entropy();
    let patterns = [
        0,
        !0,
        1,
        1 << 127,
        0xaaaa_aaaa_aaaa_aaaa_aaaa_aaaa_aaaa_aaaa,
        0x5555_5555_5555_5555_5555_5555_5555_5555,
        rng.block(),
        rng.block() | 1,
    ];
    for choices in patterns {
        let Batch { sent, chosen, .. } = fresh(dom, choices);
        assert_eq!((sent.len(), chosen.len()), (KAPPA, KAPPA));
        for l in 0..KAPPA {
            let c = bit(choices, l);
            assert_eq!(chosen[l], sent[l][c], "OT {l}, choices {choices:#x}");
            assert_ne!(chosen[l], sent[l][1 - c], "OT {l}, choices {choices:#x}");
        }
    }
}

#[test]
fn parties_agree_on_the_keys_in_both_directions() {
    for n in [2, 3] {
        let deltas = random_deltas(n);
        let chans = channels(n);
        let seeds: Vec<Vec<PairSeeds>> = run_parties(&chans, &deltas, RUN)
            .into_iter()
            .map(|r| r.expect("honest run"))
            .collect();
        for i in 0..n {
            for j in (0..n).filter(|&j| j != i) {
                // P_i sends, P_j receives with the bits of Δ_j.
                let sender = &seeds[i][Slots { me: i, n }.slot(j)];
                let receiver = &seeds[j][Slots { me: j, n }.slot(i)];
                for l in 0..KAPPA {
                    let c = bit(deltas[j], l);
                    assert_eq!(receiver.chosen[l], sender.sent[l][c], "{i}→{j}, OT {l}");
                    assert_ne!(receiver.chosen[l], sender.sent[l][1 - c]);
                }
            }
        }
    }
}

#[test]
fn unchosen_keys_look_independent() {
    let dom = Domain::new(RUN, 0, 1);
    let choices = Prg::from_entropy().block();
    let Batch {
        sent,
        chosen,
        receiver,
        answer,
    } = fresh(dom, choices);
    let mut all: Vec<Key> = sent.iter().flatten().copied().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 2 * KAPPA, "two keys of the batch coincide");
    for l in 0..KAPPA {
        let c = bit(choices, l);
        // The two keys of an OT differ in about half their bits (fails with
        // probability below 2^-40 for independent uniform keys).
        let distance: u32 = sent[l][0]
            .iter()
            .zip(&sent[l][1])
            .map(|(a, b)| (a ^ b).count_ones())
            .sum();
        assert!(
            (24..=104).contains(&distance),
            "OT {l}: distance {distance}"
        );
        // What the receiver can compute with its secret does not give the other key.
        let [b0, b1] = decode_pair(&answer, l, "answer").expect("honest answer");
        let transcript = [
            &receiver.request[l * PER_OT..(l + 1) * PER_OT],
            &answer[l * PER_OT..(l + 1) * PER_OT],
        ];
        let a = receiver.half_secrets[l] + receiver.half_secrets[l];
        for guess_point in [a * b0, a * b1] {
            let guess = dom.key(l, 1 - c as u8, transcript, &guess_point.compress());
            assert_ne!(guess, sent[l][1 - c], "OT {l}");
        }
        assert_eq!(chosen[l], sent[l][c]);
    }
}

#[test]
fn keys_depend_on_run_index_and_direction() {
    // The same coins for every OT: only the index (and then the run or the direction)
    // tells the OTs apart.
    let mut rng = Prg::from_entropy();
    let (rc, sc) = (coins(&mut rng, 2), coins(&mut rng, 2));
    let rc: Vec<Coin> = rc.iter().cycle().take(2 * KAPPA).copied().collect();
    let sc: Vec<Coin> = sc.iter().cycle().take(2 * KAPPA).copied().collect();
    let choices = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
    let base = direct(Domain::new(RUN, 0, 1), choices, &rc, &sc);
    let mut chosen = base.chosen.clone();
    chosen.sort();
    chosen.dedup();
    assert_eq!(chosen.len(), KAPPA, "two OT indices gave the same key");
    let other_run = direct(Domain::new([8; 32], 0, 1), choices, &rc, &sc);
    let reversed = direct(Domain::new(RUN, 1, 0), choices, &rc, &sc);
    for other in [other_run, reversed] {
        for l in 0..KAPPA {
            assert_eq!(other.chosen[l], other.sent[l][bit(choices, l)]);
            for j in 0..2 {
                assert_ne!(other.sent[l][j], base.sent[l][j], "OT {l}, key {j}");
            }
        }
    }
    // Through the whole protocol too: two runs that differ only in the run id.
    let deltas = random_deltas(2);
    let a = run_parties(&channels(2), &deltas, RUN);
    let b = run_parties(&channels(2), &deltas, [9; 32]);
    let (a, b) = (a[0].as_ref().unwrap(), b[0].as_ref().unwrap());
    assert!((0..KAPPA).all(|l| a[0].chosen[l] != b[0].chosen[l]));
}

/// The honest request of a batch with `choices`, and that batch's receiver.
fn honest_request(choices: Block) -> Receiver {
    let mut rng = Prg::from_entropy();
    Receiver::start(Domain::new(RUN, 1, 0), choices, &coins(&mut rng, 2 * KAPPA))
}

fn sender_rejects(request: &[u8]) -> String {
    let coins = coins(&mut Prg::from_entropy(), 2 * KAPPA);
    match answer(Domain::new(RUN, 1, 0), request, &coins) {
        Ok(_) => panic!("a bad request was accepted"),
        Err(detail) => detail,
    }
}

#[test]
fn sender_rejects_bad_requests() {
    let request = honest_request(0x1234).request.to_vec();
    assert!(
        answer(
            Domain::new(RUN, 1, 0),
            &request,
            &coins(&mut Prg::from_entropy(), 2 * KAPPA)
        )
        .is_ok()
    );
    for len in [
        0,
        32,
        MESSAGE - PER_OT,
        MESSAGE - 1,
        MESSAGE + 1,
        2 * MESSAGE,
    ] {
        let mut bad = request.clone();
        bad.resize(len, 0);
        assert!(sender_rejects(&bad).contains("bytes"), "length {len}");
    }
    // The lowest bit set (a "negative" field element), the highest bit set, and a
    // non-canonical encoding (p + 1) are never encodings of a group element.
    let mut non_canonical = [0xff; 32];
    non_canonical[0] = 0xee;
    non_canonical[31] = 0x7f;
    for (l, j) in [(0, 0), (5, 1), (KAPPA - 1, 1)] {
        let at = l * PER_OT + j * POINT;
        for edit in [0usize, 1, 2, 3] {
            let mut bad = request.clone();
            match edit {
                0 => bad[at] ^= 1,
                1 => bad[at + 31] ^= 0x80,
                2 => bad[at..at + POINT].copy_from_slice(&non_canonical),
                _ => bad[at..at + POINT].fill(0), // the identity
            }
            let detail = sender_rejects(&bad);
            assert!(
                detail.contains(&format!("element {j} of OT {l} ")),
                "{detail}"
            );
        }
    }
    // A receiver that makes m_0 = r_0 + H(0, r_1) the identity.
    let mut bad = request.clone();
    let l = 7;
    let dom = Domain::new(RUN, 1, 0);
    let r1 = &request[l * PER_OT + POINT..(l + 1) * PER_OT];
    let r0 = -dom.hash_to_group(l, 0, r1);
    bad[l * PER_OT..l * PER_OT + POINT].copy_from_slice(r0.compress().as_bytes());
    let detail = sender_rejects(&bad);
    assert!(
        detail.contains("identity") && detail.contains("OT 7"),
        "{detail}"
    );
}

#[test]
fn receiver_rejects_bad_answers_whatever_it_chose() {
    for choices in [0, !0] {
        let receiver = honest_request(choices);
        let coins = coins(&mut Prg::from_entropy(), 2 * KAPPA);
        let answer = answer(Domain::new(RUN, 1, 0), &receiver.request, &coins)
            .expect("honest request")
            .msg;
        assert!(receiver.finish(&answer).is_ok());
        for len in [0, MESSAGE - 1, MESSAGE + PER_OT] {
            let mut bad = answer.to_vec();
            bad.resize(len, 0);
            let detail = receiver.finish(&bad).expect_err("wrong length accepted");
            assert!(detail.contains("bytes"), "{detail}");
        }
        // Both branches, used or not: rejecting only the used one would tell the sender
        // the choice.
        for (l, j) in [(0, 0), (0, 1), (77, 0), (KAPPA - 1, 1)] {
            let at = l * PER_OT + j * POINT;
            for identity in [false, true] {
                let mut bad = answer.to_vec();
                if identity {
                    bad[at..at + POINT].fill(0);
                } else {
                    bad[at] ^= 1;
                }
                let detail = receiver.finish(&bad).expect_err("bad element accepted");
                assert!(
                    detail.contains(&format!("element {j} of OT {l} ")),
                    "{detail}"
                );
            }
        }
    }
}

/// Runs 3 parties of which party 1 rewrites its `nth` base-OT message to party 0; party 0
/// must fail the base OT check naming party 1.
fn assert_party_0_blames_party_1(nth: usize, edit: fn(&mut Vec<u8>)) {
    let mut chans = channels(3);
    let inner = chans.remove(1).into_inner();
    let plan = TamperPlan {
        phase: Phase::BaseOt,
        to: Some(0),
        nth,
        bit: 0,
    };
    chans.insert(1, Tamper::rewriting(inner, plan, edit));
    let results = run_parties(&chans, &random_deltas(3), RUN);
    match &results[0] {
        Err(EngineError::Check { check, peer, .. }) => {
            assert_eq!((*check, peer.as_str()), (BASE_OT_CHECK, "party 1"));
        }
        Err(e) => panic!("party 0 failed otherwise: {e}"),
        Ok(_) => panic!("party 0 accepted a bad base-OT message"),
    }
}

#[test]
fn a_bad_message_fails_the_base_ot_check_naming_its_sender() {
    // Message 0 is party 1's request (as receiver), message 1 its answer (as sender).
    for nth in [0, 1] {
        assert_party_0_blames_party_1(nth, |m| m.truncate(m.len() - 1));
        assert_party_0_blames_party_1(nth, |m| m.extend_from_slice(&[0; 32]));
        assert_party_0_blames_party_1(nth, |m| m[5 * PER_OT + POINT] ^= 1);
        assert_party_0_blames_party_1(nth, |m| m[9 * PER_OT..9 * PER_OT + POINT].fill(0));
    }
}

/// CPU time of this process so far, from /proc (Linux; clock ticks of 10 ms).
fn cpu_secs() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// Not a test: wall and CPU time of the base OTs for 2 and 3 parties
/// (`cargo test --release --lib measure_base_ot -- --ignored --nocapture`).
#[test]
#[ignore]
fn measure_base_ot() {
    const RUNS: usize = 15;
    for n in [2, 3] {
        let deltas = random_deltas(n);
        let cpu_start = cpu_secs();
        let mut times: Vec<f64> = (0..RUNS)
            .map(|_| {
                let chans = channels(n);
                let start = Instant::now();
                let out = run_parties(&chans, &deltas, RUN);
                let secs = start.elapsed().as_secs_f64();
                assert!(out.iter().all(|r| r.is_ok()));
                secs
            })
            .collect();
        let cpu = cpu_start
            .zip(cpu_secs())
            .map(|(a, b)| (b - a) / RUNS as f64);
        times.sort_by(f64::total_cmp);
        println!(
            "base OT, {n} parties: wall median {:.1} ms (min {:.1} ms), CPU {} per run",
            times[RUNS / 2] * 1e3,
            times[0] * 1e3,
            cpu.map_or("n/a".to_string(), |c| format!("{:.1} ms", c * 1e3)),
        );
    }
}
