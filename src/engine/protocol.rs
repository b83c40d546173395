//! The phases of protocol.md for one party: handshake, preprocessing (through a
//! [`Source`]), input processing with its broadcast-consistency check, garbling and
//! evaluation streamed chunk by chunk, and the output.
//!
//! Order of the online phases. Garbled rows are produced, sent and consumed in gate order,
//! one chunk of AND gates at a time, so neither side ever holds the whole garbled circuit.
//! That requires the evaluator to hold the input labels before the first chunk, so input
//! processing runs *before* garbling. This is safe: the masked inputs `x ⊕ λ` are one-time
//! padded by the honest parties' shares of λ, and every garbled row the evaluator decrypts is
//! checked against its IT-MAC, so whether a corrupted row is hit depends only on masked
//! values, which are independent of the inputs (the argument of WRK17 §3 does not depend on
//! when the masked inputs are sent).
//!
//! The broadcast-consistency check runs right after the masked inputs are exchanged, before
//! anything is garbled: every party tells every other, per input owner, a digest of the
//! masked values it received from that owner. An owner that sent different values to
//! different parties is then named by the check that is meant to catch it (with the party
//! whose report differs, when a third party cannot tell which of the two lies), instead of
//! surfacing later as a garbled-row failure that points at an honest garbler.
//!
//! Chunking of the Beaver opening: the d, f values of each chunk are opened in one batch
//! before that chunk is garbled. The number of rounds grows with the number of chunks (a
//! few dozen for a million AND gates), not with the circuit's depth; in exchange, memory is
//! bounded by the chunk size.

use std::time::Instant;

use bytes::Bytes;
use garble_lang::register_circuit::{And, Circuit, Inst, Not, Op, Xor};
use rand::RngCore;
use subtle::ConstantTimeEq;

use super::aes::Prg;
use super::garble::{RowHasher, RowInput};
use super::preprocess::dealer::{DealerRequest, DealerSource};
use super::preprocess::{ITEMS_PER_AND, Source, SourceKind};
use super::share::{
    AuthBits, Block, MacDigest, Slots, bit_at, block_at, pack_bits, packed_len, put_blocks,
};
use super::transcript::{self, Transcript};
use super::{EngineError, MAX_PARTIES, Progress, Stats, exchange};
use crate::channel::{Channel, PeerNames, Phase};

/// Default number of AND gates per chunk.
pub const DEFAULT_CHUNK_ANDS: usize = 1 << 14;

/// What a party needs to know about the session.
#[derive(Debug, Clone)]
pub struct PartyConfig {
    /// This party's index.
    pub me: usize,
    /// Number of computing parties.
    pub parties: usize,
    /// The evaluator's index.
    pub evaluator: usize,
    /// Hash of the program, compared in the handshake.
    pub program_hash: [u8; 32],
    /// The caller's binding of the session, e.g. a hash of the session name and the roster
    /// ([`crate::engine::session_id`]); compared in the handshake and part of the run id.
    pub session_id: [u8; 32],
    /// Where the correlated randomness comes from.
    pub source: SourceKind,
    /// AND gates per chunk (memory bound vs. rounds).
    pub chunk_ands: usize,
    /// The parties that learn the result (sorted, no repeats; every party by default, see
    /// [`PartyConfig::all_learn`]). The others get nothing from the output phase but a
    /// notice that the output parties have their result.
    pub outputs: Vec<usize>,
}

impl PartyConfig {
    /// Every party index of a session of `parties`, for [`PartyConfig::outputs`].
    pub fn all_learn(parties: usize) -> Vec<usize> {
        (0..parties).collect()
    }

    fn learns(&self, party: usize) -> bool {
        self.outputs.binary_search(&party).is_ok()
    }
}

/// The result of a successful run.
#[derive(Debug, Clone)]
pub struct PartyOutcome {
    /// The circuit's output bits; `None` for a party that is not among
    /// [`PartyConfig::outputs`].
    pub output: Option<Vec<bool>>,
    /// Figures about the run.
    pub stats: Stats,
}

/// Runs the whole protocol for one party with input bits `input`.
pub async fn run_party<C: Channel>(
    ch: &C,
    cfg: &PartyConfig,
    circuit: &Circuit,
    input: &[bool],
    progress: &dyn Progress,
) -> Result<PartyOutcome, EngineError> {
    validate(cfg, circuit, input)?;
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

    match cfg.source {
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
            let output = Online::new(ch, cfg, circuit, source)
                .run(input, progress, &mut stats)
                .await?;
            stats.and_gates = circuit.and_ops as u64;
            stats.bytes_sent = ch.bytes_sent();
            Ok(PartyOutcome { output, stats })
        }
        SourceKind::Ot => {
            let t = Instant::now();
            let source = super::preprocess::ot::OtSource::start(
                ch,
                slots,
                run_id,
                circuit.total_inputs() as u64,
                circuit.and_ops as u64,
                progress,
            )
            .await?;
            stats.record("preprocessing setup", t.elapsed());
            let output = Online::new(ch, cfg, circuit, source)
                .run(input, progress, &mut stats)
                .await?;
            stats.and_gates = circuit.and_ops as u64;
            stats.bytes_sent = ch.bytes_sent();
            Ok(PartyOutcome { output, stats })
        }
    }
}

fn validate(cfg: &PartyConfig, circuit: &Circuit, input: &[bool]) -> Result<(), EngineError> {
    let n = cfg.parties;
    if !(2..=MAX_PARTIES).contains(&n) {
        return Err(EngineError::Setup(format!(
            "a session needs at least 2 and at most {MAX_PARTIES} parties, not {n}"
        )));
    }
    if cfg.me >= n || cfg.evaluator >= n {
        return Err(EngineError::Setup(format!(
            "party index {} and evaluator {} must both be below the party count {n}",
            cfg.me, cfg.evaluator
        )));
    }
    let sorted = cfg.outputs.windows(2).all(|w| w[0] < w[1]);
    if cfg.outputs.is_empty() || !sorted || cfg.outputs.iter().any(|&p| p >= n) {
        return Err(EngineError::Setup(format!(
            "the output parties {:?} must be distinct party indices below {n}, at least one",
            cfg.outputs
        )));
    }
    if circuit.input_regs.len() != n {
        return Err(EngineError::Setup(format!(
            "the program takes inputs from {} parties, but the session has {n}",
            circuit.input_regs.len()
        )));
    }
    if input.len() != circuit.input_regs[cfg.me] {
        return Err(EngineError::Setup(format!(
            "party {} must provide {} input bits, got {}",
            cfg.me,
            circuit.input_regs[cfg.me],
            input.len()
        )));
    }
    circuit
        .validate()
        .map_err(|e| EngineError::Setup(format!("the compiled circuit is invalid: {e:?}")))?;
    let total = circuit.total_inputs();
    let inputs_first = circuit
        .insts
        .iter()
        .enumerate()
        .all(|(i, inst)| matches!(inst.op, Op::Input(_)) == (i < total));
    if !inputs_first || circuit.insts.len() < total {
        return Err(EngineError::Setup(
            "the circuit must load all inputs before its first gate".into(),
        ));
    }
    Ok(())
}

const HANDSHAKE_MAGIC: &[u8; 4] = b"MPCh";
/// What an output party tells the others once it has checked its result.
const OUTPUT_DONE: &[u8] = b"output received";
const HANDSHAKE_VERSION: u8 = 3;
const HANDSHAKE_LEN: usize = 4 + 1 + 32 + 4 + 4 + 4 + 1 + 4 + 32 + 32 + OUTPUTS_LEN;
/// The output parties as a bitmap of [`MAX_PARTIES`] bits.
const OUTPUTS_LEN: usize = MAX_PARTIES / 8;

fn outputs_bitmap(outputs: &[usize]) -> [u8; OUTPUTS_LEN] {
    let mut map = [0u8; OUTPUTS_LEN];
    for &p in outputs {
        map[p / 8] |= 1 << (p % 8);
    }
    map
}

fn describe_outputs(map: &[u8]) -> String {
    let parties: Vec<String> = (0..map.len() * 8)
        .filter(|&p| map[p / 8] >> (p % 8) & 1 == 1)
        .map(|p| p.to_string())
        .collect();
    format!("parties {}", parties.join(","))
}

fn handshake_message(cfg: &PartyConfig, nonce: &[u8; 32]) -> Bytes {
    let mut b = Vec::with_capacity(HANDSHAKE_LEN);
    b.extend_from_slice(HANDSHAKE_MAGIC);
    b.push(HANDSHAKE_VERSION);
    b.extend_from_slice(&cfg.program_hash);
    b.extend_from_slice(&(cfg.parties as u32).to_le_bytes());
    b.extend_from_slice(&(cfg.me as u32).to_le_bytes());
    b.extend_from_slice(&(cfg.evaluator as u32).to_le_bytes());
    b.push(cfg.source.code());
    b.extend_from_slice(&(cfg.chunk_ands as u32).to_le_bytes());
    b.extend_from_slice(&cfg.session_id);
    b.extend_from_slice(nonce);
    b.extend_from_slice(&outputs_bitmap(&cfg.outputs));
    Bytes::from(b)
}

/// The run id: everything the handshake agreed on and every party's nonce, in party order.
fn run_id(cfg: &PartyConfig, nonces: &[[u8; 32]]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"mpc run id v1");
    h.update(&cfg.session_id);
    h.update(&cfg.program_hash);
    h.update(&(cfg.parties as u32).to_le_bytes());
    h.update(&(cfg.evaluator as u32).to_le_bytes());
    h.update(&[cfg.source.code()]);
    h.update(&(cfg.chunk_ands as u32).to_le_bytes());
    h.update(&outputs_bitmap(&cfg.outputs));
    for nonce in nonces {
        h.update(nonce);
    }
    *h.finalize().as_bytes()
}

/// Every party tells every other what it is about to compute; any difference stops the
/// session with a message naming the party and what differs. Every party also sends a fresh
/// nonce; all of them make the run id, which the parties then compare (as their first
/// transcript), so a party that sent different nonces to different parties is caught here.
async fn handshake<C: Channel>(ch: &C, cfg: &PartyConfig) -> Result<[u8; 32], EngineError> {
    let slots = Slots {
        me: cfg.me,
        n: cfg.parties,
    };
    let others: Vec<usize> = slots.others().collect();
    let mut nonces = vec![[0u8; 32]; cfg.parties];
    rand::rng().fill_bytes(&mut nonces[cfg.me]);
    let mine = handshake_message(cfg, &nonces[cfg.me]);
    let out = others.iter().map(|&j| (j, mine.clone())).collect();
    let theirs = exchange(ch, Phase::Handshake, out, &others).await?;
    for (&j, msg) in others.iter().zip(&theirs) {
        if msg.len() != HANDSHAKE_LEN || &msg[..4] != HANDSHAKE_MAGIC {
            return Err(EngineError::Handshake(format!(
                "party {j} sent a handshake this version of mpc does not understand"
            )));
        }
        if msg[4] != HANDSHAKE_VERSION {
            return Err(EngineError::Handshake(format!(
                "party {j} speaks protocol version {}, this party version {HANDSHAKE_VERSION}: use the same mpc release",
                msg[4]
            )));
        }
        let word = |at: usize| u32::from_le_bytes([msg[at], msg[at + 1], msg[at + 2], msg[at + 3]]);
        let hash = &msg[5..37];
        let (parties, index, evaluator, source) = (word(37), word(41), word(45), msg[49]);
        let chunk = word(50);
        let (session, nonce) = (&msg[54..86], &msg[86..118]);
        let outputs = &msg[118..118 + OUTPUTS_LEN];
        if parties as usize != cfg.parties {
            return Err(EngineError::Handshake(format!(
                "party {j} expects {parties} parties, this party {}",
                cfg.parties
            )));
        }
        if index as usize != j {
            return Err(EngineError::Handshake(format!(
                "the party in seat {j} says it is party {index}: check the --party flags"
            )));
        }
        if session != cfg.session_id {
            return Err(EngineError::Handshake(format!(
                "party {j} binds the run to another session (id {}…, this party {}…): all parties must join the same session",
                hex::encode(&session[..6]),
                hex::encode(&cfg.session_id[..6])
            )));
        }
        if hash != cfg.program_hash {
            return Err(EngineError::Handshake(format!(
                "party {j} runs a different program (hash {}…, this party {}…): all parties must use the same program file",
                hex::encode(&hash[..6]),
                hex::encode(&cfg.program_hash[..6])
            )));
        }
        if evaluator as usize != cfg.evaluator {
            return Err(EngineError::Handshake(format!(
                "party {j} wants party {evaluator} as evaluator, this party wants party {}",
                cfg.evaluator
            )));
        }
        let my_outputs = outputs_bitmap(&cfg.outputs);
        if outputs != my_outputs {
            return Err(EngineError::Handshake(format!(
                "party {j} lets {} learn the result, this party {}: give every party the same --outputs",
                describe_outputs(outputs),
                describe_outputs(&my_outputs)
            )));
        }
        if chunk as usize != cfg.chunk_ands {
            return Err(EngineError::Handshake(format!(
                "party {j} streams {chunk} AND gates per chunk, this party {}: use the same --chunk-ands everywhere",
                cfg.chunk_ands
            )));
        }
        if source != cfg.source.code() {
            let theirs = if source == SourceKind::Dealer.code() {
                SourceKind::Dealer
            } else {
                SourceKind::Ot
            };
            return Err(EngineError::Handshake(format!(
                "party {j} uses {}, this party uses {}: start all parties with the same dealer choice",
                theirs.describe(),
                cfg.source.describe()
            )));
        }
        nonces[j].copy_from_slice(nonce);
    }
    let run_id = run_id(cfg, &nonces);

    // Everyone must have received the same nonces.
    let digest = Transcript::new(&run_id).digest();
    let out = others
        .iter()
        .map(|&j| (j, Bytes::copy_from_slice(&digest)))
        .collect();
    let theirs = exchange(ch, Phase::Handshake, out, &others).await?;
    let names = PeerNames::new(cfg.parties);
    for (&j, msg) in others.iter().zip(&theirs) {
        transcript::check(names.name(j), msg, &digest, "after the handshake")?;
    }
    Ok(run_id)
}

/// The online protocol state of one party.
struct Online<'a, C: Channel, S: Source> {
    ch: &'a C,
    cfg: &'a PartyConfig,
    circuit: &'a Circuit,
    source: S,
    slots: Slots,
    names: PeerNames,
    delta: Block,
    is_eval: bool,
    /// Width of MACs+keys per share.
    w: usize,
    /// λ shares of every register: bits and MACs/keys.
    bits: Vec<bool>,
    mk: Vec<Block>,
    /// Garbler only: zero-labels of every register.
    labels: Vec<Block>,
    /// Evaluator only: masked values and the garblers' labels (m per register).
    ev_m: Vec<bool>,
    ev_labels: Vec<Block>,
    prg: Prg,
    hasher: RowHasher,
    /// AND gates processed so far (global gate numbers for the hash tweak).
    gates_done: u64,
}

/// Per-chunk data kept between the passes.
struct ChunkData {
    gates: usize,
    /// λ_α and λ_β of each gate, interleaved.
    lam: AuthBits,
    /// a, b, c, λ_γ of each gate.
    mat: AuthBits,
    /// Garbler: L_α, L_β, L_γ zero-labels of each gate.
    labels: Vec<Block>,
}

/// Fewest AND gates in a chunk for the garbler to split it across two threads (below, a
/// thread costs more than it saves).
const PARALLEL_GARBLING_MIN: usize = 2048;

/// What garbling the rows of a chunk needs besides the chunk itself.
#[derive(Clone, Copy)]
struct RowContext {
    m: usize,
    n: usize,
    delta: Block,
    /// Global number of the chunk's first AND gate (for the hash tweak).
    first_gate: u64,
    garbler: usize,
}

impl RowContext {
    /// Writes the garbled rows of the chunk's gates `gates` into `out` (exactly their size,
    /// 4·n blocks per gate, in gate order).
    fn garble(
        &self,
        hasher: &mut RowHasher,
        data: &ChunkData,
        shares: &AuthBits,
        gates: std::ops::Range<usize>,
        out: &mut [u8],
    ) {
        let (m, n, delta) = (self.m, self.n, self.delta);
        let w = 2 * m;
        const BATCH: usize = 64;
        let mut inputs = Vec::with_capacity(BATCH * 4);
        let mut pads = vec![0; BATCH * 4 * n];
        let mut at = 0;
        for start in gates.clone().step_by(BATCH) {
            let end = (start + BATCH).min(gates.end);
            inputs.clear();
            for t in start..end {
                let (la0, lb0) = (data.labels[3 * t], data.labels[3 * t + 1]);
                for (u, v) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    inputs.push(RowInput {
                        la: if u == 1 { la0 ^ delta } else { la0 },
                        lb: if v == 1 { lb0 ^ delta } else { lb0 },
                        gate: self.first_gate + t as u64,
                        garbler: self.garbler,
                        u,
                        v,
                    });
                }
            }
            let pads = &mut pads[..inputs.len() * n];
            hasher.pads(&inputs, n, pads);
            for t in start..end {
                let lg = data.labels[3 * t + 2];
                for row in 0..4 {
                    let r = 4 * t + row;
                    let share = &shares.mk[r * w..r * w + w];
                    let pad = &pads[(r - 4 * start) * n..(r - 4 * start) * n + n];
                    for s in 0..m {
                        out[at..at + 16].copy_from_slice(&(share[s] ^ pad[s]).to_le_bytes());
                        at += 16;
                    }
                    let mut label = lg;
                    for key in &share[m..w] {
                        label ^= key;
                    }
                    if shares.bits[r] {
                        label ^= delta;
                    }
                    out[at..at + 16].copy_from_slice(&(label ^ pad[m]).to_le_bytes());
                    at += 16;
                }
            }
        }
        debug_assert_eq!(at, out.len());
    }
}

impl<'a, C: Channel, S: Source> Online<'a, C, S> {
    fn new(ch: &'a C, cfg: &'a PartyConfig, circuit: &'a Circuit, source: S) -> Self {
        let slots = Slots {
            me: cfg.me,
            n: cfg.parties,
        };
        let m = slots.m();
        let regs = circuit.max_reg_count;
        let is_eval = cfg.me == cfg.evaluator;
        Self {
            ch,
            cfg,
            circuit,
            delta: source.delta(),
            source,
            slots,
            names: PeerNames::new(cfg.parties),
            is_eval,
            w: 2 * m,
            bits: vec![false; regs],
            mk: vec![0; regs * 2 * m],
            labels: if is_eval { Vec::new() } else { vec![0; regs] },
            ev_m: if is_eval {
                vec![false; regs]
            } else {
                Vec::new()
            },
            ev_labels: if is_eval {
                vec![0; regs * m]
            } else {
                Vec::new()
            },
            prg: Prg::from_entropy(),
            hasher: RowHasher::new(),
            gates_done: 0,
        }
    }

    fn m(&self) -> usize {
        self.slots.m()
    }

    fn malformed(&self, peer: usize, phase: Phase, detail: String) -> EngineError {
        EngineError::Malformed {
            peer: self.names.name(peer),
            phase,
            detail,
        }
    }

    async fn run(
        mut self,
        input: &[bool],
        progress: &dyn Progress,
        stats: &mut Stats,
    ) -> Result<Option<Vec<bool>>, EngineError> {
        let t = Instant::now();
        progress.phase("inputs", 0);
        self.inputs(input).await?;
        progress.finish();
        stats.record("inputs", t.elapsed());

        let t = Instant::now();
        progress.phase("garbling and evaluating", self.circuit.and_ops as u64);
        let insts = &self.circuit.insts;
        let mut start = self.circuit.total_inputs();
        // Evaluator: the previous chunk, evaluated while the garblers garble the next one.
        let mut pending: Option<(usize, usize, AuthBits, u64)> = None;
        while start < insts.len() {
            let mut end = start;
            let mut gates = 0;
            while end < insts.len() && gates < self.cfg.chunk_ands {
                if matches!(insts[end].op, Op::And(_)) {
                    gates += 1;
                }
                end += 1;
            }
            // The evaluator takes the garblers' rows of the previous chunk before it takes new
            // material: a source that talks to the other parties (OT preprocessing) sends
            // after those rows on the same ordered channels.
            let rows = match &pending {
                Some((_, _, shares, _)) => self.recv_rows(shares.len() / 4).await?,
                None => Vec::new(),
            };
            let data = self.pass_a(&insts[start..end], gates).await?;
            let others: Vec<usize> = self.slots.others().collect();
            if gates > 0 {
                let out = self.opening_messages(&data);
                futures_util::future::try_join_all(
                    out.into_iter()
                        .map(|(j, msg)| self.ch.send(j, Phase::BeaverOpening, msg)),
                )
                .await?;
            }
            if let Some((s, e, shares, base)) = pending.take() {
                self.evaluate(&insts[s..e], &shares, &rows, base)?;
            }
            let shares = if gates > 0 {
                let received = futures_util::future::try_join_all(
                    others
                        .iter()
                        .map(|&j| self.ch.recv(j, Phase::BeaverOpening)),
                )
                .await?;
                let (d, f) = self.verify_openings(&data, &others, &received)?;
                self.and_shares(&data, &d, &f)
            } else {
                AuthBits::new(self.m())
            };
            if self.is_eval {
                pending = Some((start, end, shares, self.gates_done));
            } else if gates > 0 {
                self.garble(&data, &shares).await?;
            }
            self.gates_done += gates as u64;
            progress.advance(gates as u64);
            start = end;
        }
        if let Some((s, e, shares, base)) = pending.take() {
            let rows = self.recv_rows(shares.len() / 4).await?;
            self.evaluate(&insts[s..e], &shares, &rows, base)?;
        }
        progress.finish();
        stats.record("garbling and evaluating", t.elapsed());

        let t = Instant::now();
        progress.phase("output", 0);
        let out = self.outputs().await?;
        progress.finish();
        stats.record("output", t.elapsed());
        Ok(out)
    }

    /// Whom a differing digest of owner `p`'s masked inputs from party `j` implicates: `j`
    /// alone when `p` is `j` (it contradicts what it sent) or this party (it contradicts
    /// what this party sent everyone); otherwise `j` (it misreports) or `p` (it sent `j`
    /// other values), which this party cannot tell apart.
    fn consistency_suspects(&self, j: usize, p: usize) -> String {
        if p == j || p == self.cfg.me {
            self.names.name(j)
        } else {
            format!("one of {}, {}", self.names.name(p), self.names.name(j))
        }
    }

    /// The broadcast-consistency check: every party sends every other, per input owner, a
    /// digest of the masked values it received from that owner, and compares what it gets.
    async fn check_masked_inputs(
        &self,
        masked: &[bool],
        wires_of: impl Fn(usize) -> Vec<usize>,
    ) -> Result<(), EngineError> {
        let n = self.cfg.parties;
        let digests: Vec<[u8; 32]> = (0..n)
            .map(|p| {
                let mut h = blake3::Hasher::new();
                h.update(b"mpc masked inputs v1");
                h.update(&(p as u32).to_le_bytes());
                h.update(&pack_bits(wires_of(p).iter().map(|&k| masked[k])));
                *h.finalize().as_bytes()
            })
            .collect();
        let mine = Bytes::from(digests.concat());
        let others: Vec<usize> = self.slots.others().collect();
        let out = others.iter().map(|&j| (j, mine.clone())).collect();
        let received = exchange(self.ch, Phase::InputConsistency, out, &others).await?;
        let mut mismatches = Vec::new();
        for (&j, msg) in others.iter().zip(&received) {
            if msg.len() != 32 * n {
                return Err(self.malformed(
                    j,
                    Phase::InputConsistency,
                    format!("expected {} bytes, got {}", 32 * n, msg.len()),
                ));
            }
            for (p, digest) in digests.iter().enumerate() {
                if self.circuit.input_regs[p] > 0
                    && !bool::from(msg[p * 32..p * 32 + 32].ct_eq(digest))
                {
                    mismatches.push((j, p));
                }
            }
        }
        // Name the mismatch that points at one party if there is one: a party whose report
        // of its own inputs, or of this party's, differs from what it sent.
        let worst = mismatches
            .iter()
            .find(|&&(j, p)| p == j || p == self.cfg.me)
            .or(mismatches.first());
        if let Some(&(j, p)) = worst {
            return Err(EngineError::Check {
                check: "input consistency check",
                peer: self.consistency_suspects(j, p),
                detail: format!(
                    "{} reports other masked inputs of {} than this party received (an input \
                     owner sent different values to different parties, or a party misreports \
                     them)",
                    self.names.name(j),
                    self.names.name(p)
                ),
            });
        }
        Ok(())
    }

    /// Input processing: open each input wire's mask to its owner, broadcast the masked
    /// values, and send the garblers' matching labels to the evaluator.
    async fn inputs(&mut self, input: &[bool]) -> Result<(), EngineError> {
        let total = self.circuit.total_inputs();
        let (m, w, me) = (self.m(), self.w, self.cfg.me);
        let abits = self.source.take(total).await?;
        let mut owner = Vec::with_capacity(total);
        for (k, inst) in self.circuit.insts[..total].iter().enumerate() {
            if let Op::Input(inp) = inst.op {
                owner.push((inp.party as usize, inp.input as usize));
            }
            self.bits[k] = abits.bits[k];
            self.mk[k * w..k * w + w].copy_from_slice(abits.mk(k));
        }
        if !self.is_eval {
            self.prg.fill(&mut self.labels[..total]);
        }
        let wires_of =
            |p: usize| -> Vec<usize> { (0..total).filter(|&k| owner[k].0 == p).collect() };

        // 1. Mask shares to each input's owner, with a digest of their MACs.
        let others: Vec<usize> = self.slots.others().collect();
        let out = others
            .iter()
            .map(|&p| (p, self.share_opening(&wires_of(p), p)))
            .collect();
        let received = exchange(self.ch, Phase::InputMasks, out, &others).await?;
        let my_wires = wires_of(me);
        let mut lambda: Vec<bool> = my_wires.iter().map(|&k| self.bits[k]).collect();
        for (&j, msg) in others.iter().zip(&received) {
            self.check_share_opening(
                &my_wires,
                j,
                msg,
                &mut lambda,
                Phase::InputMasks,
                "input mask MAC check",
                "its shares of this party's input masks do not match their MACs",
            )?;
        }

        // 2. Masked inputs to everyone.
        let mut masked = vec![false; total];
        for (x, &k) in my_wires.iter().enumerate() {
            masked[k] = input[owner[k].1] ^ lambda[x];
        }
        let mine = Bytes::from(pack_bits(my_wires.iter().map(|&k| masked[k])));
        let out = others.iter().map(|&p| (p, mine.clone())).collect();
        let received = exchange(self.ch, Phase::MaskedInputs, out, &others).await?;
        for (&p, msg) in others.iter().zip(&received) {
            let wires = wires_of(p);
            if msg.len() != packed_len(wires.len()) {
                return Err(self.malformed(
                    p,
                    Phase::MaskedInputs,
                    format!(
                        "expected {} bytes for {} input bits, got {}",
                        packed_len(wires.len()),
                        wires.len(),
                        msg.len()
                    ),
                ));
            }
            for (x, &k) in wires.iter().enumerate() {
                masked[k] = bit_at(msg, x);
            }
        }

        // Nothing is garbled with masked values that not every party received.
        self.check_masked_inputs(&masked, wires_of).await?;

        // 3. Garblers send the labels of the masked values to the evaluator.
        let e = self.cfg.evaluator;
        if self.is_eval {
            let garblers = others.clone();
            let received = exchange(self.ch, Phase::InputLabels, Vec::new(), &garblers).await?;
            for (&i, msg) in garblers.iter().zip(&received) {
                let s = self.slots.slot(i);
                if msg.len() != total * 16 {
                    return Err(self.malformed(
                        i,
                        Phase::InputLabels,
                        format!("expected {} labels, got {} bytes", total, msg.len()),
                    ));
                }
                for k in 0..total {
                    self.ev_labels[k * m + s] = block_at(msg, k);
                }
            }
            self.ev_m[..total].copy_from_slice(&masked);
        } else {
            let labels: Vec<Block> = (0..total)
                .map(|k| {
                    if masked[k] {
                        self.labels[k] ^ self.delta
                    } else {
                        self.labels[k]
                    }
                })
                .collect();
            let mut msg = Vec::new();
            put_blocks(&mut msg, &labels);
            exchange(
                self.ch,
                Phase::InputLabels,
                vec![(e, Bytes::from(msg))],
                &[],
            )
            .await?;
        }
        Ok(())
    }

    /// Opens this party's shares of registers `regs` to party `j`: the share bits and one
    /// digest of their MACs towards `j`.
    fn share_opening(&self, regs: &[usize], j: usize) -> Bytes {
        let s = self.slots.slot(j);
        let mut msg = pack_bits(regs.iter().map(|&r| self.bits[r]));
        let mut digest = MacDigest::with_capacity(regs.len());
        for &r in regs {
            digest.push(self.mk[r * self.w + s]);
        }
        msg.extend_from_slice(&digest.finish());
        Bytes::from(msg)
    }

    /// Checks party `j`'s opening of its shares of `regs` (see [`Self::share_opening`])
    /// against this party's keys, and XORs the opened bits into `acc`.
    #[allow(clippy::too_many_arguments)]
    fn check_share_opening(
        &self,
        regs: &[usize],
        j: usize,
        msg: &[u8],
        acc: &mut [bool],
        phase: Phase,
        check: &'static str,
        detail: &str,
    ) -> Result<(), EngineError> {
        let nb = packed_len(regs.len());
        if msg.len() != nb + 32 {
            return Err(self.malformed(
                j,
                phase,
                format!("expected {} bytes, got {}", nb + 32, msg.len()),
            ));
        }
        let at = self.m() + self.slots.slot(j);
        let mut digest = MacDigest::with_capacity(regs.len());
        for (x, &r) in regs.iter().enumerate() {
            let b = bit_at(msg, x);
            acc[x] ^= b;
            let key = self.mk[r * self.w + at];
            digest.push(if b { key ^ self.delta } else { key });
        }
        if !bool::from(digest.finish().ct_eq(&msg[nb..])) {
            return Err(EngineError::Check {
                check,
                peer: self.names.name(j),
                detail: detail.into(),
            });
        }
        Ok(())
    }

    /// Adds a public 1 to a share: the evaluator flips its bit, everyone else its key on the
    /// evaluator's share.
    #[inline]
    fn add_one(&self, bit: &mut bool, mk: &mut [Block]) {
        if self.is_eval {
            *bit = !*bit;
        } else {
            mk[self.m() + self.slots.slot(self.cfg.evaluator)] ^= self.delta;
        }
    }

    /// Pass A over one chunk: masks and labels of every register, and what each AND gate
    /// needs later (its input masks and labels, its preprocessed shares).
    async fn pass_a(&mut self, insts: &[Inst], gates: usize) -> Result<ChunkData, EngineError> {
        let w = self.w;
        let mat = self.source.take(gates * ITEMS_PER_AND).await?;
        let mut data = ChunkData {
            gates,
            lam: AuthBits::new(self.m()),
            mat,
            labels: Vec::new(),
        };
        data.lam.bits.reserve(2 * gates);
        data.lam.mk.reserve(2 * gates * w);
        let mut fresh = vec![0; if self.is_eval { 0 } else { gates }];
        self.prg.fill(&mut fresh);
        if !self.is_eval {
            data.labels.reserve(3 * gates);
        }

        // Pass A.
        let mut t = 0;
        for inst in insts {
            let o = inst.out.0 as usize;
            match inst.op {
                Op::Xor(Xor(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    self.bits[o] = self.bits[a] ^ self.bits[b];
                    for x in 0..w {
                        self.mk[o * w + x] = self.mk[a * w + x] ^ self.mk[b * w + x];
                    }
                    if !self.is_eval {
                        self.labels[o] = self.labels[a] ^ self.labels[b];
                    }
                }
                Op::Not(Not(a)) => {
                    let a = a.0 as usize;
                    self.bits[o] = self.bits[a];
                    if o != a {
                        self.mk.copy_within(a * w..a * w + w, o * w);
                    }
                    if !self.is_eval {
                        self.labels[o] = self.labels[a] ^ self.delta;
                    }
                }
                Op::And(And(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    data.lam.bits.push(self.bits[a]);
                    data.lam.bits.push(self.bits[b]);
                    data.lam.mk.extend_from_slice(&self.mk[a * w..a * w + w]);
                    data.lam.mk.extend_from_slice(&self.mk[b * w..b * w + w]);
                    let item = t * ITEMS_PER_AND + 3;
                    self.bits[o] = data.mat.bits[item];
                    self.mk[o * w..o * w + w].copy_from_slice(data.mat.mk(item));
                    if !self.is_eval {
                        data.labels.push(self.labels[a]);
                        data.labels.push(self.labels[b]);
                        data.labels.push(fresh[t]);
                        self.labels[o] = fresh[t];
                    }
                    t += 1;
                }
                Op::Input(_) => {
                    return Err(EngineError::Setup(
                        "the circuit loads an input after its first gate".into(),
                    ));
                }
            }
        }
        Ok(data)
    }

    /// This party's shares of d = λ_α ⊕ a and f = λ_β ⊕ b for every gate of the chunk.
    fn differences(&self, data: &ChunkData) -> (Vec<bool>, Vec<bool>) {
        let item = |t: usize, k: usize| t * ITEMS_PER_AND + k;
        let d = (0..data.gates)
            .map(|t| data.lam.bits[2 * t] ^ data.mat.bits[item(t, 0)])
            .collect();
        let f = (0..data.gates)
            .map(|t| data.lam.bits[2 * t + 1] ^ data.mat.bits[item(t, 1)])
            .collect();
        (d, f)
    }

    /// The batched opening of d and f to every other party: the share bits and one digest
    /// of their MACs per peer.
    fn opening_messages(&self, data: &ChunkData) -> Vec<(usize, Bytes)> {
        let g = data.gates;
        let item = |t: usize, k: usize| t * ITEMS_PER_AND + k;
        let (d, f) = self.differences(data);
        let packed = pack_bits((0..g).flat_map(|t| [d[t], f[t]]));
        self.slots
            .others()
            .map(|j| {
                let s = self.slots.slot(j);
                let mut digest = MacDigest::with_capacity(2 * g);
                for t in 0..g {
                    digest.push(data.lam.mk(2 * t)[s] ^ data.mat.mk(item(t, 0))[s]);
                    digest.push(data.lam.mk(2 * t + 1)[s] ^ data.mat.mk(item(t, 1))[s]);
                }
                let mut msg = packed.clone();
                msg.extend_from_slice(&digest.finish());
                (j, Bytes::from(msg))
            })
            .collect()
    }

    /// Checks every peer's opening against this party's keys and returns the opened d, f.
    fn verify_openings(
        &self,
        data: &ChunkData,
        others: &[usize],
        received: &[Bytes],
    ) -> Result<(Vec<bool>, Vec<bool>), EngineError> {
        let (m, g) = (self.m(), data.gates);
        let item = |t: usize, k: usize| t * ITEMS_PER_AND + k;
        let (mut d, mut f) = self.differences(data);
        let nb = packed_len(2 * g);
        for (&j, msg) in others.iter().zip(received) {
            if msg.len() != nb + 32 {
                return Err(self.malformed(
                    j,
                    Phase::BeaverOpening,
                    format!("expected {} bytes, got {}", nb + 32, msg.len()),
                ));
            }
            let s = self.slots.slot(j);
            let mut digest = MacDigest::with_capacity(2 * g);
            for t in 0..g {
                let (dj, fj) = (bit_at(msg, 2 * t), bit_at(msg, 2 * t + 1));
                let kd = data.lam.mk(2 * t)[m + s] ^ data.mat.mk(item(t, 0))[m + s];
                let kf = data.lam.mk(2 * t + 1)[m + s] ^ data.mat.mk(item(t, 1))[m + s];
                digest.push(if dj { kd ^ self.delta } else { kd });
                digest.push(if fj { kf ^ self.delta } else { kf });
                d[t] ^= dj;
                f[t] ^= fj;
            }
            if !bool::from(digest.finish().ct_eq(&msg[nb..])) {
                return Err(EngineError::Check {
                    check: "Beaver opening MAC check",
                    peer: self.names.name(j),
                    detail: format!(
                        "its shares of d, f for AND gates {}..{} do not match their MACs",
                        self.gates_done,
                        self.gates_done + g as u64
                    ),
                });
            }
        }
        Ok((d, f))
    }

    /// This party's shares of r_{u,v} = ((λ_α ⊕ u) ∧ (λ_β ⊕ v)) ⊕ λ_γ for the four rows of
    /// every gate of the chunk (row index 2u + v).
    fn and_shares(&self, data: &ChunkData, d: &[bool], f: &[bool]) -> AuthBits {
        let w = self.w;
        let mut out = AuthBits::new(self.m());
        out.bits.reserve(4 * data.gates);
        out.mk.reserve(4 * data.gates * w);
        let mut base = vec![0; w];
        for t in 0..data.gates {
            let item = |k: usize| t * ITEMS_PER_AND + k;
            let (a, b, c, lg) = (item(0), item(1), item(2), item(3));
            let (la, lb) = (data.lam.mk(2 * t), data.lam.mk(2 * t + 1));
            let (ma, mb, mc, mg) = (
                data.mat.mk(a),
                data.mat.mk(b),
                data.mat.mk(c),
                data.mat.mk(lg),
            );
            // [λ_α ∧ λ_β] = [c] ⊕ d[b] ⊕ f[a] ⊕ df, then ⊕ [λ_γ].
            let mut bit = data.mat.bits[c] ^ data.mat.bits[lg];
            if d[t] {
                bit ^= data.mat.bits[b];
            }
            if f[t] {
                bit ^= data.mat.bits[a];
            }
            for x in 0..w {
                let mut v = mc[x] ^ mg[x];
                if d[t] {
                    v ^= mb[x];
                }
                if f[t] {
                    v ^= ma[x];
                }
                base[x] = v;
            }
            if d[t] & f[t] {
                self.add_one(&mut bit, &mut base);
            }
            let (ba, bb) = (data.lam.bits[2 * t], data.lam.bits[2 * t + 1]);
            let first = out.mk.len();
            out.mk.extend_from_slice(&base);
            out.mk.extend(base.iter().zip(la).map(|(x, y)| x ^ y));
            out.mk.extend(base.iter().zip(lb).map(|(x, y)| x ^ y));
            out.mk
                .extend(base.iter().zip(la).zip(lb).map(|((x, y), z)| x ^ y ^ z));
            let mut last = bit ^ ba ^ bb;
            self.add_one(&mut last, &mut out.mk[first + 3 * w..first + 4 * w]);
            out.bits.extend_from_slice(&[bit, bit ^ ba, bit ^ bb, last]);
        }
        out
    }

    /// Garbler: encrypts the four rows of every gate and streams them to the evaluator. A
    /// large chunk is garbled in two halves on two threads (the rows of different gates are
    /// independent), the message written in place by both.
    async fn garble(&mut self, data: &ChunkData, shares: &AuthBits) -> Result<(), EngineError> {
        let rows = RowContext {
            m: self.m(),
            n: self.cfg.parties,
            delta: self.delta,
            first_gate: self.gates_done,
            garbler: self.cfg.me,
        };
        let gate_bytes = 4 * rows.n * 16;
        let mut msg = vec![0u8; data.gates * gate_bytes];
        if data.gates >= PARALLEL_GARBLING_MIN {
            let half = data.gates / 2;
            let (first, second) = msg.split_at_mut(half * gate_bytes);
            let hasher = &mut self.hasher;
            std::thread::scope(|scope| {
                scope.spawn(|| {
                    rows.garble(
                        &mut RowHasher::new(),
                        data,
                        shares,
                        half..data.gates,
                        second,
                    )
                });
                rows.garble(hasher, data, shares, 0..half, first);
            });
        } else {
            rows.garble(&mut self.hasher, data, shares, 0..data.gates, &mut msg);
        }
        self.ch
            .send(self.cfg.evaluator, Phase::GarbledRows, Bytes::from(msg))
            .await?;
        Ok(())
    }

    /// Evaluator: receives every garbler's rows for a chunk of `gates` AND gates and checks
    /// their sizes.
    async fn recv_rows(&self, gates: usize) -> Result<Vec<Bytes>, EngineError> {
        if gates == 0 {
            return Ok(Vec::new());
        }
        let n = self.cfg.parties;
        let garblers: Vec<usize> = self.slots.others().collect();
        let rows = exchange(self.ch, Phase::GarbledRows, Vec::new(), &garblers).await?;
        for (&i, msg) in garblers.iter().zip(&rows) {
            if msg.len() != gates * 4 * n * 16 {
                return Err(self.malformed(
                    i,
                    Phase::GarbledRows,
                    format!(
                        "expected {} bytes for {gates} gates, got {}",
                        gates * 4 * n * 16,
                        msg.len()
                    ),
                ));
            }
        }
        Ok(rows)
    }

    /// Evaluator: evaluates a chunk's gates with every garbler's rows for it.
    fn evaluate(
        &mut self,
        insts: &[Inst],
        shares: &AuthBits,
        rows: &[Bytes],
        base: u64,
    ) -> Result<(), EngineError> {
        let (m, w, n) = (self.m(), self.w, self.cfg.parties);
        let garblers: Vec<usize> = self.slots.others().collect();
        let e = self.cfg.evaluator;
        // For each garbler slot s: the slot of the evaluator and of every other party in
        // that garbler's own slot order.
        let their_slots: Vec<Slots> = garblers.iter().map(|&i| Slots { me: i, n }).collect();
        let mut inputs = Vec::with_capacity(m);
        let mut pads = vec![0; m * n];
        let mut dec = vec![0; m * n];
        let mut t = 0;
        for inst in insts {
            let o = inst.out.0 as usize;
            match inst.op {
                Op::Xor(Xor(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    self.ev_m[o] = self.ev_m[a] ^ self.ev_m[b];
                    for s in 0..m {
                        self.ev_labels[o * m + s] =
                            self.ev_labels[a * m + s] ^ self.ev_labels[b * m + s];
                    }
                }
                Op::Not(Not(a)) => {
                    let a = a.0 as usize;
                    self.ev_m[o] = !self.ev_m[a];
                    if o != a {
                        self.ev_labels.copy_within(a * m..a * m + m, o * m);
                    }
                }
                Op::And(And(a, b)) => {
                    let (a, b) = (a.0 as usize, b.0 as usize);
                    let (u, v) = (self.ev_m[a] as usize, self.ev_m[b] as usize);
                    let gate = base + t as u64;
                    inputs.clear();
                    for (s, &garbler) in garblers.iter().enumerate() {
                        inputs.push(RowInput {
                            la: self.ev_labels[a * m + s],
                            lb: self.ev_labels[b * m + s],
                            gate,
                            garbler,
                            u,
                            v,
                        });
                    }
                    self.hasher.pads(&inputs, n, &mut pads);
                    let r = 4 * t + 2 * u + v;
                    for s in 0..m {
                        for k in 0..n {
                            dec[s * n + k] = block_at(&rows[s], r * n + k) ^ pads[s * n + k];
                        }
                    }
                    let mine = &shares.mk[r * w..r * w + w];
                    let mut value = shares.bits[r];
                    for s in 0..m {
                        let mac = dec[s * n + their_slots[s].slot(e)];
                        let key = mine[m + s];
                        let bit = (mac ^ key) & 1 == 1;
                        let expected = if bit { key ^ self.delta } else { key };
                        if !bool::from(mac.ct_eq(&expected)) {
                            return Err(EngineError::Check {
                                check: "garbled row MAC check",
                                peer: self.names.name(garblers[s]),
                                detail: format!(
                                    "the decrypted row of AND gate {gate} is not authentic"
                                ),
                            });
                        }
                        value ^= bit;
                    }
                    for s in 0..m {
                        let i = garblers[s];
                        let mut label = dec[s * n + m] ^ mine[s];
                        for s2 in 0..m {
                            if s2 != s {
                                label ^= dec[s2 * n + their_slots[s2].slot(i)];
                            }
                        }
                        self.ev_labels[o * m + s] = label;
                    }
                    self.ev_m[o] = value;
                    t += 1;
                }
                Op::Input(_) => {
                    return Err(EngineError::Setup(
                        "the circuit loads an input after its first gate".into(),
                    ));
                }
            }
        }
        Ok(())
    }

    /// The transcript comparison, then the output to the output parties, who then tell the
    /// others that they have it.
    async fn outputs(&mut self) -> Result<Option<Vec<bool>>, EngineError> {
        let m = self.m();
        let e = self.cfg.evaluator;
        let others: Vec<usize> = self.slots.others().collect();

        // Every coin toss must have given every party the same result.
        let run = self.source.transcript();
        let mine = Bytes::copy_from_slice(&run);
        let out = others.iter().map(|&j| (j, mine.clone())).collect();
        let received = exchange(self.ch, Phase::InputConsistency, out, &others).await?;
        for (&j, msg) in others.iter().zip(&received) {
            transcript::check(self.names.name(j), msg, &run, "before the output")?;
        }

        let outs: Vec<usize> = self
            .circuit
            .output_regs
            .iter()
            .map(|r| r.0 as usize)
            .collect();
        let nb = packed_len(outs.len());
        // Evaluator → every other party: masked outputs and a digest of that party's labels.
        // Everyone → everyone: its shares of the output masks and a digest of their MACs.
        let share_msg = |j: usize| self.share_opening(&outs, j);
        let label_msg = |k: usize| {
            let s = self.slots.slot(k);
            let mut msg = pack_bits(outs.iter().map(|&r| self.ev_m[r]));
            let mut digest = MacDigest::with_capacity(outs.len());
            for &r in &outs {
                digest.push(self.ev_labels[r * m + s]);
            }
            msg.extend_from_slice(&digest.finish());
            Bytes::from(msg)
        };
        let ch = self.ch;
        let cfg = self.cfg;
        let i_learn = cfg.learns(cfg.me);
        let learners: Vec<usize> = others.iter().copied().filter(|&j| cfg.learns(j)).collect();
        let sources: &[usize] = if i_learn { &others } else { &[] };
        let sends = futures_util::future::try_join_all(learners.iter().map(|&j| {
            let labels = self.is_eval.then(|| label_msg(j));
            let shares = share_msg(j);
            async move {
                if let Some(l) = labels {
                    ch.send(j, Phase::OutputLabels, l).await?;
                }
                ch.send(j, Phase::OutputShares, shares).await
            }
        }));
        let is_eval = self.is_eval;
        let recvs = futures_util::future::try_join_all(sources.iter().map(|&j| async move {
            let labels = if j == e && !is_eval {
                Some(ch.recv(j, Phase::OutputLabels).await?)
            } else {
                None
            };
            let shares = ch.recv(j, Phase::OutputShares).await?;
            Ok::<_, crate::channel::ChannelError>((labels, shares))
        }));
        let (_, received) = futures_util::future::try_join(sends, recvs).await?;
        if !i_learn {
            // Wait for every output party to say it has the result, so that this party's
            // exit 0 means the computation succeeded.
            let done = futures_util::future::try_join_all(
                learners.iter().map(|&j| ch.recv(j, Phase::OutputDone)),
            )
            .await?;
            for (&j, msg) in learners.iter().zip(&done) {
                if msg.as_ref() != OUTPUT_DONE {
                    return Err(self.malformed(
                        j,
                        Phase::OutputDone,
                        "not the output notice".into(),
                    ));
                }
            }
            return Ok(None);
        }

        let mut masked: Vec<bool> = if self.is_eval {
            outs.iter().map(|&r| self.ev_m[r]).collect()
        } else {
            vec![false; outs.len()]
        };
        let mut lambda: Vec<bool> = outs.iter().map(|&r| self.bits[r]).collect();
        for (&j, (labels, shares)) in sources.iter().zip(&received) {
            if let Some(msg) = labels {
                if msg.len() != nb + 32 {
                    return Err(self.malformed(
                        j,
                        Phase::OutputLabels,
                        format!("expected {} bytes, got {}", nb + 32, msg.len()),
                    ));
                }
                let mut digest = MacDigest::with_capacity(outs.len());
                for (x, &r) in outs.iter().enumerate() {
                    masked[x] = bit_at(msg, x);
                    let l = self.labels[r];
                    digest.push(if masked[x] { l ^ self.delta } else { l });
                }
                if !bool::from(digest.finish().ct_eq(&msg[nb..])) {
                    return Err(EngineError::Check {
                        check: "output label check",
                        peer: self.names.name(j),
                        detail: "the labels of the masked outputs do not match this party's labels (the evaluator may have flipped an output)".into(),
                    });
                }
            }
            self.check_share_opening(
                &outs,
                j,
                shares,
                &mut lambda,
                Phase::OutputShares,
                "output share MAC check",
                "its shares of the output masks do not match their MACs",
            )?;
        }
        let learned = masked.iter().zip(&lambda).map(|(a, b)| a ^ b).collect();
        let non_learners = others.iter().filter(|&&j| !cfg.learns(j));
        futures_util::future::try_join_all(
            non_learners.map(|&j| ch.send(j, Phase::OutputDone, Bytes::from_static(OUTPUT_DONE))),
        )
        .await?;
        Ok(Some(learned))
    }
}
