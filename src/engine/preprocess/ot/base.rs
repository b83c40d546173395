//! Base oblivious transfers: the endemic OT of Masny and Rindal ("Endemic Oblivious
//! Transfer", CCS 2019, ePrint 2019/706), their OT from key agreement (Fig. 8 there) with
//! Diffie–Hellman over Ristretto255 as the key agreement; 128 random OTs per ordered pair.
//!
//! For the COT extension in which P_j authenticates P_i's bits under Δ_j, P_j is the base-OT
//! *receiver* with the bits of Δ_j as choices, and P_i the sender. OT number l, with choice
//! c = bit l of Δ_j, takes two rounds (all OTs of all pairs run side by side):
//!
//! 1. receiver: a fresh secret a and its key-agreement message M = a·G; a uniformly random
//!    group element r_{1−c}, and r_c = M − H(c, r_{1−c}); sends (r_0, r_1);
//! 2. sender: reconstructs m_j = r_j + H(j, r_{1−j}) for j = 0, 1 (so m_c = M, while m_{1−c}
//!    is a point nobody knows the discrete logarithm of), answers each with a fresh
//!    key-agreement message B_j = b_j·G and keeps k_j = K(j, b_j·m_j); sends (B_0, B_1);
//! 3. receiver: k_c = K(c, a·B_c).
//!
//! H: G → G (a BLAKE3 output mapped with Ristretto's `from_uniform_bytes`) and the key hash
//! K are random oracles keyed with the run id, the sender, the receiver, the OT index l and
//! the branch j; K also hashes the OT's whole transcript (r_0, r_1, B_0, B_1). Every secret
//! (a, r_{1−c}, b_0, b_1) is fresh for every OT: six exponentiations per OT, the variant
//! whose argument needs only DDH and uniformly distributed key-agreement messages (a·G is
//! uniform in the group). Reusing one sender secret b across the batch, as several
//! implementations do, saves two of them, but its argument needs an interactive DH
//! assumption, and batch reuse is easy to get wrong (McQuoid, Rosulek and Roy, "Batching
//! Base Oblivious Transfers", Asiacrypt 2021). The base OTs run once per session, so we pay
//! for fresh ones.
//!
//! **Encoding in batches.** Encoding a Ristretto255 element costs an inverse square root,
//! about a sixth of a scalar multiplication, and an OT encodes seven. The encodings of
//! *doubled* elements share one field inversion per batch (Ristretto's double-and-encode),
//! so every element we encode is drawn as a double: the receiver's secret is a = 2·a', its
//! r_{1−c} is 2·R', the sender's secrets are b_j = 2·b'_j, and the Diffie–Hellman values
//! are 2·(a'·B_c) and 2·(b'_j·m_j). Each doubled value is exactly as uniform as the value
//! it replaces (the group and the scalars have odd prime order, so doubling is a
//! bijection), and every message and key is the one the steps above define, so peers that
//! encode one by one agree with us. Only the receiver's r_c is encoded alone.
//!
//! **Why not Chou–Orlandi.** This module used to run the "simplest OT" of Chou and Orlandi
//! (Latincrypt 2015), which reuses one sender value S across all OTs of a pair. Its UC proof
//! has known gaps (Genç, Iovino and Rial, ePrint 2017/370, for a corrupt sender; Hauck and
//! Loss, ePrint 2017/1011; discussed by Masny and Rindal), so nothing shows that it gives
//! the OTs that extension assumes. Endemic OT has a simulation proof in the random-oracle
//! model, and its guarantee (a corrupt party may choose its own outputs, but learns nothing
//! of the honest party's) is the one Masny and Rindal show to suffice for OT extension.
//!
//! **What a cheater can do.** A cheating *receiver* may pick its own key (by choosing M), but
//! cannot learn the other one: H lets it program only one of m_0, m_1 (the other depends on
//! a hash of the element it chose), and k_{1−c} needs the Diffie–Hellman value of B_{1−c} and
//! a point whose discrete logarithm it does not know. Because the oracles are keyed with the
//! run, pair, direction and index, it cannot correlate keys of different OTs either. One that
//! knows neither key of an OT only spoils its own MAC keys, which at worst ends in an abort.
//! A cheating *sender* learns nothing about c: (r_0, r_1) are two independent uniform group
//! elements whatever c is. It may choose B_0 and B_1 freely, which only amounts to choosing
//! the two keys it knows anyway; it cannot make an abort depend on c, because the receiver
//! checks both B_0 and B_1 before it uses B_c. Later using keys other than the ones the
//! receiver got shows up as inconsistent punctured-OT trees in the OT extension, which the OT
//! extension consistency check catches. Both sides reject, with the "base OT" check naming
//! the sender of the message, messages of the wrong length, encodings that are not canonical
//! Ristretto255 points, the identity, and requests whose reconstructed m_j is the identity.
//! Ristretto255 has prime order, so there are no small-subgroup points to worry about.
//!
//! Everything that depends on a secret (the choice bits, a, b_j) is constant time: the
//! choice selects with `subtle` and enters the hashes as data; scalar multiplication and the
//! hash to the group are constant time in curve25519-dalek.

use bytes::Bytes;
use curve25519_dalek::ristretto::{CompressedRistretto, RistrettoPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::IsIdentity;
use rayon::prelude::*;
use subtle::{Choice, ConditionallySelectable};

use super::common::{Ctx, offload};
use crate::channel::{Channel, Phase};
use crate::engine::EngineError;
use crate::engine::aes::Prg;
use crate::engine::share::Block;

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

/// Bytes of an encoded group element.
const POINT: usize = 32;

/// Bytes per OT of either message: two group elements ((r_0, r_1) or (B_0, B_1)).
const PER_OT: usize = 2 * POINT;

/// Bytes of either message of one pair.
const MESSAGE: usize = KAPPA * PER_OT;

/// BLAKE3 key-derivation contexts of the two random oracles.
const H_CONTEXT: &str = "mpc base OT v2 (Masny-Rindal endemic OT) hash to Ristretto255";
const K_CONTEXT: &str = "mpc base OT v2 (Masny-Rindal endemic OT) key";

/// A 128-bit OT key.
type Key = [u8; 16];

/// 64 secret random bytes: a scalar or a group element, each with negligible bias.
type Coin = [u8; 64];

/// Who runs a batch of OTs in which run: what the random oracles are keyed with.
#[derive(Debug, Clone, Copy)]
struct Domain {
    run_id: [u8; 32],
    sender: u64,
    receiver: u64,
}

impl Domain {
    fn new(run_id: [u8; 32], sender: usize, receiver: usize) -> Self {
        Self {
            run_id,
            sender: sender as u64,
            receiver: receiver as u64,
        }
    }

    /// A hasher keyed with the oracle, this domain, the OT index and the branch. The branch
    /// is secret at the receiver; it enters as data, so hashing is constant time.
    fn hasher(&self, context: &str, l: usize, branch: u8) -> blake3::Hasher {
        let mut h = blake3::Hasher::new_derive_key(context);
        h.update(&self.run_id);
        h.update(&self.sender.to_le_bytes());
        h.update(&self.receiver.to_le_bytes());
        h.update(&(l as u64).to_le_bytes());
        h.update(&[branch]);
        h
    }

    /// H(branch, r) for OT l: a group element nobody knows the discrete logarithm of.
    fn hash_to_group(&self, l: usize, branch: u8, r: &[u8]) -> RistrettoPoint {
        let mut h = self.hasher(H_CONTEXT, l, branch);
        h.update(r);
        let mut wide = [0u8; 64];
        h.finalize_xof().fill(&mut wide);
        RistrettoPoint::from_uniform_bytes(&wide)
    }

    /// K(branch, transcript, shared) for OT l; `transcript` is (r_0, r_1, B_0, B_1) and
    /// `shared` the encoding of the Diffie–Hellman value.
    fn key(
        &self,
        l: usize,
        branch: u8,
        transcript: [&[u8]; 2],
        shared: &CompressedRistretto,
    ) -> Key {
        let mut h = self.hasher(K_CONTEXT, l, branch);
        h.update(transcript[0]);
        h.update(transcript[1]);
        h.update(shared.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize().as_bytes()[..16]);
        out
    }
}

/// Draws `count` coins from the party's secret randomness.
fn coins(rng: &mut Prg, count: usize) -> Vec<Coin> {
    (0..count)
        .map(|_| {
            let mut blocks = [0u128; 4];
            rng.fill(&mut blocks);
            let mut coin = [0u8; 64];
            for (chunk, b) in coin.chunks_exact_mut(16).zip(blocks) {
                chunk.copy_from_slice(&b.to_le_bytes());
            }
            coin
        })
        .collect()
}

/// Decodes a group element other than the identity (canonical encodings only).
fn decode(bytes: &[u8]) -> Option<RistrettoPoint> {
    let point = CompressedRistretto::from_slice(bytes).ok()?.decompress()?;
    (!point.is_identity()).then_some(point)
}

fn expect_len(msg: &[u8], what: &str) -> Result<(), String> {
    if msg.len() != MESSAGE {
        return Err(format!(
            "its base-OT {what} has {} bytes instead of {MESSAGE}",
            msg.len()
        ));
    }
    Ok(())
}

/// Decodes the two group elements of OT l in a message.
fn decode_pair(msg: &[u8], l: usize, what: &str) -> Result<[RistrettoPoint; 2], String> {
    let at = |j: usize| {
        let bytes = &msg[l * PER_OT + j * POINT..l * PER_OT + (j + 1) * POINT];
        decode(bytes).ok_or_else(|| {
            format!(
                "element {j} of OT {l} in its base-OT {what} is not a group element other than \
                 the identity"
            )
        })
    };
    Ok([at(0)?, at(1)?])
}

/// The receiver's side of the OTs with one peer, between its request and the answer.
struct Receiver {
    dom: Domain,
    choices: Block,
    /// a' = a/2 for every OT.
    half_secrets: Vec<Scalar>,
    /// (r_0, r_1) for every OT, as sent.
    request: Bytes,
}

impl Receiver {
    /// Round 1: chooses with the bits of `choices`; `coins` holds two coins per OT.
    fn start(dom: Domain, choices: Block, coins: &[Coin]) -> Self {
        // a = 2·a' and r_{1−c} = 2·R' with a' and R' drawn from the coins: as uniform as a
        // and r_{1−c} themselves (doubling is a bijection of a group of odd order), and the
        // doubled points encode in one batch (see `double_and_encode`). The OTs are
        // independent: their group arithmetic runs on every core.
        let halves: Vec<(Scalar, RistrettoPoint)> = (0..KAPPA)
            .into_par_iter()
            .map(|l| {
                let half_a = Scalar::from_bytes_mod_order_wide(&coins[2 * l]);
                let half_other = RistrettoPoint::from_uniform_bytes(&coins[2 * l + 1]);
                (half_a, half_other)
            })
            .collect();
        let others = double_and_encode(halves.iter().map(|(_, p)| p));
        let per_ot: Vec<([u8; 32], [u8; 32])> = (0..KAPPA)
            .into_par_iter()
            .map(|l| {
                let other = &others[l];
                let c = ((choices >> l) & 1) as u8;
                let a = halves[l].0 + halves[l].0;
                let chosen = (RistrettoPoint::mul_base(&a)
                    - dom.hash_to_group(l, c, other.as_bytes()))
                .compress();
                // c = 0: (r_0, r_1) = (chosen, other); c = 1: (other, chosen).
                let bit = Choice::from(c);
                let r0 = <[u8; 32]>::conditional_select(chosen.as_bytes(), other.as_bytes(), bit);
                let r1 = <[u8; 32]>::conditional_select(other.as_bytes(), chosen.as_bytes(), bit);
                (r0, r1)
            })
            .collect();
        let mut request = Vec::with_capacity(MESSAGE);
        for (r0, r1) in per_ot {
            request.extend_from_slice(&r0);
            request.extend_from_slice(&r1);
        }
        Self {
            dom,
            choices,
            half_secrets: halves.into_iter().map(|(half_a, _)| half_a).collect(),
            request: Bytes::from(request),
        }
    }

    /// Round 2 at the receiver: the chosen key of every OT, from the sender's answer. Every
    /// element of the answer is checked before any is used, so whether this fails never
    /// depends on the choices.
    fn finish(&self, answer: &[u8]) -> Result<Vec<Key>, String> {
        expect_len(answer, "answer")?;
        let pairs = (0..KAPPA)
            .map(|l| decode_pair(answer, l, "answer"))
            .collect::<Result<Vec<_>, _>>()?;
        // a·B_c = 2·(a'·B_c), encoded in one batch.
        let halves: Vec<RistrettoPoint> = pairs
            .par_iter()
            .enumerate()
            .map(|(l, [b0, b1])| {
                let c = Choice::from(((self.choices >> l) & 1) as u8);
                self.half_secrets[l] * RistrettoPoint::conditional_select(b0, b1, c)
            })
            .collect();
        let shared = double_and_encode(&halves);
        Ok((0..KAPPA)
            .into_par_iter()
            .map(|l| {
                let c = ((self.choices >> l) & 1) as u8;
                let transcript = [
                    &self.request[l * PER_OT..(l + 1) * PER_OT],
                    &answer[l * PER_OT..(l + 1) * PER_OT],
                ];
                self.dom.key(l, c, transcript, &shared[l])
            })
            .collect())
    }
}

/// The sender's side of the OTs with one peer: both keys of every OT and the answer.
struct Answered {
    keys: Vec<[Key; 2]>,
    /// (B_0, B_1) for every OT.
    msg: Bytes,
}

/// Round 2 at the sender: answers a request; `coins` holds two coins per OT.
fn answer(dom: Domain, request: &[u8], coins: &[Coin]) -> Result<Answered, String> {
    expect_len(request, "request")?;
    // b_j = 2·b'_j with b'_j from the coins (as uniform as b_j): B_j = 2·(b'_j·G) and the
    // Diffie–Hellman value b_j·m_j = 2·(b'_j·m_j) both encode in one batch. The OTs are
    // independent: their group arithmetic runs on every core. Every OT is checked, and the
    // first bad one (in order) is reported, as a sequential pass would.
    let per_ot: Vec<Result<[[RistrettoPoint; 2]; 2], String>> = (0..KAPPA)
        .into_par_iter()
        .map(|l| {
            let r = decode_pair(request, l, "request")?;
            let mut halves = [[RistrettoPoint::default(); 2]; 2];
            for j in 0..2 {
                let other = &request[l * PER_OT + (1 - j) * POINT..l * PER_OT + (2 - j) * POINT];
                let m = r[j] + dom.hash_to_group(l, j as u8, other);
                if m.is_identity() {
                    return Err(format!(
                        "its base-OT request makes key-agreement message {j} of OT {l} the identity"
                    ));
                }
                let half_b = Scalar::from_bytes_mod_order_wide(&coins[2 * l + j]);
                halves[j] = [RistrettoPoint::mul_base(&half_b), half_b * m];
            }
            Ok(halves)
        })
        .collect();
    let halves = per_ot.into_iter().collect::<Result<Vec<_>, _>>()?;
    // Per OT: B_0, B_1, then the two Diffie–Hellman values.
    let encoded = double_and_encode(
        halves
            .iter()
            .flat_map(|[h0, h1]| [&h0[0], &h1[0], &h0[1], &h1[1]]),
    );
    let mut answer = Vec::with_capacity(MESSAGE);
    for per in encoded.chunks_exact(4) {
        answer.extend_from_slice(per[0].as_bytes());
        answer.extend_from_slice(per[1].as_bytes());
    }
    let keys = (0..KAPPA)
        .into_par_iter()
        .map(|l| {
            let transcript = [
                &request[l * PER_OT..(l + 1) * PER_OT],
                &answer[l * PER_OT..(l + 1) * PER_OT],
            ];
            [0u8, 1].map(|j| dom.key(l, j, transcript, &encoded[4 * l + 2 + j as usize]))
        })
        .collect();
    Ok(Answered {
        keys,
        msg: Bytes::from(answer),
    })
}

/// The encodings of 2·P for every P, in order. Encoding a point needs an inverse square
/// root; the encodings of doubled points can share one inversion for the whole batch
/// (curve25519-dalek's `double_and_compress_batch`, constant time), which costs a tenth of
/// encoding them one by one. Every doubled point here is drawn as 2·(a uniform element),
/// which is itself uniform, so the protocol and its messages are exactly those above.
fn double_and_encode<'a>(
    points: impl IntoIterator<Item = &'a RistrettoPoint>,
) -> Vec<CompressedRistretto> {
    RistrettoPoint::double_and_compress_batch(points)
}

/// Runs the base OTs with every peer, in both directions, in two rounds. Returns the seeds in
/// slot order.
pub async fn run<C: Channel>(ctx: &mut Ctx<'_, C>) -> Result<Vec<PairSeeds>, EngineError> {
    let me = ctx.slots.me;
    let (run_id, delta) = (ctx.run_id, ctx.delta);
    let others = ctx.others.clone();
    let receive_coins: Vec<Vec<Coin>> = others
        .iter()
        .map(|_| coins(&mut ctx.rng, 2 * KAPPA))
        .collect();
    let send_coins: Vec<Vec<Coin>> = others
        .iter()
        .map(|_| coins(&mut ctx.rng, 2 * KAPPA))
        .collect();

    // Round 1: as receiver, a request to every peer. The group arithmetic runs off the async
    // task, so that parties sharing a process (`mpc run`, tests) use every core.
    let peers = others.clone();
    let receivers = offload(move || {
        peers
            .iter()
            .zip(&receive_coins)
            .map(|(&peer, coins)| Receiver::start(Domain::new(run_id, peer, me), delta, coins))
            .collect::<Vec<_>>()
    })
    .await?;
    let msgs = receivers.iter().map(|r| r.request.clone()).collect();
    let requests = ctx.exchange_each(Phase::BaseOt, msgs).await?;

    // Round 2: as sender, both keys and an answer for every peer's request.
    let answered = offload(move || {
        others
            .iter()
            .zip(&requests)
            .zip(&send_coins)
            .map(|((&peer, request), coins)| answer(Domain::new(run_id, me, peer), request, coins))
            .collect::<Vec<_>>()
    })
    .await?;
    let mut sent = Vec::with_capacity(answered.len());
    let mut msgs = Vec::with_capacity(answered.len());
    for (s, result) in answered.into_iter().enumerate() {
        let answered = result.map_err(|detail| ctx.check_failed(BASE_OT_CHECK, s, detail))?;
        sent.push(answered.keys);
        msgs.push(answered.msg);
    }
    let answers = ctx.exchange_each(Phase::BaseOt, msgs).await?;

    // As receiver: the chosen keys.
    let chosen = offload(move || {
        receivers
            .iter()
            .zip(&answers)
            .map(|(r, answer)| r.finish(answer))
            .collect::<Vec<_>>()
    })
    .await?;
    let mut out = Vec::with_capacity(sent.len());
    for (s, (sent, chosen)) in sent.into_iter().zip(chosen).enumerate() {
        let chosen = chosen.map_err(|detail| ctx.check_failed(BASE_OT_CHECK, s, detail))?;
        out.push(PairSeeds { sent, chosen });
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
