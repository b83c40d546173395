//! Authenticated AND triples from authenticated bits (WRK17 §5: FHaAND, FLaAND, FaAND), the
//! second half of Source B.
//!
//! Per batch of ℓ AND gates the parties hold L = ℓ·B spare aBit triples ([x], [y], [r]) from
//! [`super::ot::abit`]. Then:
//!
//! 1. **Half AND** (FHaAND): for every ordered pair (i, j), P_i sends one bit
//!    `lsb H(K_i[x_j]) ⊕ lsb H(K_i[x_j] ⊕ Δ_i) ⊕ y_i`; P_j derives `lsb H(K_i[x_j]) ⊕ x_j·y_i`
//!    from its MAC. Summed over all pairs, the parties hold shares of ⊕_{i≠j} x_i·y_j.
//! 2. **Leaky AND** (FLaAND): each P_i sets z_i = (its half-AND shares) ⊕ x_i·y_i, so that
//!    z = x·y, and authenticates it by announcing e_i = z_i ⊕ r_i (every P_k shifts its key on
//!    P_i's r by e_i·Δ_k). The **leaky AND check** then verifies z = x·y without opening
//!    anything: with Φ_i = y_i·Δ_i ⊕ ⊕_k (K_i[y_k] ⊕ M_k[y_i]) (a sharing of y·ΣΔ), P_i sends
//!    each P_j `U = H'(K_i[x_j]) ⊕ H'(K_i[x_j] ⊕ Δ_i) ⊕ Φ_i`, which lets P_j obtain
//!    `H'(K_i[x_j]) ⊕ x_j·Φ_i`; P_i's value
//!    `H_i = z_i·Δ_i ⊕ ⊕_k (K_i[z_k] ⊕ M_k[z_i]) ⊕ ⊕_k (H'(K_i[x_k]) ⊕ H'(K_k[x_i]) ⊕ x_i·Φ_k) ⊕ x_i·Φ_i`
//!    is then a sharing of (z ⊕ x·y)·ΣΔ, which must be 0. As in WRK17 the H_i are committed to
//!    and then opened, but (like emp-agmpc, the WRK17 authors' implementation, which uses ρ
//!    binary combinations) each party opens one random linear combination of its H_i, with
//!    challenges χ_t ∈ GF(2^128) from a coin toss made after every H_i is fixed: a nonzero
//!    sum passes with probability 2^-128, and each party sends a 32-byte commitment and a
//!    32-byte opening per batch instead of 16 bytes per triple. A cheater may still guess an x bit of an honest party at the risk
//!    of being caught with probability 1/2 — the leakage that bucketing removes.
//!    The half-AND bits and the U blocks do not depend on z, so they travel in one round.
//!    H' is not a second hash: the half AND uses the lowest bit of H and the check its upper
//!    64 bits (below), disjoint bits of one tweakable correlation-robust hash per key, which
//!    halves the hashing of this step (three hashes per triple and pair instead of six).
//!
//!    **64 bits of every check value.** The check is linear, so it holds as well for any
//!    linear projection π of the values: Σ_i π(H_i) = (z ⊕ x·y)·π(ΣΔ). Each U therefore
//!    travels as π(U), its upper 64 bits (8 bytes instead of 16, which halves the largest
//!    message of the preprocessing), and each party combines π(H_i). Why 64 bits suffice:
//!    a wrong triple passes only if the cheater can predict c·π(ΣΔ) for a c ≠ 0 it cannot
//!    choose after the χ, and π(ΣΔ) is 64 bits of the honest party's Δ (the upper half
//!    holds none of the bits fixed to 1), so it succeeds with probability 2^-64 per batch,
//!    or 2^-(64−g) after it learned g bits of Δ elsewhere at the price of an abort with
//!    probability 1 − 2^-g per bit it guesses (the FaBit leakage): in either case far below
//!    the 2^-ρ of a batch. The χ stay in GF(2^128), so a nonzero projected value survives
//!    the combination with probability 1 − 2^-128. Flips in the upper bits of U are the
//!    only flips left, and they are caught as before; the lower bits are no longer sent.
//!    What U hides is unchanged: π(U) is a projection of a value masked by H'(K ⊕ Δ).
//! 3. **Bucketing** (FaAND): the L leaky triples are B layers of ℓ, and bucket k takes
//!    triple (k + s_c) mod ℓ of layer c, with s_0 = 0 and shifts s_1 .. s_{B−1} from a coin
//!    toss (the same coin as the challenges, so they are fixed only after every leaky
//!    triple is). Within a bucket, triple (x', y', z') is folded into (x, y, z) by opening
//!    d = y ⊕ y' with MACs (the **bucketing MAC check**) and setting
//!    x ← x ⊕ x', z ← z ⊕ z' ⊕ d·x'. The result leaks nothing unless every triple of its
//!    bucket leaked. B is the smallest size for which the rotation bound
//!    `2^-B · ℓ^-(B−1)` of [`bound`] is at most 2^-ρ (at ρ = 40: B = 3 from 2^18.5 ≈
//!    370,000 AND gates per batch, B = 4 from 4,096, B = 5 from 431, more below). The
//!    differences d are opened in the same round as the leaky-AND check values:
//!    d = y ⊕ y' of random aBits says nothing about any input, and nothing is used before
//!    both checks pass.
//!
//!    **Why rotations and not a random permutation.** WRK17 puts the triples into buckets
//!    with a uniformly random permutation, whose bound (`max_b 2^-b · ℓ · C(b, B) /
//!    C(ℓB, B)`, Wang–Malozemoff–Katz 2017) is a little tighter: it allows B = 4 from about
//!    3,100 gates and B = 3 from 280,000 at ρ = 40. But a permutation makes every read of
//!    the bucketing pass a cache miss, which cost a tenth of a 1M-gate run's CPU; with
//!    rotations each bucket reads B sequential streams. At the batch sizes the memory
//!    budget allows (about 65,000 gates with 2 parties), both give B = 4; the two bounds
//!    differ by one only for batches of 1,000–4,100 or 280,000–370,000 gates (and a few
//!    smaller ranges). The argument for rotations: a cheater who tries t_c triples of
//!    layer c passes with probability 2^-Σt_c, and for each tried triple of layer 0 the
//!    triple it meets in layer c is uniform in that layer, so some bucket is all tried
//!    with probability at most t_0 · Π_{c≥1} t_c/ℓ; as t · 2^-t ≤ 1/2 the product is at
//!    most 2^-B · ℓ^-(B−1). A unit test checks this against every cheater of small
//!    batches.
//!
//! **Statistical security per run, not per batch.** Every batch buckets with its own coin,
//! so an adversary gets one independent try per batch, and a run of k batches fails with
//! probability at most k times the per-batch bound. Each batch therefore uses
//! ρ = 40 + ⌈log2 k⌉ ([`batch_rho`]), which keeps the whole run at 2^-40 or better
//! (k · 2^-(40 + ⌈log2 k⌉) ≤ 2^-40). B = 3 needs about 370,000 AND gates in one batch at
//! ρ = 40, 524,000 at ρ = 41, 2.1 million at ρ = 45; B = 4 needs 4,096, 5,200 and 13,000.
//! The batch planner in [`super::ot`] caps a batch's memory, so a large circuit is many
//! batches of about 65,000 AND gates (2 parties) at B = 4: that costs a third more leaky
//! triples per AND gate than B = 3, which would need batches of hundreds of thousands of
//! gates, hundreds of megabytes each (see [`super::ot`]).
//!
//! Yang–Wang–Zhang (ePrint 2019/1104): their changes to this phase are not implemented
//! (yet); the only related technique used is checking a whole batch through one random
//! combination over GF(2^128) (above, and in the aBit check).

//!
//! Files: [`bound`] (the bucket size for a batch), [`leaky`] (half ANDs and the leaky-AND
//! check's values), [`bucket`] (the coin-tossed buckets and their folding); this file drives
//! the rounds.

mod bound;
mod bucket;
mod leaky;

use bytes::Bytes;
use futures_util::future::{try_join, try_join_all};
use subtle::ConstantTimeEq;

use self::bucket::{Buckets, fold_differences, gather};
use self::leaky::{BATCH_BITS, TRIPLE_BITS, Work, laand_commitment};
use super::ot::abit::ABits;
use super::ot::common::{CoinToss, Ctx, DrawnCoin, bits_to_bytes, offload, read_block};
use crate::channel::{Channel, Phase};
use crate::engine::EngineError;
use crate::engine::share::{AuthBits, MacDigest};

pub use self::bound::{batch_rho, bucket_size};
pub use self::leaky::Buffers;

/// Statistical security parameter ρ of a whole run.
pub const RHO: u32 = 40;

/// The check a wrong leaky AND triple fails.
pub const LEAKY_AND_CHECK: &str = "leaky AND check";

/// The check a wrong opening of a bucketing difference fails.
pub const BUCKETING_CHECK: &str = "bucketing MAC check";

/// How one batch's aBits are laid out: plain aBits (input masks, then one output mask per AND
/// gate), then the x, y and r of every leaky triple.
#[derive(Debug, Clone, Copy)]
pub struct Layout {
    /// Input-wire aBits in this batch.
    pub inputs: usize,
    /// AND gates in this batch.
    pub ands: usize,
    /// Bucket size.
    pub bucket: usize,
}

impl Layout {
    /// Leaky triples (ℓ·B).
    pub fn leaky(&self) -> usize {
        self.ands * self.bucket
    }

    /// aBits needed (before the sacrificed ones).
    pub fn abits(&self) -> usize {
        self.inputs + self.ands + 3 * self.leaky()
    }

    fn plain(&self) -> usize {
        self.inputs + self.ands
    }

    /// Index of x of leaky triple t. The x, y and r of a triple are adjacent, so that the
    /// random accesses of bucketing touch one cache line per triple and peer, not three.
    #[inline]
    pub(super) fn x(&self, t: usize) -> usize {
        self.plain() + 3 * t
    }

    #[inline]
    pub(super) fn y(&self, t: usize) -> usize {
        self.plain() + 3 * t + 1
    }

    #[inline]
    pub(super) fn r(&self, t: usize) -> usize {
        self.plain() + 3 * t + 2
    }
}

/// Turns one batch of aBits into this party's material: the batch's input aBits, then per
/// AND gate [a], [b], [c] with c = a ∧ b and a fresh [λ]. The material is written into
/// `out` (cleared first, its capacity reused); the aBits and buffers are handed back for
/// the next batch.
pub async fn triples<C: Channel>(
    ctx: &mut Ctx<'_, C>,
    ab: ABits,
    layout: Layout,
    out: AuthBits,
    bufs: Buffers,
) -> Result<(AuthBits, ABits, Buffers), EngineError> {
    let m = ctx.others.len();
    let big_l = layout.leaky();
    if ctx.batch >= 1 << BATCH_BITS || big_l as u64 >= 1 << TRIPLE_BITS {
        return Err(EngineError::Setup(format!(
            "batch {} with {big_l} leaky triples is beyond what the hash tweaks can number",
            ctx.batch
        )));
    }
    let mut work = Work {
        ab,
        bufs,
        layout,
        batch: ctx.batch,
        me: ctx.slots.me,
        others: ctx.others.clone(),
        delta: ctx.delta,
    };
    if big_l == 0 {
        let Work { ab, mut bufs, .. } = work;
        let out = gather(
            &ab,
            layout,
            m,
            &Buckets::none(),
            out,
            &mut [],
            &mut bufs.mac_diffs,
            &mut bufs.keydiffs,
        );
        return Ok((out, ab, bufs));
    }

    work = half_ands(ctx, work).await?;
    // The challenges and the bucketing shifts come from one coin toss, opened after
    // every leaky triple and every H_i is fixed; its commitments ride on the e bits.
    let drawn = CoinToss::draw(ctx, b"leaky AND");
    let (back, coin) = authenticate_z(ctx, work, drawn).await?;
    work = back;
    let seed = coin.open(ctx, Phase::LeakyAnd).await?;
    let (back, h_bar) = offload(move || {
        let h = work.h_bar(&seed);
        (work, h)
    })
    .await?;
    work = back;
    let (opening, commitments) = commit_to_check_value(ctx, h_bar).await?;

    // One pass in bucket order (B sequential streams): writes a, b, Σz, λ of every gate
    // into `out`, this party's shares of every d = y[p0] ⊕ y[pc] with, per peer, the digest
    // of their MACs, and keeps what the opened d still needs sequentially.
    let diffs = layout.ands * (layout.bucket - 1);
    let (back, out, d_mine, digests, buckets) = offload(move || {
        let buckets = Buckets::from_coin(&seed, layout.ands, layout.bucket);
        let mut d_mine = vec![0u128; diffs.div_ceil(128)];
        let Work { ab, bufs, .. } = &mut work;
        let out = gather(
            ab,
            layout,
            m,
            &buckets,
            out,
            &mut d_mine,
            &mut bufs.mac_diffs,
            &mut bufs.keydiffs,
        );
        let digests: Vec<[u8; 32]> = (0..m)
            .map(|s| {
                let mut digest = MacDigest::with_capacity(diffs);
                for idx in 0..diffs {
                    digest.push(bufs.mac_diffs[idx * m + s]);
                }
                digest.finish()
            })
            .collect();
        (work, out, d_mine, digests, buckets)
    })
    .await?;
    work = back;

    let received = open_check_and_differences(ctx, opening, &d_mine, diffs, &digests).await?;
    leaky_and_check(ctx, h_bar, &received, &commitments)?;
    let d = bucketing_check(ctx, &work, diffs, d_mine, &received)?;
    let (out, work) = offload(move || {
        let mut out = out;
        fold_differences(&mut out, &work.ab, layout, m, &d, &buckets);
        (out, work)
    })
    .await?;
    Ok((out, work.ab, work.bufs))
}

/// Round 1: the half-AND bits and the leaky-AND check's U, in one message per peer.
async fn half_ands<C: Channel>(ctx: &mut Ctx<'_, C>, mut work: Work) -> Result<Work, EngineError> {
    let big_l = work.layout.leaky();
    let (back, msgs) = offload(move || {
        let msgs = work.sender();
        (work, msgs)
    })
    .await?;
    work = back;
    let received = ctx.exchange_each(Phase::LeakyAnd, msgs).await?;
    for (s, msg) in received.iter().enumerate() {
        ctx.expect_len(s, Phase::LeakyAnd, msg, leaky::message_len(big_l))?;
    }
    offload(move || {
        work.receiver(&received);
        work
    })
    .await
}

/// Round 2: z = half-AND shares ⊕ x·y; every party announces e = z ⊕ r, and z is
/// authenticated as [r] ⊕ e. The commitments of the coin `drawn` go at the head of the
/// message: nothing the coin must not depend on is known before this round's messages
/// are all received, and the coin is opened only after that.
async fn authenticate_z<C: Channel>(
    ctx: &mut Ctx<'_, C>,
    work: Work,
    drawn: DrawnCoin,
) -> Result<(Work, CoinToss), EngineError> {
    let big_l = work.layout.leaky();
    let (work, e) = offload(move || {
        let mut work = work;
        let e = work.announce_z();
        (work, e)
    })
    .await?;
    let msg = drawn.prefixed(&bits_to_bytes(&e, big_l));
    let received = ctx.broadcast(Phase::LeakyAnd, msg).await?;
    let (coin, received) = drawn.received(ctx, Phase::LeakyAnd, received)?;
    for (s, msg) in received.iter().enumerate() {
        ctx.expect_len(s, Phase::LeakyAnd, msg, big_l.div_ceil(8))?;
    }
    offload(move || {
        let mut work = work;
        for (s, msg) in received.iter().enumerate() {
            work.shift_r_keys(s, msg);
        }
        work
    })
    .await
    .map(|work| (work, coin))
}

/// Round 3: commits to this party's combined check value H̄ (with a nonce); returns the
/// opening to send later and every peer's commitment.
async fn commit_to_check_value<C: Channel>(
    ctx: &mut Ctx<'_, C>,
    h_bar: u128,
) -> Result<(Bytes, Vec<Bytes>), EngineError> {
    let mut nonce = [0u128; 1];
    ctx.rng.fill(&mut nonce);
    let mut opening = Vec::with_capacity(32);
    opening.extend_from_slice(&h_bar.to_le_bytes());
    opening.extend_from_slice(&nonce[0].to_le_bytes());
    let commitment = laand_commitment(&ctx.run_id, ctx.slots.me, ctx.batch, &opening);
    let received = ctx
        .broadcast(Phase::LeakyAnd, Bytes::copy_from_slice(&commitment))
        .await?;
    for (s, msg) in received.iter().enumerate() {
        ctx.expect_len(s, Phase::LeakyAnd, msg, 32)?;
    }
    Ok((Bytes::from(opening), received))
}

/// Round 4: opens H̄ and, with it, this party's shares of the bucketing differences and the
/// digest of their MACs towards each peer. Returns each peer's (opening, differences).
async fn open_check_and_differences<C: Channel>(
    ctx: &Ctx<'_, C>,
    opening: Bytes,
    d_mine: &[u128],
    diffs: usize,
    digests: &[[u8; 32]],
) -> Result<Vec<(Bytes, Bytes)>, EngineError> {
    let d_bytes = bits_to_bytes(d_mine, diffs);
    let bucket_msgs: Vec<Bytes> = digests
        .iter()
        .map(|dg| {
            let mut msg = d_bytes.clone();
            msg.extend_from_slice(dg);
            Bytes::from(msg)
        })
        .collect();
    let ch = ctx.ch;
    let others = &ctx.others;
    let sends = try_join_all(others.iter().zip(bucket_msgs).map(|(&j, msg)| {
        let opening = opening.clone();
        async move {
            ch.send(j, Phase::LeakyAnd, opening).await?;
            ch.send(j, Phase::Bucketing, msg).await
        }
    }));
    let recvs = try_join_all(others.iter().map(|&j| async move {
        let o = ch.recv(j, Phase::LeakyAnd).await?;
        let d = ch.recv(j, Phase::Bucketing).await?;
        Ok::<_, crate::channel::ChannelError>((o, d))
    }));
    let (_, received) = try_join(sends, recvs).await?;
    Ok(received)
}

/// The leaky AND check: every opening matches its commitment and the H̄ of all parties sum
/// to zero.
fn leaky_and_check<C: Channel>(
    ctx: &Ctx<'_, C>,
    h_bar: u128,
    received: &[(Bytes, Bytes)],
    commitments: &[Bytes],
) -> Result<(), EngineError> {
    let mut sum = h_bar;
    for (s, (o, _)) in received.iter().enumerate() {
        ctx.expect_len(s, Phase::LeakyAnd, o, 32)?;
        let expected = laand_commitment(&ctx.run_id, ctx.others[s], ctx.batch, o);
        if !bool::from(expected.ct_eq(&commitments[s][..])) {
            return Err(ctx.check_failed(
                LEAKY_AND_CHECK,
                s,
                "its opened check value does not match its commitment".into(),
            ));
        }
        sum ^= read_block(o, 0).unwrap_or(0);
    }
    if !bool::from(sum.ct_eq(&0)) {
        return Err(EngineError::Check {
            check: LEAKY_AND_CHECK,
            peer: ctx.some_peer(),
            detail: format!(
                "the leaky AND triples of batch {} are not correct (z ≠ x·y)",
                ctx.batch
            ),
        });
    }
    Ok(())
}

/// The bucketing MAC check: each peer's opened differences match the digest of their MACs
/// under this party's keys. Returns the opened differences d (XOR of every party's share).
fn bucketing_check<C: Channel>(
    ctx: &Ctx<'_, C>,
    work: &Work,
    diffs: usize,
    d_mine: Vec<u128>,
    received: &[(Bytes, Bytes)],
) -> Result<Vec<u128>, EngineError> {
    let m = ctx.others.len();
    let dn = diffs.div_ceil(8);
    let mut d = d_mine;
    for (s, (_, msg)) in received.iter().enumerate() {
        ctx.expect_len(s, Phase::Bucketing, msg, dn + 32)?;
        let mut dg = MacDigest::with_capacity(diffs);
        for idx in 0..diffs {
            let mut key = work.bufs.keydiffs[idx * m + s];
            if (msg[idx / 8] >> (idx % 8)) & 1 == 1 {
                key ^= work.delta;
                d[idx / 128] ^= 1 << (idx % 128);
            }
            dg.push(key);
        }
        if !bool::from(dg.finish().ct_eq(&msg[dn..])) {
            return Err(ctx.check_failed(
                BUCKETING_CHECK,
                s,
                format!(
                    "its shares of the bucketing differences of batch {} do not match their MACs",
                    ctx.batch
                ),
            ));
        }
    }
    Ok(d)
}
