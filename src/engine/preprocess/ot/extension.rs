//! Correlated-OT extension (IKNP matrix, KOS15 consistency check) between one ordered pair.
//!
//! The MAC holder P_i has bits x_t; the key holder P_j has Δ_j and, from the base OTs, the
//! seed k_l^{Δ_j[l]} of each column l, while P_i has both k_l^0 and k_l^1. Per chunk of rows:
//!
//! - P_i: t^l = G(k_l^0), u^l = t^l ⊕ G(k_l^1) ⊕ x, sends the 128 columns u^l;
//! - P_j: q^l = G(k_l^{Δ_l}) ⊕ Δ_l·u^l = t^l ⊕ Δ_l·x;
//! - both transpose: row t of q is K_j[x_t], row t of t is M_j[x_t] = K_j[x_t] ⊕ x_t·Δ_j.
//!
//! Δ_j's lowest bit is 1 (the online protocol reads share bits from MAC lsbs). That only
//! fixes one choice bit of the base OTs: column 0 is always q^0 = t^0 ⊕ x, so the MAC holder
//! knows the lowest bit of its keys, which it knows anyway (lsb K = lsb M ⊕ x). The other 127
//! bits of Δ_j stay hidden, so the check below still leaves a cheating receiver 127 unknown
//! bits.
//!
//! The consistency check (in [`super::abit`]): after all u are sent, a coin-tossed seed gives
//! χ_t ∈ GF(2^128); P_i sends x̃ = Σ χ_t·x_t and t̃ = Σ χ_t·M[x_t]; P_j checks
//! Σ χ_t·K[x_t] = t̃ ⊕ x̃·Δ_j. 256 extra random rows are sacrificed so that x̃ reveals nothing
//! about the useful bits.

use super::base::{KAPPA, PairSeeds};
use super::common::read_block;
use crate::engine::aes::Prg;
use crate::engine::share::Block;

/// The expanded base-OT seeds of one peer, kept for the whole session (every batch
/// continues the same streams, so base OTs run once).
pub struct PairOt {
    /// Streams of k_l^0 (this party holds MACs towards the peer).
    mac0: Vec<Prg>,
    /// Streams of k_l^1.
    mac1: Vec<Prg>,
    /// Streams of k_l^{Δ_l} (this party holds keys on the peer's bits).
    key: Vec<Prg>,
}

impl PairOt {
    /// Streams from the base-OT seeds.
    pub fn new(seeds: &PairSeeds) -> Self {
        Self {
            mac0: seeds.sent.iter().map(|k| Prg::new(k[0])).collect(),
            mac1: seeds.sent.iter().map(|k| Prg::new(k[1])).collect(),
            key: seeds.chosen.iter().map(|k| Prg::new(*k)).collect(),
        }
    }

    /// MAC-holder side of one chunk of `128·nb` rows: `x` holds the chunk's bits packed
    /// (nb blocks). Appends the u-columns to `msg` and writes the MACs to `macs`.
    pub fn mac_chunk(
        &mut self,
        x: &[Block],
        cols: &mut Vec<Block>,
        scratch: &mut Vec<Block>,
        msg: &mut Vec<u8>,
        macs: &mut [Block],
    ) {
        let nb = x.len();
        cols.resize(KAPPA * nb, 0);
        msg.reserve(KAPPA * nb * 16);
        for l in 0..KAPPA {
            let t = &mut cols[l * nb..(l + 1) * nb];
            self.mac0[l].fill(t);
            scratch.resize(nb, 0);
            self.mac1[l].fill(scratch);
            for ((s, t), x) in scratch.iter().zip(t.iter()).zip(x) {
                msg.extend_from_slice(&(s ^ t ^ x).to_le_bytes());
            }
        }
        transpose_into(cols, nb, macs);
    }

    /// Key-holder side of one chunk: `u` is the peer's message for the chunk (already
    /// length-checked: `128·nb` blocks). Writes the keys to `keys`.
    pub fn key_chunk(
        &mut self,
        delta: Block,
        u: &[u8],
        nb: usize,
        cols: &mut Vec<Block>,
        keys: &mut [Block],
    ) {
        cols.resize(KAPPA * nb, 0);
        for l in 0..KAPPA {
            let q = &mut cols[l * nb..(l + 1) * nb];
            self.key[l].fill(q);
            if (delta >> l) & 1 == 1 {
                for (b, q) in q.iter_mut().enumerate() {
                    *q ^= read_block(u, l * nb + b).unwrap_or(0);
                }
            }
        }
        transpose_into(cols, nb, keys);
    }
}

/// Transposes 128 columns of `nb` blocks each (column l at `cols[l·nb..]`) into `128·nb`
/// rows: bit l of row t is bit t of column l.
pub fn transpose_into(cols: &[Block], nb: usize, rows: &mut [Block]) {
    let mut m = [0u128; 128];
    for b in 0..nb {
        for (l, w) in m.iter_mut().enumerate() {
            *w = cols[l * nb + b];
        }
        transpose128(&mut m);
        rows[b * 128..b * 128 + 128].copy_from_slice(&m);
    }
}

/// In-place transpose of a 128×128 bit matrix (word r, bit c ↦ word c, bit r) by recursive
/// block swaps: at each level the off-diagonal j×j blocks of every 2j×2j block are exchanged.
fn transpose128(a: &mut [u128; 128]) {
    // Split into 64-bit halves so the inner loops work on u64 lanes (vectorizable).
    let mut lo = [0u64; 128];
    let mut hi = [0u64; 128];
    for r in 0..128 {
        lo[r] = a[r] as u64;
        hi[r] = (a[r] >> 64) as u64;
    }
    // Level 64: swap hi of rows 0..64 with lo of rows 64..128.
    for r in 0..64 {
        std::mem::swap(&mut hi[r], &mut lo[r + 64]);
    }
    let mut j = 32;
    let mut mask: u64 = 0x0000_0000_ffff_ffff;
    while j != 0 {
        let mut k = 0;
        while k < 128 {
            for r in k..k + j {
                let t = ((lo[r] >> j) ^ lo[r + j]) & mask;
                lo[r] ^= t << j;
                lo[r + j] ^= t;
                let t = ((hi[r] >> j) ^ hi[r + j]) & mask;
                hi[r] ^= t << j;
                hi[r + j] ^= t;
            }
            k += 2 * j;
        }
        j >>= 1;
        mask ^= mask << j;
    }
    for r in 0..128 {
        a[r] = (lo[r] as u128) | ((hi[r] as u128) << 64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transpose_matches_naive() {
        let mut c = Prg::new([3; 16]);
        let nb = 3;
        let mut cols = vec![0u128; 128 * nb];
        c.fill(&mut cols);
        let mut rows = vec![0u128; 128 * nb];
        transpose_into(&cols, nb, &mut rows);
        for (t, row) in rows.iter().enumerate() {
            for l in 0..128 {
                let col_bit = (cols[l * nb + t / 128] >> (t % 128)) & 1;
                assert_eq!((row >> l) & 1, col_bit, "row {t} column {l}");
            }
        }
    }
}
