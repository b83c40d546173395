//! The hash H that pads garbled rows, and the row layout shared by garbler and evaluator.
//!
//! H(L_α, L_β, g, u, v) is built from the tweakable circular-correlation-robust hash of
//! Guo–Katz–Wang–Yu (S&P 2020) over fixed-key AES: `TCCR(x, t) = π(σ(x) ⊕ t) ⊕ σ(x)` with
//! `σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L`. Output block k of the pad is
//! `TCCR(L_α, t(g,u,v,k,0)) ⊕ TCCR(L_β, t(g,u,v,k,1))`: every (gate, row, block, side) has its
//! own tweak, so no two pads share an input, and an evaluator that knows one label of each
//! input learns nothing about the other three rows.

use aes::Aes128;
use aes::cipher::{BlockEncrypt, KeyInit, consts::U16, generic_array::GenericArray};

use super::share::Block;

/// The fixed, public AES key of π (any constant works; this one is the first 16 bytes of
/// the SHA-256 of "mpc fixed-key AES").
const FIXED_KEY: [u8; 16] = [
    0x61, 0x3b, 0x0e, 0x9c, 0x2f, 0x5d, 0x87, 0x14, 0xc3, 0x7a, 0x90, 0x28, 0xe6, 0x41, 0xbd, 0x55,
];

/// The linear orthomorphism σ.
#[inline]
fn sigma(x: Block) -> Block {
    let hi = x >> 64;
    let lo = x & (u64::MAX as u128);
    ((hi ^ lo) << 64) | hi
}

/// The tweak of block `k`, side `side` (0 for L_α, 1 for L_β) of row (u, v) of AND gate `g`.
#[inline]
fn tweak(g: u64, u: usize, v: usize, k: usize, side: usize) -> Block {
    ((g as u128) << 64)
        | ((k as u128) << 3)
        | ((side as u128) << 2)
        | ((u as u128) << 1)
        | v as u128
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
    /// Row coordinate of the first input.
    pub u: usize,
    /// Row coordinate of the second input.
    pub v: usize,
}

/// Computes row pads with fixed-key AES, batching many rows per AES call.
pub struct RowHasher {
    cipher: Aes128,
    scratch: Vec<GenericArray<u8, U16>>,
    sigmas: Vec<Block>,
}

impl Default for RowHasher {
    fn default() -> Self {
        Self::new()
    }
}

impl RowHasher {
    /// A hasher with the fixed key.
    pub fn new() -> Self {
        Self {
            cipher: Aes128::new(&GenericArray::from(FIXED_KEY)),
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
                let ta = sa ^ tweak(r.gate, r.u, r.v, k, 0);
                let tb = sb ^ tweak(r.gate, r.u, r.v, k, 1);
                self.scratch.push(GenericArray::from(ta.to_le_bytes()));
                self.scratch.push(GenericArray::from(tb.to_le_bytes()));
            }
        }
        self.cipher.encrypt_blocks(&mut self.scratch);
        for (i, _) in rows.iter().enumerate() {
            let sa = self.sigmas[2 * i];
            let sb = self.sigmas[2 * i + 1];
            for k in 0..blocks {
                let ea = u128::from_le_bytes(self.scratch[i * per_row + 2 * k].into());
                let eb = u128::from_le_bytes(self.scratch[i * per_row + 2 * k + 1].into());
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
            u: 0,
            v: 1,
        };
        let variants = [
            base,
            RowInput { la: 12, ..base },
            RowInput { lb: 23, ..base },
            RowInput { gate: 6, ..base },
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
}
