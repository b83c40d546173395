//! GF(2^128) arithmetic for the universal-hash checks (the OT extension consistency check and
//! the leaky-AND check): a field element is a `u128` whose bit i is the coefficient of x^i,
//! reduced modulo x^128 + x^7 + x^2 + x + 1.
//!
//! The checks compute long inner products Σ χ_t·v_t. Products are accumulated *unreduced*
//! (three 128-bit carry-less partial sums) and reduced once at the end, so each term costs
//! four carry-less multiplications and no reduction. VPCLMULQDQ on 512-bit registers (four
//! terms per instruction, about twice the throughput of PCLMULQDQ on the development
//! machine) or PCLMULQDQ is used when the CPU has it (detected at run time, so the binary
//! still runs everywhere); a portable fallback gives the same results (tests).

use super::super::super::share::Block;

/// An unreduced sum of carry-less products.
#[derive(Debug, Default, Clone, Copy)]
pub struct Acc {
    /// Σ a_lo·b_lo.
    lo: u128,
    /// Σ a_lo·b_hi ⊕ a_hi·b_lo.
    mid: u128,
    /// Σ a_hi·b_hi.
    hi: u128,
}

impl Acc {
    /// Adds another accumulator (sums are linear, so partial sums may be merged).
    pub fn merge(&mut self, other: Acc) {
        self.lo ^= other.lo;
        self.mid ^= other.mid;
        self.hi ^= other.hi;
    }

    /// Adds a·b.
    #[inline]
    pub fn add_mul(&mut self, a: Block, b: Block) {
        let (a0, a1) = (a as u64, (a >> 64) as u64);
        let (b0, b1) = (b as u64, (b >> 64) as u64);
        self.lo ^= clmul(a0, b0);
        self.mid ^= clmul(a0, b1) ^ clmul(a1, b0);
        self.hi ^= clmul(a1, b1);
    }

    /// The reduced field element.
    pub fn reduce(self) -> Block {
        let low = self.lo ^ (self.mid << 64);
        let high = self.hi ^ (self.mid >> 64);
        reduce(high, low)
    }
}

/// Reduces high·x^128 + low.
fn reduce(high: u128, low: u128) -> Block {
    // x^128 = x^7 + x^2 + x + 1. Multiplying `high` by that polynomial overflows by at most
    // 7 bits, which are folded in once more.
    let folded = high ^ (high << 1) ^ (high << 2) ^ (high << 7);
    let over = (high >> 127) ^ (high >> 126) ^ (high >> 121);
    low ^ folded ^ over ^ (over << 1) ^ (over << 2) ^ (over << 7)
}

/// The product of two field elements.
pub fn mul(a: Block, b: Block) -> Block {
    let mut acc = Acc::default();
    acc.add_mul(a, b);
    acc.reduce()
}

/// Σ χ_t·v_t over two equally long slices, unreduced.
pub fn inner_product(chi: &[Block], v: &[Block]) -> Acc {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("vpclmulqdq")
            && std::arch::is_x86_feature_detected!("pclmulqdq")
        {
            // SAFETY: the CPU supports AVX-512F and (V)PCLMULQDQ (checked just above).
            return unsafe { x86::inner_product_wide(chi, v) };
        }
        if std::arch::is_x86_feature_detected!("pclmulqdq") {
            // SAFETY: the CPU supports PCLMULQDQ (checked just above).
            return unsafe { x86::inner_product(chi, v) };
        }
    }
    let mut acc = Acc::default();
    for (c, x) in chi.iter().zip(v) {
        acc.add_mul(*c, *x);
    }
    acc
}

/// 64×64 → 128-bit carry-less multiplication.
#[inline]
fn clmul(a: u64, b: u64) -> u128 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("pclmulqdq") {
            // SAFETY: the CPU supports PCLMULQDQ (checked just above).
            return unsafe { x86::clmul(a, b) };
        }
    }
    clmul_portable(a, b)
}

/// Carry-less multiplication without special instructions (the reference for tests).
fn clmul_portable(a: u64, b: u64) -> u128 {
    let mut r = 0u128;
    for i in 0..64 {
        if (b >> i) & 1 == 1 {
            r ^= (a as u128) << i;
        }
    }
    r
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::{
        __m128i, _mm_clmulepi64_si128, _mm_set_epi64x, _mm_xor_si128, _mm512_clmulepi64_epi128,
        _mm512_extracti32x4_epi32, _mm512_loadu_si512, _mm512_setzero_si512, _mm512_xor_si512,
    };

    use super::Acc;

    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    fn to_u128(x: __m128i) -> u128 {
        // SAFETY: __m128i and u128 have the same size; x86 is little-endian, so the low lane
        // becomes the low 64 bits.
        unsafe { std::mem::transmute::<__m128i, u128>(x) }
    }

    #[inline]
    #[target_feature(enable = "pclmulqdq,sse2")]
    fn from_u128(x: u128) -> __m128i {
        _mm_set_epi64x((x >> 64) as i64, x as i64)
    }

    #[target_feature(enable = "pclmulqdq,sse2")]
    pub(super) fn clmul(a: u64, b: u64) -> u128 {
        let x = _mm_set_epi64x(0, a as i64);
        let y = _mm_set_epi64x(0, b as i64);
        to_u128(_mm_clmulepi64_si128::<0x00>(x, y))
    }

    #[target_feature(enable = "pclmulqdq,sse2")]
    pub(super) fn inner_product(chi: &[u128], v: &[u128]) -> Acc {
        let mut lo = from_u128(0);
        let mut mid = from_u128(0);
        let mut hi = from_u128(0);
        for (c, x) in chi.iter().zip(v) {
            let a = from_u128(*c);
            let b = from_u128(*x);
            lo = _mm_xor_si128(lo, _mm_clmulepi64_si128::<0x00>(a, b));
            mid = _mm_xor_si128(mid, _mm_clmulepi64_si128::<0x10>(a, b));
            mid = _mm_xor_si128(mid, _mm_clmulepi64_si128::<0x01>(a, b));
            hi = _mm_xor_si128(hi, _mm_clmulepi64_si128::<0x11>(a, b));
        }
        Acc {
            lo: to_u128(lo),
            mid: to_u128(mid),
            hi: to_u128(hi),
        }
    }

    /// [`inner_product`] four terms at a time in 512-bit registers; the lanes' partial sums
    /// are added at the end and the last terms go through [`inner_product`].
    #[target_feature(enable = "avx512f,vpclmulqdq,pclmulqdq,sse2")]
    pub(super) fn inner_product_wide(chi: &[u128], v: &[u128]) -> Acc {
        let n = chi.len().min(v.len());
        let wide = n / 4 * 4;
        let mut lo = _mm512_setzero_si512();
        let mut mid = _mm512_setzero_si512();
        let mut hi = _mm512_setzero_si512();
        for (c, x) in chi[..wide].chunks_exact(4).zip(v[..wide].chunks_exact(4)) {
            // SAFETY: both chunks hold four u128, 64 bytes; unaligned loads.
            let (a, b) = unsafe {
                (
                    _mm512_loadu_si512(c.as_ptr().cast()),
                    _mm512_loadu_si512(x.as_ptr().cast()),
                )
            };
            lo = _mm512_xor_si512(lo, _mm512_clmulepi64_epi128::<0x00>(a, b));
            mid = _mm512_xor_si512(mid, _mm512_clmulepi64_epi128::<0x10>(a, b));
            mid = _mm512_xor_si512(mid, _mm512_clmulepi64_epi128::<0x01>(a, b));
            hi = _mm512_xor_si512(hi, _mm512_clmulepi64_epi128::<0x11>(a, b));
        }
        let mut acc = inner_product(&chi[wide..n], &v[wide..n]);
        let lanes = |z| {
            [
                _mm512_extracti32x4_epi32::<0>(z),
                _mm512_extracti32x4_epi32::<1>(z),
                _mm512_extracti32x4_epi32::<2>(z),
                _mm512_extracti32x4_epi32::<3>(z),
            ]
            .into_iter()
            .fold(0u128, |sum, lane| sum ^ to_u128(lane))
        };
        acc.merge(Acc {
            lo: lanes(lo),
            mid: lanes(mid),
            hi: lanes(hi),
        });
        acc
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mul_reference(a: u128, b: u128) -> u128 {
        // Shift-and-add with reduction after every step.
        let mut r = 0u128;
        let mut a = a;
        for i in 0..128 {
            if (b >> i) & 1 == 1 {
                r ^= a;
            }
            let carry = a >> 127;
            a <<= 1;
            if carry == 1 {
                a ^= 0x87;
            }
        }
        r
    }

    #[test]
    fn multiplication_matches_reference() {
        let mut x = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210u128;
        let mut y = 0xdead_beef_0000_1111_2222_3333_4444_5555u128;
        for _ in 0..200 {
            assert_eq!(mul(x, y), mul_reference(x, y));
            assert_eq!(
                clmul(x as u64, y as u64),
                clmul_portable(x as u64, y as u64)
            );
            x = x.rotate_left(13) ^ y;
            y = y.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0xffff_0000;
        }
        assert_eq!(
            mul(u128::MAX, u128::MAX),
            mul_reference(u128::MAX, u128::MAX)
        );
        let chi = [x, y, x ^ y];
        let v = [y, 3, u128::MAX];
        let expected = chi
            .iter()
            .zip(&v)
            .fold(0, |acc, (c, w)| acc ^ mul_reference(*c, *w));
        assert_eq!(inner_product(&chi, &v).reduce(), expected);
    }

    #[test]
    fn every_inner_product_matches_the_reference() {
        let mut rng = crate::engine::aes::Prg::new([9; 16]);
        for n in (0..14).chain([64, 1027]) {
            let mut chi = vec![0u128; n];
            let mut v = vec![0u128; n];
            rng.fill(&mut chi);
            rng.fill(&mut v);
            let expected = chi
                .iter()
                .zip(&v)
                .fold(0, |acc, (c, w)| acc ^ mul_reference(*c, *w));
            assert_eq!(inner_product(&chi, &v).reduce(), expected, "{n} terms");
            #[cfg(target_arch = "x86_64")]
            {
                if std::arch::is_x86_feature_detected!("pclmulqdq") {
                    // SAFETY: the CPU supports PCLMULQDQ.
                    let narrow = unsafe { x86::inner_product(&chi, &v) };
                    assert_eq!(narrow.reduce(), expected, "{n} terms, PCLMULQDQ");
                }
                if std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("vpclmulqdq")
                    && std::arch::is_x86_feature_detected!("pclmulqdq")
                {
                    // SAFETY: the CPU supports AVX-512F and (V)PCLMULQDQ.
                    let wide = unsafe { x86::inner_product_wide(&chi, &v) };
                    assert_eq!(wide.reduce(), expected, "{n} terms, VPCLMULQDQ");
                }
            }
        }
    }
}
