//! Punctured OTs for SoftSpokenOT: (2^k − 1)-out-of-2^k random OTs, each built as a GGM
//! tree of depth k from k of the base OTs (Roy, "SoftSpokenOT", CRYPTO 2022, after Boyle et
//! al.'s punctured PRFs). Runs once per session, right after the base OTs.
//!
//! Per ordered pair, the MAC holder P_i (base-OT sender, holding both keys k_l^0, k_l^1 of
//! every base OT l) and the key holder P_j (base-OT receiver, holding k_l^c with c = Δ_j[l])
//! split the κ = 128 base OTs into κ/k trees of k consecutive OTs. For tree i:
//!
//! - P_i picks a random root and expands it level by level with the PRG
//!   G(s) = (AES_s(0), AES_s(1)) into 2^k leaves; leaf x is reached by taking, at level d,
//!   the child named by bit d−1 of x. For every level d it sends the XOR of all left
//!   children masked with k_l^1 and the XOR of all right children masked with k_l^0
//!   (l = i·k + d − 1): 2k blocks per tree, 4 KiB per ordered pair whatever k is.
//! - P_j can unmask only the side ¬c at every level. Knowing every node of the level above
//!   except the one on its path, it expands them, recovers the path node's ¬c child from the
//!   unmasked XOR, and continues along side c. So it learns every leaf but the one at
//!   p = Δ_j's k bits of the tree, and nothing about that leaf (it is a PRG output of a node
//!   it never sees).
//!
//! P_j stores its leaves indexed by y = x ⊕ p (slot 0, the punctured leaf, is not stored),
//! so the per-batch work of [`super::extension`] touches memory in an order that does not
//! depend on Δ. The reconstruction itself selects with `subtle`, so it is constant time too.
//!
//! A cheating P_i may send masked XORs that belong to no tree. Then P_j's leaves are some
//! function of p that P_i can compute for every p, so its VOLE outputs are wrong except for
//! the values of p that P_i chose to keep consistent: the OT extension consistency check
//! passes exactly when Δ_j's bits of that tree fall in a set the cheater picked, which is the
//! same "guess bits of Δ at the risk of an abort" that a cheating IKNP/KOS u-matrix gives,
//! and which WRK17's FaBit analysis tolerates (see [`super`]).

use bytes::Bytes;
use subtle::{ConditionallySelectable, ConstantTimeEq};

use super::base::KAPPA;
use super::common::read_block;
use crate::engine::aes::Prg;
use crate::engine::share::Block;

/// Bits of Δ per tree (SoftSpokenOT's k): the correction message of the OT extension has
/// κ/k bits per authenticated bit, and the PRG work grows as 2^k/k. Chosen by measurement
/// on the 1M-AND benchmark (see [`super`]).
pub const K: usize = 4;

/// Leaves per tree.
pub const LEAVES: usize = 1 << K;

/// Trees per ordered pair.
pub const TREES: usize = KAPPA / K;

const _: () = assert!(KAPPA.is_multiple_of(K) && K >= 1 && K <= 10);

/// Bytes of the message of one ordered pair: two blocks per level of every tree.
pub const MESSAGE: usize = TREES * K * 2 * 16;

/// The two children of a GGM node.
fn expand(node: Block) -> [Block; 2] {
    let mut out = [0u128; 2];
    Prg::new(node.to_le_bytes()).fill(&mut out);
    out
}

/// A base-OT key as a block.
fn key_block(key: &[u8; 16]) -> Block {
    u128::from_le_bytes(*key)
}

/// MAC-holder side: builds one tree per κ/k base OTs from random roots. Returns the leaves
/// (tree i's leaf x at `i·2^k + x`) and the message for the key holder.
pub fn build(rng: &mut Prg, sent: &[[[u8; 16]; 2]]) -> (Vec<Block>, Bytes) {
    let mut leaves = vec![0u128; TREES * LEAVES];
    let mut msg = Vec::with_capacity(MESSAGE);
    for (i, tree) in leaves.chunks_exact_mut(LEAVES).enumerate() {
        tree[0] = rng.block();
        for d in 1..=K {
            // Level d−1 occupies tree[..2^(d−1)]; children of node a go to a and a + half.
            let half = 1 << (d - 1);
            let mut sums = [0u128; 2];
            for a in 0..half {
                let [left, right] = expand(tree[a]);
                tree[a] = left;
                tree[a + half] = right;
                sums[0] ^= left;
                sums[1] ^= right;
            }
            let [k0, k1] = &sent[i * K + d - 1];
            msg.extend_from_slice(&(sums[0] ^ key_block(k1)).to_le_bytes());
            msg.extend_from_slice(&(sums[1] ^ key_block(k0)).to_le_bytes());
        }
    }
    (leaves, Bytes::from(msg))
}

/// Key-holder side: every leaf but the punctured one of every tree, from the MAC holder's
/// message (already length-checked: [`MESSAGE`] bytes), the chosen base-OT keys and Δ.
/// Tree i's leaf x ≠ p is returned at `i·(2^k − 1) + (x ⊕ p) − 1`.
pub fn reconstruct(msg: &[u8], chosen: &[[u8; 16]], delta: Block) -> Vec<Block> {
    let mut out = Vec::with_capacity(TREES * (LEAVES - 1));
    let mut tree = [0u128; LEAVES];
    for i in 0..TREES {
        // The path to the punctured leaf so far (bits 0..d−1 of p).
        let mut path = 0usize;
        tree[0] = 0;
        for d in 1..=K {
            let l = i * K + d - 1;
            let c = ((delta >> l) & 1) as u8;
            let half = 1 << (d - 1);
            // The side this party can unmask: ¬c (its XOR is masked with k^c).
            let at = 2 * (i * K + d - 1);
            let masked = [0, 1].map(|j| read_block(msg, at + j).unwrap_or(0));
            let sibling_side = 1 - c;
            let unmasked =
                u128::conditional_select(&masked[1], &masked[0], c.into()) ^ key_block(&chosen[l]);
            // XOR of the ¬c children of every known node of level d−1.
            let mut known = 0u128;
            for a in 0..half {
                let children = expand(tree[a]);
                tree[a] = children[0];
                tree[a + half] = children[1];
                let on_path = (a as u64).ct_eq(&(path as u64));
                let child = u128::conditional_select(&children[1], &children[0], c.into());
                known ^= u128::conditional_select(&child, &0, on_path);
            }
            // The path node's ¬c child, put where it belongs; its c child is the next node
            // on the path (garbage until the end, never used).
            let recovered = unmasked ^ known;
            let sibling = path + (sibling_side as usize) * half;
            for (a, node) in tree[..2 * half].iter_mut().enumerate() {
                let here = (a as u64).ct_eq(&(sibling as u64));
                node.conditional_assign(&recovered, here);
            }
            path += (c as usize) * half;
        }
        // Relabel by y = x ⊕ p with a constant-time scan (2^k · 2^k selects per tree, once
        // per session).
        for y in 1..LEAVES {
            let want = (y ^ path) as u64;
            let mut leaf = 0u128;
            for (x, node) in tree.iter().enumerate() {
                leaf.conditional_assign(node, (x as u64).ct_eq(&want));
            }
            out.push(leaf);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random base-OT keys and the keys a receiver with choices `delta` holds.
    fn base_keys(rng: &mut Prg, delta: Block) -> (Vec<[[u8; 16]; 2]>, Vec<[u8; 16]>) {
        let sent: Vec<[[u8; 16]; 2]> = (0..KAPPA)
            .map(|_| [rng.block().to_le_bytes(), rng.block().to_le_bytes()])
            .collect();
        let chosen = (0..KAPPA)
            .map(|l| sent[l][((delta >> l) & 1) as usize])
            .collect();
        (sent, chosen)
    }

    #[test]
    fn every_leaf_but_the_punctured_one_is_reconstructed() {
        let mut rng = Prg::from_entropy();
        for delta in [0, !0, 1, rng.block(), rng.block() | 1] {
            let (sent, chosen) = base_keys(&mut rng, delta);
            let (leaves, msg) = build(&mut rng, &sent);
            assert_eq!(msg.len(), MESSAGE);
            let got = reconstruct(&msg, &chosen, delta);
            assert_eq!(got.len(), TREES * (LEAVES - 1));
            for i in 0..TREES {
                let p = ((delta >> (i * K)) as usize) & (LEAVES - 1);
                let tree = &leaves[i * LEAVES..(i + 1) * LEAVES];
                for y in 1..LEAVES {
                    let x = y ^ p;
                    assert_eq!(got[i * (LEAVES - 1) + y - 1], tree[x], "tree {i}, leaf {x}");
                }
                // The punctured leaf is nowhere among what the key holder got.
                let theirs = &got[i * (LEAVES - 1)..(i + 1) * (LEAVES - 1)];
                assert!(!theirs.contains(&tree[p]), "tree {i} leaked leaf {p}");
            }
            // All leaves differ (independent PRG outputs).
            let mut all = leaves.clone();
            all.sort();
            all.dedup();
            assert_eq!(all.len(), leaves.len());
        }
    }

    #[test]
    fn a_wrong_key_or_message_spoils_leaves() {
        let mut rng = Prg::from_entropy();
        let delta = rng.block() | 1;
        let (sent, chosen) = base_keys(&mut rng, delta);
        let (_, msg) = build(&mut rng, &sent);
        let honest = reconstruct(&msg, &chosen, delta);
        // A flipped bit in the half the receiver unmasks at level 1 of tree 0 spoils the
        // sibling of its path there, and through the XORs of the levels below every sibling
        // it recovers later: every leaf of that tree it holds, and nothing in other trees.
        let c = (delta & 1) as usize;
        let mut bad = msg.to_vec();
        bad[(1 - c) * 16] ^= 1;
        let got = reconstruct(&bad, &chosen, delta);
        let changed = (0..LEAVES - 1).filter(|&y| got[y] != honest[y]).count();
        assert_eq!(changed, LEAVES - 1);
        assert_eq!(got[LEAVES - 1..], honest[LEAVES - 1..]);
        // At every level of every tree: the half it cannot unmask changes nothing, the other
        // spoils that tree's leaves.
        for l in 0..KAPPA {
            let c = ((delta >> l) & 1) as usize;
            for side in 0..2 {
                let mut bad = msg.to_vec();
                bad[(2 * l + side) * 16 + 7] ^= 0x20;
                let got = reconstruct(&bad, &chosen, delta);
                let tree = (l / K) * (LEAVES - 1)..(l / K + 1) * (LEAVES - 1);
                if side == c {
                    assert_eq!(got, honest, "base OT {l}, side {side}");
                } else {
                    assert_ne!(got[tree.clone()], honest[tree], "base OT {l}, side {side}");
                }
            }
        }
    }
}
