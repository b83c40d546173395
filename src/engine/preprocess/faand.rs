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
//! 3. **Bucketing** (FaAND): a coin-tossed permutation (the same coin as the challenges, so
//!    it is fixed only after every leaky triple is) puts the L leaky triples into ℓ
//!    buckets of B. Within a bucket, triple (x', y', z') is folded into (x, y, z) by opening
//!    d = y ⊕ y' with MACs (the **bucketing MAC check**) and setting
//!    x ← x ⊕ x', z ← z ⊕ z' ⊕ d·x'. The result leaks nothing unless every triple of its
//!    bucket leaked. B is the smallest size for which the WRK17/WMK17 bound
//!    `max_b 2^-b · ℓ · C(b, B) / C(ℓB, B)` is at most 2^-ρ (at ρ = 40: B = 3 from about
//!    280,000 triples per batch, B = 4 from about 3,100, B = 5 from about 320, more below;
//!    this reproduces the table emp-agmpc uses). The differences d are opened in the same
//!    round as the leaky-AND check values: d = y ⊕ y' of random aBits says nothing about any
//!    input, and nothing is used before both checks pass.
//!
//! **Statistical security per run, not per batch.** Every batch buckets with its own coin,
//! so an adversary gets one independent try per batch, and a run of k batches fails with
//! probability at most k times the per-batch bound. Each batch therefore uses
//! ρ = 40 + ⌈log2 k⌉ ([`batch_rho`]), which keeps the whole run at 2^-40 or better
//! (k · 2^-(40 + ⌈log2 k⌉) ≤ 2^-40). The bound itself is WRK17's bucketing lemma (their
//! §5, following Wang–Malozemoff–Katz 2017): with ℓ buckets of B drawn by a uniform
//! permutation of ℓ·B leaky triples of which b leaked, each leak guessed at the risk of
//! an abort with probability 1/2, the adversary wins with probability at most
//! `max_b 2^-b · ℓ · C(b, B) / C(ℓB, B)` ([`log2_failure`]). B = 3 needs about 280,000 AND
//! gates in one batch at ρ = 40, 390,000 at ρ = 41, 1.6 million at ρ = 45; B = 4 needs
//! about 3,000, 3,800 and 9,700. The batch planner in [`super::ot`] caps a batch's memory,
//! so a large circuit is many batches of about 65,000 AND gates (2 parties) at B = 4: that
//! costs a third more leaky triples per AND gate than B = 3, which would need batches of
//! hundreds of thousands of gates, hundreds of megabytes each (see [`super::ot`]).
//!
//! Yang–Wang–Zhang (ePrint 2019/1104): their changes to this phase are not implemented
//! (yet); the only related technique used is checking a whole batch through one random
//! combination over GF(2^128) (above, and in the aBit check).

use bytes::Bytes;
use futures_util::future::{try_join, try_join_all};
use subtle::ConstantTimeEq;

use super::ot::abit::ABits;
use super::ot::common::{
    CoinToss, Ctx, Tccr, bits_to_bytes, get_bit, offload, read_block, set_bit,
};
use super::ot::gf::{self, Acc};
use crate::channel::{Channel, Phase};
use crate::engine::aes::Prg;
use crate::engine::share::{AuthBits, Block, MacDigest};
use crate::engine::{EngineError, PARTY_BITS};

/// Statistical security parameter ρ of a whole run.
pub const RHO: u32 = 40;

/// The check a wrong leaky AND triple fails.
pub const LEAKY_AND_CHECK: &str = "leaky AND check";

/// The check a wrong opening of a bucketing difference fails.
pub const BUCKETING_CHECK: &str = "bucketing MAC check";

/// Triples hashed per tile (keeps the scratch buffers in cache).
const TILE: usize = 1024;

/// log2 of the probability that an adversary who corrupts some of ℓ·B leaky triples gets
/// a bucket with only corrupted triples past the checks, maximized over the number b of
/// corrupted triples: `2^-b · ℓ · C(b, B) / C(ℓB, B)`.
fn log2_failure(l: u64, b_size: u64) -> f64 {
    let total = l * b_size;
    let mut worst = f64::NEG_INFINITY;
    // Beyond a few hundred the 2^-b factor only shrinks the bound further.
    for b in b_size..=total.min(b_size + 400) {
        let mut p = -(b as f64) + (l as f64).log2();
        for i in 0..b_size {
            p += ((b - i) as f64).log2() - ((total - i) as f64).log2();
        }
        worst = worst.max(p);
    }
    worst
}

/// The bucket size for a batch of `ands` triples at statistical security `rho`.
pub fn bucket_size(ands: u64, rho: u32) -> usize {
    let l = ands.max(1);
    let mut b = 2;
    while log2_failure(l, b) > -(rho as f64) {
        b += 1;
    }
    b as usize
}

/// The ρ each of `batches` batches must reach so that the whole run fails with probability
/// at most 2^-[`RHO`] (a union bound over the batches): RHO + ⌈log2 batches⌉.
pub fn batch_rho(batches: u64) -> u32 {
    RHO + batches.max(1).next_power_of_two().trailing_zeros()
}

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
    fn x(&self, t: usize) -> usize {
        self.plain() + 3 * t
    }

    #[inline]
    fn y(&self, t: usize) -> usize {
        self.plain() + 3 * t + 1
    }

    #[inline]
    fn r(&self, t: usize) -> usize {
        self.plain() + 3 * t + 2
    }
}

/// Bits of the batch number in a tweak.
const BATCH_BITS: u32 = 48;

/// Bits of the triple index in a tweak.
const TRIPLE_BITS: u32 = 32;

/// Bits of the purpose in a tweak.
const PURPOSE_BITS: u32 = 128 - BATCH_BITS - TRIPLE_BITS - 2 * PARTY_BITS;

const _: () = assert!(PURPOSE_BITS >= 1);

/// The tweak of hash input `purpose` (0: half AND, 1: leaky-AND check) for triple t of the
/// pair (sender holds the keys, receiver the MACs), from high to low bits: batch (48 bits),
/// t (32), sender, receiver ([`PARTY_BITS`] each), purpose (the rest). Every field is
/// within its width (party indices are below [`crate::engine::MAX_PARTIES`], batches and
/// triples are checked in [`triples`]), so distinct inputs give distinct tweaks.
#[inline]
fn tweak(batch: u64, t: usize, sender: usize, receiver: usize, purpose: u8) -> Block {
    debug_assert!(batch < 1 << BATCH_BITS && (t as u64) < 1 << TRIPLE_BITS);
    debug_assert!(sender < 1 << PARTY_BITS && receiver < 1 << PARTY_BITS);
    ((batch as u128) << (128 - BATCH_BITS))
        | ((t as u128) << (2 * PARTY_BITS + PURPOSE_BITS))
        | ((sender as u128) << (PARTY_BITS + PURPOSE_BITS))
        | ((receiver as u128) << PURPOSE_BITS)
        | purpose as u128
}

/// Working memory kept from batch to batch (per leaky triple: one block of `acc`, a bit of
/// `v_bits`; per bucketing difference: m blocks of `keydiffs`). Everything else a batch
/// needs is recomputed from the aBits when it is used, so the batch's memory is the aBits,
/// these buffers and the messages in flight.
#[derive(Debug, Default)]
pub struct Buffers {
    acc: Vec<Block>,
    v_bits: Vec<Block>,
    keydiffs: Vec<Block>,
}

/// What the heavy steps need, moved to the blocking pool and back.
struct Work {
    ab: ABits,
    bufs: Buffers,
    layout: Layout,
    batch: u64,
    me: usize,
    others: Vec<usize>,
    delta: Block,
}

impl Work {
    /// Φ_me of leaky triple t: y_me·Δ_me ⊕ ⊕_k (K_me[y_k] ⊕ M_k[y_me]) (recomputed where it
    /// is used rather than stored: it costs m XORs of data that is read anyway).
    #[inline]
    fn phi(&self, t: usize) -> Block {
        let (ab, y) = (&self.ab, self.layout.y(t));
        let mut v = if ab.bit(y) { self.delta } else { 0 };
        for s in 0..self.others.len() {
            v ^= ab.keys[s][y] ^ ab.macs[s][y];
        }
        v
    }

    /// Per peer the half-AND bits and the U blocks of the leaky-AND check, in one message
    /// written in place.
    fn sender(&mut self) -> Vec<Bytes> {
        let (layout, delta, me) = (self.layout, self.delta, self.me);
        let big_l = layout.leaky();
        let nbytes = big_l.div_ceil(8);
        let mut v_bits = std::mem::take(&mut self.bufs.v_bits);
        let mut acc = std::mem::take(&mut self.bufs.acc);
        v_bits.clear();
        v_bits.resize(big_l.div_ceil(128), 0);
        acc.clear();
        acc.resize(big_l, 0);
        let tccr = Tccr::new();
        let mut buf = Vec::with_capacity(4 * TILE);
        let mut tweaks = Vec::with_capacity(4 * TILE);
        let mut scratch = Vec::new();
        let mut msgs = Vec::with_capacity(self.others.len());
        let ab = &self.ab;
        for (s, &j) in self.others.iter().enumerate() {
            // Half-AND bits first, then the U blocks.
            let mut msg = vec![0u8; nbytes];
            msg.reserve_exact(16 * big_l);
            for start in (0..big_l).step_by(TILE) {
                let end = (start + TILE).min(big_l);
                buf.clear();
                tweaks.clear();
                for t in start..end {
                    let k = ab.keys[s][layout.x(t)];
                    let (th, tl) = (
                        tweak(self.batch, t, me, j, 0),
                        tweak(self.batch, t, me, j, 1),
                    );
                    buf.extend_from_slice(&[k, k ^ delta, k, k ^ delta]);
                    tweaks.extend_from_slice(&[th, th, tl, tl]);
                }
                tccr.hash(&mut buf, &tweaks, &mut scratch);
                for (i, t) in (start..end).enumerate() {
                    let h = &buf[4 * i..4 * i + 4];
                    let h0 = h[0] & 1 == 1;
                    let bit = h0 ^ (h[1] & 1 == 1) ^ ab.bit(layout.y(t));
                    msg[t / 8] |= u8::from(bit) << (t % 8);
                    if h0 {
                        v_bits[t / 128] ^= 1 << (t % 128);
                    }
                    acc[t] ^= h[2];
                    msg.extend_from_slice(&(h[2] ^ h[3] ^ self.phi(t)).to_le_bytes());
                }
            }
            msgs.push(Bytes::from(msg));
        }
        self.bufs.v_bits = v_bits;
        self.bufs.acc = acc;
        msgs
    }

    /// The peers' half-AND bits and U blocks (length-checked) into the shares.
    fn receiver(&mut self, received: &[Bytes]) {
        let (ab, layout, me) = (&self.ab, self.layout, self.me);
        let big_l = layout.leaky();
        let nbytes = big_l.div_ceil(8);
        let (v_bits, acc) = (&mut self.bufs.v_bits, &mut self.bufs.acc);
        let tccr = Tccr::new();
        let mut buf = Vec::with_capacity(2 * TILE);
        let mut tweaks = Vec::with_capacity(2 * TILE);
        let mut scratch = Vec::new();
        for (s, msg) in received.iter().enumerate() {
            let j = self.others[s];
            let (ha, us) = msg.split_at(nbytes);
            for start in (0..big_l).step_by(TILE) {
                let end = (start + TILE).min(big_l);
                buf.clear();
                tweaks.clear();
                for t in start..end {
                    let mac = ab.macs[s][layout.x(t)];
                    buf.extend_from_slice(&[mac, mac]);
                    tweaks.extend_from_slice(&[
                        tweak(self.batch, t, j, me, 0),
                        tweak(self.batch, t, j, me, 1),
                    ]);
                }
                tccr.hash(&mut buf, &tweaks, &mut scratch);
                for (i, t) in (start..end).enumerate() {
                    let mut bit = buf[2 * i] & 1 == 1;
                    let mut g = buf[2 * i + 1];
                    if ab.bit(layout.x(t)) {
                        bit ^= (ha[t / 8] >> (t % 8)) & 1 == 1;
                        g ^= read_block(us, t).unwrap_or(0);
                    }
                    if bit {
                        v_bits[t / 128] ^= 1 << (t % 128);
                    }
                    acc[t] ^= g;
                }
            }
        }
    }

    /// H_me of every triple, combined with the challenges drawn from `seed`.
    fn h_bar(&self, seed: &[u8; 32]) -> Block {
        let (ab, layout, delta) = (&self.ab, self.layout, self.delta);
        let m = self.others.len();
        let big_l = layout.leaky();
        let acc = &self.bufs.acc;
        let mut chi_stream = Prg::from_seed32(seed, 2);
        let mut chi = vec![0u128; TILE];
        let mut h = vec![0u128; TILE];
        let mut combined = Acc::default();
        for start in (0..big_l).step_by(TILE) {
            let end = (start + TILE).min(big_l);
            let n = end - start;
            chi_stream.fill(&mut chi[..n]);
            for (i, t) in (start..end).enumerate() {
                let r = layout.r(t);
                let mut v = acc[t];
                if ab.bit(r) {
                    v ^= delta;
                }
                if ab.bit(layout.x(t)) {
                    v ^= self.phi(t);
                }
                for s in 0..m {
                    v ^= ab.keys[s][r] ^ ab.macs[s][r];
                }
                h[i] = v;
            }
            combined.merge(gf::inner_product(&chi[..n], &h[..n]));
        }
        combined.reduce()
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
    let me = ctx.slots.me;
    let delta = ctx.delta;
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
        me,
        others: ctx.others.clone(),
        delta,
    };

    if big_l > 0 {
        // 1. Half AND bits and the leaky-AND check's U, in one message per peer.
        let (back, msgs) = offload(move || {
            let msgs = work.sender();
            (work, msgs)
        })
        .await?;
        work = back;
        let received = ctx.exchange_each(Phase::LeakyAnd, msgs).await?;
        let nbytes = big_l.div_ceil(8);
        for (s, msg) in received.iter().enumerate() {
            ctx.expect_len(s, Phase::LeakyAnd, msg, nbytes + 16 * big_l)?;
        }
        work = offload(move || {
            work.receiver(&received);
            work
        })
        .await?;

        // 2. z = half-AND shares ⊕ x·y; announce e = z ⊕ r and authenticate z as [r] ⊕ e.
        let mut e = vec![0u128; big_l.div_ceil(128)];
        for t in 0..big_l {
            let z = get_bit(&work.bufs.v_bits, t)
                ^ (work.ab.bit(layout.x(t)) & work.ab.bit(layout.y(t)));
            set_bit(&mut e, t, z ^ work.ab.bit(layout.r(t)));
            set_bit(&mut work.ab.bits, layout.r(t), z);
        }
        let received = ctx
            .broadcast(Phase::LeakyAnd, Bytes::from(bits_to_bytes(&e, big_l)))
            .await?;
        for (s, msg) in received.iter().enumerate() {
            ctx.expect_len(s, Phase::LeakyAnd, msg, nbytes)?;
            for t in 0..big_l {
                if (msg[t / 8] >> (t % 8)) & 1 == 1 {
                    work.ab.keys[s][layout.r(t)] ^= delta;
                }
            }
        }

        // 3. The challenges and the bucketing permutation come from one coin toss, made after
        //    every leaky triple and every H_i is fixed.
        let coin = CoinToss::commit(ctx, Phase::LeakyAnd, b"leaky AND").await?;
        let seed = coin.open(ctx, Phase::LeakyAnd).await?;

        // 4. H_me and its random combination.
        let (back, h_bar) = offload(move || {
            let h = work.h_bar(&seed);
            (work, h)
        })
        .await?;
        work = back;

        // 5. Commit to H̄_me, then open it together with the bucketing differences.
        let mut nonce = [0u128; 1];
        ctx.rng.fill(&mut nonce);
        let opening = {
            let mut o = Vec::with_capacity(32);
            o.extend_from_slice(&h_bar.to_le_bytes());
            o.extend_from_slice(&nonce[0].to_le_bytes());
            o
        };
        let commitment = laand_commitment(&ctx.run_id, me, ctx.batch, &opening);
        let received = ctx
            .broadcast(Phase::LeakyAnd, Bytes::copy_from_slice(&commitment))
            .await?;
        let mut commitments = Vec::with_capacity(m);
        for (s, msg) in received.iter().enumerate() {
            ctx.expect_len(s, Phase::LeakyAnd, msg, 32)?;
            commitments.push(msg.clone());
        }

        let b_size = layout.bucket;
        let diffs = layout.ands * (b_size - 1);
        // One pass in bucket order (the only random accesses): writes a, b, Σz, λ of every
        // gate into `out`, this party's shares of every d = y[p0] ⊕ y[pc] with, per peer,
        // the digest of their MACs, and keeps what the opened d still needs sequentially.
        let (back, out, d_mine, digests, perm) = offload(move || {
            let perm = permutation(&seed, big_l);
            let mut d_mine = vec![0u128; diffs.div_ceil(128)];
            let mut digests: Vec<MacDigest> =
                (0..m).map(|_| MacDigest::with_capacity(diffs)).collect();
            let Work { ab, bufs, .. } = &mut work;
            let out = gather(
                ab,
                layout,
                m,
                &perm,
                out,
                &mut d_mine,
                &mut digests,
                &mut bufs.keydiffs,
            );
            let digests: Vec<[u8; 32]> = digests.iter().map(|d| d.finish()).collect();
            (work, out, d_mine, digests, perm)
        })
        .await?;
        work = back;
        let d_bytes = bits_to_bytes(&d_mine, diffs);
        let bucket_msgs: Vec<Bytes> = digests
            .iter()
            .map(|dg| {
                let mut msg = d_bytes.clone();
                msg.extend_from_slice(dg);
                Bytes::from(msg)
            })
            .collect();
        let opening = Bytes::from(opening);
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

        // Bucketing MAC check and the opened differences.
        let dn = diffs.div_ceil(8);
        let mut d = d_mine;
        for (s, (_, msg)) in received.iter().enumerate() {
            ctx.expect_len(s, Phase::Bucketing, msg, dn + 32)?;
            let mut dg = MacDigest::with_capacity(diffs);
            for idx in 0..diffs {
                let mut key = work.bufs.keydiffs[idx * m + s];
                if (msg[idx / 8] >> (idx % 8)) & 1 == 1 {
                    key ^= delta;
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
        let mut out = out;
        fold_differences(&mut out, &work.ab, layout, m, &d, &perm);
        Ok((out, work.ab, work.bufs))
    } else {
        let out = gather(
            &work.ab,
            layout,
            m,
            &[],
            out,
            &mut Vec::new(),
            &mut [],
            &mut Vec::new(),
        );
        Ok((out, work.ab, work.bufs))
    }
}

/// The commitment of `party` to its opening (H̄ and a nonce, 32 bytes) of the leaky AND
/// check of batch `batch` of run `run_id`.
fn laand_commitment(run_id: &[u8; 32], party: usize, batch: u64, opening: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"mpc leaky AND commitment v2");
    h.update(run_id);
    h.update(&(party as u64).to_le_bytes());
    h.update(&batch.to_le_bytes());
    h.update(opening);
    *h.finalize().as_bytes()
}

/// A uniformly random permutation of 0..len (Fisher–Yates, exact by rejection) from the coin.
fn permutation(seed: &[u8; 32], len: usize) -> Vec<u32> {
    let mut rng = Prg::from_seed32(seed, 3);
    let mut words = vec![0u128; 512];
    let mut used = 2 * words.len();
    let mut next = move || {
        if used == 2 * words.len() {
            rng.fill(&mut words);
            used = 0;
        }
        let w = words[used / 2];
        used += 1;
        if used % 2 == 1 {
            w as u64
        } else {
            (w >> 64) as u64
        }
    };
    let mut p: Vec<u32> = (0..len as u32).collect();
    for i in (1..len).rev() {
        let bound = i as u64 + 1;
        // Values above `top` would make the low residues more likely: reject them.
        let top = u64::MAX - (u64::MAX % bound + 1) % bound;
        let j = loop {
            let r = next();
            if r <= top {
                break (r % bound) as usize;
            }
        };
        p.swap(i, j);
    }
    p
}

/// Hints the CPU to load the cache line of `v` (bucketing reads triples in random order; a
/// few buckets of look-ahead keep many loads in flight).
#[inline(always)]
fn prefetch<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch never faults and has no architectural effect; SSE is part of
        // the x86_64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(v as *const T as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Buckets of look-ahead for prefetching.
const AHEAD: usize = 8;

/// The pass in bucket order. Writes into `out` the batch's input aBits and, per AND gate,
/// a = ⊕x, b = y[p0], Σz (c before folding) and λ; into `d_mine` and `digests` this party's
/// shares of the differences and the digests of their MACs; into `keydiffs` (m per
/// difference) its keys on the other parties' differences. The x of every folded triple,
/// which `fold_differences` adds to c where d = 1, is read again from the aBits then.
#[allow(clippy::too_many_arguments)]
fn gather(
    ab: &ABits,
    layout: Layout,
    m: usize,
    perm: &[u32],
    mut out: AuthBits,
    d_mine: &mut [Block],
    digests: &mut [MacDigest],
    keydiffs: &mut Vec<Block>,
) -> AuthBits {
    let w = 2 * m;
    let total = layout.inputs + 4 * layout.ands;
    out.m = m;
    out.bits.clear();
    out.mk.clear();
    out.bits.reserve(total);
    out.mk.reserve(total * w);
    let push_plain = |out: &mut AuthBits, t: usize| {
        out.bits.push(ab.bit(t));
        for s in 0..m {
            out.mk.push(ab.macs[s][t]);
        }
        for s in 0..m {
            out.mk.push(ab.keys[s][t]);
        }
    };
    for t in 0..layout.inputs {
        push_plain(&mut out, t);
    }
    let b_size = layout.bucket;
    let diffs = layout.ands * b_size.saturating_sub(1);
    keydiffs.clear();
    keydiffs.reserve(diffs * m);
    let mut a_mk = vec![0u128; w];
    let mut z_mk = vec![0u128; w];
    for k in 0..layout.ands {
        if let Some(ahead) = perm.get((k + AHEAD) * b_size..(k + AHEAD + 1) * b_size) {
            for &p in ahead {
                // x, y, r of a triple are 48 adjacent bytes: up to two cache lines.
                let (t, last) = (layout.x(p as usize), layout.r(p as usize));
                prefetch(&ab.bits[t / 128]);
                for s in 0..m {
                    prefetch(&ab.macs[s][t]);
                    prefetch(&ab.macs[s][last]);
                    prefetch(&ab.keys[s][t]);
                    prefetch(&ab.keys[s][last]);
                }
            }
        }
        let bucket = &perm[k * b_size..(k + 1) * b_size];
        let p0 = bucket[0] as usize;
        let y0 = ab.bit(layout.y(p0));
        let mut a_bit = false;
        let mut z_bit = false;
        a_mk.fill(0);
        z_mk.fill(0);
        for (c, &p) in bucket.iter().enumerate() {
            let p = p as usize;
            let (tx, ty, tr) = (layout.x(p), layout.y(p), layout.r(p));
            let x = ab.bit(tx);
            a_bit ^= x;
            z_bit ^= ab.bit(tr);
            for s in 0..m {
                a_mk[s] ^= ab.macs[s][tx];
                a_mk[m + s] ^= ab.keys[s][tx];
                z_mk[s] ^= ab.macs[s][tr];
                z_mk[m + s] ^= ab.keys[s][tr];
            }
            if c > 0 {
                let idx = k * (b_size - 1) + c - 1;
                if y0 ^ ab.bit(ty) {
                    d_mine[idx / 128] |= 1 << (idx % 128);
                }
                let y0t = layout.y(p0);
                for (s, dg) in digests.iter_mut().enumerate() {
                    dg.push(ab.macs[s][y0t] ^ ab.macs[s][ty]);
                    keydiffs.push(ab.keys[s][y0t] ^ ab.keys[s][ty]);
                }
            }
        }
        out.bits.push(a_bit);
        out.mk.extend_from_slice(&a_mk);
        push_plain(&mut out, layout.y(p0));
        out.bits.push(z_bit);
        out.mk.extend_from_slice(&z_mk);
        push_plain(&mut out, layout.inputs + k);
    }
    out
}

/// c ← c ⊕ d·x for every folded triple whose opened difference d is 1 (its x read from the
/// aBits through the bucketing permutation).
fn fold_differences(
    out: &mut AuthBits,
    ab: &ABits,
    layout: Layout,
    m: usize,
    d: &[Block],
    perm: &[u32],
) {
    let w = 2 * m;
    let b_size = layout.bucket;
    for k in 0..layout.ands {
        let c_at = layout.inputs + 4 * k + 2;
        for c in 1..b_size {
            let idx = k * (b_size - 1) + c - 1;
            if get_bit(d, idx) {
                let tx = layout.x(perm[k * b_size + c] as usize);
                out.bits[c_at] ^= ab.bit(tx);
                let mk = &mut out.mk[c_at * w..(c_at + 1) * w];
                for s in 0..m {
                    mk[s] ^= ab.macs[s][tx];
                    mk[m + s] ^= ab.keys[s][tx];
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::engine::MAX_PARTIES;

    #[test]
    fn bucket_sizes_match_the_papers_table() {
        assert_eq!(bucket_size(300_000, RHO), 3);
        assert_eq!(bucket_size(270_000, RHO), 4);
        assert_eq!(bucket_size(4_000, RHO), 4);
        assert_eq!(bucket_size(3_000, RHO), 5);
        assert_eq!(bucket_size(330, RHO), 5);
        assert!(bucket_size(300, RHO) > 5);
        assert!(bucket_size(1, RHO) <= 40);
    }

    #[test]
    fn rho_grows_with_the_number_of_batches() {
        assert_eq!(batch_rho(1), 40);
        assert_eq!(batch_rho(2), 41);
        assert_eq!(batch_rho(3), 42);
        assert_eq!(batch_rho(4), 42);
        assert_eq!(batch_rho(5), 43);
        assert_eq!(batch_rho(1 << 20), 60);
        // k batches at ρ = 40 + ⌈log2 k⌉ keep the run at 2^-40.
        for k in 1..5000u64 {
            assert!((k as f64).log2() - batch_rho(k) as f64 <= -(RHO as f64));
        }
        // Two batches of the 1M-gate benchmark stay at B = 3, three would not.
        assert_eq!(bucket_size(537_392, batch_rho(2)), 3);
        assert_eq!(bucket_size(358_261, batch_rho(3)), 4);
        // The per-batch bound at the chosen size really is below 2^-ρ.
        for (l, k) in [(537_392u64, 2u64), (10_000, 7), (500, 1000)] {
            let b = bucket_size(l, batch_rho(k));
            assert!(log2_failure(l, b as u64) <= -(batch_rho(k) as f64));
            assert!(log2_failure(l, b as u64 - 1) > -(batch_rho(k) as f64));
        }
    }

    #[test]
    fn leaky_and_commitments_bind_run_party_and_batch() {
        let opening = [3u8; 32];
        let c = laand_commitment(&[1; 32], 1, 0, &opening);
        assert_eq!(c, laand_commitment(&[1; 32], 1, 0, &opening));
        assert_ne!(c, laand_commitment(&[2; 32], 1, 0, &opening));
        assert_ne!(c, laand_commitment(&[1; 32], 2, 0, &opening));
        assert_ne!(c, laand_commitment(&[1; 32], 1, 1, &opening));
    }

    /// Reads the fields back out of a tweak.
    fn fields(t: Block) -> (u64, usize, usize, usize, u8) {
        let mask = |bits: u32| (1u128 << bits) - 1;
        (
            (t >> (128 - BATCH_BITS)) as u64,
            ((t >> (2 * PARTY_BITS + PURPOSE_BITS)) & mask(TRIPLE_BITS)) as usize,
            ((t >> (PARTY_BITS + PURPOSE_BITS)) & mask(PARTY_BITS)) as usize,
            ((t >> PURPOSE_BITS) & mask(PARTY_BITS)) as usize,
            (t & mask(PURPOSE_BITS)) as u8,
        )
    }

    #[test]
    fn tweaks_are_injective_up_to_the_limits() {
        let batches = [0u64, 1, 2, (1 << BATCH_BITS) - 1];
        let triples = [0usize, 1, 2, 1 << 20, (1 << TRIPLE_BITS) - 1];
        let parties = [
            0usize,
            1,
            2,
            MAX_PARTIES - 2,
            MAX_PARTIES - 1,
            (1 << PARTY_BITS) - 1,
        ];
        let mut seen = HashSet::new();
        for &batch in &batches {
            for &t in &triples {
                for &sender in &parties {
                    for &receiver in &parties {
                        for purpose in [0u8, 1] {
                            let tw = tweak(batch, t, sender, receiver, purpose);
                            // Each field reads back, so no two inputs share the tweak.
                            assert_eq!(fields(tw), (batch, t, sender, receiver, purpose));
                            assert!(seen.insert(tw));
                        }
                    }
                }
            }
        }
    }
}
