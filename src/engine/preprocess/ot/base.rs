//! Base oblivious transfers: the "simplest OT" of Chou and Orlandi (Latincrypt 2015) over the
//! Ristretto255 group, 128 random OTs per ordered pair of parties.
//!
//! For the COT extension in which P_j authenticates P_i's bits under Δ_j, P_j is the base-OT
//! *receiver* with the bits of Δ_j as choices, and P_i the sender. One run:
//!
//! 1. sender: y random, S = y·G → receiver;
//! 2. receiver, for each l: x_l random, R_l = c_l·S + x_l·G → sender; its key is
//!    k_l = H(x_l·S);
//! 3. sender: k_l^0 = H(y·R_l), k_l^1 = H(y·(R_l − S)).
//!
//! H binds the pair, the index l and both transcripts (S, R_l), so keys of different OTs are
//! independent. Ristretto is a prime-order group, so there are no small-subgroup points to
//! worry about; invalid encodings and the identity are rejected ("base OT" check). The
//! sender learns nothing about c_l (R_l is uniform either way); a receiver that deviates only
//! ends up with keys that disagree with the sender's, which the OT extension consistency
//! check then catches.

use bytes::Bytes;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::Identity;
use subtle::{Choice, ConditionallySelectable};

use super::common::Ctx;
use crate::channel::{Channel, Phase};
use crate::engine::EngineError;

/// Base OTs per ordered pair (κ).
pub const KAPPA: usize = 128;

/// The check a bad base-OT message fails.
pub const BASE_OT_CHECK: &str = "base OT";

/// The base-OT keys this party holds towards one peer.
pub struct PairSeeds {
    /// As sender (the peer holds the global key): both keys of each OT.
    pub sent: Vec<[[u8; 16]; 2]>,
    /// As receiver (this party holds the global key): the key it chose with bit l of Δ.
    pub chosen: Vec<[u8; 16]>,
}

fn random_scalar<C: Channel>(ctx: &mut Ctx<'_, C>) -> Scalar {
    let mut wide = [0u128; 4];
    ctx.rng.fill(&mut wide);
    let mut bytes = [0u8; 64];
    for (i, w) in wide.iter().enumerate() {
        bytes[i * 16..i * 16 + 16].copy_from_slice(&w.to_le_bytes());
    }
    Scalar::from_bytes_mod_order_wide(&bytes)
}

fn key(
    sender: usize,
    receiver: usize,
    l: usize,
    s: &[u8],
    r: &[u8],
    point: &RistrettoPoint,
) -> [u8; 16] {
    let mut h = blake3::Hasher::new();
    h.update(b"mpc base OT v1");
    h.update(&(sender as u64).to_le_bytes());
    h.update(&(receiver as u64).to_le_bytes());
    h.update(&(l as u64).to_le_bytes());
    h.update(s);
    h.update(r);
    h.update(point.compress().as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&h.finalize().as_bytes()[..16]);
    out
}

fn decode(bytes: &[u8]) -> Option<RistrettoPoint> {
    CompressedRistretto::from_slice(bytes).ok()?.decompress()
}

/// Runs the base OTs with every peer, in both directions, in two rounds. Returns the seeds in
/// slot order.
pub async fn run<C: Channel>(ctx: &mut Ctx<'_, C>) -> Result<Vec<PairSeeds>, EngineError> {
    let m = ctx.others.len();
    let me = ctx.slots.me;

    // Round 1: a fresh S = y·G towards every peer.
    let ys: Vec<Scalar> = (0..m).map(|_| random_scalar(ctx)).collect();
    let ss: Vec<RistrettoPoint> = ys.iter().map(RistrettoPoint::mul_base).collect();
    let msgs = ss
        .iter()
        .map(|s| Bytes::copy_from_slice(s.compress().as_bytes()))
        .collect();
    let received = ctx.exchange_each(Phase::BaseOt, msgs).await?;
    let mut their_s = Vec::with_capacity(m);
    for (s, msg) in received.iter().enumerate() {
        ctx.expect_len(s, Phase::BaseOt, msg, 32)?;
        let point = decode(msg)
            .filter(|p| *p != RistrettoPoint::identity())
            .ok_or_else(|| {
                ctx.check_failed(
                    BASE_OT_CHECK,
                    s,
                    "its first base-OT message is not a valid group element".into(),
                )
            })?;
        their_s.push(point);
    }

    // Round 2: as receiver, choose with the bits of Δ.
    let mut chosen = Vec::with_capacity(m);
    let mut msgs = Vec::with_capacity(m);
    for (s, big_s) in their_s.iter().enumerate() {
        let peer = ctx.others[s];
        let s_bytes = received[s].clone();
        let mut msg = Vec::with_capacity(KAPPA * 32);
        let mut keys = Vec::with_capacity(KAPPA);
        for l in 0..KAPPA {
            let x = random_scalar(ctx);
            let xg = RistrettoPoint::mul_base(&x);
            let bit = Choice::from(((ctx.delta >> l) & 1) as u8);
            let r = RistrettoPoint::conditional_select(&xg, &(xg + big_s), bit);
            let r_bytes = r.compress();
            msg.extend_from_slice(r_bytes.as_bytes());
            keys.push(key(peer, me, l, &s_bytes, r_bytes.as_bytes(), &(x * big_s)));
        }
        chosen.push(keys);
        msgs.push(Bytes::from(msg));
    }
    let received = ctx.exchange_each(Phase::BaseOt, msgs).await?;

    // As sender: both keys of every OT.
    let mut out = Vec::with_capacity(m);
    for (s, (msg, keys)) in received.iter().zip(chosen).enumerate() {
        let peer = ctx.others[s];
        ctx.expect_len(s, Phase::BaseOt, msg, KAPPA * 32)?;
        let y = &ys[s];
        let s_point = ss[s];
        let s_bytes = s_point.compress();
        let ys_point = y * s_point;
        let mut sent = Vec::with_capacity(KAPPA);
        for l in 0..KAPPA {
            let r_bytes = &msg[l * 32..l * 32 + 32];
            let r = decode(r_bytes).ok_or_else(|| {
                ctx.check_failed(
                    BASE_OT_CHECK,
                    s,
                    format!("its base-OT choice message {l} is not a valid group element"),
                )
            })?;
            let yr = y * r;
            let k0 = key(me, peer, l, s_bytes.as_bytes(), r_bytes, &yr);
            let k1 = key(me, peer, l, s_bytes.as_bytes(), r_bytes, &(yr - ys_point));
            sent.push([k0, k1]);
        }
        out.push(PairSeeds { sent, chosen: keys });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use futures_util::future::join_all;

    use super::*;
    use crate::channel::PeerNames;
    use crate::channel::memory::memory_channels;
    use crate::engine::preprocess::ot::common::Ctr;
    use crate::engine::share::{Block, Slots};

    /// Runs the base OTs of `n` parties over in-memory channels, all parties as futures of
    /// one task (as `mpc run` does).
    fn run_parties(n: usize, deltas: &[Block]) -> Vec<Result<Vec<PairSeeds>, EngineError>> {
        let channels = memory_channels(n, n, Duration::from_secs(20));
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
                    run_id: [7; 32],
                    rng: Ctr::from_entropy(),
                };
                run(&mut ctx).await
            }
        })))
    }

    /// Not a test: wall time of the base OTs for 2 and 3 parties
    /// (`cargo test --release --lib measure_base_ot -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn measure_base_ot() {
        for n in [2, 3] {
            let deltas: Vec<Block> = (0..n)
                .map(|i| 0x9e37_79b9_7f4a_7c15 * (i as u128 + 3) | 1)
                .collect();
            let mut times: Vec<f64> = (0..15)
                .map(|_| {
                    let start = Instant::now();
                    let out = run_parties(n, &deltas);
                    let secs = start.elapsed().as_secs_f64();
                    assert!(out.iter().all(|r| r.is_ok()));
                    secs
                })
                .collect();
            times.sort_by(f64::total_cmp);
            println!(
                "base OT, {n} parties: median {:.1} ms, min {:.1} ms over {} runs",
                times[times.len() / 2] * 1e3,
                times[0] * 1e3,
                times.len()
            );
        }
    }
}
