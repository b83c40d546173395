//! Chosen output parties (`--outputs`): only they learn the result, and no share of an
//! output mask, nor the evaluator's masked outputs, ever reaches another party. The frames
//! every party hands its transport are recorded and inspected.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::recorder::Recorder;
use mpc::channel::memory::memory_channels;
use mpc::channel::{Framed, Phase, decode_frame};
use mpc::engine::preprocess::SourceKind;
use mpc::local::{LocalOptions, run_local_each};
use mpc::program::Program;

/// Runs add.garble.rs for 3 parties where only `outputs` learn the result; returns each
/// party's output and, per receiving party, the phases of the frames sent to it.
async fn run(
    outputs: &[usize],
    evaluator: usize,
    source: SourceKind,
) -> (Vec<Option<Vec<bool>>>, Vec<Vec<Phase>>, Vec<bool>) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("programs/add.garble.rs");
    let program = Program::load(&path).expect("add.garble.rs compiles");
    let bits: Vec<Vec<bool>> = ["7u32", "20u32", "300u32"]
        .iter()
        .enumerate()
        .map(|(p, lit)| program.parse_input(p, lit).expect("valid input"))
        .collect();
    let with_dealer = source == SourceKind::Dealer;
    let peers = if with_dealer { 4 } else { 3 };
    let timeout = Duration::from_secs(30);
    let mut channels: Vec<Framed<Recorder<_>>> = memory_channels(peers, 3, timeout)
        .into_iter()
        .enumerate()
        .map(|(me, ch)| Framed::new(Recorder::new(ch.into_transport()), me, peers, 3, timeout))
        .collect();
    let dealer = if with_dealer { channels.pop() } else { None };
    let opts = LocalOptions {
        source,
        evaluator,
        outputs: Some(outputs.to_vec()),
        timeout,
        ..LocalOptions::default()
    };
    let (results, dealt) = run_local_each(
        program.circuit(),
        program.hash(),
        &bits,
        &opts,
        channels.iter().collect(),
        dealer.as_ref(),
    )
    .await;
    dealt.expect("the dealer finishes");
    let learned = results
        .into_iter()
        .map(|r| {
            r.expect("every party finishes")
                .expect("a party outcome")
                .output
        })
        .collect();
    let mut received: Vec<Vec<Phase>> = vec![Vec::new(); peers];
    for ch in channels.iter().chain(dealer.iter()) {
        for (to, frame) in ch.transport().sent() {
            let view = decode_frame(frame).expect("a frame");
            if let Some(phase) = Phase::from_tag(view.phase_tag) {
                received[to].push(phase);
            }
        }
    }
    (learned, received, program.eval_plain(&bits))
}

fn assert_only_outputs_learn(outputs: &[usize], evaluator: usize, source: SourceKind) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let (learned, received, expected) = rt.block_on(run(outputs, evaluator, source));
    for p in 0..3 {
        let phases = &received[p];
        if outputs.contains(&p) {
            assert_eq!(
                learned[p].as_ref(),
                Some(&expected),
                "party {p} learns the result"
            );
            assert!(
                phases.contains(&Phase::OutputShares),
                "party {p} gets output shares"
            );
        } else {
            assert_eq!(learned[p], None, "party {p} learns nothing");
            for secret in [Phase::OutputShares, Phase::OutputLabels] {
                assert!(
                    !phases.contains(&secret),
                    "party {p} is not an output party but was sent a {secret} frame ({source:?})"
                );
            }
            assert!(
                phases.contains(&Phase::OutputDone),
                "party {p} hears that the output parties are done"
            );
        }
    }
}

#[test]
fn only_output_parties_receive_output_shares_without_a_dealer() {
    assert_only_outputs_learn(&[1], 0, SourceKind::Ot);
    assert_only_outputs_learn(&[0, 2], 0, SourceKind::Ot);
}

#[test]
fn only_output_parties_receive_output_shares_with_a_dealer() {
    assert_only_outputs_learn(&[2], 1, SourceKind::Dealer);
}
