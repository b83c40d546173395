//! AES-128 on the crate's 128-bit blocks: the one place that talks to the `aes` crate.
//!
//! Every PRG and every fixed-key hash of the protocol (garbling rows, the tweakable
//! correlation-robust hash of the preprocessing, seed expansion) is AES-128 over [`Block`]s.
//! Keeping the conversion between `u128` blocks and the cipher's byte arrays here means the
//! hot loops encrypt whole slices in place (the `aes` crate pipelines several blocks per call
//! and uses AES-NI when the CPU has it) and no other module depends on the cipher crate's
//! array types.

use aes::Aes128;
use aes::cipher::{BlockCipherEncrypt, KeyInit, array::Array};
use rand::RngCore;

use super::share::Block;

/// AES-128 under one key, applied to blocks in place.
#[derive(Clone)]
pub struct Aes(Aes128);

impl Aes {
    /// The cipher under `key`.
    pub fn new(key: [u8; 16]) -> Self {
        Self(Aes128::new(&Array::from(key)))
    }

    /// Replaces every block `b` by `AES_key(b)`, reading and writing a block's bytes in
    /// little-endian order (the byte order used everywhere in this crate).
    pub fn encrypt(&self, blocks: &mut [Block]) {
        #[cfg(target_endian = "little")]
        {
            // On little-endian targets a u128's memory is its `to_le_bytes`, so the slice is
            // viewed as byte arrays without copying.
            let bytes: &mut [[u8; 16]] = bytemuck::cast_slice_mut(blocks);
            self.0
                .encrypt_blocks(Array::cast_slice_from_core_mut(bytes));
        }
        #[cfg(not(target_endian = "little"))]
        {
            let mut bytes: Vec<[u8; 16]> = blocks.iter().map(|b| b.to_le_bytes()).collect();
            self.0
                .encrypt_blocks(Array::cast_slice_from_core_mut(&mut bytes));
            for (b, v) in blocks.iter_mut().zip(&bytes) {
                *b = u128::from_le_bytes(*v);
            }
        }
    }
}

/// A pseudo-random generator: AES-128 in counter mode. The parties of an OT pair expand the
/// same seed with it and must get the same stream, so its output must never change between
/// versions (a test pins it).
pub struct Prg {
    cipher: Aes,
    counter: u128,
}

impl Prg {
    /// A stream from a 16-byte seed, counting from zero.
    pub fn new(seed: [u8; 16]) -> Self {
        Self {
            cipher: Aes::new(seed),
            counter: 0,
        }
    }

    /// A stream from a 32-byte value (its first half is the key, the rest a domain tag
    /// folded into the counter, so that one coin can seed several independent streams).
    pub fn from_seed32(seed: &[u8; 32], domain: u64) -> Self {
        let mut key = [0u8; 16];
        key.copy_from_slice(&seed[..16]);
        let mut nonce = [0u8; 16];
        nonce.copy_from_slice(&seed[16..]);
        let mut prg = Self::new(key);
        prg.counter = u128::from_le_bytes(nonce) ^ ((domain as u128) << 64);
        prg
    }

    /// A stream seeded from the operating system's randomness (secret local values).
    pub fn from_entropy() -> Self {
        let mut seed = [0u8; 16];
        rand::rng().fill_bytes(&mut seed);
        Self::new(seed)
    }

    /// Fills `out` with the next blocks of the stream.
    pub fn fill(&mut self, out: &mut [Block]) {
        for o in out.iter_mut() {
            *o = self.counter;
            self.counter = self.counter.wrapping_add(1);
        }
        self.cipher.encrypt(out);
    }

    /// Skips the next `blocks` blocks of the stream (counter mode: block i of a stream
    /// depends only on i, so parts of one stream can be drawn on different cores).
    pub fn skip(&mut self, blocks: u128) {
        self.counter = self.counter.wrapping_add(blocks);
    }

    /// The next block.
    pub fn block(&mut self) -> Block {
        let mut b = [0];
        self.fill(&mut b);
        b[0]
    }

    /// Appends the next `count` bits of the stream to `out`.
    pub fn bits(&mut self, count: usize, out: &mut Vec<bool>) {
        let mut blocks = vec![0u128; count.div_ceil(128)];
        self.fill(&mut blocks);
        out.extend((0..count).map(|i| (blocks[i / 128] >> (i % 128)) & 1 == 1));
    }
}

/// The linear orthomorphism σ(x_L ‖ x_R) = (x_L ⊕ x_R) ‖ x_L of Guo–Katz–Wang–Yu, which
/// turns fixed-key AES into a (tweakable) correlation-robust hash: both the garbling rows
/// and the preprocessing hash `π(σ(x) ⊕ t) ⊕ σ(x)`.
#[inline]
pub fn sigma(x: Block) -> Block {
    let hi = x >> 64;
    let lo = x & (u64::MAX as u128);
    ((hi ^ lo) << 64) | hi
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FIPS-197 appendix C.1: the cipher and the byte order of a block are what the rest of
    /// the crate (and every other party) assumes.
    #[test]
    fn aes_matches_the_fips_197_example() {
        let key: [u8; 16] = std::array::from_fn(|i| i as u8);
        let plain: [u8; 16] = std::array::from_fn(|i| (i as u8) * 0x11);
        let mut b = [u128::from_le_bytes(plain)];
        Aes::new(key).encrypt(&mut b);
        let expected = [
            0x69, 0xc4, 0xe0, 0xd8, 0x6a, 0x7b, 0x04, 0x30, 0xd8, 0xcd, 0xb7, 0x80, 0x70, 0xb4,
            0xc5, 0x5a,
        ];
        assert_eq!(b[0].to_le_bytes(), expected);
    }

    /// The stream is AES of the counter, so two parties with one seed agree, and a version
    /// that changed it would break interoperability: pinned here.
    #[test]
    fn prg_is_aes_of_a_counter() {
        let seed = [7u8; 16];
        let mut prg = Prg::new(seed);
        let mut out = [0u128; 3];
        prg.fill(&mut out);
        let mut expected = [0u128, 1, 2];
        Aes::new(seed).encrypt(&mut expected);
        assert_eq!(out, expected);
        assert_eq!(prg.block(), {
            let mut b = [3u128];
            Aes::new(seed).encrypt(&mut b);
            b[0]
        });
    }

    #[test]
    fn prg_is_deterministic_and_varied() {
        let mut a = Prg::new([7; 16]);
        let mut b = Prg::new([7; 16]);
        let mut x = vec![0; 1000];
        let mut y = vec![0; 1000];
        a.fill(&mut x);
        b.fill(&mut y[..300]);
        b.fill(&mut y[300..]);
        assert_eq!(x, y);
        assert_ne!(x[0], x[1]);
        // Skipping lands where filling would have: a part of the stream drawn on its own.
        let mut c = Prg::from_seed32(&[9; 32], 2);
        let mut whole = vec![0; 700];
        c.fill(&mut whole);
        let mut d = Prg::from_seed32(&[9; 32], 2);
        d.skip(512);
        let mut part = vec![0; 188];
        d.fill(&mut part);
        assert_eq!(part, whole[512..]);
    }

    #[test]
    fn sigma_is_linear_and_invertible() {
        let a = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
        let b = 0xdead_beef_0000_1111_2222_3333_4444_5555u128;
        assert_eq!(sigma(a ^ b), sigma(a) ^ sigma(b));
        assert_ne!(sigma(a), sigma(b));
        assert_eq!(sigma(0), 0);
    }
}
