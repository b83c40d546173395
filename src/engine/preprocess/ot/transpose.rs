//! The bit-matrix transpose of the OT extension: SoftSpokenOT produces 128 columns (one per
//! bit of Δ), and the protocol needs them as rows (one 128-bit MAC or key per authenticated
//! bit). Every row of every batch goes through here once on each side of every pair.
//!
//! Three kernels give the same bits (tests); the fastest the CPU has runs:
//!
//! - **GFNI** (AVX-512 with VBMI and GFNI): a 128×128 matrix is a 16×16 grid of 8×8 bit
//!   blocks. A two-register byte permutation gathers each block into one 64-bit lane, one
//!   `gf2p8affine` per register transposes the bits of all eight blocks it holds (with the
//!   block as the matrix and the unit vectors as the data), an 8×8 transpose of lanes puts
//!   the blocks of every output row together, and a last byte permutation writes the rows.
//!   0.08 µs per block from L1, 0.22 µs read from the columns of a tile.
//! - **AVX2**: a byte transpose of 16×16-byte tiles (four rounds of byte interleaves), then,
//!   for every byte column, eight `movemask`s that each read one bit of 32 rows at once.
//!   0.31 µs per block from L1, 0.47 µs from the columns.
//! - **Portable**: recursive block swaps, 0.63 µs per block from the columns.
//!
//! Measured on the development machine, an AMD EPYC with AVX-512 (`transpose_speed`, one
//! thread). At about 28 million rows per party per million AND gates (both sides of the
//! extension), the AVX2 kernel read straight from the columns (0.51 µs per block) took a
//! tenth of a 1M-AND run's CPU. No crate we use offers a 128×128 bit transpose, and the
//! hand-written part is small. (The first version of the GFNI kernel computed the lane
//! indices of its lane transpose at run time and ran slower than AVX2; as constants they
//! cost nothing.)

use rayon::prelude::*;

use crate::engine::share::Block;

/// Transposes 128 columns of `nb` blocks each (column l at `cols[l·nb..]`) into `128·nb`
/// rows: bit l of row t is bit t of column l.
pub fn transpose_into(cols: &[Block], nb: usize, rows: &mut [Block]) {
    transpose_columns(cols, nb, rows, Kernel::best());
}

/// Which transpose runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kernel {
    Portable,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Gfni,
}

impl Kernel {
    /// Every kernel, fastest first.
    const ALL: &[Kernel] = &[
        #[cfg(target_arch = "x86_64")]
        Kernel::Gfni,
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2,
        Kernel::Portable,
    ];

    /// Whether this CPU can run the kernel.
    fn supported(self) -> bool {
        match self {
            Kernel::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => std::arch::is_x86_feature_detected!("avx2"),
            #[cfg(target_arch = "x86_64")]
            Kernel::Gfni => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512bw")
                    && std::arch::is_x86_feature_detected!("avx512vbmi")
                    && std::arch::is_x86_feature_detected!("gfni")
            }
        }
    }

    /// The fastest kernel this CPU can run.
    fn best() -> Self {
        Self::available().next().unwrap_or(Kernel::Portable)
    }

    /// Every kernel this CPU can run, fastest first.
    fn available() -> impl Iterator<Item = Kernel> {
        Self::ALL.iter().copied().filter(|k| k.supported())
    }
}

/// Blocks of every column copied together before they are transposed: one cache line.
const LINE: usize = 4;

/// [`transpose_into`] with the given kernel, which the CPU must support
/// ([`Kernel::available`]).
///
/// Why the copy: block b of the 128 columns lies at a stride of `nb` blocks (2 KiB in a
/// tile of the extension), so the 128 loads of one matrix fall into a few sets of the L1
/// cache and evict each other before the neighbouring matrices, which share their cache
/// lines, are read. Copying the [`LINE`] blocks of a line of every column into a small
/// buffer first reads each line once, and the transposes run from L1.
fn transpose_columns(cols: &[Block], nb: usize, rows: &mut [Block], kernel: Kernel) {
    rows[..128 * nb]
        .par_chunks_mut(128 * LINE)
        .enumerate()
        .for_each(|(chunk, out)| {
            let first = chunk * LINE;
            let count = out.len() / 128;
            let mut lines = [0u128; 128 * LINE];
            for (l, line) in lines.chunks_exact_mut(LINE).enumerate() {
                // Element by element: a copy of at most four blocks, which `copy_from_slice`
                // would hand to a `memmove` call.
                let col = &cols[l * nb + first..l * nb + first + count];
                for (to, from) in line.iter_mut().zip(col) {
                    *to = *from;
                }
            }
            for (j, out) in out.chunks_exact_mut(128).enumerate() {
                // Word l of matrix first + j is block first + j of column l.
                let word = |l: usize| lines[l * LINE + j];
                match kernel {
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: the kernel is one `Kernel::available` found the CPU to support.
                    Kernel::Avx2 => unsafe { x86::transpose128(word, out) },
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: as above.
                    Kernel::Gfni => unsafe { x86::transpose128_gfni(word, out) },
                    Kernel::Portable => {
                        let mut m: [Block; 128] = std::array::from_fn(word);
                        portable(&mut m);
                        out.copy_from_slice(&m);
                    }
                }
            }
        });
}

/// The transpose of `m` (word r, bit c ↦ word c, bit r): one block of 128 one-block
/// columns.
#[cfg(test)]
fn transpose128(m: &[Block; 128], kernel: Kernel) -> [Block; 128] {
    let mut out = [0u128; 128];
    transpose_columns(m, 1, &mut out, kernel);
    out
}

/// In-place transpose by recursive block swaps: at each level the off-diagonal j×j blocks of
/// every 2j×2j block are exchanged. Each level is its own instance of [`swap_level`], so
/// its shift, mask and loop bounds are constants.
fn portable(a: &mut [Block; 128]) {
    // Split into 64-bit halves so the inner loops work on u64 lanes (vectorizable).
    let mut lo = [0u64; 128];
    let mut hi = [0u64; 128];
    for r in 0..128 {
        lo[r] = a[r] as u64;
        hi[r] = (a[r] >> 64) as u64;
    }
    // Level 64: swap hi of rows 0..64 with lo of rows 64..128.
    hi[..64].swap_with_slice(&mut lo[64..]);
    for half in [&mut lo, &mut hi] {
        swap_level::<32>(half, 0x0000_0000_ffff_ffff);
        swap_level::<16>(half, 0x0000_ffff_0000_ffff);
        swap_level::<8>(half, 0x00ff_00ff_00ff_00ff);
        swap_level::<4>(half, 0x0f0f_0f0f_0f0f_0f0f);
        swap_level::<2>(half, 0x3333_3333_3333_3333);
        swap_level::<1>(half, 0x5555_5555_5555_5555);
    }
    for r in 0..128 {
        a[r] = (lo[r] as u128) | ((hi[r] as u128) << 64);
    }
}

/// One level of [`portable`] on a column of 64-bit words: within every 2J×2J block of bits,
/// the upper-right J×J block (high bits of the first J words) and the lower-left (low bits
/// of the next J words) change places. `mask` selects the low J bits of every 2J-bit group.
#[inline(always)]
fn swap_level<const J: usize>(w: &mut [u64; 128], mask: u64) {
    for block in w.chunks_exact_mut(2 * J) {
        let (first, second) = block.split_at_mut(J);
        for (x, y) in first.iter_mut().zip(second.iter_mut()) {
            let t = ((*x >> J) ^ *y) & mask;
            *x ^= t << J;
            *y ^= t;
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use std::arch::x86_64::*;

    use crate::engine::share::Block;

    /// The transpose of the matrix whose word r is `word(r)` into `out` (128 blocks), 32
    /// words at a time: two tiles of 16 rows, one per
    /// 128-bit lane of an AVX2 register.
    ///
    /// Byte step: in a tile, 16 rows of 16 bytes, interleaving the bytes of rows k and k + 8
    /// into rows 2k and 2k + 1 rotates the 8-bit position (row, byte) left by one bit; four
    /// rounds rotate it by four, which swaps row and byte. Afterwards register j holds byte j
    /// of the 32 rows (16 per lane).
    ///
    /// Bit step: `movemask` collects bit 7 of every byte of register j, which is bit 8j + 7
    /// of the 32 rows: 32 bits of output word 8j + 7. Shifting every 64-bit lane left by one
    /// moves bit 6 of each byte into bit 7 (what spills in from the byte below lands in bit
    /// 0, never read), so seven more shifts give words 8j + 6 down to 8j.
    #[target_feature(enable = "avx2")]
    pub(super) fn transpose128(word: impl Fn(usize) -> Block, out: &mut [Block]) {
        // parts[h][c]: bits 32h..32h + 32 of output word c.
        let mut parts = [[0u32; 128]; 4];
        for (h, part) in parts.iter_mut().enumerate() {
            let mut x: [__m256i; 16] = std::array::from_fn(|k| {
                let (low, high) = (word(32 * h + k), word(32 * h + 16 + k));
                _mm256_set_epi64x(
                    (high >> 64) as i64,
                    high as i64,
                    (low >> 64) as i64,
                    low as i64,
                )
            });
            for _ in 0..4 {
                let mut y = [_mm256_setzero_si256(); 16];
                for k in 0..8 {
                    y[2 * k] = _mm256_unpacklo_epi8(x[k], x[k + 8]);
                    y[2 * k + 1] = _mm256_unpackhi_epi8(x[k], x[k + 8]);
                }
                x = y;
            }
            for (j, mut v) in x.into_iter().enumerate() {
                for s in 0..8 {
                    part[8 * j + 7 - s] = _mm256_movemask_epi8(v) as u32;
                    v = _mm256_slli_epi64::<1>(v);
                }
            }
        }
        for (c, o) in out.iter_mut().enumerate() {
            *o = parts[0][c] as u128
                | (parts[1][c] as u128) << 32
                | (parts[2][c] as u128) << 64
                | (parts[3][c] as u128) << 96;
        }
    }

    /// Byte indices for the first step of [`transpose128_gfni`]: from two registers holding
    /// rows 8g .. 8g + 8 (16 bytes each), lane c of the result (c = 0..8 for `high` false,
    /// 8..16 for true) gets byte c of the eight rows, row 8g + i in byte 7 − i.
    const fn gather_blocks(high: bool) -> [u8; 64] {
        let mut idx = [0u8; 64];
        let mut c = 0;
        while c < 8 {
            let mut i = 0;
            while i < 8 {
                idx[8 * c + 7 - i] = (16 * i + c + if high { 8 } else { 0 }) as u8;
                i += 1;
            }
            c += 1;
        }
        idx
    }

    /// Byte indices for the last step: from the sixteen transposed blocks of byte column c
    /// (block g in lane g of the two registers), output word 8c + b (b = 0..4 for `high`
    /// false, 4..8 for true) gets byte b of every block, block g in its byte g.
    const fn scatter_rows(high: bool) -> [u8; 64] {
        let mut idx = [0u8; 64];
        let mut b = 0;
        while b < 4 {
            let mut g = 0;
            while g < 16 {
                idx[16 * b + g] = (8 * g + b + if high { 4 } else { 0 }) as u8;
                g += 1;
            }
            b += 1;
        }
        idx
    }

    const GATHER_LO: [u8; 64] = gather_blocks(false);
    const GATHER_HI: [u8; 64] = gather_blocks(true);
    const SCATTER_LO: [u8; 64] = scatter_rows(false);
    const SCATTER_HI: [u8; 64] = scatter_rows(true);

    /// Lane indices for one round of an 8×8 lane transpose: the round that exchanges bit `s`
    /// of the register index with bit `s` of the lane index, for the register with that bit
    /// clear (`upper` false) or set (`upper` true), from the pair (clear, set).
    const fn lane_round(s: usize, upper: bool) -> [i64; 8] {
        let mut idx = [0i64; 8];
        let mut p = 0;
        while p < 8 {
            idx[p] = match (upper, p & s == 0) {
                (false, true) => p,
                (false, false) => 8 + p - s,
                (true, true) => p + s,
                (true, false) => 8 + p,
            } as i64;
            p += 1;
        }
        idx
    }

    /// Transposes eight registers of eight 64-bit lanes: lane p of register g ends in lane g
    /// of register p (three rounds, each exchanging one bit of the two indices).
    #[target_feature(enable = "avx512f")]
    fn transpose_lanes(r: &mut [__m512i; 8]) {
        // SAFETY (all six loads): 64 bytes from arrays of 64 bytes.
        let rounds = unsafe {
            [
                (ROUND_1.0.as_ptr(), ROUND_1.1.as_ptr(), 1),
                (ROUND_2.0.as_ptr(), ROUND_2.1.as_ptr(), 2),
                (ROUND_4.0.as_ptr(), ROUND_4.1.as_ptr(), 4),
            ]
            .map(|(lo, hi, s)| {
                (
                    _mm512_loadu_si512(lo.cast()),
                    _mm512_loadu_si512(hi.cast()),
                    s,
                )
            })
        };
        for (lo_idx, hi_idx, s) in rounds {
            for g in 0..8 {
                if g & s == 0 {
                    let (a, b) = (r[g], r[g + s]);
                    r[g] = _mm512_permutex2var_epi64(a, lo_idx, b);
                    r[g + s] = _mm512_permutex2var_epi64(a, hi_idx, b);
                }
            }
        }
    }

    /// The lane indices of the three rounds of [`transpose_lanes`], computed at compile time.
    const ROUND_1: ([i64; 8], [i64; 8]) = (lane_round(1, false), lane_round(1, true));
    const ROUND_2: ([i64; 8], [i64; 8]) = (lane_round(2, false), lane_round(2, true));
    const ROUND_4: ([i64; 8], [i64; 8]) = (lane_round(4, false), lane_round(4, true));

    /// The transpose of the matrix whose word r is `word(r)` into `out` (128 blocks) with
    /// GFNI (see the module documentation for the steps). Input row r = 8g + i, byte c and
    /// bit b is output word 8c + b, byte g and bit i.
    #[target_feature(enable = "avx512f,avx512bw,avx512vbmi,gfni")]
    pub(super) fn transpose128_gfni(word: impl Fn(usize) -> Block, out: &mut [Block]) {
        assert_eq!(out.len(), 128);
        // SAFETY (the four loads): 64 bytes from arrays of 64 bytes.
        let gather_lo = unsafe { _mm512_loadu_si512(GATHER_LO.as_ptr().cast()) };
        let gather_hi = unsafe { _mm512_loadu_si512(GATHER_HI.as_ptr().cast()) };
        let scatter_lo = unsafe { _mm512_loadu_si512(SCATTER_LO.as_ptr().cast()) };
        let scatter_hi = unsafe { _mm512_loadu_si512(SCATTER_HI.as_ptr().cast()) };
        // Byte j of every lane is 1 << j: with a block as the matrix, gf2p8affine then puts
        // bit j of the block's byte 7 − k into bit k of byte j, a transpose of the block
        // (whose rows step one gathered in reverse order).
        let units = _mm512_set1_epi64(0x8040_2010_0804_0201_u64 as i64);
        // Rows 4k .. 4k + 4, one per 128-bit lane, inserted straight from the loads (going
        // through memory would stall: a 64-byte load cannot forward four 16-byte stores).
        let lane = |r: usize| {
            // SAFETY: u128 and __m128i are both 16 plain bytes.
            unsafe { std::mem::transmute::<Block, __m128i>(word(r)) }
        };
        let rows: [__m512i; 32] = std::array::from_fn(|k| {
            let z = _mm512_castsi128_si512(lane(4 * k));
            let z = _mm512_inserti32x4::<1>(z, lane(4 * k + 1));
            let z = _mm512_inserti32x4::<2>(z, lane(4 * k + 2));
            _mm512_inserti32x4::<3>(z, lane(4 * k + 3))
        });
        // blocks[h][g]: lane c of the blocks (g, 8h + c), transposed.
        let mut blocks = [[_mm512_setzero_si512(); 16]; 2];
        for g in 0..16 {
            let (a, b) = (rows[2 * g], rows[2 * g + 1]);
            for (h, idx) in [gather_lo, gather_hi].into_iter().enumerate() {
                let gathered = _mm512_permutex2var_epi8(a, idx, b);
                blocks[h][g] = _mm512_gf2p8affine_epi64_epi8::<0>(units, gathered);
            }
        }
        for half in blocks.iter_mut().flat_map(|b| b.chunks_exact_mut(8)) {
            let mut r: [__m512i; 8] = std::array::from_fn(|i| half[i]);
            transpose_lanes(&mut r);
            half.copy_from_slice(&r);
        }
        // Now lane g % 8 of blocks[h][8·(g / 8) + c] is block (g, 8h + c).
        for c in 0..16 {
            let (h, c_in) = (c / 8, c % 8);
            let (v0, v1) = (blocks[h][c_in], blocks[h][8 + c_in]);
            for (q, idx) in [scatter_lo, scatter_hi].into_iter().enumerate() {
                let words = _mm512_permutex2var_epi8(v0, idx, v1);
                let at = 8 * c + 4 * q;
                // SAFETY: out has 128 blocks (asserted above) and at + 4 ≤ 128; an unaligned
                // store of 64 bytes into four of them.
                unsafe { _mm512_storeu_si512(out[at..at + 4].as_mut_ptr().cast(), words) };
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::aes::Prg;

    fn naive(m: &[Block; 128]) -> [Block; 128] {
        let mut out = [0u128; 128];
        for (r, row) in m.iter().enumerate() {
            for (c, word) in out.iter_mut().enumerate() {
                *word |= ((row >> c) & 1) << r;
            }
        }
        out
    }

    #[test]
    fn every_kernel_matches_the_definition() {
        let mut rng = Prg::new([7; 16]);
        let mut unit = [0u128; 128];
        for (r, w) in unit.iter_mut().enumerate() {
            *w = 1 << r;
        }
        let mut single = [0u128; 128];
        single[3] = 1 << 100;
        let mut random = [0u128; 128];
        rng.fill(&mut random);
        for m in [unit, single, random, [!0; 128]] {
            let want = naive(&m);
            for kernel in Kernel::available() {
                assert_eq!(transpose128(&m, kernel), want, "{kernel:?}");
            }
        }
    }

    #[test]
    fn columns_become_rows() {
        let mut c = Prg::new([3; 16]);
        let nb = 3;
        let mut cols = vec![0u128; 128 * nb];
        c.fill(&mut cols);
        for kernel in Kernel::available() {
            let mut rows = vec![0u128; 128 * nb];
            transpose_columns(&cols, nb, &mut rows, kernel);
            for (t, row) in rows.iter().enumerate() {
                for l in 0..128 {
                    let col_bit = (cols[l * nb + t / 128] >> (t % 128)) & 1;
                    assert_eq!((row >> l) & 1, col_bit, "row {t} column {l}, {kernel:?}");
                }
            }
        }
    }

    /// Not a test: the time per 128×128 block of either path, read from 128 columns of
    /// 128 blocks (a tile of the OT extension) on one thread
    /// (`cargo test --release --lib transpose_speed -- --ignored --nocapture`).
    #[test]
    #[ignore]
    fn transpose_speed() {
        let nb = 128;
        let mut cols = vec![0u128; 128 * nb];
        Prg::new([4; 16]).fill(&mut cols);
        let mut rows = vec![0u128; 128 * nb];
        let Ok(pool) = rayon::ThreadPoolBuilder::new().num_threads(1).build() else {
            return;
        };
        for kernel in Kernel::available() {
            pool.install(|| {
                let t = std::time::Instant::now();
                for _ in 0..500 {
                    transpose_columns(std::hint::black_box(&cols), nb, &mut rows, kernel);
                }
                let per_block = t.elapsed() / (500 * nb as u32);
                eprintln!("{kernel:?}: {per_block:?} per block from columns");
            });
        }
    }
}
