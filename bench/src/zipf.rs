//! Zipf-distributed picks by inverse CDF (15 lines instead of a dependency).

use rand::Rng;

/// Ranks `0..n` with `P(rank k) ∝ 1 / (k + 1)^s`.
#[derive(Debug, Clone)]
pub struct Zipf {
    /// Cumulative weights, `cdf[k] = Σ_{j ≤ k} 1/(j+1)^s`.
    cdf: Vec<f64>,
}

impl Zipf {
    /// A distribution over `n ≥ 1` ranks with exponent `s > 0`.
    pub fn new(n: usize, s: f64) -> Result<Self, String> {
        if n == 0 {
            return Err("zipf: n must be at least 1".to_owned());
        }
        if !(s.is_finite() && s > 0.0) {
            return Err(format!("zipf: exponent s must be > 0, got {s}"));
        }
        let mut total = 0.0;
        let cdf = (1..=n)
            .map(|k| {
                total += (k as f64).powf(-s);
                total
            })
            .collect();
        Ok(Self { cdf })
    }

    /// Draws a rank in `0..n` (0 is the most popular).
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> usize {
        let total = *self.cdf.last().expect("n >= 1");
        let u = rng.random::<f64>() * total;
        self.cdf
            .partition_point(|&c| c <= u)
            .min(self.cdf.len() - 1)
    }

    /// `k` distinct ranks (a portal page showing `k` different cards).
    pub fn sample_distinct<R: Rng + ?Sized>(&self, rng: &mut R, k: usize) -> Vec<usize> {
        let k = k.min(self.cdf.len());
        let mut out = Vec::with_capacity(k);
        while out.len() < k {
            let r = self.sample(rng);
            if !out.contains(&r) {
                out.push(r);
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn rank_frequencies_follow_the_exponent() {
        let z = Zipf::new(500, 1.1).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut counts = vec![0u32; 500];
        for _ in 0..200_000 {
            counts[z.sample(&mut rng)] += 1;
        }
        // P(0)/P(1) = 2^1.1 ≈ 2.14; P(0)/P(9) = 10^1.1 ≈ 12.6.
        let r01 = f64::from(counts[0]) / f64::from(counts[1]);
        let r09 = f64::from(counts[0]) / f64::from(counts[9]);
        assert!((1.95..2.35).contains(&r01), "{r01}");
        assert!((10.5..15.0).contains(&r09), "{r09}");
        assert!(counts[499] > 0, "the tail is reachable");
    }

    #[test]
    fn distinct_picks_are_distinct_and_bad_parameters_are_named() {
        let z = Zipf::new(30, 1.1).unwrap();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut page = z.sample_distinct(&mut rng, 20);
        page.sort_unstable();
        page.dedup();
        assert_eq!(page.len(), 20);
        assert!(Zipf::new(0, 1.1).unwrap_err().contains("n must"));
        assert!(Zipf::new(5, 0.0).unwrap_err().contains("exponent"));
    }
}
