//! Step 3 of a batch: the coin-tossed permutation into buckets, the pass that gathers every
//! gate's material and this party's shares of the differences, and the folding once the
//! differences are open (see the parent module for the protocol).

use super::Layout;
use crate::engine::aes::Prg;
use crate::engine::preprocess::ot::abit::ABits;
use crate::engine::preprocess::ot::common::get_bit;
use crate::engine::share::{AuthBits, Block, MacDigest};

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

/// The pass in bucket order. Writes into `out` the batch's input aBits and, per AND gate,
/// a = ⊕x, b = y[p0], Σz (c before folding) and λ; into `d_mine` and `digests` this party's
/// shares of the differences and the digests of their MACs; into `keydiffs` (m per
/// difference) its keys on the other parties' differences. The x of every folded triple,
/// which `fold_differences` adds to c where d = 1, is read again from the aBits then.
#[allow(clippy::too_many_arguments)]
pub(super) fn gather(
    ab: &ABits,
    layout: Layout,
    m: usize,
    perm: &[u32],
    mut out: AuthBits,
    d_mine: &mut [Block],
    digests: &mut [MacDigest],
    keydiffs: &mut Vec<Block>,
) -> AuthBits {
    let w = 2 * m;
    let total = layout.inputs + 4 * layout.ands;
    out.m = m;
    out.bits.clear();
    out.mk.clear();
    out.bits.reserve(total);
    out.mk.reserve(total * w);
    let push_plain = |out: &mut AuthBits, t: usize| {
        out.bits.push(ab.bit(t));
        for s in 0..m {
            out.mk.push(ab.macs[s][t]);
        }
        for s in 0..m {
            out.mk.push(ab.keys[s][t]);
        }
    };
    for t in 0..layout.inputs {
        push_plain(&mut out, t);
    }
    let b_size = layout.bucket;
    let diffs = layout.ands * b_size.saturating_sub(1);
    keydiffs.clear();
    keydiffs.reserve(diffs * m);
    let mut a_mk = vec![0u128; w];
    let mut z_mk = vec![0u128; w];
    for k in 0..layout.ands {
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
        let y0 = ab.bit(layout.y(p0));
        let mut a_bit = false;
        let mut z_bit = false;
        a_mk.fill(0);
        z_mk.fill(0);
        for (c, &p) in bucket.iter().enumerate() {
            let p = p as usize;
            let (tx, ty, tr) = (layout.x(p), layout.y(p), layout.r(p));
            let x = ab.bit(tx);
            a_bit ^= x;
            z_bit ^= ab.bit(tr);
            for s in 0..m {
                a_mk[s] ^= ab.macs[s][tx];
                a_mk[m + s] ^= ab.keys[s][tx];
                z_mk[s] ^= ab.macs[s][tr];
                z_mk[m + s] ^= ab.keys[s][tr];
            }
            if c > 0 {
                let idx = k * (b_size - 1) + c - 1;
                if y0 ^ ab.bit(ty) {
                    d_mine[idx / 128] |= 1 << (idx % 128);
                }
                let y0t = layout.y(p0);
                for (s, dg) in digests.iter_mut().enumerate() {
                    dg.push(ab.macs[s][y0t] ^ ab.macs[s][ty]);
                    keydiffs.push(ab.keys[s][y0t] ^ ab.keys[s][ty]);
                }
            }
        }
        out.bits.push(a_bit);
        out.mk.extend_from_slice(&a_mk);
        push_plain(&mut out, layout.y(p0));
        out.bits.push(z_bit);
        out.mk.extend_from_slice(&z_mk);
        push_plain(&mut out, layout.inputs + k);
    }
    out
}

/// c ← c ⊕ d·x for every folded triple whose opened difference d is 1 (its x read from the
/// aBits through the bucketing permutation).
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
    for k in 0..layout.ands {
        let c_at = layout.inputs + 4 * k + 2;
        for c in 1..b_size {
            let idx = k * (b_size - 1) + c - 1;
            if get_bit(d, idx) {
                let tx = layout.x(perm[k * b_size + c] as usize);
                out.bits[c_at] ^= ab.bit(tx);
                let mk = &mut out.mk[c_at * w..(c_at + 1) * w];
                for s in 0..m {
                    mk[s] ^= ab.macs[s][tx];
                    mk[m + s] ^= ab.keys[s][tx];
                }
            }
        }
    }
}
