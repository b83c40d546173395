//! Correlated-OT extension between one ordered pair: SoftSpokenOT (Roy, CRYPTO 2022), the
//! subspace-VOLE generalisation of IKNP, with k = [`K`] bits of Δ per punctured OT.
//!
//! The MAC holder P_i has bits x; the key holder P_j has Δ_j. From [`super::ggm`], for every
//! tree i (k consecutive bits of Δ_j, p_i = those bits as a number), P_i holds all 2^k leaf
//! seeds s_x and P_j every one but s_{p_i}. Both expand the leaves they hold into streams
//! G(s_x) (one bit per row). Per chunk of rows and per tree:
//!
//! - P_i: u = ⊕_x G(s_x) and, for j < k, t^{ik+j} = ⊕_{x: bit j of x is 1} G(s_x); it sends
//!   the correction c = u ⊕ x (one bit per row and tree: κ/k bits per row in all, instead of
//!   IKNP's κ);
//! - P_j: w^{ik+j} = ⊕_{x ≠ p} (bit j of x ⊕ p)·G(s_x), which equals t^{ik+j} ⊕ p_j·u (the
//!   term of the missing leaf has coefficient 0), and q^{ik+j} = w^{ik+j} ⊕ p_j·c
//!   = t^{ik+j} ⊕ Δ_j[ik+j]·x;
//! - both transpose: row t of q is K_j[x_t], row t of t is M_j[x_t] = K_j[x_t] ⊕ x_t·Δ_j.
//!
//! That is the IKNP correlation, column by column, so everything downstream is unchanged,
//! including the consistency check ([`super::abit`]): after all corrections are sent, a
//! coin-tossed seed gives χ_t ∈ GF(2^128); P_i sends x̃ = Σ χ_t·x_t and t̃ = Σ χ_t·M[x_t];
//! P_j checks Σ χ_t·K[x_t] = t̃ ⊕ x̃·Δ_j; 256 extra random rows are sacrificed so that x̃
//! reveals nothing about the useful bits. With k = 1 this is exactly KOS15.
//!
//! What a cheating MAC holder can do: corrections that are not u ⊕ x for one common x add
//! p_j·e_i to column ik+j, as a bad IKNP u-column did; a GGM tree that is no tree makes P_j's
//! columns some function of p_i the cheater knows. Either way the check passes only for the
//! values of Δ_j's bits the cheater bet on, so it learns a few bits of Δ_j at the risk of an
//! abort per guess: the leakage WRK17's FaBit analysis tolerates. The key holder learns
//! nothing of x: every correction is masked by G(s_{p_i}), a stream it cannot compute.
//!
//! Δ_j's lowest bit is 1 (the online protocol reads share bits from MAC lsbs). That only
//! fixes one bit of tree 0's p, which tells the MAC holder the lowest bit of its keys, which
//! it knows anyway (lsb K = lsb M ⊕ x); the other 127 bits of Δ_j stay hidden.
//!
//! Cost per 128 rows and tree: 2^k AES blocks at the MAC holder, 2^k − 1 at the key holder,
//! and about 2·2^k block XORs to fold the leaves into the k columns (pairs of leaves that
//! differ in bit j are folded at step j).

use rayon::prelude::*;

use super::base::{KAPPA, PairSeeds};
use super::common::{Ctx, read_block};
use super::ggm::{self, K, LEAVES, TREES};
use super::transpose::transpose_into;
use crate::channel::{Channel, Phase};
use crate::engine::EngineError;
use crate::engine::aes::Prg;
use crate::engine::share::{Block, times};

/// Bytes of the correction message for `rows` rows (a multiple of 128): κ/k bits per row.
pub fn message_len(rows: usize) -> usize {
    TREES * (rows / 128) * 16
}

/// The leaf streams of one peer, kept for the whole session (every batch continues the
/// same streams, so base OTs and trees are made once).
pub struct PairOt {
    /// Streams of the leaves of the trees this party built (it holds MACs towards the
    /// peer): tree i's leaf x at `i·2^k + x`.
    mac: Vec<Prg>,
    /// Streams of the peer's punctured trees (this party holds keys on the peer's bits):
    /// tree i's leaf x at `i·(2^k − 1) + (x ⊕ p_i) − 1`.
    key: Vec<Prg>,
}

/// Makes the punctured OTs with every peer from the base-OT keys (one message each way per
/// pair) and returns the pair states in slot order.
pub async fn setup<C: Channel>(
    ctx: &mut Ctx<'_, C>,
    seeds: &[PairSeeds],
) -> Result<Vec<PairOt>, EngineError> {
    let mut mine = Vec::with_capacity(seeds.len());
    let mut msgs = Vec::with_capacity(seeds.len());
    for seed in seeds {
        let (leaves, msg) = ggm::build(&mut ctx.rng, &seed.sent);
        mine.push(leaves);
        msgs.push(msg);
    }
    let received = ctx.exchange_each(Phase::BaseOt, msgs).await?;
    let mut pairs = Vec::with_capacity(seeds.len());
    for (s, (msg, leaves)) in received.iter().zip(&mine).enumerate() {
        ctx.expect_len(s, Phase::BaseOt, msg, ggm::MESSAGE)?;
        let theirs = ggm::reconstruct(msg, &seeds[s].chosen, ctx.delta);
        pairs.push(PairOt::new(leaves, &theirs));
    }
    Ok(pairs)
}

/// Folds the 2^k expansions in `buf` (leaf x at `x·nb`) into the k columns in `cols`
/// (column j at `j·nb`: the XOR of the leaves with bit j set) and leaves the XOR of all
/// leaves in `buf[..nb]`. Position by position (as 64-bit words, which the compiler pairs in
/// SSE2 registers): the 2^k words of a position are loaded once and the k + 1 sums
/// computed in registers, where folding leaf array into leaf array went through memory
/// 2^k − 1 times (measured: about 3% of a 1M-AND run's CPU, 5% of its time).
fn fold(buf: &mut [Block], nb: usize, cols: &mut [Block]) {
    const _: () = assert!(K == 4 && LEAVES == 16);
    let words = 2 * nb;
    let buf: &mut [u64] = bytemuck::cast_slice_mut(&mut buf[..LEAVES * nb]);
    let cols: &mut [u64] = bytemuck::cast_slice_mut(&mut cols[..K * nb]);
    let (first, others) = buf.split_at_mut(words);
    let leaf: [&[u64]; LEAVES - 1] = std::array::from_fn(|x| &others[x * words..(x + 1) * words]);
    let (c0, rest) = cols.split_at_mut(words);
    let (c1, rest) = rest.split_at_mut(words);
    let (c2, c3) = rest.split_at_mut(words);
    for w in 0..words {
        let v = |x: usize| leaf[x - 1][w];
        let v0 = first[w];
        // Sums over the leaves whose bit j is set, pairwise so that partial sums are shared.
        let (p1, p3) = (v(1) ^ v(3), v(5) ^ v(7));
        let (p9, p11) = (v(9) ^ v(11), v(13) ^ v(15));
        let (q2, q6) = (v(2) ^ v(3), v(6) ^ v(7));
        let (q10, q14) = (v(10) ^ v(11), v(14) ^ v(15));
        let odd = p1 ^ p3 ^ p9 ^ p11;
        let bit1 = q2 ^ q6 ^ q10 ^ q14;
        let bit2 = v(4) ^ v(5) ^ q6 ^ v(12) ^ v(13) ^ q14;
        let high = v(8) ^ v(9) ^ q10 ^ v(12) ^ v(13) ^ q14;
        let even = v0 ^ v(2) ^ v(4) ^ v(6) ^ v(8) ^ v(10) ^ v(12) ^ v(14);
        c0[w] = odd;
        c1[w] = bit1;
        c2[w] = bit2;
        c3[w] = high;
        first[w] = even ^ odd;
    }
}

impl PairOt {
    /// Streams from the leaves this party built and the punctured leaves it received.
    pub fn new(mac_leaves: &[Block], key_leaves: &[Block]) -> Self {
        let stream = |leaf: &Block| Prg::new(leaf.to_le_bytes());
        Self {
            mac: mac_leaves.iter().map(stream).collect(),
            key: key_leaves.iter().map(stream).collect(),
        }
    }

    /// MAC-holder side of one chunk of `128·nb` rows: `x` holds the chunk's bits packed
    /// (nb blocks). Appends the corrections (tree by tree) to `msg` and writes the MACs to
    /// `macs`. The trees are independent, so they are expanded on every core.
    pub fn mac_chunk(
        &mut self,
        x: &[Block],
        cols: &mut Vec<Block>,
        msg: &mut Vec<u8>,
        macs: &mut [Block],
    ) {
        let nb = x.len();
        cols.resize(KAPPA * nb, 0);
        let at = msg.len();
        msg.resize(at + message_len(128 * nb), 0);
        cols.par_chunks_mut(K * nb)
            .zip(self.mac.par_chunks_mut(LEAVES))
            .zip(msg[at..].par_chunks_mut(16 * nb))
            .for_each(|((tree_cols, leaves), out)| {
                with_scratch(LEAVES * nb, |scratch| {
                    for (leaf, expansion) in leaves.iter_mut().zip(scratch.chunks_exact_mut(nb)) {
                        leaf.fill(expansion);
                    }
                    fold(scratch, nb, tree_cols);
                    for ((u, x), c) in scratch[..nb].iter().zip(x).zip(out.chunks_exact_mut(16)) {
                        c.copy_from_slice(&(u ^ x).to_le_bytes());
                    }
                })
            });
        transpose_into(cols, nb, macs);
    }

    /// Key-holder side of one chunk: `c` is the peer's correction message for the chunk
    /// (already length-checked: [`message_len`] of `128·nb` rows). Writes the keys to `keys`.
    pub fn key_chunk(
        &mut self,
        delta: Block,
        c: &[u8],
        nb: usize,
        cols: &mut Vec<Block>,
        keys: &mut [Block],
    ) {
        cols.resize(KAPPA * nb, 0);
        cols.par_chunks_mut(K * nb)
            .zip(self.key.par_chunks_mut(LEAVES - 1))
            .enumerate()
            .for_each(|(i, (tree_cols, leaves))| {
                with_scratch(LEAVES * nb, |scratch| {
                    // Slot y = x ⊕ p: slot 0 is the punctured leaf, whose coefficient is 0.
                    scratch[..nb].fill(0);
                    for (leaf, expansion) in
                        leaves.iter_mut().zip(scratch[nb..].chunks_exact_mut(nb))
                    {
                        leaf.fill(expansion);
                    }
                    fold(scratch, nb, tree_cols);
                });
                let corrections = &c[16 * i * nb..16 * (i + 1) * nb];
                for (j, col) in tree_cols.chunks_exact_mut(nb).enumerate() {
                    // No branch on Δ.
                    let bit = (delta >> (i * K + j)) & 1 == 1;
                    for (q, bytes) in col.iter_mut().zip(corrections.chunks_exact(16)) {
                        *q ^= times(bit, read_block(bytes, 0).unwrap_or(0));
                    }
                }
            });
        transpose_into(cols, nb, keys);
    }
}

thread_local! {
    /// Each thread's buffer for the leaf expansions of one tree: small enough to stay in
    /// cache from tree to tree, and zeroed only when it first grows.
    static SCRATCH: std::cell::RefCell<Vec<Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's scratch buffer, `len` blocks long (contents left over from the
/// previous use: callers write before they read).
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [Block]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => {
            if buf.len() < len {
                buf.resize(len, 0);
            }
            f(&mut buf[..len])
        }
        // Only a re-entrant use could find it borrowed; it gets a buffer of its own.
        Err(_) => f(&mut vec![0; len]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two sides of one ordered pair, from random base-OT keys and Δ, without a channel.
    fn pair(rng: &mut Prg, delta: Block) -> (PairOt, PairOt) {
        let sent: Vec<[[u8; 16]; 2]> = (0..KAPPA)
            .map(|_| [rng.block().to_le_bytes(), rng.block().to_le_bytes()])
            .collect();
        let chosen: Vec<[u8; 16]> = (0..KAPPA)
            .map(|l| sent[l][((delta >> l) & 1) as usize])
            .collect();
        let (leaves, msg) = ggm::build(rng, &sent);
        let theirs = ggm::reconstruct(&msg, &chosen, delta);
        (PairOt::new(&leaves, &[]), PairOt::new(&[], &theirs))
    }

    #[test]
    fn vole_gives_the_cot_correlation_row_by_row() {
        let mut rng = Prg::from_entropy();
        for delta in [1, !0, rng.block() | 1, rng.block()] {
            let (mut mac_side, mut key_side) = pair(&mut rng, delta);
            let mut cols = Vec::new();
            // Two chunks of different sizes: the streams continue across chunks.
            for nb in [3, 1] {
                let mut x = vec![0u128; nb];
                rng.fill(&mut x);
                let mut msg = Vec::new();
                let mut macs = vec![0u128; 128 * nb];
                mac_side.mac_chunk(&x, &mut cols, &mut msg, &mut macs);
                assert_eq!(msg.len(), message_len(128 * nb));
                let mut keys = vec![0u128; 128 * nb];
                key_side.key_chunk(delta, &msg, nb, &mut cols, &mut keys);
                for t in 0..128 * nb {
                    let bit = (x[t / 128] >> (t % 128)) & 1;
                    let expected = keys[t] ^ if bit == 1 { delta } else { 0 };
                    assert_eq!(macs[t], expected, "row {t}, Δ {delta:#x}");
                }
                // The keys are not all equal to the MACs (x is hidden in the corrections).
                assert!((0..128 * nb).any(|t| keys[t] != macs[t]));
            }
        }
    }

    #[test]
    fn fold_sums_the_leaves_of_every_bit() {
        let nb = 2;
        let mut buf = vec![0u128; LEAVES * nb];
        Prg::new([5; 16]).fill(&mut buf);
        let orig = buf.clone();
        let mut cols = vec![0u128; K * nb];
        fold(&mut buf, nb, &mut cols);
        for b in 0..nb {
            let all = (0..LEAVES).fold(0, |acc, x| acc ^ orig[x * nb + b]);
            assert_eq!(buf[b], all);
            for j in 0..K {
                let want = (0..LEAVES)
                    .filter(|x| (x >> j) & 1 == 1)
                    .fold(0, |acc, x| acc ^ orig[x * nb + b]);
                assert_eq!(cols[j * nb + b], want, "column {j}, block {b}");
            }
        }
    }
}
