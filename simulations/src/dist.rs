//! Distributions a scenario draws from: latencies, pause lengths, restart
//! delays, object sizes. The unit is in the name of the field that holds one
//! (`latency_ms`, `size_bytes`, `after_s`).

use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// A distribution of non-negative values.
///
/// In TOML: `{ dist = "constant", value = 2 }`, `{ dist = "uniform", min = 1,
/// max = 5 }`, `{ dist = "normal", mean = 5, stddev = 1 }` (negative draws are
/// clamped to 0), `{ dist = "lognormal", median = 2, sigma = 0.5 }`,
/// `{ dist = "exponential", mean = 3 }`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "dist", rename_all = "lowercase", deny_unknown_fields)]
pub enum Dist {
    /// Always the same value.
    Constant {
        /// The value.
        value: f64,
    },
    /// Uniform between `min` and `max`.
    Uniform {
        /// Lower bound.
        min: f64,
        /// Upper bound.
        max: f64,
    },
    /// Normal, clamped at zero.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation.
        stddev: f64,
    },
    /// Log-normal: `median × e^(sigma × N(0,1))`; the usual shape of network
    /// latency.
    Lognormal {
        /// Median.
        median: f64,
        /// Shape (standard deviation of the logarithm).
        sigma: f64,
    },
    /// Exponential (the gaps of a Poisson process).
    Exponential {
        /// Mean.
        mean: f64,
    },
}

impl Dist {
    /// A constant.
    pub const fn constant(value: f64) -> Self {
        Self::Constant { value }
    }

    /// One draw.
    pub fn sample(&self, rng: &mut Rng) -> f64 {
        let x = match *self {
            Self::Constant { value } => value,
            Self::Uniform { min, max } => min + (max - min) * rng.unit(),
            Self::Normal { mean, stddev } => mean + stddev * rng.normal(),
            Self::Lognormal { median, sigma } => median * (sigma * rng.normal()).exp(),
            Self::Exponential { mean } => rng.exponential(mean),
        };
        x.max(0.0)
    }

    /// The mean (before clamping), for reports.
    pub fn mean(&self) -> f64 {
        match *self {
            Self::Constant { value } => value,
            Self::Uniform { min, max } => (min + max) / 2.0,
            Self::Normal { mean, .. } | Self::Exponential { mean } => mean,
            Self::Lognormal { median, sigma } => median * (sigma * sigma / 2.0).exp(),
        }
    }

    /// Why the parameters make no sense, if they do not.
    pub fn check(&self) -> Result<(), String> {
        let ok = match *self {
            Self::Constant { value } => value >= 0.0,
            Self::Uniform { min, max } => min >= 0.0 && max >= min,
            Self::Normal { stddev, .. } => stddev >= 0.0,
            Self::Lognormal { median, sigma } => median >= 0.0 && sigma >= 0.0,
            Self::Exponential { mean } => mean >= 0.0,
        };
        let finite = match *self {
            Self::Constant { value } => value.is_finite(),
            Self::Uniform { min, max } => min.is_finite() && max.is_finite(),
            Self::Normal { mean, stddev } => mean.is_finite() && stddev.is_finite(),
            Self::Lognormal { median, sigma } => median.is_finite() && sigma.is_finite(),
            Self::Exponential { mean } => mean.is_finite(),
        };
        if ok && finite {
            Ok(())
        } else {
            Err(format!(
                "{self:?}: parameters must be finite and non-negative (and min ≤ max)"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mean_of(d: Dist) -> f64 {
        let mut rng = Rng::new(3);
        (0..100_000).map(|_| d.sample(&mut rng)).sum::<f64>() / 100_000.0
    }

    #[test]
    fn samples_match_the_stated_means() {
        for d in [
            Dist::constant(2.0),
            Dist::Uniform { min: 1.0, max: 5.0 },
            Dist::Normal {
                mean: 10.0,
                stddev: 1.0,
            },
            Dist::Lognormal {
                median: 2.0,
                sigma: 0.5,
            },
            Dist::Exponential { mean: 3.0 },
        ] {
            let m = mean_of(d);
            assert!((m - d.mean()).abs() / d.mean() < 0.02, "{d:?}: {m}");
        }
    }

    #[test]
    fn parses_from_toml_and_rejects_nonsense() {
        #[derive(Deserialize)]
        struct T {
            d: Dist,
        }
        let t: T = toml::from_str("d = { dist = \"lognormal\", median = 2, sigma = 0.5 }").unwrap();
        assert_eq!(
            t.d,
            Dist::Lognormal {
                median: 2.0,
                sigma: 0.5
            }
        );
        assert!(toml::from_str::<T>("d = { dist = \"zipf\", s = 1 }").is_err());
        assert!(Dist::Uniform { min: 3.0, max: 1.0 }.check().is_err());
    }
}
