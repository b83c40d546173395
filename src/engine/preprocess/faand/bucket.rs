//! Step 3 of a batch: the coin-tossed permutation into buckets, the pass that gathers every
//! gate's material and this party's shares of the differences, and the folding once the
//! differences are open (see the parent module for the protocol).

use rayon::prelude::*;

use super::Layout;
use crate::engine::aes::Prg;
use crate::engine::preprocess::ot::abit::ABits;
use crate::engine::preprocess::ot::common::get_bit;
use crate::engine::share::{AuthBits, Block};

/// A uniformly random permutation of 0..len (Fisher–Yates, exact by rejection) from the coin.
pub(super) fn permutation(seed: &[u8; 32], len: usize) -> Vec<u32> {
    let mut rng = Prg::from_seed32(seed, 3);
    let mut words = vec![0u128; 512];
    let mut used = 2 * words.len();
    let mut next = move || {
        if used == 2 * words.len() {
            rng.fill(&mut words);
            used = 0;
        }
        let w = words[used / 2];
        used += 1;
        if used % 2 == 1 {
            w as u64
        } else {
            (w >> 64) as u64
        }
    };
    let mut p: Vec<u32> = (0..len as u32).collect();
    for i in (1..len).rev() {
        let bound = i as u64 + 1;
        // Values above `top` would make the low residues more likely: reject them.
        let top = u64::MAX - (u64::MAX % bound + 1) % bound;
        let j = loop {
            let r = next();
            if r <= top {
                break (r % bound) as usize;
            }
        };
        p.swap(i, j);
    }
    p
}

/// Hints the CPU to load the cache line of `v` (bucketing reads triples in random order; a
/// few buckets of look-ahead keep many loads in flight).
#[inline(always)]
fn prefetch<T>(v: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        // SAFETY: a prefetch never faults and has no architectural effect; SSE is part of
        // the x86_64 baseline.
        unsafe { _mm_prefetch::<_MM_HINT_T0>(v as *const T as *const i8) };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

/// Buckets of look-ahead for prefetching.
const AHEAD: usize = 8;

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
    perm: &[u32],
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
                if let Some(ahead) = perm.get((k + AHEAD) * b_size..(k + AHEAD + 1) * b_size) {
                    for &p in ahead {
                        // x, y, r of a triple are 48 adjacent bytes: up to two cache lines.
                        let (t, last) = (layout.x(p as usize), layout.r(p as usize));
                        prefetch(&ab.bits[t / 128]);
                        for s in 0..m {
                            prefetch(&ab.macs[s][t]);
                            prefetch(&ab.macs[s][last]);
                            prefetch(&ab.keys[s][t]);
                            prefetch(&ab.keys[s][last]);
                        }
                    }
                }
                let bucket = &perm[k * b_size..(k + 1) * b_size];
                let p0 = bucket[0] as usize;
                let y0t = layout.y(p0);
                let y0 = ab.bit(y0t);
                // a, b, c and λ of the gate, written in place (m is small: element by
                // element beats copies of a few bytes).
                let (a_mk, rest) = mk.split_at_mut(w);
                let (b_mk, rest) = rest.split_at_mut(w);
                let (z_mk, l_mk) = rest.split_at_mut(w);
                let mut a_bit = false;
                let mut z_bit = false;
                for (c, &p) in bucket.iter().enumerate() {
                    let p = p as usize;
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
                        if y0 ^ ab.bit(ty) {
                            d_mine[idx / 128] |= 1 << (idx % 128);
                        }
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
/// aBits through the bucketing permutation), groups of gates on every core.
pub(super) fn fold_differences(
    out: &mut AuthBits,
    ab: &ABits,
    layout: Layout,
    m: usize,
    d: &[Block],
    perm: &[u32],
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
                    if get_bit(d, idx) {
                        let tx = layout.x(perm[k * b_size + c] as usize);
                        bits[2] ^= ab.bit(tx);
                        for s in 0..m {
                            c_mk[s] ^= ab.macs[s][tx];
                            c_mk[m + s] ^= ab.keys[s][tx];
                        }
                    }
                }
            }
        });
}
