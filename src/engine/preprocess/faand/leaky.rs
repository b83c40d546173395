//! Steps 1 and 2 of a batch: the half-AND bits, the leaky-AND check's U blocks and the
//! values H_i the check combines (see the parent module for the protocol). CPU work only:
//! the driver in the parent module sends what these return.

use bytes::Bytes;
use rayon::prelude::*;

use super::Layout;
use crate::engine::PARTY_BITS;
use crate::engine::aes::Prg;
use crate::engine::preprocess::ot::abit::ABits;
use crate::engine::preprocess::ot::common::{Tccr, get_bit};
use crate::engine::preprocess::ot::gf::{self, Acc};
use crate::engine::share::{Block, bit_at, times};

/// Triples hashed per tile (keeps the scratch buffers in cache). A multiple of 128, so that
/// tiles own whole blocks of the packed bit vectors and whole bytes of the messages.
const TILE: usize = 1024;

const _: () = assert!(TILE.is_multiple_of(128));

/// Bits of the batch number in a tweak.
pub(super) const BATCH_BITS: u32 = 48;

/// Bits of the triple index in a tweak.
pub(super) const TRIPLE_BITS: u32 = 32;

/// Bits of a tweak below the party indices, left zero.
const SPARE_BITS: u32 = 128 - BATCH_BITS - TRIPLE_BITS - 2 * PARTY_BITS;

const _: () = assert!(BATCH_BITS + TRIPLE_BITS + 2 * PARTY_BITS <= 128);

/// The tweak of the hash for triple t of the pair (sender holds the keys, receiver the
/// MACs), from high to low bits: batch (48 bits), t (32), sender, receiver ([`PARTY_BITS`]
/// each), zeros. Every field is within its width (party indices are below
/// [`crate::engine::MAX_PARTIES`], batches and triples are checked in [`super::triples`]),
/// so distinct inputs give distinct tweaks.
///
/// One hash serves both uses of a key: its lowest bit is the half-AND bit's pad and its
/// upper 64 bits (the [`PROJECTION`]) the leaky-AND check's pad H'. The two are disjoint
/// bits of one pseudorandom block, so they are as independent as two hashes with two
/// tweaks would be, at half the hashing (the bits in between are not used).
#[inline]
fn tweak(batch: u64, t: usize, sender: usize, receiver: usize) -> Block {
    debug_assert!(batch < 1 << BATCH_BITS && (t as u64) < 1 << TRIPLE_BITS);
    debug_assert!(sender < 1 << PARTY_BITS && receiver < 1 << PARTY_BITS);
    ((batch as u128) << (128 - BATCH_BITS))
        | ((t as u128) << (2 * PARTY_BITS + SPARE_BITS))
        | ((sender as u128) << (PARTY_BITS + SPARE_BITS))
        | ((receiver as u128) << SPARE_BITS)
}

/// The bits of a check value the leaky AND check compares: the upper 64 (see the parent
/// module for why 64 suffice). The lowest bit of every Δ is 1, so bit 0 of ΣΔ is public;
/// the upper half holds none of the fixed bits.
const PROJECTION: Block = !0u128 << 64;

/// Bytes of one U on the wire: the projected bits only.
pub(super) const U_BYTES: usize = 8;

/// The projection of a check value: its upper 64 bits, as sent.
#[inline]
fn project(v: Block) -> u64 {
    (v >> 64) as u64
}

/// The U of triple t in a received message's U part (length-checked by the caller), back in
/// the upper half of a block.
#[inline]
fn read_u(us: &[u8], t: usize) -> Block {
    us.get(U_BYTES * t..U_BYTES * (t + 1))
        .and_then(|b| <[u8; U_BYTES]>::try_from(b).ok())
        .map_or(0, |b| (u64::from_le_bytes(b) as u128) << 64)
}

/// Bytes of the round-1 message to one peer for `leaky` triples: the half-AND bits, then
/// one projected U per triple.
pub(super) fn message_len(leaky: usize) -> usize {
    leaky.div_ceil(8) + U_BYTES * leaky
}

/// Working memory kept from batch to batch (per leaky triple: one block of `acc`, a bit of
/// `v_bits`; per bucketing difference: m blocks of `keydiffs` and of `mac_diffs`). Everything else a batch
/// needs is recomputed from the aBits when it is used, so the batch's memory is the aBits,
/// these buffers and the messages in flight.
#[derive(Debug, Default)]
pub struct Buffers {
    acc: Vec<Block>,
    pub(super) v_bits: Vec<Block>,
    pub(super) keydiffs: Vec<Block>,
    pub(super) mac_diffs: Vec<Block>,
}

/// What the heavy steps need, moved to the blocking pool and back.
pub(super) struct Work {
    pub(super) ab: ABits,
    pub(super) bufs: Buffers,
    pub(super) layout: Layout,
    pub(super) batch: u64,
    pub(super) me: usize,
    pub(super) others: Vec<usize>,
    pub(super) delta: Block,
}

impl Work {
    /// Φ_me of leaky triple t: y_me·Δ_me ⊕ ⊕_k (K_me[y_k] ⊕ M_k[y_me]) (recomputed where it
    /// is used rather than stored: it costs m XORs of data that is read anyway).
    #[inline(always)]
    fn phi(&self, t: usize) -> Block {
        let (ab, y) = (&self.ab, self.layout.y(t));
        let mut v = times(ab.bit(y), self.delta);
        for s in 0..self.others.len() {
            v ^= ab.keys[s][y] ^ ab.macs[s][y];
        }
        v
    }

    /// Per peer the half-AND bits and the U blocks of the leaky-AND check, in one message
    /// written in place (tiles of triples on every core, each writing its own part).
    pub(super) fn sender(&mut self) -> Vec<Bytes> {
        let (layout, delta, me, batch) = (self.layout, self.delta, self.me, self.batch);
        let big_l = layout.leaky();
        let nbytes = big_l.div_ceil(8);
        let mut v_bits = std::mem::take(&mut self.bufs.v_bits);
        let mut acc = std::mem::take(&mut self.bufs.acc);
        v_bits.clear();
        v_bits.resize(big_l.div_ceil(128), 0);
        acc.clear();
        acc.resize(big_l, 0);
        let tccr = Tccr::new();
        let mut msgs = Vec::with_capacity(self.others.len());
        for (s, &j) in self.others.iter().enumerate() {
            // Half-AND bits first, then the U blocks.
            let mut msg = vec![0u8; message_len(big_l)];
            let (half_bits, us) = msg.split_at_mut(nbytes);
            half_bits
                .par_chunks_mut(TILE / 8)
                .zip(us.par_chunks_mut(U_BYTES * TILE))
                .zip(v_bits.par_chunks_mut(TILE / 128))
                .zip(acc.par_chunks_mut(TILE))
                .enumerate()
                .for_each_init(
                    Scratch::default,
                    |sc, (tile, (((half_bits, us), v_bits), acc))| {
                        let start = tile * TILE;
                        let end = (start + TILE).min(big_l);
                        sc.buf.clear();
                        sc.tweaks.clear();
                        for t in start..end {
                            let k = self.ab.keys[s][layout.x(t)];
                            let tw = tweak(batch, t, me, j);
                            sc.buf.extend_from_slice(&[k, k ^ delta]);
                            sc.tweaks.extend_from_slice(&[tw, tw]);
                        }
                        tccr.hash(&mut sc.buf, &sc.tweaks, &mut sc.hashed);
                        for (i, t) in (start..end).enumerate() {
                            let (h0, h1) = (sc.buf[2 * i], sc.buf[2 * i + 1]);
                            let low = h0 & 1 == 1;
                            let bit = low ^ (h1 & 1 == 1) ^ self.ab.bit(layout.y(t));
                            half_bits[i / 8] |= u8::from(bit) << (i % 8);
                            v_bits[i / 128] ^= u128::from(low) << (i % 128);
                            // Only the projected bits of `acc` enter the check.
                            acc[i] ^= h0;
                            let u = project(h0 ^ h1 ^ self.phi(t));
                            us[U_BYTES * i..U_BYTES * (i + 1)].copy_from_slice(&u.to_le_bytes());
                        }
                    },
                );
            msgs.push(Bytes::from(msg));
        }
        self.bufs.v_bits = v_bits;
        self.bufs.acc = acc;
        msgs
    }

    /// The peers' half-AND bits and U blocks (length-checked) into the shares.
    pub(super) fn receiver(&mut self, received: &[Bytes]) {
        let (ab, layout, me, batch) = (&self.ab, self.layout, self.me, self.batch);
        let big_l = layout.leaky();
        let nbytes = big_l.div_ceil(8);
        let (v_bits, acc) = (&mut self.bufs.v_bits, &mut self.bufs.acc);
        let tccr = Tccr::new();
        for (s, msg) in received.iter().enumerate() {
            let j = self.others[s];
            let (ha, us) = msg.split_at(nbytes);
            v_bits
                .par_chunks_mut(TILE / 128)
                .zip(acc.par_chunks_mut(TILE))
                .enumerate()
                .for_each_init(Scratch::default, |sc, (tile, (v_bits, acc))| {
                    let start = tile * TILE;
                    let end = (start + TILE).min(big_l);
                    sc.buf.clear();
                    sc.tweaks.clear();
                    for t in start..end {
                        sc.buf.push(ab.macs[s][layout.x(t)]);
                        sc.tweaks.push(tweak(batch, t, j, me));
                    }
                    tccr.hash(&mut sc.buf, &sc.tweaks, &mut sc.hashed);
                    for (i, t) in (start..end).enumerate() {
                        let x = ab.bit(layout.x(t));
                        let bit = (sc.buf[i] & 1 == 1) ^ (x & bit_at(ha, t));
                        v_bits[i / 128] ^= u128::from(bit) << (i % 128);
                        acc[i] ^= sc.buf[i] ^ times(x, read_u(us, t));
                    }
                });
        }
    }

    /// z = half-AND shares ⊕ x·y of every leaky triple: returns e = z ⊕ r (packed, to be
    /// announced) and makes z this party's bit in r's place.
    pub(super) fn announce_z(&mut self) -> Vec<Block> {
        let layout = self.layout;
        let big_l = layout.leaky();
        let mut e = vec![0u128; big_l.div_ceil(128)];
        let (ab, v_bits) = (&self.ab, &self.bufs.v_bits);
        e.par_chunks_mut(TILE / 128)
            .enumerate()
            .for_each(|(tile, e)| {
                let start = tile * TILE;
                for t in start..(start + TILE).min(big_l) {
                    let z = get_bit(v_bits, t) ^ (ab.bit(layout.x(t)) & ab.bit(layout.y(t)));
                    let i = t - start;
                    e[i / 128] |= u128::from(z ^ ab.bit(layout.r(t))) << (i % 128);
                }
            });
        // r ← z = r ⊕ e, only where e is set.
        for (word, &bits) in e.iter().enumerate() {
            let mut bits = bits;
            while bits != 0 {
                let t = word * 128 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let r = layout.r(t);
                self.ab.bits[r / 128] ^= 1 << (r % 128);
            }
        }
        e
    }

    /// Shifts this party's keys on peer slot `s`'s r by Δ where the peer announced e = 1
    /// (`e` packed, length-checked), so that they authenticate its z.
    pub(super) fn shift_r_keys(&mut self, s: usize, e: &[u8]) {
        let (layout, delta) = (self.layout, self.delta);
        let big_l = layout.leaky();
        let leaky_keys = &mut self.ab.keys[s][layout.x(0)..layout.x(big_l)];
        leaky_keys
            .par_chunks_mut(3 * TILE)
            .enumerate()
            .for_each(|(tile, keys)| {
                for (i, triple) in keys.chunks_exact_mut(3).enumerate() {
                    let t = tile * TILE + i;
                    // The triple's r is its third aBit.
                    triple[2] ^= times(bit_at(e, t), delta);
                }
            });
    }

    /// H_me of every triple, combined with the challenges drawn from `seed` (χ_t is block t
    /// of the stream, so tiles on different cores draw their own part of it).
    pub(super) fn h_bar(&self, seed: &[u8; 32]) -> Block {
        let (ab, layout, delta) = (&self.ab, self.layout, self.delta);
        let m = self.others.len();
        let acc = &self.bufs.acc;
        acc.par_chunks(TILE)
            .enumerate()
            .map_init(Scratch::default, |sc, (tile, acc)| {
                let start = tile * TILE;
                let n = acc.len();
                sc.buf.resize(n, 0);
                sc.hashed.resize(n, 0);
                let mut chi_stream = Prg::from_seed32(seed, 2);
                chi_stream.skip(start as u128);
                chi_stream.fill(&mut sc.buf);
                for (i, v) in acc.iter().enumerate() {
                    let t = start + i;
                    let r = layout.r(t);
                    let mut v = *v;
                    v ^= times(ab.bit(r), delta);
                    v ^= times(ab.bit(layout.x(t)), self.phi(t));
                    for s in 0..m {
                        v ^= ab.keys[s][r] ^ ab.macs[s][r];
                    }
                    sc.hashed[i] = v & PROJECTION;
                }
                gf::inner_product(&sc.buf, &sc.hashed)
            })
            .reduce(Acc::default, |mut a, b| {
                a.merge(b);
                a
            })
            .reduce()
    }
}

/// Per-task scratch buffers of the tile loops.
#[derive(Default)]
struct Scratch {
    buf: Vec<Block>,
    tweaks: Vec<Block>,
    hashed: Vec<Block>,
}

/// The commitment of `party` to its opening (H̄ and a nonce, 32 bytes) of the leaky AND
/// check of batch `batch` of run `run_id`.
pub(super) fn laand_commitment(
    run_id: &[u8; 32],
    party: usize,
    batch: u64,
    opening: &[u8],
) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"mpc leaky AND commitment v2");
    h.update(run_id);
    h.update(&(party as u64).to_le_bytes());
    h.update(&batch.to_le_bytes());
    h.update(opening);
    *h.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;
    use crate::engine::MAX_PARTIES;

    #[test]
    fn a_u_value_travels_as_its_projection() {
        let mut rng = Prg::from_entropy();
        let values: Vec<Block> = (0..5).map(|_| rng.block()).collect();
        let mut us = Vec::new();
        for &v in &values {
            us.extend_from_slice(&project(v).to_le_bytes());
        }
        assert_eq!(us.len(), U_BYTES * values.len());
        for (t, &v) in values.iter().enumerate() {
            assert_eq!(read_u(&us, t), v & PROJECTION, "triple {t}");
        }
        // The projection drops bit 0, the bit every Δ fixes to 1.
        assert_eq!(PROJECTION & 1, 0);
        assert_eq!(PROJECTION.count_ones(), 64);
        assert_eq!(message_len(1000), 125 + 8000);
        assert_eq!(message_len(1001), 126 + 8008);
    }

    #[test]
    fn leaky_and_commitments_bind_run_party_and_batch() {
        let opening = [3u8; 32];
        let c = laand_commitment(&[1; 32], 1, 0, &opening);
        assert_eq!(c, laand_commitment(&[1; 32], 1, 0, &opening));
        assert_ne!(c, laand_commitment(&[2; 32], 1, 0, &opening));
        assert_ne!(c, laand_commitment(&[1; 32], 2, 0, &opening));
        assert_ne!(c, laand_commitment(&[1; 32], 1, 1, &opening));
    }

    /// Reads the fields back out of a tweak.
    fn fields(t: Block) -> (u64, usize, usize, usize, u128) {
        let mask = |bits: u32| (1u128 << bits) - 1;
        (
            (t >> (128 - BATCH_BITS)) as u64,
            ((t >> (2 * PARTY_BITS + SPARE_BITS)) & mask(TRIPLE_BITS)) as usize,
            ((t >> (PARTY_BITS + SPARE_BITS)) & mask(PARTY_BITS)) as usize,
            ((t >> SPARE_BITS) & mask(PARTY_BITS)) as usize,
            t & mask(SPARE_BITS),
        )
    }

    #[test]
    fn tweaks_are_injective_up_to_the_limits() {
        let batches = [0u64, 1, 2, (1 << BATCH_BITS) - 1];
        let triples = [0usize, 1, 2, 1 << 20, (1 << TRIPLE_BITS) - 1];
        let parties = [
            0usize,
            1,
            2,
            MAX_PARTIES - 2,
            MAX_PARTIES - 1,
            (1 << PARTY_BITS) - 1,
        ];
        let mut seen = HashSet::new();
        for &batch in &batches {
            for &t in &triples {
                for &sender in &parties {
                    for &receiver in &parties {
                        let tw = tweak(batch, t, sender, receiver);
                        // Each field reads back, so no two inputs share the tweak.
                        assert_eq!(fields(tw), (batch, t, sender, receiver, 0));
                        assert!(seen.insert(tw));
                    }
                }
            }
        }
    }
}
