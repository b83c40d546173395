//! Runs every party and the dealer of a session in one process over the in-memory channel:
//! `mpc run`, the protocol tests and the benchmarks use it.

use std::time::Duration;

use garble_lang::register_circuit::Circuit;

use crate::channel::Channel;
use crate::channel::Framed;
use crate::channel::memory::{MemoryTransport, memory_channels};
use crate::engine::preprocess::SourceKind;
use crate::engine::preprocess::dealer::run_dealer;
use crate::engine::{
    CircuitShape, EngineError, InstSource, InstSourceError, NoProgress, PartyConfig, PartyOutcome,
    run_party, run_party_streamed,
};

/// Opens a fresh stream of the circuit's instructions for one party of a local session.
pub type OpenInsts<'a> = dyn Fn() -> Result<Box<dyn InstSource + 'a>, InstSourceError> + Sync + 'a;

/// The circuit of a local session: in memory, or streamed (one stream per party).
#[derive(Clone, Copy)]
enum LocalCircuit<'a> {
    Memory(&'a Circuit),
    Streamed(&'a CircuitShape, &'a OpenInsts<'a>),
}

/// How a local session is set up.
#[derive(Debug, Clone)]
pub struct LocalOptions {
    /// Where the correlated randomness comes from.
    pub source: SourceKind,
    /// The evaluator's index.
    pub evaluator: usize,
    /// AND gates per chunk.
    pub chunk_ands: usize,
    /// Receive timeout.
    pub timeout: Duration,
    /// The session id every party binds the run to.
    pub session_id: [u8; 32],
    /// The parties that learn the result; `None`: every party.
    pub outputs: Option<Vec<usize>>,
}

impl Default for LocalOptions {
    fn default() -> Self {
        Self {
            source: SourceKind::Dealer,
            evaluator: 0,
            chunk_ands: crate::engine::protocol::DEFAULT_CHUNK_ANDS,
            timeout: Duration::from_secs(60),
            session_id: crate::engine::session_id("local", b""),
            outputs: None,
        }
    }
}

/// Runs all parties (one input bit vector each) and, for [`SourceKind::Dealer`], the
/// dealer, concurrently; returns every party's outcome in party order.
pub async fn run_local(
    circuit: &Circuit,
    program_hash: [u8; 32],
    inputs: &[Vec<bool>],
    opts: &LocalOptions,
) -> Result<Vec<PartyOutcome>, EngineError> {
    let (channels, dealer_channel) = local_channels(inputs.len(), opts);
    run_local_with(
        circuit,
        program_hash,
        inputs,
        opts,
        channels,
        dealer_channel,
    )
    .await
}

/// Like [`run_local`], for a circuit of shape `shape` whose instructions every party reads
/// from its own stream, opened by `open` (e.g. from the compile cache file), so that memory
/// does not grow with the number of instructions.
pub async fn run_local_streamed<'a>(
    shape: &'a CircuitShape,
    open: &'a OpenInsts<'a>,
    program_hash: [u8; 32],
    inputs: &[Vec<bool>],
    opts: &LocalOptions,
) -> Result<Vec<PartyOutcome>, EngineError> {
    let (channels, dealer_channel) = local_channels(inputs.len(), opts);
    run_circuit(
        LocalCircuit::Streamed(shape, open),
        program_hash,
        inputs,
        opts,
        channels,
        dealer_channel,
    )
    .await
}

/// One endpoint of the in-memory channels.
type MemoryChannel = Framed<MemoryTransport>;

/// In-memory channels for `n` parties, and the dealer's when `opts` asks for one.
fn local_channels(n: usize, opts: &LocalOptions) -> (Vec<MemoryChannel>, Option<MemoryChannel>) {
    let with_dealer = opts.source == SourceKind::Dealer;
    let peers = if with_dealer { n + 1 } else { n };
    let mut channels = memory_channels(peers, n, opts.timeout);
    let dealer_channel = if with_dealer { channels.pop() } else { None };
    (channels, dealer_channel)
}

/// Like [`run_local`], over channels the caller made (tests wrap some of them, e.g. to
/// tamper with messages). Fails with the most telling error when any endpoint fails.
pub async fn run_local_with<C: Channel, D: Channel>(
    circuit: &Circuit,
    program_hash: [u8; 32],
    inputs: &[Vec<bool>],
    opts: &LocalOptions,
    channels: Vec<C>,
    dealer_channel: Option<D>,
) -> Result<Vec<PartyOutcome>, EngineError> {
    run_circuit(
        LocalCircuit::Memory(circuit),
        program_hash,
        inputs,
        opts,
        channels,
        dealer_channel,
    )
    .await
}

/// Runs every endpoint on `circuit`, in memory or streamed; fails with the most telling
/// error when any endpoint fails.
async fn run_circuit<C: Channel, D: Channel>(
    circuit: LocalCircuit<'_>,
    program_hash: [u8; 32],
    inputs: &[Vec<bool>],
    opts: &LocalOptions,
    channels: Vec<C>,
    dealer_channel: Option<D>,
) -> Result<Vec<PartyOutcome>, EngineError> {
    let (results, dealt) = each::run_each(
        circuit,
        program_hash,
        inputs,
        opts,
        channels,
        dealer_channel,
    )
    .await;
    first_error(results, dealt)
}

/// Every party's outcome, or the most telling error when any endpoint failed.
fn first_error(
    results: Vec<Result<Option<PartyOutcome>, EngineError>>,
    dealt: Result<(), EngineError>,
) -> Result<Vec<PartyOutcome>, EngineError> {
    let mut outcomes = Vec::with_capacity(results.len());
    let mut first_err: Option<EngineError> = None;
    for r in results
        .into_iter()
        .chain(std::iter::once(dealt.map(|_| None)))
    {
        match r {
            Ok(Some(o)) => outcomes.push(o),
            Ok(None) => {}
            Err(e) => {
                // Prefer the error that names a failed check over the echoes of aborts.
                if first_err
                    .as_ref()
                    .is_none_or(|f| f.is_peer_abort() && !e.is_peer_abort())
                {
                    first_err = Some(e);
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(outcomes),
    }
}

/// Test only (feature `testing`): runs every endpoint and returns each one's own result.
#[cfg(feature = "testing")]
pub use each::run_local_each;

/// Where [`run_local_with`] and (with the `testing` feature) the tests run the endpoints.
mod each {
    use super::*;

    /// Runs every endpoint and returns each party's own result and the dealer's, so that tests
    /// can check that no party ever accepts a wrong output.
    #[cfg(feature = "testing")]
    pub async fn run_local_each<C: Channel, D: Channel>(
        circuit: &Circuit,
        program_hash: [u8; 32],
        inputs: &[Vec<bool>],
        opts: &LocalOptions,
        channels: Vec<C>,
        dealer_channel: Option<D>,
    ) -> (
        Vec<Result<Option<PartyOutcome>, EngineError>>,
        Result<(), EngineError>,
    ) {
        run_each(
            LocalCircuit::Memory(circuit),
            program_hash,
            inputs,
            opts,
            channels,
            dealer_channel,
        )
        .await
    }

    pub(super) async fn run_each<C: Channel, D: Channel>(
        circuit: LocalCircuit<'_>,
        program_hash: [u8; 32],
        inputs: &[Vec<bool>],
        opts: &LocalOptions,
        channels: Vec<C>,
        dealer_channel: Option<D>,
    ) -> (
        Vec<Result<Option<PartyOutcome>, EngineError>>,
        Result<(), EngineError>,
    ) {
        let n = inputs.len();
        let parties = channels.into_iter().enumerate().map(|(me, ch)| {
            let cfg = PartyConfig {
                me,
                parties: n,
                evaluator: opts.evaluator,
                program_hash,
                session_id: opts.session_id,
                source: opts.source,
                chunk_ands: opts.chunk_ands,
                outputs: opts
                    .outputs
                    .clone()
                    .unwrap_or_else(|| PartyConfig::all_learn(n)),
            };
            let input = &inputs[me];
            async move {
                let result = match circuit {
                    LocalCircuit::Memory(c) => run_party(&ch, &cfg, c, input, &NoProgress).await,
                    LocalCircuit::Streamed(shape, open) => match open() {
                        Ok(mut insts) => {
                            run_party_streamed(&ch, &cfg, shape, &mut *insts, input, &NoProgress)
                                .await
                        }
                        Err(e) => Err(EngineError::Instructions(e)),
                    },
                };
                if let Err(e) = &result {
                    ch.abort(&e.notice()).await;
                }
                result.map(Some)
            }
        });
        let dealer = async {
            match &dealer_channel {
                Some(ch) => {
                    let result = run_dealer(ch, n, &NoProgress).await.map(|_| ());
                    if let Err(e) = &result {
                        ch.abort(&e.notice()).await;
                    }
                    result
                }
                None => Ok(()),
            }
        };
        tokio::join!(futures_util::future::join_all(parties), dealer)
    }
}
