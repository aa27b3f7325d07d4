//! The candidate models: each forecasts `horizon` hours after `history`.

use super::{DAY, WEEK};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    SeasonalNaiveDaily,
    SeasonalNaiveWeekly,
    SeasonalMeanWeekly,
    HoltWintersDaily,
    HoltWintersWeekly,
    LinearRunRate,
}

impl Model {
    pub const ALL: [Model; 6] = [
        Model::SeasonalNaiveDaily,
        Model::SeasonalNaiveWeekly,
        Model::SeasonalMeanWeekly,
        Model::HoltWintersDaily,
        Model::HoltWintersWeekly,
        Model::LinearRunRate,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Model::SeasonalNaiveDaily => "seasonal_naive_daily",
            Model::SeasonalNaiveWeekly => "seasonal_naive_weekly",
            Model::SeasonalMeanWeekly => "seasonal_mean_weekly",
            Model::HoltWintersDaily => "holt_winters_daily",
            Model::HoltWintersWeekly => "holt_winters_weekly",
            Model::LinearRunRate => "linear_run_rate",
        }
    }

    /// The least history the model can be fitted on.
    pub fn min_history(self) -> usize {
        match self {
            Model::SeasonalNaiveDaily => DAY,
            Model::HoltWintersDaily => 2 * DAY,
            Model::SeasonalNaiveWeekly => WEEK,
            Model::SeasonalMeanWeekly | Model::HoltWintersWeekly => 2 * WEEK,
            Model::LinearRunRate => 2,
        }
    }

    /// `horizon` values after `history` (never negative).
    pub fn forecast(self, history: &[f64], horizon: usize) -> Vec<f64> {
        let out = match self {
            Model::SeasonalNaiveDaily => seasonal_naive(history, DAY, horizon),
            Model::SeasonalNaiveWeekly => seasonal_naive(history, WEEK, horizon),
            Model::SeasonalMeanWeekly => seasonal_mean(history, WEEK, 4, horizon),
            Model::HoltWintersDaily => holt_winters(history, DAY, horizon),
            Model::HoltWintersWeekly => holt_winters(history, WEEK, horizon),
            Model::LinearRunRate => run_rate(history, horizon),
        };
        out.into_iter().map(|v| v.max(0.0)).collect()
    }
}

/// The last full season, repeated.
fn seasonal_naive(y: &[f64], m: usize, horizon: usize) -> Vec<f64> {
    let n = y.len();
    (0..horizon).map(|h| y[n - m + h % m]).collect()
}

/// The same hour of the season, averaged over the last `k` seasons (the
/// median from three on, so one odd week does not move it).
fn seasonal_mean(y: &[f64], m: usize, k: usize, horizon: usize) -> Vec<f64> {
    let n = y.len();
    let seasons = (n / m).clamp(1, k);
    (0..horizon)
        .map(|h| {
            let phase = h % m;
            let mut same: Vec<f64> = (1..=seasons).map(|s| y[n - s * m + phase]).collect();
            if same.len() >= 3 {
                same.sort_by(f64::total_cmp);
                let mid = same.len() / 2;
                if same.len() % 2 == 1 {
                    same[mid]
                } else {
                    (same[mid - 1] + same[mid]) / 2.0
                }
            } else {
                same.iter().sum::<f64>() / same.len() as f64
            }
        })
        .collect()
}

/// Additive Holt-Winters; smoothing weights picked on a small grid by the
/// one-step squared error over the history.
fn holt_winters(y: &[f64], m: usize, horizon: usize) -> Vec<f64> {
    const ALPHAS: [f64; 4] = [0.02, 0.08, 0.2, 0.4];
    const BETAS: [f64; 2] = [0.0, 0.005];
    const GAMMAS: [f64; 3] = [0.05, 0.15, 0.35];
    let mut best: Option<(f64, HwState)> = None;
    for alpha in ALPHAS {
        for beta in BETAS {
            for gamma in GAMMAS {
                let (sse, state) = hw_fit(y, m, alpha, beta, gamma);
                if best.as_ref().is_none_or(|(b, _)| sse < *b) {
                    best = Some((sse, state));
                }
            }
        }
    }
    let Some((_, s)) = best else {
        return vec![0.0; horizon];
    };
    (1..=horizon)
        .map(|h| s.level + h as f64 * s.trend + s.season[(y.len() + h - 1) % m])
        .collect()
}

struct HwState {
    level: f64,
    trend: f64,
    season: Vec<f64>,
}

fn hw_fit(y: &[f64], m: usize, alpha: f64, beta: f64, gamma: f64) -> (f64, HwState) {
    let first: f64 = y[..m].iter().sum::<f64>() / m as f64;
    let trend = if y.len() >= 2 * m {
        (y[m..2 * m].iter().sum::<f64>() / m as f64 - first) / m as f64
    } else {
        0.0
    };
    let mut s = HwState {
        level: first,
        trend,
        season: y[..m].iter().map(|v| v - first).collect(),
    };
    let mut sse = 0.0;
    for (t, &value) in y.iter().enumerate().skip(m) {
        let phase = t % m;
        let predicted = s.level + s.trend + s.season[phase];
        sse += (value - predicted).powi(2);
        let level = alpha * (value - s.season[phase]) + (1.0 - alpha) * (s.level + s.trend);
        s.trend = beta * (level - s.level) + (1.0 - beta) * s.trend;
        s.level = level;
        s.season[phase] = gamma * (value - level) + (1.0 - gamma) * s.season[phase];
    }
    (sse, s)
}

/// A straight line fitted (least squares) to the last day or less.
fn run_rate(y: &[f64], horizon: usize) -> Vec<f64> {
    let tail = &y[y.len().saturating_sub(DAY)..];
    let n = tail.len() as f64;
    let mean_x = (n - 1.0) / 2.0;
    let mean_y = tail.iter().sum::<f64>() / n;
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (i, v) in tail.iter().enumerate() {
        let dx = i as f64 - mean_x;
        sxy += dx * (v - mean_y);
        sxx += dx * dx;
    }
    let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
    (1..=horizon)
        .map(|h| mean_y + slope * (n - 1.0 - mean_x + h as f64))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn daily_wave(hours: usize) -> Vec<f64> {
        (0..hours)
            .map(|t| 100.0 + 40.0 * ((t % DAY) as f64 / DAY as f64 * std::f64::consts::TAU).sin())
            .collect()
    }

    #[test]
    fn seasonal_models_continue_a_clean_season_exactly() {
        let y = daily_wave(3 * WEEK);
        let expected = &daily_wave(3 * WEEK + 48)[3 * WEEK..];
        for model in [
            Model::SeasonalNaiveDaily,
            Model::SeasonalNaiveWeekly,
            Model::SeasonalMeanWeekly,
        ] {
            let f = model.forecast(&y, 48);
            for (a, b) in f.iter().zip(expected) {
                assert!((a - b).abs() < 1e-9, "{model:?}");
            }
        }
        let f = Model::HoltWintersDaily.forecast(&y, 48);
        let worst = f
            .iter()
            .zip(expected)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(worst < 1.0, "Holt-Winters follows a clean wave: {worst}");
    }

    #[test]
    fn the_run_rate_extends_a_line_and_never_goes_negative() {
        let y: Vec<f64> = (0..10).map(|t| 5.0 + 2.0 * t as f64).collect();
        let f = Model::LinearRunRate.forecast(&y, 3);
        assert!(
            (f[0] - 25.0).abs() < 1e-9 && (f[2] - 29.0).abs() < 1e-9,
            "{f:?}"
        );
        let falling: Vec<f64> = (0..10).map(|t| 20.0 - 3.0 * t as f64).collect();
        assert!(
            Model::LinearRunRate
                .forecast(&falling, 10)
                .iter()
                .all(|v| *v >= 0.0)
        );
    }
}
