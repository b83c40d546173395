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
//! receiver got shows up as inconsistent u-columns in the OT extension, which the OT
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

    /// K(branch, transcript, shared) for OT l; `transcript` is (r_0, r_1, B_0, B_1).
    fn key(&self, l: usize, branch: u8, transcript: [&[u8]; 2], shared: &RistrettoPoint) -> Key {
        let mut h = self.hasher(K_CONTEXT, l, branch);
        h.update(transcript[0]);
        h.update(transcript[1]);
        h.update(shared.compress().as_bytes());
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
    /// a for every OT.
    secrets: Vec<Scalar>,
    /// (r_0, r_1) for every OT, as sent.
    request: Bytes,
}

impl Receiver {
    /// Round 1: chooses with the bits of `choices`; `coins` holds two coins per OT.
    fn start(dom: Domain, choices: Block, coins: &[Coin]) -> Self {
        let mut secrets = Vec::with_capacity(KAPPA);
        let mut request = Vec::with_capacity(MESSAGE);
        for l in 0..KAPPA {
            let a = Scalar::from_bytes_mod_order_wide(&coins[2 * l]);
            let other = RistrettoPoint::from_uniform_bytes(&coins[2 * l + 1]).compress();
            let c = ((choices >> l) & 1) as u8;
            let chosen = (RistrettoPoint::mul_base(&a) - dom.hash_to_group(l, c, other.as_bytes()))
                .compress();
            // c = 0: (r_0, r_1) = (chosen, other); c = 1: (other, chosen).
            let bit = Choice::from(c);
            let r0 = <[u8; 32]>::conditional_select(chosen.as_bytes(), other.as_bytes(), bit);
            let r1 = <[u8; 32]>::conditional_select(other.as_bytes(), chosen.as_bytes(), bit);
            request.extend_from_slice(&r0);
            request.extend_from_slice(&r1);
            secrets.push(a);
        }
        Self {
            dom,
            choices,
            secrets,
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
        Ok(pairs
            .iter()
            .enumerate()
            .map(|(l, [b0, b1])| {
                let c = ((self.choices >> l) & 1) as u8;
                let b = RistrettoPoint::conditional_select(b0, b1, Choice::from(c));
                let transcript = [
                    &self.request[l * PER_OT..(l + 1) * PER_OT],
                    &answer[l * PER_OT..(l + 1) * PER_OT],
                ];
                self.dom.key(l, c, transcript, &(self.secrets[l] * b))
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
    let mut answer = Vec::with_capacity(MESSAGE);
    let mut shared = Vec::with_capacity(KAPPA);
    for l in 0..KAPPA {
        let r = decode_pair(request, l, "request")?;
        let mut dh = [RistrettoPoint::default(); 2];
        for j in 0..2 {
            let other = &request[l * PER_OT + (1 - j) * POINT..l * PER_OT + (2 - j) * POINT];
            let m = r[j] + dom.hash_to_group(l, j as u8, other);
            if m.is_identity() {
                return Err(format!(
                    "its base-OT request makes key-agreement message {j} of OT {l} the identity"
                ));
            }
            let b = Scalar::from_bytes_mod_order_wide(&coins[2 * l + j]);
            answer.extend_from_slice(RistrettoPoint::mul_base(&b).compress().as_bytes());
            dh[j] = b * m;
        }
        shared.push(dh);
    }
    let keys = shared
        .iter()
        .enumerate()
        .map(|(l, dh)| {
            let transcript = [
                &request[l * PER_OT..(l + 1) * PER_OT],
                &answer[l * PER_OT..(l + 1) * PER_OT],
            ];
            [0u8, 1].map(|j| dom.key(l, j, transcript, &dh[j as usize]))
        })
        .collect();
    Ok(Answered {
        keys,
        msg: Bytes::from(answer),
    })
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
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    use futures_util::future::join_all;

    use super::*;
    use crate::channel::memory::memory_channels;
    use crate::channel::{ChannelError, PeerNames};
    use crate::engine::share::Slots;

    const RUN: [u8; 32] = [7; 32];

    /// Plays a cheating party: rewrites its `nth` base-OT message to party `to` with `edit`.
    struct Rewrite<C> {
        inner: C,
        to: usize,
        nth: usize,
        edit: fn(&mut Vec<u8>),
        seen: AtomicUsize,
    }

    impl<C: Channel> Rewrite<C> {
        fn honest(inner: C) -> Self {
            Self::cheating(inner, usize::MAX, 0, |_| {})
        }

        fn cheating(inner: C, to: usize, nth: usize, edit: fn(&mut Vec<u8>)) -> Self {
            Self {
                inner,
                to,
                nth,
                edit,
                seen: AtomicUsize::new(0),
            }
        }
    }

    impl<C: Channel> Channel for Rewrite<C> {
        fn me(&self) -> usize {
            self.inner.me()
        }

        fn peers(&self) -> usize {
            self.inner.peers()
        }

        async fn send(&self, to: usize, phase: Phase, data: Bytes) -> Result<(), ChannelError> {
            let data = if phase == Phase::BaseOt
                && to == self.to
                && self.seen.fetch_add(1, Ordering::SeqCst) == self.nth
            {
                let mut bytes = data.to_vec();
                (self.edit)(&mut bytes);
                Bytes::from(bytes)
            } else {
                data
            };
            self.inner.send(to, phase, data).await
        }

        async fn recv(&self, from: usize, phase: Phase) -> Result<Bytes, ChannelError> {
            self.inner.recv(from, phase).await
        }

        async fn abort(&self, reason: &str) {
            self.inner.abort(reason).await
        }

        fn bytes_sent(&self) -> u64 {
            self.inner.bytes_sent()
        }
    }

    fn channels(n: usize) -> Vec<Rewrite<impl Channel>> {
        memory_channels(n, n, Duration::from_secs(20))
            .into_iter()
            .map(Rewrite::honest)
            .collect()
    }

    /// Runs the base OTs of all parties as futures of one task (as `mpc run` does); a party
    /// that fails tells the others, as the engine does.
    fn run_parties<C: Channel>(
        channels: &[C],
        deltas: &[Block],
        run_id: [u8; 32],
    ) -> Vec<Result<Vec<PairSeeds>, EngineError>> {
        let n = channels.len();
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
                    run_id,
                    rng: Prg::from_entropy(),
                    transcript: crate::engine::transcript::Transcript::new(&run_id),
                };
                let out = run(&mut ctx).await;
                if let Err(e) = &out {
                    ch.abort(&e.to_string()).await;
                }
                out
            }
        })))
    }

    fn random_deltas(n: usize) -> Vec<Block> {
        let mut rng = Prg::from_entropy();
        (0..n).map(|_| rng.block() | 1).collect()
    }

    fn bit(choices: Block, l: usize) -> usize {
        ((choices >> l) & 1) as usize
    }

    /// One batch of OTs between a receiver and a sender, run directly.
    struct Batch {
        sent: Vec<[Key; 2]>,
        chosen: Vec<Key>,
        receiver: Receiver,
        answer: Bytes,
    }

    fn direct(dom: Domain, choices: Block, receive_coins: &[Coin], send_coins: &[Coin]) -> Batch {
        let receiver = Receiver::start(dom, choices, receive_coins);
        let answered = answer(dom, &receiver.request, send_coins).expect("honest request");
        let chosen = receiver.finish(&answered.msg).expect("honest answer");
        Batch {
            sent: answered.keys,
            chosen,
            receiver,
            answer: answered.msg,
        }
    }

    fn fresh(dom: Domain, choices: Block) -> Batch {
        let mut rng = Prg::from_entropy();
        let (rc, sc) = (coins(&mut rng, 2 * KAPPA), coins(&mut rng, 2 * KAPPA));
        direct(dom, choices, &rc, &sc)
    }

    #[test]
    fn keys_agree_for_every_choice_pattern() {
        let dom = Domain::new(RUN, 1, 0);
        let mut rng = Prg::from_entropy();
        let patterns = [
            0,
            !0,
            1,
            1 << 127,
            0xaaaa_aaaa_aaaa_aaaa_aaaa_aaaa_aaaa_aaaa,
            0x5555_5555_5555_5555_5555_5555_5555_5555,
            rng.block(),
            rng.block() | 1,
        ];
        for choices in patterns {
            let Batch { sent, chosen, .. } = fresh(dom, choices);
            assert_eq!((sent.len(), chosen.len()), (KAPPA, KAPPA));
            for l in 0..KAPPA {
                let c = bit(choices, l);
                assert_eq!(chosen[l], sent[l][c], "OT {l}, choices {choices:#x}");
                assert_ne!(chosen[l], sent[l][1 - c], "OT {l}, choices {choices:#x}");
            }
        }
    }

    #[test]
    fn parties_agree_on_the_keys_in_both_directions() {
        for n in [2, 3] {
            let deltas = random_deltas(n);
            let chans = channels(n);
            let seeds: Vec<Vec<PairSeeds>> = run_parties(&chans, &deltas, RUN)
                .into_iter()
                .map(|r| r.expect("honest run"))
                .collect();
            for i in 0..n {
                for j in (0..n).filter(|&j| j != i) {
                    // P_i sends, P_j receives with the bits of Δ_j.
                    let sender = &seeds[i][Slots { me: i, n }.slot(j)];
                    let receiver = &seeds[j][Slots { me: j, n }.slot(i)];
                    for l in 0..KAPPA {
                        let c = bit(deltas[j], l);
                        assert_eq!(receiver.chosen[l], sender.sent[l][c], "{i}→{j}, OT {l}");
                        assert_ne!(receiver.chosen[l], sender.sent[l][1 - c]);
                    }
                }
            }
        }
    }

    #[test]
    fn unchosen_keys_look_independent() {
        let dom = Domain::new(RUN, 0, 1);
        let choices = Prg::from_entropy().block();
        let Batch {
            sent,
            chosen,
            receiver,
            answer,
        } = fresh(dom, choices);
        let mut all: Vec<Key> = sent.iter().flatten().copied().collect();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 2 * KAPPA, "two keys of the batch coincide");
        for l in 0..KAPPA {
            let c = bit(choices, l);
            // The two keys of an OT differ in about half their bits (fails with
            // probability below 2^-40 for independent uniform keys).
            let distance: u32 = sent[l][0]
                .iter()
                .zip(&sent[l][1])
                .map(|(a, b)| (a ^ b).count_ones())
                .sum();
            assert!(
                (24..=104).contains(&distance),
                "OT {l}: distance {distance}"
            );
            // What the receiver can compute with its secret does not give the other key.
            let [b0, b1] = decode_pair(&answer, l, "answer").expect("honest answer");
            let transcript = [
                &receiver.request[l * PER_OT..(l + 1) * PER_OT],
                &answer[l * PER_OT..(l + 1) * PER_OT],
            ];
            let a = receiver.secrets[l];
            for guess_point in [a * b0, a * b1] {
                let guess = dom.key(l, 1 - c as u8, transcript, &guess_point);
                assert_ne!(guess, sent[l][1 - c], "OT {l}");
            }
            assert_eq!(chosen[l], sent[l][c]);
        }
    }

    #[test]
    fn keys_depend_on_run_index_and_direction() {
        // The same coins for every OT: only the index (and then the run or the direction)
        // tells the OTs apart.
        let mut rng = Prg::from_entropy();
        let (rc, sc) = (coins(&mut rng, 2), coins(&mut rng, 2));
        let rc: Vec<Coin> = rc.iter().cycle().take(2 * KAPPA).copied().collect();
        let sc: Vec<Coin> = sc.iter().cycle().take(2 * KAPPA).copied().collect();
        let choices = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        let base = direct(Domain::new(RUN, 0, 1), choices, &rc, &sc);
        let mut chosen = base.chosen.clone();
        chosen.sort();
        chosen.dedup();
        assert_eq!(chosen.len(), KAPPA, "two OT indices gave the same key");
        let other_run = direct(Domain::new([8; 32], 0, 1), choices, &rc, &sc);
        let reversed = direct(Domain::new(RUN, 1, 0), choices, &rc, &sc);
        for other in [other_run, reversed] {
            for l in 0..KAPPA {
                assert_eq!(other.chosen[l], other.sent[l][bit(choices, l)]);
                for j in 0..2 {
                    assert_ne!(other.sent[l][j], base.sent[l][j], "OT {l}, key {j}");
                }
            }
        }
        // Through the whole protocol too: two runs that differ only in the run id.
        let deltas = random_deltas(2);
        let a = run_parties(&channels(2), &deltas, RUN);
        let b = run_parties(&channels(2), &deltas, [9; 32]);
        let (a, b) = (a[0].as_ref().unwrap(), b[0].as_ref().unwrap());
        assert!((0..KAPPA).all(|l| a[0].chosen[l] != b[0].chosen[l]));
    }

    /// The honest request of a batch with `choices`, and that batch's receiver.
    fn honest_request(choices: Block) -> Receiver {
        let mut rng = Prg::from_entropy();
        Receiver::start(Domain::new(RUN, 1, 0), choices, &coins(&mut rng, 2 * KAPPA))
    }

    fn sender_rejects(request: &[u8]) -> String {
        let coins = coins(&mut Prg::from_entropy(), 2 * KAPPA);
        match answer(Domain::new(RUN, 1, 0), request, &coins) {
            Ok(_) => panic!("a bad request was accepted"),
            Err(detail) => detail,
        }
    }

    #[test]
    fn sender_rejects_bad_requests() {
        let request = honest_request(0x1234).request.to_vec();
        assert!(
            answer(
                Domain::new(RUN, 1, 0),
                &request,
                &coins(&mut Prg::from_entropy(), 2 * KAPPA)
            )
            .is_ok()
        );
        for len in [
            0,
            32,
            MESSAGE - PER_OT,
            MESSAGE - 1,
            MESSAGE + 1,
            2 * MESSAGE,
        ] {
            let mut bad = request.clone();
            bad.resize(len, 0);
            assert!(sender_rejects(&bad).contains("bytes"), "length {len}");
        }
        // The lowest bit set (a "negative" field element), the highest bit set, and a
        // non-canonical encoding (p + 1) are never encodings of a group element.
        let mut non_canonical = [0xff; 32];
        non_canonical[0] = 0xee;
        non_canonical[31] = 0x7f;
        for (l, j) in [(0, 0), (5, 1), (KAPPA - 1, 1)] {
            let at = l * PER_OT + j * POINT;
            for edit in [0usize, 1, 2, 3] {
                let mut bad = request.clone();
                match edit {
                    0 => bad[at] ^= 1,
                    1 => bad[at + 31] ^= 0x80,
                    2 => bad[at..at + POINT].copy_from_slice(&non_canonical),
                    _ => bad[at..at + POINT].fill(0), // the identity
                }
                let detail = sender_rejects(&bad);
                assert!(
                    detail.contains(&format!("element {j} of OT {l} ")),
                    "{detail}"
                );
            }
        }
        // A receiver that makes m_0 = r_0 + H(0, r_1) the identity.
        let mut bad = request.clone();
        let l = 7;
        let dom = Domain::new(RUN, 1, 0);
        let r1 = &request[l * PER_OT + POINT..(l + 1) * PER_OT];
        let r0 = -dom.hash_to_group(l, 0, r1);
        bad[l * PER_OT..l * PER_OT + POINT].copy_from_slice(r0.compress().as_bytes());
        let detail = sender_rejects(&bad);
        assert!(
            detail.contains("identity") && detail.contains("OT 7"),
            "{detail}"
        );
    }

    #[test]
    fn receiver_rejects_bad_answers_whatever_it_chose() {
        for choices in [0, !0] {
            let receiver = honest_request(choices);
            let coins = coins(&mut Prg::from_entropy(), 2 * KAPPA);
            let answer = answer(Domain::new(RUN, 1, 0), &receiver.request, &coins)
                .expect("honest request")
                .msg;
            assert!(receiver.finish(&answer).is_ok());
            for len in [0, MESSAGE - 1, MESSAGE + PER_OT] {
                let mut bad = answer.to_vec();
                bad.resize(len, 0);
                let detail = receiver.finish(&bad).expect_err("wrong length accepted");
                assert!(detail.contains("bytes"), "{detail}");
            }
            // Both branches, used or not: rejecting only the used one would tell the sender
            // the choice.
            for (l, j) in [(0, 0), (0, 1), (77, 0), (KAPPA - 1, 1)] {
                let at = l * PER_OT + j * POINT;
                for identity in [false, true] {
                    let mut bad = answer.to_vec();
                    if identity {
                        bad[at..at + POINT].fill(0);
                    } else {
                        bad[at] ^= 1;
                    }
                    let detail = receiver.finish(&bad).expect_err("bad element accepted");
                    assert!(
                        detail.contains(&format!("element {j} of OT {l} ")),
                        "{detail}"
                    );
                }
            }
        }
    }

    /// Runs 3 parties of which party 1 rewrites its `nth` base-OT message to party 0; party 0
    /// must fail the base OT check naming party 1.
    fn assert_party_0_blames_party_1(nth: usize, edit: fn(&mut Vec<u8>)) {
        let mut chans = channels(3);
        let inner = chans.remove(1).inner;
        chans.insert(1, Rewrite::cheating(inner, 0, nth, edit));
        let results = run_parties(&chans, &random_deltas(3), RUN);
        match &results[0] {
            Err(EngineError::Check { check, peer, .. }) => {
                assert_eq!((*check, peer.as_str()), (BASE_OT_CHECK, "party 1"));
            }
            Err(e) => panic!("party 0 failed otherwise: {e}"),
            Ok(_) => panic!("party 0 accepted a bad base-OT message"),
        }
    }

    #[test]
    fn a_bad_message_fails_the_base_ot_check_naming_its_sender() {
        // Message 0 is party 1's request (as receiver), message 1 its answer (as sender).
        for nth in [0, 1] {
            assert_party_0_blames_party_1(nth, |m| m.truncate(m.len() - 1));
            assert_party_0_blames_party_1(nth, |m| m.extend_from_slice(&[0; 32]));
            assert_party_0_blames_party_1(nth, |m| m[5 * PER_OT + POINT] ^= 1);
            assert_party_0_blames_party_1(nth, |m| m[9 * PER_OT..9 * PER_OT + POINT].fill(0));
        }
    }

    /// CPU time of this process so far, from /proc (Linux; clock ticks of 10 ms).
    fn cpu_secs() -> Option<f64> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let ticks: f64 =
            fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
        Some(ticks / 100.0)
    }

    /// Not a test: wall and CPU time of the base OTs for 2 and 3 parties
    /// (`cargo test --release --lib measure_base_ot -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn measure_base_ot() {
        const RUNS: usize = 15;
        for n in [2, 3] {
            let deltas = random_deltas(n);
            let cpu_start = cpu_secs();
            let mut times: Vec<f64> = (0..RUNS)
                .map(|_| {
                    let chans = channels(n);
                    let start = Instant::now();
                    let out = run_parties(&chans, &deltas, RUN);
                    let secs = start.elapsed().as_secs_f64();
                    assert!(out.iter().all(|r| r.is_ok()));
                    secs
                })
                .collect();
            let cpu = cpu_start
                .zip(cpu_secs())
                .map(|(a, b)| (b - a) / RUNS as f64);
            times.sort_by(f64::total_cmp);
            println!(
                "base OT, {n} parties: wall median {:.1} ms (min {:.1} ms), CPU {} per run",
                times[RUNS / 2] * 1e3,
                times[0] * 1e3,
                cpu.map_or("n/a".to_string(), |c| format!("{:.1} ms", c * 1e3)),
            );
        }
    }
}
