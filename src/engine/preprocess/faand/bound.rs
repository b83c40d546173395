//! How big a bucket must be: WRK17's bucketing bound, evaluated exactly for each batch.

/// log2 of the probability that an adversary who corrupts some of ℓ·B leaky triples gets
/// a bucket with only corrupted triples past the checks, maximized over the number b of
/// corrupted triples: `2^-b · ℓ · C(b, B) / C(ℓB, B)`.
fn log2_failure(l: u64, b_size: u64) -> f64 {
    let total = l * b_size;
    let mut worst = f64::NEG_INFINITY;
    // Beyond a few hundred the 2^-b factor only shrinks the bound further.
    for b in b_size..=total.min(b_size + 400) {
        let mut p = -(b as f64) + (l as f64).log2();
        for i in 0..b_size {
            p += ((b - i) as f64).log2() - ((total - i) as f64).log2();
        }
        worst = worst.max(p);
    }
    worst
}

/// The bucket size for a batch of `ands` triples at statistical security `rho`.
pub fn bucket_size(ands: u64, rho: u32) -> usize {
    let l = ands.max(1);
    let mut b = 2;
    while log2_failure(l, b) > -(rho as f64) {
        b += 1;
    }
    b as usize
}

/// The ρ each of `batches` batches must reach so that the whole run fails with probability
/// at most 2^-[`super::RHO`] (a union bound over the batches): RHO + ⌈log2 batches⌉.
pub fn batch_rho(batches: u64) -> u32 {
    super::RHO + batches.max(1).next_power_of_two().trailing_zeros()
}

#[cfg(test)]
mod tests {
    use super::super::RHO;
    use super::*;

    #[test]
    fn bucket_sizes_match_the_papers_table() {
        assert_eq!(bucket_size(300_000, RHO), 3);
        assert_eq!(bucket_size(270_000, RHO), 4);
        assert_eq!(bucket_size(4_000, RHO), 4);
        assert_eq!(bucket_size(3_000, RHO), 5);
        assert_eq!(bucket_size(330, RHO), 5);
        assert!(bucket_size(300, RHO) > 5);
        assert!(bucket_size(1, RHO) <= 40);
    }

    #[test]
    fn rho_grows_with_the_number_of_batches() {
        assert_eq!(batch_rho(1), 40);
        assert_eq!(batch_rho(2), 41);
        assert_eq!(batch_rho(3), 42);
        assert_eq!(batch_rho(4), 42);
        assert_eq!(batch_rho(5), 43);
        assert_eq!(batch_rho(1 << 20), 60);
        // k batches at ρ = 40 + ⌈log2 k⌉ keep the run at 2^-40.
        for k in 1..5000u64 {
            assert!((k as f64).log2() - batch_rho(k) as f64 <= -(RHO as f64));
        }
        // Two batches of the 1M-gate benchmark stay at B = 3, three would not.
        assert_eq!(bucket_size(537_392, batch_rho(2)), 3);
        assert_eq!(bucket_size(358_261, batch_rho(3)), 4);
        // The per-batch bound at the chosen size really is below 2^-ρ.
        for (l, k) in [(537_392u64, 2u64), (10_000, 7), (500, 1000)] {
            let b = bucket_size(l, batch_rho(k));
            assert!(log2_failure(l, b as u64) <= -(batch_rho(k) as f64));
            assert!(log2_failure(l, b as u64 - 1) > -(batch_rho(k) as f64));
        }
    }
}
