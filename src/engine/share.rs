//! Global keys, authenticated bits and the small primitives every phase uses: peer slots,
//! bit packing and MAC digests.
//!
//! Layout: a party holds, for each authenticated share, its bit plus `2m` blocks (m = n - 1):
//! first the MACs `M_j[x_i]` towards every other party j, then its keys `K_i[x_j]` on every
//! other party's share, both in *slot* order (the other parties in increasing index).

use rand::RngCore;

/// A 128-bit block: keys, MACs, labels, global keys.
pub type Block = u128;

/// Samples a global key Δ. Its lowest bit is 1: the evaluator recovers a garbler's share
/// bit from the lowest bit of the MAC (`lsb(M) = lsb(K) ⊕ x`), which saves sending it.
pub fn random_delta(rng: &mut impl RngCore) -> Block {
    random_block(rng) | 1
}

/// A uniformly random block.
pub fn random_block(rng: &mut impl RngCore) -> Block {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    u128::from_le_bytes(b)
}

/// Maps between peer indices and slots (positions among "the other parties").
#[derive(Debug, Clone, Copy)]
pub struct Slots {
    /// This party's index.
    pub me: usize,
    /// Number of computing parties.
    pub n: usize,
}

impl Slots {
    /// The slot of party `j` (j ≠ me).
    #[inline]
    pub fn slot(&self, j: usize) -> usize {
        if j < self.me { j } else { j - 1 }
    }

    /// The party in slot `s`.
    #[inline]
    pub fn peer(&self, s: usize) -> usize {
        if s < self.me { s } else { s + 1 }
    }

    /// Number of other parties.
    #[inline]
    pub fn m(&self) -> usize {
        self.n - 1
    }

    /// The other parties, in slot order.
    pub fn others(&self) -> impl Iterator<Item = usize> + use<> {
        let me = self.me;
        (0..self.n).filter(move |&j| j != me)
    }
}

/// `x` if `bit`, else 0, without a branch on `bit`: the bits that select are secret (share
/// bits, Δ) or random (half of such branches would be mispredicted).
#[inline]
pub fn times(bit: bool, x: Block) -> Block {
    x & (bit as Block).wrapping_neg()
}

/// Packs bits, 8 per byte, least significant first.
pub fn pack_bits(bits: impl IntoIterator<Item = bool>) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, b) in bits.into_iter().enumerate() {
        if i % 8 == 0 {
            out.push(0);
        }
        if b && let Some(last) = out.last_mut() {
            *last |= 1 << (i % 8);
        }
    }
    out
}

/// Reads bit `i` of a packed bit string (callers check lengths first).
#[inline]
pub fn bit_at(packed: &[u8], i: usize) -> bool {
    (packed[i / 8] >> (i % 8)) & 1 == 1
}

/// Number of bytes that `count` packed bits take.
pub fn packed_len(count: usize) -> usize {
    count.div_ceil(8)
}

/// Accumulates MACs (or the values they should equal) into one digest, so that a batch
/// opening sends one hash instead of one MAC per bit.
pub struct MacDigest {
    hasher: blake3::Hasher,
    buf: Vec<u8>,
}

/// Bytes a [`MacDigest`] collects before it feeds them to the hash: large enough for the
/// hash's wide SIMD path, small enough that a digest over millions of MACs needs no more
/// memory than this (the digest is the hash of the concatenation, however it is fed).
const DIGEST_BUFFER: usize = 1 << 16;

impl MacDigest {
    /// An empty digest for about `macs` blocks (only a bounded buffer is reserved).
    pub fn with_capacity(macs: usize) -> Self {
        Self {
            hasher: blake3::Hasher::new(),
            buf: Vec::with_capacity((macs * 16).min(DIGEST_BUFFER)),
        }
    }

    /// Adds one MAC.
    #[inline]
    pub fn push(&mut self, mac: Block) {
        self.buf.extend_from_slice(&mac.to_le_bytes());
        if self.buf.len() >= DIGEST_BUFFER {
            self.hasher.update(&self.buf);
            self.buf.clear();
        }
    }

    /// The digest of everything pushed.
    pub fn finish(&self) -> [u8; 32] {
        let mut hasher = self.hasher.clone();
        hasher.update(&self.buf);
        *hasher.finalize().as_bytes()
    }
}

/// Reads a little-endian block at block index `i` of `bytes` (callers check lengths).
#[inline]
pub fn block_at(bytes: &[u8], i: usize) -> Block {
    let mut b = [0u8; 16];
    b.copy_from_slice(&bytes[i * 16..i * 16 + 16]);
    u128::from_le_bytes(b)
}

/// Appends blocks as little-endian bytes.
pub fn put_blocks(out: &mut Vec<u8>, blocks: &[Block]) {
    out.reserve(blocks.len() * 16);
    for b in blocks {
        out.extend_from_slice(&b.to_le_bytes());
    }
}

/// A run of authenticated shares held by one party: bits and, per bit, `2m` blocks
/// (MACs then keys, in slot order).
#[derive(Debug, Clone, Default)]
pub struct AuthBits {
    /// Number of other parties (m = n - 1).
    pub m: usize,
    /// The party's share bits.
    pub bits: Vec<bool>,
    /// MACs and keys, `2m` per bit.
    pub mk: Vec<Block>,
}

impl AuthBits {
    /// An empty run for a party with `m` other parties.
    pub fn new(m: usize) -> Self {
        Self {
            m,
            bits: Vec::new(),
            mk: Vec::new(),
        }
    }

    /// Number of shares.
    pub fn len(&self) -> usize {
        self.bits.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.bits.is_empty()
    }

    /// MACs and keys of share `i`.
    #[inline]
    pub fn mk(&self, i: usize) -> &[Block] {
        let w = 2 * self.m;
        &self.mk[i * w..i * w + w]
    }

    /// Removes and returns the first `count` shares.
    pub fn split_front(&mut self, count: usize) -> AuthBits {
        let w = 2 * self.m;
        let rest_bits = self.bits.split_off(count);
        let rest_mk = self.mk.split_off(count * w);
        AuthBits {
            m: self.m,
            bits: std::mem::replace(&mut self.bits, rest_bits),
            mk: std::mem::replace(&mut self.mk, rest_mk),
        }
    }

    /// Appends all shares of `other`.
    pub fn append(&mut self, mut other: AuthBits) {
        self.bits.append(&mut other.bits);
        self.mk.append(&mut other.mk);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mac_digest_is_the_hash_of_all_macs_however_many() {
        // Crosses the internal buffer several times; the digest must not depend on it.
        let macs: Vec<Block> = (0..3 * DIGEST_BUFFER as u128 / 16 + 5)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835))
            .collect();
        let mut d = MacDigest::with_capacity(macs.len());
        let mut all = Vec::new();
        for &m in &macs {
            d.push(m);
            all.extend_from_slice(&m.to_le_bytes());
        }
        assert_eq!(d.finish(), *blake3::hash(&all).as_bytes());
        assert_eq!(
            MacDigest::with_capacity(0).finish(),
            *blake3::hash(&[]).as_bytes()
        );
    }

    #[test]
    fn slots_round_trip() {
        let s = Slots { me: 2, n: 4 };
        let others: Vec<_> = s.others().collect();
        assert_eq!(others, vec![0, 1, 3]);
        for (slot, j) in others.iter().enumerate() {
            assert_eq!(s.slot(*j), slot);
            assert_eq!(s.peer(slot), *j);
        }
    }

    #[test]
    fn pack_and_read_bits() {
        let bits: Vec<bool> = (0..19).map(|i| i % 3 == 0).collect();
        let packed = pack_bits(bits.iter().copied());
        assert_eq!(packed.len(), packed_len(19));
        for (i, b) in bits.iter().enumerate() {
            assert_eq!(bit_at(&packed, i), *b);
        }
    }
}
