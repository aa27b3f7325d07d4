//! Anomalies: hours whose observed value falls outside the 99% interval
//! of the model chosen on the history before them, and differs from the
//! expected value by at least a minimum change (default 25%): a busy
//! tenant's hour can be statistically unusual yet immaterial, and an
//! alert on it is noise. The score is the standardized residual (root
//! scale).

use serde::Serialize;

use super::select::{Z99, choose, interval};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Spike,
    Drop,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Flag {
    /// Index into `observed`.
    pub index: usize,
    pub observed: f64,
    pub expected: f64,
    pub score: f64,
    pub direction: Direction,
}

/// The default least change from the expected value, in percent.
pub const MIN_CHANGE_PERCENT: f64 = 25.0;

/// The flagged hours of `observed`, which directly follows `history`.
/// Nothing is flagged when the history is too short to backtest a model:
/// there is no interval to fall outside of.
/// `min_sigma` as for [`super::select::forecast`].
pub fn scan(
    history: &[f64],
    observed: &[f64],
    min_change_percent: f64,
    min_sigma: f64,
) -> Vec<Flag> {
    let choice = choose(history);
    let Some(backtest) = &choice.backtest else {
        return Vec::new();
    };
    // A perfectly regular history must still not flag a count off by one;
    // a zero spread (money that never varied) must not divide by zero.
    let sigma = backtest.sigma.max(min_sigma).max(f64::EPSILON);
    let expected = choice.forecast(history, observed.len());
    observed
        .iter()
        .zip(expected)
        .enumerate()
        .filter_map(|(index, (&obs, exp))| {
            let (low, high) = interval(exp, sigma, Z99);
            let material = (obs - exp).abs() >= exp.max(0.0) * min_change_percent / 100.0;
            if (obs >= low && obs <= high) || !material {
                return None;
            }
            let score = (obs.sqrt() - exp.max(0.0).sqrt()) / sigma;
            Some(Flag {
                index,
                observed: obs,
                expected: exp,
                score,
                direction: if obs > high {
                    Direction::Spike
                } else {
                    Direction::Drop
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::{COUNT_MIN_SIGMA, DAY, WEEK};

    #[test]
    fn a_spike_and_a_drop_are_flagged_and_ordinary_hours_are_not() {
        let wave = |t: usize| {
            400.0 + 200.0 * ((t % DAY) as f64 / DAY as f64 * std::f64::consts::TAU).sin()
        };
        let noise = |t: usize| ((t * 7919) % 21) as f64 - 10.0;
        let history: Vec<f64> = (0..3 * WEEK).map(|t| wave(t) + noise(t)).collect();
        let mut observed: Vec<f64> = (3 * WEEK..3 * WEEK + 48)
            .map(|t| wave(t) + noise(t))
            .collect();
        observed[10] *= 3.0;
        observed[30] *= 0.2;
        let flags = scan(&history, &observed, MIN_CHANGE_PERCENT, COUNT_MIN_SIGMA);
        let found: Vec<(usize, Direction)> = flags.iter().map(|f| (f.index, f.direction)).collect();
        assert_eq!(
            found,
            [(10, Direction::Spike), (30, Direction::Drop)],
            "{flags:?}"
        );
        assert!(flags[0].score > 3.0 && flags[1].score < -3.0);
        // A 20% rise is outside the interval of so regular a history, but
        // under the minimum change.
        observed[40] *= 1.2;
        assert!(
            !scan(&history, &observed, MIN_CHANGE_PERCENT, COUNT_MIN_SIGMA)
                .iter()
                .any(|f| f.index == 40)
        );
        assert!(
            scan(&history, &observed, 0.0, COUNT_MIN_SIGMA)
                .iter()
                .any(|f| f.index == 40)
        );
    }
}
