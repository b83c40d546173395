//! Source B: the parties make their own correlated randomness, without a dealer, secure
//! against a malicious adversary corrupting all but one party (WRK17 §4–§5).
//!
//! Pipeline per batch (all parties in lock step):
//!
//! 1. once per session, [`base`]: 128 Masny–Rindal endemic base OTs (OT from Diffie–Hellman
//!    over Ristretto255) per ordered pair, choices = Δ;
//! 2. [`extension`] + [`abit`]: COT extension with every peer gives authenticated bits, with
//!    the OT extension consistency check and the aBit consistency check (same bits towards
//!    everyone);
//! 3. [`super::faand`]: half ANDs, leaky ANDs with the leaky AND check, bucketing with the
//!    bucketing MAC check, then the batch's material in the order the online phase consumes it.
//!
//! **Choice of OT extension: SoftSpokenOT with k = [`ggm::K`], checked as in KOS15.**
//! IKNP/KOS15 sends a κ-bit u-row per authenticated bit: 16 bytes per aBit and ordered pair,
//! about 384 of the 676 bytes per AND gate that 2 parties sent without a dealer. SoftSpokenOT
//! (Roy, CRYPTO 2022, which MP-SPDZ and emp-ot adopted) replaces the κ base OTs per pair by
//! κ/k punctured (2^k − 1)-out-of-2^k OTs ([`ggm`], GGM trees of depth k built once from the
//! same base OTs, choices = k bits of Δ each) and sends one correction bit per tree and aBit:
//! κ/k bits per aBit, at 2^k/k times the PRG work (see [`extension`]). With k = 1 it is
//! exactly KOS15. Its output is the IKNP correlation column by column, so KOS15's check runs
//! on it unchanged, in its conservative form: the challenges χ_t ∈ GF(2^128) come from a coin
//! toss made after every correction was sent, the whole matrix is combined in GF(2^128) (not
//! per bit), and 256 ≥ κ + ρ random rows are sacrificed so the revealed combination hides the
//! used bits. For authenticated bits all the check has to bound is a cheating MAC holder
//! learning a few bits of Δ by guessing (each wrong guess aborts; a bad tree or correction
//! only lets it bet on the k bits of Δ under one tree), the leakage WRK17's FaBit analysis
//! already tolerates. Roy's paper also points out a gap in KOS15's original proof; the
//! conservative check is the form its analysis covers. Why k = 4: measured on the 1M-AND
//! benchmark (2 parties, `mpc run --no-dealer`, both sharing 2 busy cores, interleaved
//! runs): KOS15 sent 676 bytes per AND gate, k = 4 sends 364 and k = 8 312; k = 4 took
//! 12.0–16.5 s where KOS15 took 11.4–14.7 s on the same loaded machine (within a few
//! percent in one process, where bytes cost only a copy), k = 8 took 27–43 s (256 AES
//! blocks per tree and 128 rows). k = 2 would send about 484. Through the relay every
//! byte is also sealed and forwarded, which k = 4 saves 336 MB of; peak memory is
//! unchanged (about 180 MB).
//!
//! Global keys: each party samples Δ with its lowest bit set; that bit is a base-OT choice
//! like any other, so the COT correlation is exactly Δ and the online phase's invariant
//! `lsb M = lsb K ⊕ x` holds for every aBit produced here.
//!
//! Batching, in a fixed memory budget: the material is produced in equal batches, each
//! capped at [`max_batch_leaky`] leaky triples (2 parties: 2^18, about 50 MiB, 65,536 AND
//! gates at B = 4; fewer with more parties, as a triple holds a MAC and a key per peer).
//! [`OtSource::take`] produces the next batch only when the online phase has consumed the
//! previous one and reuses its buffers, so a party holds one batch at a time and its memory
//! does not grow with the circuit: a larger circuit makes more batches, not larger ones.
//! Statistical security is per run: with k batches every batch buckets at
//! ρ = 40 + ⌈log2 k⌉, so all k together fail with probability at most 2^-40 (see
//! [`super::faand`]). The planner takes the fewest batches that fit the cap at the bucket
//! size their ρ needs. With the cap, B = 4 for every batch of a large circuit (the 1M-gate
//! benchmark: 17 batches of about 63,000 gates at ρ = 45; 10 million gates: 153 batches
//! at ρ = 48); B = 3 would need at least 370,000 gates in a batch (ρ = 40, one batch) and
//! 2.1 million at ρ = 45, several hundred megabytes per party. Measured on the 1M-gate
//! benchmark (2 parties, one process): B = 4 in small batches sends 23% more bytes (676
//! instead of 547 per AND gate, both parties) in about the same time (smaller batches stay
//! in cache and reuse their pages), at a fifth of the memory.

pub mod abit;
pub mod base;
pub mod common;
pub mod extension;
pub mod gf;
pub mod ggm;
pub mod transpose;

use std::collections::VecDeque;

use self::abit::ABits;
use self::common::Ctx;
use self::extension::PairOt;
use super::Source;
use super::faand::{self, Layout, batch_rho, bucket_size};
use crate::channel::{Channel, PeerNames};
use crate::engine::aes::Prg;
use crate::engine::share::{AuthBits, Block, Slots};
use crate::engine::transcript::Transcript;
use crate::engine::{EngineError, PartyConfig, Progress};

/// Most leaky triples (AND gates × bucket size) per batch for 2 parties: what bounds a
/// batch's memory, about 50 MiB per party (65,536 AND gates at B = 4). See
/// [`max_batch_leaky`] for more parties.
pub const MAX_BATCH_LEAKY: usize = 1 << 18;

/// Estimated bytes one leaky triple of a batch occupies with `m` peers: its three aBits
/// (a MAC and a key per peer: 96·m), the leaky-AND messages out and in (16·m), the keys on
/// the bucketing differences (at most 16·m), the batch's output per AND gate shared among
/// its B triples (at most 32·m + 8·m with the output-mask aBit), and per-triple scratch
/// (the accumulator: 16).
const fn bytes_per_leaky(m: usize) -> usize {
    164 * m + 16
}

/// Fewest leaky triples a batch may be capped at (however many parties): below this the
/// bucket size, and with it the work per AND gate, grows quickly.
const MIN_BATCH_LEAKY: usize = 1 << 14;

/// Most leaky triples per batch with `m` peers: the 2-party budget
/// ([`MAX_BATCH_LEAKY`] triples) in bytes, divided by what a triple takes with `m` peers.
/// Memory therefore stays flat however large the circuit: a larger circuit makes more
/// batches, not larger ones.
pub fn max_batch_leaky(m: usize) -> usize {
    let budget = MAX_BATCH_LEAKY * bytes_per_leaky(1);
    (budget / bytes_per_leaky(m.max(1))).max(MIN_BATCH_LEAKY)
}

/// Most input aBits per batch.
pub const MAX_BATCH_INPUTS: usize = 1 << 20;

/// What one batch produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchPlan {
    inputs: usize,
    ands: usize,
    /// Bucket size of this batch's AND triples (0 without AND gates).
    bucket: usize,
}

/// How many batches the AND gates take: the fewest whose triples fit `max_leaky` (and
/// `max_ands` gates) per batch at the bucket size the per-run bound asks for. Fewer batches
/// mean larger batches and a smaller ρ per batch, so the bucket size never grows when the
/// count shrinks; the fewest feasible batches therefore also need the least work.
fn and_batches(ands: u64, max_ands: u64, max_leaky: u64) -> u64 {
    if ands == 0 {
        return 0;
    }
    // Every bucket holds at least two triples.
    let mut k = ands
        .div_ceil(max_ands)
        .max(ands.saturating_mul(2).div_ceil(max_leaky));
    k = k.clamp(1, ands);
    while k < ands {
        let bucket = bucket_size(ands / k, batch_rho(k)) as u64;
        if ands.div_ceil(k).saturating_mul(bucket) <= max_leaky {
            break;
        }
        k += 1;
    }
    k
}

/// Splits the session's needs into batches: input bits first, AND gates in equal batches
/// (at most `max_ands` gates and `max_leaky` leaky triples each, as far as possible), all
/// with the bucket size for ρ = 40 + ⌈log2 batches⌉.
fn plan(inputs: u64, ands: u64, max_ands: u64, max_leaky: u64) -> VecDeque<BatchPlan> {
    let mut out = VecDeque::new();
    let mut inputs_left = inputs;
    while inputs_left > MAX_BATCH_INPUTS as u64 {
        out.push_back(BatchPlan {
            inputs: MAX_BATCH_INPUTS,
            ands: 0,
            bucket: 0,
        });
        inputs_left -= MAX_BATCH_INPUTS as u64;
    }
    let batches = and_batches(ands, max_ands.max(1), max_leaky.max(1));
    // The smallest batch decides the bucket size; every batch uses it.
    let bucket = ands
        .checked_div(batches)
        .map_or(0, |smallest| bucket_size(smallest, batch_rho(batches)));
    for b in 0..batches {
        // Equal sizes (differing by at most one) keep every batch as large as possible.
        let size = ands / batches + u64::from(b < ands % batches);
        out.push_back(BatchPlan {
            inputs: if b == 0 { inputs_left as usize } else { 0 },
            ands: size as usize,
            bucket,
        });
    }
    if batches == 0 && inputs_left > 0 {
        out.push_back(BatchPlan {
            inputs: inputs_left as usize,
            ands: 0,
            bucket: 0,
        });
    }
    out
}

/// Source B for one party: base OTs at start, then batches of preprocessing on demand.
pub struct OtSource<'c, C: Channel> {
    ctx: Ctx<'c, C>,
    pairs: Vec<PairOt>,
    plan: VecDeque<BatchPlan>,
    ready: AuthBits,
    cursor: usize,
    /// The previous batch's aBit buffers, reused by the next.
    spare: Option<ABits>,
    bufs: faand::Buffers,
    /// Where batches made during the online phase are reported.
    progress: &'c dyn Progress,
    /// Batches planned in all.
    batches: usize,
}

impl<'c, C: Channel> OtSource<'c, C> {
    /// Samples Δ, runs the base OTs with every peer and produces the first batch (for
    /// `inputs` input aBits and `ands` AND gates in total; every party must pass the same
    /// run id and numbers and later take material in the same amounts).
    pub async fn start(
        ch: &'c C,
        slots: Slots,
        run_id: [u8; 32],
        inputs: u64,
        ands: u64,
        progress: &'c dyn Progress,
    ) -> Result<Self, EngineError> {
        Self::start_with_batch_cap(ch, slots, run_id, inputs, ands, usize::MAX, progress).await
    }

    /// Like [`OtSource::start`] with at most `max_batch_ands` AND gates per batch (tests use
    /// small caps to exercise many batches; smaller batches need larger buckets).
    pub async fn start_with_batch_cap(
        ch: &'c C,
        slots: Slots,
        run_id: [u8; 32],
        inputs: u64,
        ands: u64,
        max_batch_ands: usize,
        progress: &'c dyn Progress,
    ) -> Result<Self, EngineError> {
        PartyConfig::check_party_count(slots.n)?;
        if slots.me >= slots.n {
            return Err(EngineError::Setup(format!(
                "party {} of a session of {} parties does not exist",
                slots.me, slots.n
            )));
        }
        let max_leaky = max_batch_leaky(slots.m());
        let mut rng = Prg::from_entropy();
        let delta: Block = rng.block() | 1;
        let mut ctx = Ctx {
            ch,
            slots,
            others: slots.others().collect(),
            names: PeerNames::new(slots.n),
            delta,
            batch: 0,
            run_id,
            rng,
            transcript: Transcript::new(&run_id),
        };
        progress.phase("base OT", 0);
        let seeds = base::run(&mut ctx).await?;
        let pairs = extension::setup(&mut ctx, &seeds).await?;
        progress.finish();
        let plan = plan(inputs, ands, max_batch_ands as u64, max_leaky as u64);
        let mut source = OtSource {
            ctx,
            pairs,
            batches: plan.len(),
            plan,
            ready: AuthBits::new(slots.m()),
            cursor: 0,
            spare: None,
            bufs: faand::Buffers::default(),
            progress,
        };
        if let Some(first) = source.plan.front().copied() {
            // The bar counts the first batch's AND gates (its input bits when it has none):
            // about half of the work is the aBits, half the triples.
            let units = first.ands.max(first.inputs) as u64;
            progress.phase("preprocessing", units);
            source.next_batch(Some(units)).await?;
            progress.finish();
        }
        Ok(source)
    }

    /// Makes the next batch of the plan. `units`: the first batch, reported on its own bar
    /// as it advances; later batches run while the online phase waits for them, and show
    /// as a detail of its bar.
    async fn next_batch(&mut self, units: Option<u64>) -> Result<(), EngineError> {
        let number = self.batches - self.plan.len() + 1;
        if units.is_none() {
            self.progress
                .detail(&format!("preprocessing {number}/{}", self.batches));
        }
        let batch = self.plan.pop_front().ok_or_else(|| {
            EngineError::Setup(
                "the online phase asked for more preprocessed material than the circuit needs"
                    .into(),
            )
        })?;
        // The consumed batch's buffers are reused for the next one.
        let m = self.ctx.slots.m();
        let out = std::mem::replace(&mut self.ready, AuthBits::new(m));
        self.cursor = 0;
        let store = self.spare.take().unwrap_or_else(|| ABits::empty(m));
        let layout = Layout {
            inputs: batch.inputs,
            ands: batch.ands,
            bucket: batch.bucket,
        };
        let pairs = std::mem::take(&mut self.pairs);
        let (abits, pairs) = abit::generate(&mut self.ctx, pairs, layout.abits(), store).await?;
        self.pairs = pairs;
        if let Some(units) = units {
            self.progress.advance(units / 2);
        }
        let bufs = std::mem::take(&mut self.bufs);
        let (ready, store, bufs) = faand::triples(&mut self.ctx, abits, layout, out, bufs).await?;
        self.ready = ready;
        self.spare = Some(store);
        self.bufs = bufs;
        self.ctx.batch += 1;
        match units {
            Some(units) => self.progress.advance(units - units / 2),
            None => self.progress.detail(""),
        }
        Ok(())
    }
}

impl<C: Channel> Source for OtSource<'_, C> {
    fn delta(&self) -> Block {
        self.ctx.delta
    }

    fn transcript(&self) -> [u8; 32] {
        self.ctx.transcript.digest()
    }

    async fn take(&mut self, count: usize) -> Result<AuthBits, EngineError> {
        let w = 2 * self.ctx.slots.m();
        let mut out = AuthBits::new(self.ctx.slots.m());
        out.bits.reserve(count);
        out.mk.reserve(count * w);
        while out.len() < count {
            if self.cursor == self.ready.len() {
                self.next_batch(None).await?;
                continue;
            }
            let k = (count - out.len()).min(self.ready.len() - self.cursor);
            let (a, b) = (self.cursor, self.cursor + k);
            out.bits.extend_from_slice(&self.ready.bits[a..b]);
            out.mk.extend_from_slice(&self.ready.mk[a * w..b * w]);
            self.cursor = b;
        }
        if self.plan.is_empty() && self.cursor == self.ready.len() {
            // Everything is consumed: release the memory now rather than with the source.
            self.ready = AuthBits::new(self.ctx.slots.m());
            self.spare = None;
            self.bufs = faand::Buffers::default();
            self.cursor = 0;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plans_cover_everything() {
        for (inputs, ands, cap, leaky) in [
            (0u64, 0u64, u64::MAX, MAX_BATCH_LEAKY as u64),
            (5, 0, u64::MAX, MAX_BATCH_LEAKY as u64),
            (3, 7, u64::MAX, MAX_BATCH_LEAKY as u64),
            (64, 1_074_784, u64::MAX, MAX_BATCH_LEAKY as u64),
            (3_000_000, 10, u64::MAX, max_batch_leaky(3) as u64),
            (10, 600_000, u64::MAX, max_batch_leaky(3) as u64),
            (10, 10_000_000, u64::MAX, max_batch_leaky(1) as u64),
            (10, 1000, 7, MAX_BATCH_LEAKY as u64),
            (10, 1000, u64::MAX, 50),
        ] {
            let p = plan(inputs, ands, cap, leaky);
            assert_eq!(p.iter().map(|b| b.inputs as u64).sum::<u64>(), inputs);
            assert_eq!(p.iter().map(|b| b.ands as u64).sum::<u64>(), ands);
            assert!(p.iter().all(|b| b.inputs + b.ands > 0));
            assert!(p.iter().all(|b| b.ands as u64 <= cap));
            let batches = p.iter().filter(|b| b.ands > 0).count() as u64;
            for b in p.iter().filter(|b| b.ands > 0) {
                // Every batch meets the per-run bound: ρ grows with the number of batches.
                assert!(b.bucket >= bucket_size(b.ands as u64, batch_rho(batches)));
            }
        }
    }

    #[test]
    fn a_million_gates_keep_bucket_size_three_only_in_large_batches() {
        // programs/big.garble.rs with a cap of 1.8 million leaky triples per batch: two
        // batches of ~537,000 at ρ = 41 need B = 3; three batches of ~358,000 would need
        // ρ = 42 and B = 4.
        let p = plan(64, 1_074_784, u64::MAX, 1_800_000);
        assert_eq!(p.len(), 2);
        assert!(p.iter().all(|b| b.bucket == 3));
        assert_eq!(bucket_size(1_074_784 / 3, batch_rho(3)), 4);
    }

    #[test]
    fn the_memory_cap_keeps_batches_small_at_bucket_size_four() {
        // With the default cap: 17 batches of ~63,000 gates at ρ = 45, B = 4.
        let p = plan(64, 1_074_784, u64::MAX, max_batch_leaky(1) as u64);
        assert_eq!(p.len(), 17);
        assert!(p.iter().all(|b| b.bucket == 4));
        assert!(p.iter().all(|b| b.ands * b.bucket <= MAX_BATCH_LEAKY));
        // Ten times the gates: ten times the batches of the same size.
        let p = plan(0, 10_000_000, u64::MAX, max_batch_leaky(1) as u64);
        assert!(p.iter().all(|b| b.bucket == 4 && b.ands <= 65_536));
        // More peers, smaller batches (a triple holds a MAC and a key per peer).
        assert!(max_batch_leaky(2) < max_batch_leaky(1));
        assert!(max_batch_leaky(255) >= MIN_BATCH_LEAKY);
    }

    #[test]
    fn many_batches_need_larger_buckets() {
        // 10 million AND gates: more than 16 batches, ρ ≥ 45, B = 4 for every batch.
        let p = plan(0, 10_000_000, u64::MAX, MAX_BATCH_LEAKY as u64);
        let batches = p.len() as u64;
        assert!(batches > 16, "{batches}");
        assert!(p.iter().all(|b| b.bucket == 4));
        assert!(p.iter().all(|b| b.ands * b.bucket <= MAX_BATCH_LEAKY));
    }
}
