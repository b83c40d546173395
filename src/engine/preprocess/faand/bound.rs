//! How big a bucket must be for the rotated buckets of [`super::bucket`], evaluated for each
//! batch.
//!
//! The ℓ·B leaky triples of a batch are B layers of ℓ, and bucket k holds triple
//! (k + s_c) mod ℓ of layer c, with independent uniform shifts s_1 .. s_{B−1} (s_0 = 0) from
//! a coin tossed after every triple is fixed. A cheater who tries to learn the x of t_c
//! triples of layer c passes the leaky-AND check with probability 2^-(t_0 + … + t_{B−1})
//! (each try is caught with probability 1/2, whatever the shifts), and a bucket leaks only
//! if all of its B triples did. For one of the t_0 tried triples of layer 0, the triple it
//! meets in layer c (c ≥ 1) is uniform in that layer, so it was tried with probability
//! t_c/ℓ; by the union bound over the t_0 buckets the cheater wins with probability at most
//! Π_c (t_c · 2^-t_c) · ℓ^-(B−1) ≤ 2^-B · ℓ^-(B−1), since t · 2^-t ≤ 1/2 for every whole
//! t ≥ 1 (and a layer without tries leaves no bucket leaking).

/// log2 of the bound above, 2^-B · ℓ^-(B−1), on a cheater's chance to make one of ℓ
/// buckets of B leak.
fn log2_failure(l: u64, b_size: u64) -> f64 {
    -(b_size as f64) - (b_size as f64 - 1.0) * (l.max(1) as f64).log2()
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
    fn bucket_sizes_follow_the_rotation_bound() {
        // B = 3 from 2^18.5 gates per batch, B = 4 from 2^12, B = 5 from 2^8.75 at ρ = 40.
        assert_eq!(bucket_size(370_800, RHO), 3);
        assert_eq!(bucket_size(370_000, RHO), 4);
        assert_eq!(bucket_size(4_096, RHO), 4);
        assert_eq!(bucket_size(4_095, RHO), 5);
        assert_eq!(bucket_size(431, RHO), 5);
        assert_eq!(bucket_size(430, RHO), 6);
        // One gate: B tries must all pass, each with probability 1/2.
        assert_eq!(bucket_size(1, RHO), 40);
    }

    /// The exact chance that a cheater who tries the triples `tried[c]` (a bit mask per
    /// layer) passes the check and gets a bucket whose every triple was tried, over all
    /// shifts.
    fn exact_win(l: usize, tried: &[u32]) -> f64 {
        let b = tried.len();
        let tries: u32 = tried.iter().map(|t| t.count_ones()).sum();
        let (mut wins, mut cases) = (0u64, 0u64);
        for code in 0..l.pow(b as u32 - 1) {
            let mut shifts = vec![0usize];
            let mut rest = code;
            for _ in 1..b {
                shifts.push(rest % l);
                rest /= l;
            }
            let leaks = (0..l).any(|k| (0..b).all(|c| tried[c] >> ((k + shifts[c]) % l) & 1 == 1));
            wins += u64::from(leaks);
            cases += 1;
        }
        wins as f64 / cases as f64 * 0.5f64.powi(tries as i32)
    }

    #[test]
    fn the_bound_holds_for_every_cheater_of_small_batches() {
        for (l, b) in [
            (2usize, 2usize),
            (3, 2),
            (4, 2),
            (5, 2),
            (2, 3),
            (3, 3),
            (4, 3),
        ] {
            let bound = log2_failure(l as u64, b as u64).exp2();
            let sets = 1u32 << l;
            let mut worst = 0f64;
            for code in 0..(sets as u64).pow(b as u32) {
                let tried: Vec<u32> = (0..b)
                    .map(|c| ((code / (sets as u64).pow(c as u32)) % sets as u64) as u32)
                    .collect();
                worst = worst.max(exact_win(l, &tried));
            }
            assert!(
                worst <= bound * (1.0 + 1e-12),
                "ℓ = {l}, B = {b}: {worst} > {bound}"
            );
            // The bound is met by one try per layer that lines up: it is not loose by much.
            assert!(worst >= bound / 2.0, "ℓ = {l}, B = {b}: {worst} ≪ {bound}");
        }
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
        // Two batches of the 1M-gate benchmark would stay at B = 3, three would not.
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
