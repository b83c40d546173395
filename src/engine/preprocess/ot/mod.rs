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
//! **Choice of OT extension: KOS15 (IKNP matrix + the KOS consistency check).** SoftSpokenOT
//! (Roy, CRYPTO 2022), which MP-SPDZ adopted, points out a gap in KOS15's original proof;
//! with k = 1 it has exactly this structure (an IKNP matrix checked by a universal hash with
//! a coin-tossed challenge), and larger k divides the u-matrix bandwidth by k at 2^k/k times
//! the PRG work. We run the check in its conservative form: the challenges χ_t ∈ GF(2^128)
//! come from a coin toss made after every u-matrix was sent, the whole matrix is combined
//! in GF(2^128) (not per bit), and 256 ≥ κ + ρ random rows are sacrificed so the revealed
//! combination hides the used bits. For authenticated bits all the check has to bound is a
//! cheating MAC holder learning a few bits of Δ by guessing (each wrong guess aborts), the
//! leakage WRK17's FaBit analysis already tolerates. Why not larger k: here computation,
//! not bandwidth, is the bottleneck (all parties share 2 cores in tests and `mpc run`; the
//! u-matrices are 16 bytes per aBit, less than the leaky-AND traffic), so k = 1 is both the
//! fastest and the simplest to audit.
//!
//! Global keys: each party samples Δ with its lowest bit set; that bit is a base-OT choice
//! like any other, so the COT correlation is exactly Δ and the online phase's invariant
//! `lsb M = lsb K ⊕ x` holds for every aBit produced here.
//!
//! Batching: the material is produced in batches sized to the circuit: all AND gates in one
//! batch when there are at most 2^19 (2^18 for more than 3 parties), otherwise in equal
//! batches below that cap. The bucket size follows the batch size (B = 3 needs ≈ 280,000
//! triples per batch, which is why the cap is not lower). [`OtSource::take`] produces the
//! next batch only when the online phase has consumed the previous one, so memory is bounded
//! by one batch, whatever the circuit's size.

pub mod abit;
pub mod base;
pub mod common;
pub mod extension;
pub mod gf;

use std::collections::VecDeque;

use self::abit::ABits;
use self::common::{Ctr, Ctx};
use self::extension::PairOt;
use super::Source;
use super::faand::{self, Layout, bucket_size};
use crate::channel::{Channel, PeerNames};
use crate::engine::share::{AuthBits, Block, Slots};
use crate::engine::{EngineError, Progress};

/// Most AND gates per batch for up to 3 parties (B = 3 needs ≈ 280,000).
pub const MAX_BATCH_ANDS: usize = 1 << 19;

/// Most AND gates per batch for 4 or more parties (memory grows with n; B = 4 at this size).
pub const MAX_BATCH_ANDS_MANY: usize = 1 << 18;

/// Most input aBits per batch.
pub const MAX_BATCH_INPUTS: usize = 1 << 20;

/// What one batch produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BatchPlan {
    inputs: usize,
    ands: usize,
}

/// Splits the session's needs into batches: input bits first, AND gates in equal batches.
fn plan(inputs: u64, ands: u64, cap: u64) -> VecDeque<BatchPlan> {
    let mut out = VecDeque::new();
    let mut inputs_left = inputs;
    while inputs_left > MAX_BATCH_INPUTS as u64 {
        out.push_back(BatchPlan {
            inputs: MAX_BATCH_INPUTS,
            ands: 0,
        });
        inputs_left -= MAX_BATCH_INPUTS as u64;
    }
    let batches = ands.div_ceil(cap);
    for b in 0..batches {
        // Equal sizes (differing by at most one) keep every batch as large as possible.
        let size = ands / batches + u64::from(b < ands % batches);
        out.push_back(BatchPlan {
            inputs: if b == 0 { inputs_left as usize } else { 0 },
            ands: size as usize,
        });
    }
    if batches == 0 && inputs_left > 0 {
        out.push_back(BatchPlan {
            inputs: inputs_left as usize,
            ands: 0,
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
}

impl<'c, C: Channel> OtSource<'c, C> {
    /// Samples Δ, runs the base OTs with every peer and produces the first batch (for
    /// `inputs` input aBits and `ands` AND gates in total; every party must pass the same
    /// numbers and later take material in the same amounts).
    pub async fn start(
        ch: &'c C,
        slots: Slots,
        inputs: u64,
        ands: u64,
        progress: &dyn Progress,
    ) -> Result<Self, EngineError> {
        let cap = if slots.n <= 3 {
            MAX_BATCH_ANDS
        } else {
            MAX_BATCH_ANDS_MANY
        };
        Self::start_with_batch_cap(ch, slots, inputs, ands, cap, progress).await
    }

    /// Like [`OtSource::start`] with at most `max_batch_ands` AND gates per batch (tests use
    /// small caps to exercise many batches; smaller batches need larger buckets).
    pub async fn start_with_batch_cap(
        ch: &'c C,
        slots: Slots,
        inputs: u64,
        ands: u64,
        max_batch_ands: usize,
        progress: &dyn Progress,
    ) -> Result<Self, EngineError> {
        let mut rng = Ctr::from_entropy();
        let delta: Block = rng.block() | 1;
        let mut ctx = Ctx {
            ch,
            slots,
            others: slots.others().collect(),
            names: PeerNames::new(slots.n),
            delta,
            batch: 0,
            run_id: [0; 32],
            rng,
        };
        progress.phase("base OT", 0);
        let seeds = base::run(&mut ctx).await?;
        progress.finish();
        let pairs = seeds.iter().map(PairOt::new).collect();
        let mut source = OtSource {
            ctx,
            pairs,
            plan: plan(inputs, ands, max_batch_ands.max(1) as u64),
            ready: AuthBits::new(slots.m()),
            cursor: 0,
            spare: None,
            bufs: faand::Buffers::default(),
        };
        if let Some(first) = source.plan.front().copied() {
            progress.phase("preprocessing", first.ands as u64);
            source.next_batch().await?;
            progress.advance(first.ands as u64);
            progress.finish();
        }
        Ok(source)
    }

    async fn next_batch(&mut self) -> Result<(), EngineError> {
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
            bucket: if batch.ands > 0 {
                bucket_size(batch.ands as u64)
            } else {
                0
            },
        };
        let pairs = std::mem::take(&mut self.pairs);
        let (abits, pairs) = abit::generate(&mut self.ctx, pairs, layout.abits(), store).await?;
        self.pairs = pairs;
        let bufs = std::mem::take(&mut self.bufs);
        let (ready, store, bufs) = faand::triples(&mut self.ctx, abits, layout, out, bufs).await?;
        self.ready = ready;
        self.spare = Some(store);
        self.bufs = bufs;
        self.ctx.batch += 1;
        Ok(())
    }
}

impl<C: Channel> Source for OtSource<'_, C> {
    fn delta(&self) -> Block {
        self.ctx.delta
    }

    async fn take(&mut self, count: usize) -> Result<AuthBits, EngineError> {
        let w = 2 * self.ctx.slots.m();
        let mut out = AuthBits::new(self.ctx.slots.m());
        out.bits.reserve(count);
        out.mk.reserve(count * w);
        while out.len() < count {
            if self.cursor == self.ready.len() {
                self.next_batch().await?;
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
        for (inputs, ands, cap) in [
            (0u64, 0u64, 1u64 << 19),
            (5, 0, 1 << 19),
            (3, 7, 1 << 19),
            (64, 1_074_784, 1 << 19),
            (3_000_000, 10, 1 << 18),
            (10, 600_000, 1 << 18),
            (10, 1000, 7),
        ] {
            let p = plan(inputs, ands, cap);
            assert_eq!(p.iter().map(|b| b.inputs as u64).sum::<u64>(), inputs);
            assert_eq!(p.iter().map(|b| b.ands as u64).sum::<u64>(), ands);
            assert!(p.iter().all(|b| b.inputs + b.ands > 0));
        }
        let p = plan(64, 1_074_784, MAX_BATCH_ANDS as u64);
        assert_eq!(p.len(), 3);
        assert!(p.iter().all(|b| bucket_size(b.ands as u64) == 3));
    }
}
