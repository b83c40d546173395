//! The bit-matrix transpose of the OT extension: SoftSpokenOT produces 128 columns (one per
//! bit of Δ), and the protocol needs them as rows (one 128-bit MAC or key per authenticated
//! bit). Every row of every batch goes through here once on each side of every pair.
//!
//! On x86-64 with AVX2 a 128×128 block is transposed in two steps: a byte transpose of
//! 16×16-byte tiles (four rounds of byte interleaves), then, for every byte column, eight
//! `movemask`s that each read one bit of 32 rows at once. Elsewhere a portable recursive
//! block swap runs. Both give the same bits (tests). Measured on the development machine
//! (`transpose_speed`): about 0.6 µs per 128×128 block read from the columns with AVX2
//! against 1.1–1.6 µs portable, or 0.1–0.3 s of CPU per party per million AND gates. No
//! crate we use offers a 128×128 bit transpose, and the hand-written part is small.
//! (An AVX-512 variant, 64 rows per `movemask`, measured slower than AVX2 here.)

use rayon::prelude::*;

use crate::engine::share::Block;

/// Transposes 128 columns of `nb` blocks each (column l at `cols[l·nb..]`) into `128·nb`
/// rows: bit l of row t is bit t of column l.
pub fn transpose_into(cols: &[Block], nb: usize, rows: &mut [Block]) {
    transpose_columns(cols, nb, rows, simd_available());
}

/// [`transpose_into`], with AVX2 when `simd` says the CPU has it ([`simd_available`]).
fn transpose_columns(cols: &[Block], nb: usize, rows: &mut [Block], simd: bool) {
    rows[..128 * nb]
        .par_chunks_exact_mut(128)
        .enumerate()
        .for_each(|(b, out)| {
            // Word l of block b's matrix is block b of column l.
            let word = |l: usize| cols[l * nb + b];
            #[cfg(target_arch = "x86_64")]
            if simd {
                // SAFETY: `simd` is true only when the CPU supports AVX2 (`simd_available`).
                unsafe { x86::transpose128(word, out) };
                return;
            }
            let mut m: [Block; 128] = std::array::from_fn(word);
            portable(&mut m);
            out.copy_from_slice(&m);
        });
}

/// Whether the AVX2 transpose may run on this CPU.
fn simd_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The transpose of `m` (word r, bit c ↦ word c, bit r): one block of 128 one-block
/// columns.
#[cfg(test)]
fn transpose128(m: &[Block; 128], simd: bool) -> [Block; 128] {
    let mut out = [0u128; 128];
    transpose_columns(m, 1, &mut out, simd);
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
    fn both_transposes_match_the_definition() {
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
            for simd in [false, simd_available()] {
                assert_eq!(transpose128(&m, simd), want, "AVX2: {simd}");
            }
        }
    }

    #[test]
    fn columns_become_rows() {
        let mut c = Prg::new([3; 16]);
        let nb = 3;
        let mut cols = vec![0u128; 128 * nb];
        c.fill(&mut cols);
        for simd in [false, simd_available()] {
            let mut rows = vec![0u128; 128 * nb];
            transpose_columns(&cols, nb, &mut rows, simd);
            for (t, row) in rows.iter().enumerate() {
                for l in 0..128 {
                    let col_bit = (cols[l * nb + t / 128] >> (t % 128)) & 1;
                    assert_eq!((row >> l) & 1, col_bit, "row {t} column {l}, AVX2: {simd}");
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
        for simd in [false, simd_available()] {
            pool.install(|| {
                let t = std::time::Instant::now();
                for _ in 0..500 {
                    transpose_columns(std::hint::black_box(&cols), nb, &mut rows, simd);
                }
                let per_block = t.elapsed() / (500 * nb as u32);
                eprintln!("AVX2 {simd}: {per_block:?} per block from columns");
            });
        }
    }
}
