//! The hash H that pads garbled rows, and the row layout shared by garbler and evaluator.
//!
//! H(L_α, L_β, g, u, v) is built from the tweakable circular-correlation-robust hash of
//! Guo–Katz–Wang–Yu (S&P 2020) over fixed-key AES: `TCCR(x, t) = π(σ(x) ⊕ t) ⊕ σ(x)` with
//! `σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L`. Output block k of garbler i's pad is
//! `TCCR(L_α, t(g,i,u,v,k,0)) ⊕ TCCR(L_β, t(g,i,u,v,k,1))`: every (gate, garbler, row,
//! block, side) has its own tweak, so no two pads of a run share an input, and an evaluator
//! that knows one label of each input learns nothing about the other three rows.
//!
//! Two parties garble with half gates instead ([`RowHasher::half_gate_hashes`]): H(L, g, side)
//! = `TCCR(L, t'(g, side))`, where the tweak t' has bit 3 set, which no row tweak has, so the
//! two garblings never hash the same input.

use super::PARTY_BITS;
use super::aes::{Aes, sigma};
use super::share::Block;

/// The fixed, public AES key of π (any constant works; this one is the first 16 bytes of
/// the SHA-256 of "mpc fixed-key AES", as a test checks).
const FIXED_KEY: [u8; 16] = [
    0xaa, 0x0d, 0xa6, 0x12, 0x65, 0x25, 0x73, 0x79, 0xf2, 0x30, 0x39, 0xc1, 0x32, 0x29, 0xa6, 0xe5,
];

// The block number ends above side, u and v.
const _: () = assert!(64 - 2 * PARTY_BITS >= 3);

/// The tweak of block `k`, side `side` (0 for L_α, 1 for L_β) of row (u, v) of garbler
/// `garbler`'s pad for AND gate `g`. From high to low bits: g (64), garbler and k
/// ([`PARTY_BITS`] each: both are below [`crate::engine::MAX_PARTIES`], a pad has n blocks),
/// zeros, side, u, v; distinct inputs give distinct tweaks.
#[inline]
fn tweak(g: u64, garbler: usize, u: usize, v: usize, k: usize, side: usize) -> Block {
    debug_assert!(garbler < 1 << PARTY_BITS && k < 1 << PARTY_BITS);
    debug_assert!(u < 2 && v < 2 && side < 2);
    ((g as u128) << 64)
        | ((garbler as u128) << (64 - PARTY_BITS))
        | ((k as u128) << (64 - 2 * PARTY_BITS))
        | ((side as u128) << 2)
        | ((u as u128) << 1)
        | v as u128
}

/// The tweak of the half-gate hash of AND gate `g`'s input `side` (0 for α, 1 for β): g in
/// the high 64 bits, bit 3 set (no row tweak has it), side in bit 0.
#[inline]
fn half_gate_tweak(g: u64, side: usize) -> Block {
    debug_assert!(side < 2);
    ((g as u128) << 64) | (1 << 3) | side as u128
}

/// One row to pad: the two input labels and the row's coordinates.
#[derive(Debug, Clone, Copy)]
pub struct RowInput {
    /// Label of the first input wire for this row.
    pub la: Block,
    /// Label of the second input wire for this row.
    pub lb: Block,
    /// AND gate index (global, in circuit order).
    pub gate: u64,
    /// The garbler whose labels these are.
    pub garbler: usize,
    /// Row coordinate of the first input.
    pub u: usize,
    /// Row coordinate of the second input.
    pub v: usize,
}

/// Computes row pads with fixed-key AES, batching many rows per AES call.
pub struct RowHasher {
    cipher: Aes,
    scratch: Vec<Block>,
    sigmas: Vec<Block>,
}

impl Default for RowHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl RowHasher {
    /// Replaces every `labels[i]` by its half-gate hash H(labels[i], g, side), where
    /// `(g, side) = at(i)`, in one AES call (batches of many gates keep AES-NI busy; a call
    /// for a few blocks costs its set-up several times over).
    pub fn half_gate_hashes(&mut self, labels: &mut [Block], at: impl Fn(usize) -> (u64, usize)) {
        self.sigmas.clear();
        self.sigmas.extend(labels.iter().map(|&l| sigma(l)));
        for (i, (l, s)) in labels.iter_mut().zip(&self.sigmas).enumerate() {
            let (g, side) = at(i);
            *l = s ^ half_gate_tweak(g, side);
        }
        self.cipher.encrypt(labels);
        for (l, s) in labels.iter_mut().zip(&self.sigmas) {
            *l ^= s;
        }
    }

    /// A hasher with the fixed key.
    pub fn new() -> Self {
        Self {
            cipher: Aes::new(FIXED_KEY),
            scratch: Vec::new(),
            sigmas: Vec::new(),
        }
    }

    /// Writes `blocks` pad blocks per row into `out` (`rows.len() * blocks` long).
    pub fn pads(&mut self, rows: &[RowInput], blocks: usize, out: &mut [Block]) {
        let per_row = 2 * blocks;
        self.scratch.clear();
        self.sigmas.clear();
        for r in rows {
            let sa = sigma(r.la);
            let sb = sigma(r.lb);
            self.sigmas.push(sa);
            self.sigmas.push(sb);
            for k in 0..blocks {
                let ta = sa ^ tweak(r.gate, r.garbler, r.u, r.v, k, 0);
                let tb = sb ^ tweak(r.gate, r.garbler, r.u, r.v, k, 1);
                self.scratch.push(ta);
                self.scratch.push(tb);
            }
        }
        self.cipher.encrypt(&mut self.scratch);
        for (i, _) in rows.iter().enumerate() {
            let sa = self.sigmas[2 * i];
            let sb = self.sigmas[2 * i + 1];
            for k in 0..blocks {
                let ea = self.scratch[i * per_row + 2 * k];
                let eb = self.scratch[i * per_row + 2 * k + 1];
                out[i * blocks + k] = ea ^ sa ^ eb ^ sb;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_depend_on_every_coordinate() {
        let mut h = RowHasher::new();
        let base = RowInput {
            la: 11,
            lb: 22,
            gate: 5,
            garbler: 1,
            u: 0,
            v: 1,
        };
        let variants = [
            base,
            RowInput { la: 12, ..base },
            RowInput { lb: 23, ..base },
            RowInput { gate: 6, ..base },
            RowInput { garbler: 2, ..base },
            RowInput { u: 1, ..base },
            RowInput { v: 0, ..base },
        ];
        let mut out = vec![0; variants.len() * 3];
        h.pads(&variants, 3, &mut out);
        for i in 0..variants.len() {
            for j in 0..i {
                assert_ne!(out[i * 3], out[j * 3]);
            }
            assert_ne!(out[i * 3], out[i * 3 + 1]);
        }
        let mut again = vec![0; 3];
        h.pads(&[base], 3, &mut again);
        assert_eq!(&again[..], &out[..3]);
    }

    #[test]
    fn half_gate_hashes_never_share_an_input_with_row_pads() {
        let mut h = RowHasher::new();
        let mut x = [5, 5, 5, 5, 6];
        h.half_gate_hashes(&mut x, |i| ([9, 9, 9, 10, 9][i], [0, 1, 0, 0, 0][i]));
        let [a0, a1, b0, other, label] = x;
        assert_ne!(a0, a1, "the side is part of the tweak");
        assert_eq!(a0, b0, "the same label, gate and side hash alike");
        assert_ne!(a0, other, "the gate is part of the tweak");
        assert_ne!(a0, label, "the label is hashed");
        for g in [0u64, 9, u64::MAX] {
            for garbler in [0usize, 1, 255] {
                for (u, v) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    for k in [0usize, 1, 255] {
                        for side in [0, 1] {
                            let row = tweak(g, garbler, u, v, k, side);
                            assert_ne!(row, half_gate_tweak(g, 0));
                            assert_ne!(row, half_gate_tweak(g, 1));
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn the_fixed_key_is_what_its_comment_says() {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(b"mpc fixed-key AES");
        assert_eq!(FIXED_KEY[..], digest[..16]);
    }

    /// Reads the fields back out of a tweak.
    fn fields(t: Block) -> (u64, usize, usize, usize, usize, usize) {
        let mask = (1u128 << PARTY_BITS) - 1;
        (
            (t >> 64) as u64,
            ((t >> (64 - PARTY_BITS)) & mask) as usize,
            ((t >> 1) & 1) as usize,
            (t & 1) as usize,
            ((t >> (64 - 2 * PARTY_BITS)) & mask) as usize,
            ((t >> 2) & 1) as usize,
        )
    }

    #[test]
    fn tweaks_are_injective_up_to_the_party_limit() {
        use crate::engine::MAX_PARTIES;
        let gates = [0u64, 1, 2, 1 << 32, u64::MAX - 1, u64::MAX];
        // Garbler indices and block numbers (a pad has n ≤ MAX_PARTIES blocks).
        let indices = [
            0usize,
            1,
            2,
            MAX_PARTIES - 2,
            MAX_PARTIES - 1,
            (1 << PARTY_BITS) - 1,
        ];
        let mut seen = std::collections::HashSet::new();
        for &g in &gates {
            for &garbler in &indices {
                for (u, v) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                    for &k in &indices {
                        for side in [0, 1] {
                            let t = tweak(g, garbler, u, v, k, side);
                            assert_eq!(fields(t), (g, garbler, u, v, k, side));
                            assert!(seen.insert(t));
                        }
                    }
                }
            }
        }
    }
}
