//! The one place where the protocol meets the channel: it moves the messages that the
//! handshake ([`super::handshake`]) and the online state ([`super::online`]) produce, takes
//! preprocessed material from the [`Source`] when the state needs it, and times the phases.

use std::time::Instant;

use bytes::Bytes;
use futures_util::future::{try_join, try_join_all};
use garble_lang::register_circuit::Circuit;
use rand::RngCore;

use super::PartyConfig;
use super::circuit::{CircuitShape, InstSource, Instructions, SliceSource};
use super::config::{validate_circuit, validate_run};
use super::handshake::Handshake;
use super::online::{OUTPUT_DONE, Online, PendingChunk};
use crate::channel::{Channel, ChannelError, Phase};
use crate::engine::preprocess::dealer::{DealerRequest, DealerSource};
use crate::engine::preprocess::ot::OtSource;
use crate::engine::preprocess::{ITEMS_PER_AND, Source, SourceKind};
use crate::engine::share::{AuthBits, Slots};
use crate::engine::{EngineError, Progress, Stats, exchange};

/// The result of a successful run.
#[derive(Debug, Clone)]
pub struct PartyOutcome {
    /// The circuit's output bits; `None` for a party that is not among
    /// [`PartyConfig::outputs`].
    pub output: Option<Vec<bool>>,
    /// Figures about the run.
    pub stats: Stats,
}

/// Runs the whole protocol for one party with input bits `input`, on an in-memory circuit
/// (checked as a whole before the first message).
pub async fn run_party<C: Channel>(
    ch: &C,
    cfg: &PartyConfig,
    circuit: &Circuit,
    input: &[bool],
    progress: &dyn Progress,
) -> Result<PartyOutcome, EngineError> {
    let shape = CircuitShape::of(circuit);
    validate_run(cfg, &shape, input)?;
    validate_circuit(circuit)?;
    let mut insts = SliceSource::new(&circuit.insts);
    run_validated(ch, cfg, &shape, &mut insts, input, progress).await
}

/// Runs the whole protocol for one party with input bits `input`, on a circuit of shape
/// `shape` whose instructions arrive from `insts` as they are needed, so that memory does
/// not grow with the number of instructions. Every instruction is checked as it arrives; a
/// stream that does not match `shape`, or that fails, stops the run.
pub async fn run_party_streamed<C: Channel>(
    ch: &C,
    cfg: &PartyConfig,
    shape: &CircuitShape,
    insts: &mut dyn InstSource,
    input: &[bool],
    progress: &dyn Progress,
) -> Result<PartyOutcome, EngineError> {
    validate_run(cfg, shape, input)?;
    run_validated(ch, cfg, shape, insts, input, progress).await
}

async fn run_validated<C: Channel>(
    ch: &C,
    cfg: &PartyConfig,
    circuit: &CircuitShape,
    insts: &mut dyn InstSource,
    input: &[bool],
    progress: &dyn Progress,
) -> Result<PartyOutcome, EngineError> {
    let stream = Instructions::new(circuit, insts);
    let mut stats = Stats::default();
    let slots = Slots {
        me: cfg.me,
        n: cfg.parties,
    };

    let t = Instant::now();
    progress.phase("handshake", 0);
    let run_id = handshake(ch, cfg).await?;
    progress.finish();
    stats.record("handshake", t.elapsed());

    let output = match cfg.source {
        SourceKind::Dealer => {
            let t = Instant::now();
            progress.phase("dealer", 0);
            let request = DealerRequest {
                run_id,
                program_hash: cfg.program_hash,
                parties: cfg.parties as u32,
                inputs: circuit.total_inputs() as u64,
                ands: circuit.and_ops as u64,
            };
            let source = DealerSource::start(ch, slots, request).await?;
            progress.finish();
            stats.record("dealer setup", t.elapsed());
            online(
                ch, cfg, circuit, stream, source, input, progress, &mut stats,
            )
            .await?
        }
        SourceKind::Ot => {
            let t = Instant::now();
            let source = OtSource::start(
                ch,
                slots,
                run_id,
                circuit.total_inputs() as u64,
                circuit.and_ops as u64,
                progress,
            )
            .await?;
            stats.record("preprocessing setup", t.elapsed());
            online(
                ch, cfg, circuit, stream, source, input, progress, &mut stats,
            )
            .await?
        }
    };
    stats.and_gates = circuit.and_ops as u64;
    stats.bytes_sent = ch.bytes_sent();
    Ok(PartyOutcome { output, stats })
}

/// The same message to each of `to`.
fn to_all(to: &[usize], msg: Bytes) -> Vec<(usize, Bytes)> {
    to.iter().map(|&j| (j, msg.clone())).collect()
}

/// The handshake's two rounds; returns the run id.
async fn handshake<C: Channel>(ch: &C, cfg: &PartyConfig) -> Result<[u8; 32], EngineError> {
    let mut nonce = [0u8; 32];
    rand::rng().fill_bytes(&mut nonce);
    let hs = Handshake::new(cfg, nonce);
    let others: Vec<usize> = (0..cfg.parties).filter(|&j| j != cfg.me).collect();
    let hellos = exchange(ch, Phase::Handshake, to_all(&others, hs.hello()), &others).await?;
    let agreed = hs.receive(&others, &hellos)?;
    let digest = Bytes::copy_from_slice(&agreed.digest);
    let digests = exchange(ch, Phase::Handshake, to_all(&others, digest), &others).await?;
    hs.confirm(&agreed, &others, &digests)?;
    Ok(agreed.run_id)
}

/// Input processing, garbling and evaluation, and the output, with material from `source`.
#[allow(clippy::too_many_arguments)]
async fn online<C: Channel, S: Source>(
    ch: &C,
    cfg: &PartyConfig,
    circuit: &CircuitShape,
    mut stream: Instructions<'_>,
    mut source: S,
    input: &[bool],
    progress: &dyn Progress,
    stats: &mut Stats,
) -> Result<Option<Vec<bool>>, EngineError> {
    let mut st = Online::new(cfg, circuit, source.delta());
    let others = st.others();

    let t = Instant::now();
    progress.phase("inputs", 0);
    let input_insts = stream.inputs()?;
    let abits = source.take(circuit.total_inputs()).await?;
    let (mut round, out) = st.start_inputs(abits, &input_insts);
    drop(input_insts);
    let received = exchange(ch, Phase::InputMasks, out, &others).await?;
    let mine = st.mask_inputs(&mut round, input, &received)?;
    let received = exchange(ch, Phase::MaskedInputs, to_all(&others, mine), &others).await?;
    let digests = st.receive_masked_inputs(&mut round, &received)?;
    let received = exchange(
        ch,
        Phase::InputConsistency,
        to_all(&others, digests),
        &others,
    )
    .await?;
    st.check_masked_inputs(&round, &received)?;
    if st.is_evaluator() {
        let received = exchange(ch, Phase::InputLabels, Vec::new(), &others).await?;
        st.receive_input_labels(round, &received)?;
    } else {
        let labels = vec![(cfg.evaluator, st.input_labels(&round))];
        exchange(ch, Phase::InputLabels, labels, &[]).await?;
    }
    progress.finish();
    stats.record("inputs", t.elapsed());

    let t = Instant::now();
    progress.phase("garbling and evaluating", circuit.and_ops as u64);
    let mut chunk = Vec::new();
    // Evaluator: the previous chunk, evaluated while the garblers garble the next one.
    let mut pending: Option<PendingChunk> = None;
    loop {
        let gates = stream.next_chunk(cfg.chunk_ands, &mut chunk)?;
        if chunk.is_empty() {
            break;
        }
        // Garbler with half gates: the evaluator's masked AND outputs of chunks it has
        // evaluated come, on the ordered channel, before its messages of this chunk.
        while st.masked_outputs_due() {
            let msg = ch.recv(cfg.evaluator, Phase::MaskedAndOutputs).await?;
            st.take_masked_outputs(&msg)?;
        }
        // The evaluator takes the garblers' rows of the previous chunk before it takes new
        // material: a source that talks to the other parties (OT preprocessing) sends
        // after those rows on the same ordered channels.
        let rows = match &pending {
            Some(chunk) => garbled_rows(ch, &st, &others, chunk.gates()).await?,
            None => Vec::new(),
        };
        let mat = source.take(gates * ITEMS_PER_AND).await?;
        let data = st.pass_a(&chunk, gates, mat)?;
        if gates > 0 {
            let out = st.opening_messages(&data);
            try_join_all(
                out.into_iter()
                    .map(|(j, msg)| ch.send(j, Phase::BeaverOpening, msg)),
            )
            .await?;
        }
        if let Some(chunk) = pending.take() {
            evaluate(ch, &mut st, &others, chunk, &rows).await?;
        }
        let shares = if gates > 0 {
            let received =
                try_join_all(others.iter().map(|&j| ch.recv(j, Phase::BeaverOpening))).await?;
            let (d, f) = st.verify_openings(&data, &others, &received)?;
            st.and_shares(&data, &d, &f)
        } else {
            AuthBits::new(others.len())
        };
        if st.is_evaluator() {
            pending = Some(st.pending(std::mem::take(&mut chunk), gates, shares));
        } else if let Some(rows) = st.garble(std::mem::take(&mut chunk), &data, &shares)? {
            #[cfg(feature = "testing")]
            let rows = st.offset_half_gate(ch.cheat(), gates, rows);
            ch.send(cfg.evaluator, Phase::GarbledRows, rows).await?;
        }
        st.chunk_done(gates);
        progress.advance(gates as u64);
    }
    if let Some(chunk) = pending.take() {
        let rows = garbled_rows(ch, &st, &others, chunk.gates()).await?;
        evaluate(ch, &mut st, &others, chunk, &rows).await?;
    }
    if st.uses_half_gates() && !st.is_evaluator() {
        gate_check(ch, &mut st, cfg).await?;
    }
    progress.finish();
    stats.record("garbling and evaluating", t.elapsed());

    let t = Instant::now();
    progress.phase("output", 0);
    let out = outputs(ch, &st, &others, source.transcript()).await?;
    progress.finish();
    stats.record("output", t.elapsed());
    Ok(out)
}

/// Evaluator: evaluates a chunk and sends the garbler what the state returns for it (with
/// half gates, the chunk's masked AND outputs; `garblers` are the other parties).
async fn evaluate<C: Channel>(
    ch: &C,
    st: &mut Online<'_>,
    garblers: &[usize],
    chunk: PendingChunk,
    rows: &[Bytes],
) -> Result<(), EngineError> {
    if let Some(msg) = st.evaluate(chunk, rows)? {
        ch.send(garblers[0], Phase::MaskedAndOutputs, msg).await?;
    }
    Ok(())
}

/// Half gates, garbler, after the last chunk: takes the remaining masked AND outputs and
/// sends the digest of its check values (the evaluator compares it in [`outputs`]).
async fn gate_check<C: Channel>(
    ch: &C,
    st: &mut Online<'_>,
    cfg: &PartyConfig,
) -> Result<(), EngineError> {
    while st.masked_outputs_waiting() {
        let msg = ch.recv(cfg.evaluator, Phase::MaskedAndOutputs).await?;
        st.take_masked_outputs(&msg)?;
    }
    ch.send(cfg.evaluator, Phase::GateCheck, st.gate_check())
        .await?;
    Ok(())
}

/// Evaluator: every garbler's rows for a chunk of `gates` AND gates, their sizes checked.
async fn garbled_rows<C: Channel>(
    ch: &C,
    st: &Online<'_>,
    garblers: &[usize],
    gates: usize,
) -> Result<Vec<Bytes>, EngineError> {
    if gates == 0 {
        return Ok(Vec::new());
    }
    let rows = exchange(ch, Phase::GarbledRows, Vec::new(), garblers).await?;
    st.check_rows(gates, &rows)?;
    Ok(rows)
}

/// The transcript comparison, then the output to the output parties, who then tell the
/// others that they have it.
async fn outputs<C: Channel>(
    ch: &C,
    st: &Online<'_>,
    others: &[usize],
    run: [u8; 32],
) -> Result<Option<Vec<bool>>, EngineError> {
    let mine = Bytes::copy_from_slice(&run);
    let received = if st.uses_half_gates() && st.is_evaluator() {
        // The transcript goes out at once; the garbler's digest of its AND gate check values
        // comes before its transcript, and is compared before anything of the output is
        // sent, so the check costs no round trip of its own.
        let garbler = others[0];
        ch.send(garbler, Phase::InputConsistency, mine).await?;
        let digest = ch.recv(garbler, Phase::GateCheck).await?;
        st.verify_gate_check(&digest)?;
        vec![ch.recv(garbler, Phase::InputConsistency).await?]
    } else {
        exchange(ch, Phase::InputConsistency, to_all(others, mine), others).await?
    };
    st.check_transcripts(&run, &received)?;

    let plan = st.output_plan();
    let sends = try_join_all(plan.learners.iter().map(|&j| {
        let (labels, shares) = st.output_messages(j);
        async move {
            if let Some(l) = labels {
                ch.send(j, Phase::OutputLabels, l).await?;
            }
            ch.send(j, Phase::OutputShares, shares).await
        }
    }));
    let labels_from = plan.labels_from;
    let recvs = try_join_all(plan.sources.iter().map(|&j| async move {
        let labels = if Some(j) == labels_from {
            Some(ch.recv(j, Phase::OutputLabels).await?)
        } else {
            None
        };
        let shares = ch.recv(j, Phase::OutputShares).await?;
        Ok::<_, ChannelError>((labels, shares))
    }));
    let (_, received) = try_join(sends, recvs).await?;
    if !plan.i_learn {
        // Wait for every output party to say it has the result, so that this party's
        // exit 0 means the computation succeeded.
        let done =
            try_join_all(plan.learners.iter().map(|&j| ch.recv(j, Phase::OutputDone))).await?;
        st.check_done(&plan.learners, &done)?;
        return Ok(None);
    }
    let learned = st.learn(&plan.sources, &received)?;
    try_join_all(
        plan.non_learners
            .iter()
            .map(|&j| ch.send(j, Phase::OutputDone, Bytes::from_static(OUTPUT_DONE))),
    )
    .await?;
    Ok(Some(learned))
}
