//! Step 3 of a batch: the coin-tossed buckets, the pass that gathers every gate's material
//! and this party's shares of the differences, and the folding once the differences are
//! open (see the parent module for the protocol).

use rayon::prelude::*;

use super::Layout;
use crate::engine::aes::Prg;
use crate::engine::preprocess::ot::abit::ABits;
use crate::engine::preprocess::ot::common::get_bit;
use crate::engine::share::{AuthBits, Block, times};

/// Which leaky triples make up each bucket. The ℓ·B triples are B layers of ℓ (layer c
/// holds triples c·ℓ .. (c+1)·ℓ); bucket k takes triple (k + s_c) mod ℓ of every layer c,
/// with s_0 = 0 and s_1 .. s_{B−1} uniform from the coin. Every bucket reads B
/// sequential streams, where a random permutation made every read a cache miss (a tenth of
/// a 1M-AND run's CPU went to those misses); the bound the rotations need is in
/// [`super::bound`].
pub(super) struct Buckets {
    ands: usize,
    shifts: Vec<usize>,
}

impl Buckets {
    /// The rotations for `ands` buckets of `bucket` triples, from the coin.
    pub(super) fn from_coin(seed: &[u8; 32], ands: usize, bucket: usize) -> Self {
        let mut rng = Prg::from_seed32(seed, 3);
        let bound = ands.max(1) as u128;
        // Values at or above `top` would make the low residues more likely: reject them.
        let top = u128::MAX - u128::MAX % bound;
        let mut shifts = vec![0; bucket.max(1)];
        for shift in shifts.iter_mut().skip(1) {
            *shift = loop {
                let word = rng.block();
                if word < top {
                    break (word % bound) as usize;
                }
            };
        }
        Self { ands, shifts }
    }

    /// No buckets: a batch without AND gates.
    pub(super) fn none() -> Self {
        Self {
            ands: 0,
            shifts: vec![0],
        }
    }

    /// The leaky triple in slot `c` of bucket `k`.
    #[inline]
    pub(super) fn triple(&self, k: usize, c: usize) -> usize {
        let j = k + self.shifts[c];
        let j = if j >= self.ands { j - self.ands } else { j };
        c * self.ands + j
    }
}

/// AND gates per task of the passes in bucket order: a multiple of 128, so that a task owns
/// whole blocks of the packed differences whatever the bucket size.
const GROUP: usize = 1024;

const _: () = assert!(GROUP.is_multiple_of(128));

/// The pass in bucket order. Writes into `out` the batch's input aBits and, per AND gate,
/// a = ⊕x, b = y[p0], Σz (c before folding) and λ; into `d_mine` this party's shares of the
/// differences and into `mac_diffs` (m per difference) its MACs on them; into `keydiffs`
/// (m per difference) its keys on the other parties' differences. Groups of gates run on
/// every core, each writing its own part of every output. The x of every folded triple,
/// which `fold_differences` adds to c where d = 1, is read again from the aBits then.
#[allow(clippy::too_many_arguments)]
pub(super) fn gather(
    ab: &ABits,
    layout: Layout,
    m: usize,
    buckets: &Buckets,
    mut out: AuthBits,
    d_mine: &mut [Block],
    mac_diffs: &mut Vec<Block>,
    keydiffs: &mut Vec<Block>,
) -> AuthBits {
    let w = 2 * m;
    let total = layout.inputs + 4 * layout.ands;
    out.m = m;
    // Every entry is written below, so the buffers of the previous batch are only resized
    // (truncating or growing), never cleared: no pass over memory just to zero it.
    out.bits.resize(total, false);
    out.mk.resize(total * w, 0);
    let plain = |bit: &mut bool, mk: &mut [Block], t: usize| {
        *bit = ab.bit(t);
        for s in 0..m {
            mk[s] = ab.macs[s][t];
            mk[m + s] = ab.keys[s][t];
        }
    };
    let (in_bits, and_bits) = out.bits.split_at_mut(layout.inputs);
    let (in_mk, and_mk) = out.mk.split_at_mut(layout.inputs * w);
    for (t, (bit, mk)) in in_bits
        .iter_mut()
        .zip(in_mk.chunks_exact_mut(w))
        .enumerate()
    {
        plain(bit, mk, t);
    }
    let b_size = layout.bucket;
    if layout.ands == 0 {
        return out;
    }
    // Buckets hold at least two triples ([`super::bucket_size`] starts at 2), so every group
    // has differences and the zipped outputs have one part per group.
    debug_assert!(b_size >= 2);
    let per_diff = b_size - 1;
    let diffs = layout.ands * per_diff;
    mac_diffs.resize(diffs * m, 0);
    keydiffs.resize(diffs * m, 0);
    let words_per_group = GROUP * per_diff / 128;
    let diffs_per_group = GROUP * per_diff * m;
    and_bits
        .par_chunks_mut(4 * GROUP)
        .zip(and_mk.par_chunks_mut(4 * GROUP * w))
        .zip(d_mine.par_chunks_mut(words_per_group))
        .zip(mac_diffs.par_chunks_mut(diffs_per_group))
        .zip(keydiffs.par_chunks_mut(diffs_per_group))
        .enumerate()
        .for_each(|(g, ((((bits, mk), d_mine), mac_diffs), keydiffs))| {
            let first = g * GROUP;
            for (i, (bits, mk)) in bits
                .chunks_exact_mut(4)
                .zip(mk.chunks_exact_mut(4 * w))
                .enumerate()
            {
                let k = first + i;
                let p0 = buckets.triple(k, 0);
                let y0t = layout.y(p0);
                let y0 = ab.bit(y0t);
                // a, b, c and λ of the gate, written in place (m is small: element by
                // element beats copies of a few bytes).
                let (a_mk, rest) = mk.split_at_mut(w);
                let (b_mk, rest) = rest.split_at_mut(w);
                let (z_mk, l_mk) = rest.split_at_mut(w);
                let mut a_bit = false;
                let mut z_bit = false;
                for c in 0..b_size {
                    let p = buckets.triple(k, c);
                    let (tx, ty, tr) = (layout.x(p), layout.y(p), layout.r(p));
                    a_bit ^= ab.bit(tx);
                    z_bit ^= ab.bit(tr);
                    for s in 0..m {
                        let (mx, kx) = (ab.macs[s][tx], ab.keys[s][tx]);
                        let (mr, kr) = (ab.macs[s][tr], ab.keys[s][tr]);
                        if c == 0 {
                            (a_mk[s], a_mk[m + s], z_mk[s], z_mk[m + s]) = (mx, kx, mr, kr);
                        } else {
                            a_mk[s] ^= mx;
                            a_mk[m + s] ^= kx;
                            z_mk[s] ^= mr;
                            z_mk[m + s] ^= kr;
                        }
                    }
                    if c > 0 {
                        // Index of this difference within the group.
                        let idx = i * per_diff + c - 1;
                        d_mine[idx / 128] |= u128::from(y0 ^ ab.bit(ty)) << (idx % 128);
                        for s in 0..m {
                            mac_diffs[idx * m + s] = ab.macs[s][y0t] ^ ab.macs[s][ty];
                            keydiffs[idx * m + s] = ab.keys[s][y0t] ^ ab.keys[s][ty];
                        }
                    }
                }
                bits[0] = a_bit;
                plain(&mut bits[1], b_mk, y0t);
                bits[2] = z_bit;
                plain(&mut bits[3], l_mk, layout.inputs + k);
            }
        });
    out
}

/// c ← c ⊕ d·x for every folded triple whose opened difference d is 1 (its x read from the
/// aBits through the buckets), groups of gates on every core.
pub(super) fn fold_differences(
    out: &mut AuthBits,
    ab: &ABits,
    layout: Layout,
    m: usize,
    d: &[Block],
    buckets: &Buckets,
) {
    let w = 2 * m;
    let b_size = layout.bucket;
    let inputs = layout.inputs;
    let (_, and_bits) = out.bits.split_at_mut(inputs);
    let (_, and_mk) = out.mk.split_at_mut(inputs * w);
    and_bits
        .par_chunks_mut(4 * GROUP)
        .zip(and_mk.par_chunks_mut(4 * GROUP * w))
        .enumerate()
        .for_each(|(g, (bits, mk))| {
            for (i, (bits, mk)) in bits
                .chunks_exact_mut(4)
                .zip(mk.chunks_exact_mut(4 * w))
                .enumerate()
            {
                let k = g * GROUP + i;
                let c_mk = &mut mk[2 * w..3 * w];
                for c in 1..b_size {
                    let idx = k * (b_size - 1) + c - 1;
                    let fold = get_bit(d, idx);
                    let tx = layout.x(buckets.triple(k, c));
                    bits[2] ^= fold & ab.bit(tx);
                    for s in 0..m {
                        c_mk[s] ^= times(fold, ab.macs[s][tx]);
                        c_mk[m + s] ^= times(fold, ab.keys[s][tx]);
                    }
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_triple_is_in_exactly_one_bucket_one_per_layer() {
        for (ands, bucket) in [(1usize, 40usize), (7, 3), (1000, 4), (65_537, 4)] {
            let buckets = Buckets::from_coin(&[7; 32], ands, bucket);
            let mut seen = vec![false; ands * bucket];
            for k in 0..ands {
                for c in 0..bucket {
                    let t = buckets.triple(k, c);
                    assert_eq!(t / ands, c, "slot {c} of a bucket comes from layer {c}");
                    assert!(!seen[t], "triple {t} is in two buckets");
                    seen[t] = true;
                }
            }
            assert!(seen.iter().all(|&s| s));
        }
    }

    #[test]
    fn the_shifts_come_from_the_coin() {
        let ands = 1 << 16;
        let a = Buckets::from_coin(&[1; 32], ands, 4);
        let b = Buckets::from_coin(&[2; 32], ands, 4);
        assert_eq!(a.shifts[0], 0);
        assert!(a.shifts.iter().all(|&s| s < ands));
        // Layers 1..B of two coins line up by chance with probability 2^-48.
        assert_ne!(a.shifts, b.shifts);
        // Over many coins every shift of a small batch turns up (uniform, not biased to 0).
        let mut hits = [0u32; 5];
        for seed in 0..=255u8 {
            let s = Buckets::from_coin(&[seed; 32], 5, 2);
            hits[s.shifts[1]] += 1;
        }
        assert!(hits.iter().all(|&h| h > 25), "{hits:?}");
    }
}
