//! Choosing a model per series by a rolling-origin backtest, and the
//! forecast with prediction intervals from the backtest's residuals.

use serde::Serialize;

use super::DAY;
use super::models::Model;

/// Backtest horizon: the error reported is that of 24-hour-ahead forecasts.
pub const BACKTEST_HORIZON: usize = DAY;
/// Forecast origins tried, a day apart, ending at the latest hour.
pub const BACKTEST_ORIGINS: usize = 7;

/// Two-sided normal quantiles of the intervals.
const Z80: f64 = 1.281_551_6;
const Z95: f64 = 1.959_964;
pub const Z99: f64 = 2.575_829_3;

/// A model's measured error on the series' own history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backtest {
    /// Mean absolute percentage error, in percent, over hours with usage.
    pub mape_percent: f64,
    /// (Σ forecast − Σ actual) / Σ actual, in percent: + over, − under.
    pub bias_percent: f64,
    pub horizon_hours: usize,
    pub origins: usize,
    /// Spread of the residuals on the root scale (robust: from the median
    /// absolute residual), what the intervals are built from.
    #[serde(skip)]
    pub sigma: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// Hours after the last hour of history (1 = the next hour).
    pub step: usize,
    pub value: f64,
    pub lower_80: f64,
    pub upper_80: f64,
    pub lower_95: f64,
    pub upper_95: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub model: &'static str,
    /// `None` when the history is too short to backtest anything.
    pub backtest: Option<Backtest>,
    /// Every model that could be backtested, with its error.
    pub candidates: Vec<(&'static str, f64)>,
    pub points: Vec<Point>,
}

/// Backtests `model` on `y`: forecasts from each origin, compared with
/// what came after.
pub fn backtest(model: Model, y: &[f64]) -> Option<Backtest> {
    let mut origins = Vec::new();
    for k in 0..BACKTEST_ORIGINS {
        let Some(origin) = y.len().checked_sub(BACKTEST_HORIZON + k * DAY) else {
            break;
        };
        if origin < model.min_history() {
            break;
        }
        origins.push(origin);
    }
    if origins.is_empty() {
        return None;
    }
    let (mut ape_sum, mut ape_n, mut sum_f, mut sum_a) = (0.0, 0usize, 0.0, 0.0);
    let mut residuals = Vec::new();
    for &origin in &origins {
        let f = model.forecast(&y[..origin], BACKTEST_HORIZON);
        for (pred, actual) in f.iter().zip(&y[origin..origin + BACKTEST_HORIZON]) {
            if *actual > 0.0 {
                ape_sum += (actual - pred).abs() / actual;
                ape_n += 1;
            }
            sum_f += pred;
            sum_a += actual;
            residuals.push(actual.sqrt() - pred.sqrt());
        }
    }
    Some(Backtest {
        mape_percent: if ape_n == 0 {
            0.0
        } else {
            100.0 * ape_sum / ape_n as f64
        },
        bias_percent: if sum_a > 0.0 {
            100.0 * (sum_f - sum_a) / sum_a
        } else {
            0.0
        },
        horizon_hours: BACKTEST_HORIZON,
        origins: origins.len(),
        sigma: robust_sigma(&residuals),
    })
}

/// 1.4826 × the median absolute deviation: the standard deviation for
/// normal residuals, and not inflated by the odd anomaly in the history.
fn robust_sigma(residuals: &[f64]) -> f64 {
    if residuals.is_empty() {
        return 0.0;
    }
    let mut r: Vec<f64> = residuals.to_vec();
    r.sort_by(f64::total_cmp);
    let median = r[r.len() / 2];
    let mut dev: Vec<f64> = r.iter().map(|v| (v - median).abs()).collect();
    dev.sort_by(f64::total_cmp);
    1.4826 * dev[dev.len() / 2]
}

/// The spread a Poisson count has on the root scale (variance 1/4 at any
/// level): the least a forecast of counts can honestly claim, however
/// regular the history was.
pub const COUNT_MIN_SIGMA: f64 = 0.5;

/// The interval around `value` at `z`, on the root scale, back on the value scale.
pub fn interval(value: f64, sigma: f64, z: f64) -> (f64, f64) {
    let root = value.max(0.0).sqrt();
    let low = (root - z * sigma).max(0.0);
    // min/max: squaring the root need not give `value` back to the last bit.
    (
        (low * low).min(value),
        (root + z * sigma).powi(2).max(value),
    )
}

/// The model with the lowest backtest MAPE (ties: the simpler, earlier in
/// [`Model::ALL`]); the run-rate when nothing can be backtested.
pub fn choose(y: &[f64]) -> (Model, Option<Backtest>, Vec<(&'static str, f64)>) {
    let mut candidates = Vec::new();
    let mut best: Option<(Model, Backtest)> = None;
    for model in Model::ALL {
        let Some(bt) = backtest(model, y) else {
            continue;
        };
        candidates.push((model.name(), bt.mape_percent));
        if best
            .as_ref()
            .is_none_or(|(_, b)| bt.mape_percent < b.mape_percent)
        {
            best = Some((model, bt));
        }
    }
    match best {
        Some((model, bt)) => (model, Some(bt), candidates),
        None => (Model::LinearRunRate, None, candidates),
    }
}

/// `horizon` hours after `y`, by the model its backtest picks; intervals
/// at least `min_sigma` wide on the root scale ([`COUNT_MIN_SIGMA`] for
/// counts, 0 for money).
pub fn forecast(y: &[f64], horizon: usize, min_sigma: f64) -> Forecast {
    let (model, backtest, candidates) = choose(y);
    let values = if y.is_empty() {
        vec![0.0; horizon]
    } else {
        model.forecast(y, horizon)
    };
    let sigma = backtest.as_ref().map_or(0.0, |b| b.sigma).max(min_sigma);
    let points = values
        .into_iter()
        .enumerate()
        .map(|(i, value)| {
            let (lower_80, upper_80) = interval(value, sigma, Z80);
            let (lower_95, upper_95) = interval(value, sigma, Z95);
            Point {
                step: i + 1,
                value,
                lower_80,
                upper_80,
                lower_95,
                upper_95,
            }
        })
        .collect();
    Forecast {
        model: model.name(),
        backtest,
        candidates,
        points,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::WEEK;

    /// A weekly pattern with deterministic wobble.
    fn series(hours: usize) -> Vec<f64> {
        (0..hours)
            .map(|t| {
                let day = (t / DAY) % 7;
                let weekend = if day >= 5 { 0.5 } else { 1.0 };
                let wave =
                    1.0 + 0.5 * ((t % DAY) as f64 / DAY as f64 * std::f64::consts::TAU).sin();
                200.0 * weekend * wave + ((t * 7919) % 13) as f64
            })
            .collect()
    }

    #[test]
    fn a_weekly_pattern_picks_a_weekly_model_with_a_small_error() {
        let y = series(4 * WEEK);
        let f = forecast(&y, 48, COUNT_MIN_SIGMA);
        assert!(f.model.contains("weekly"), "{} {:?}", f.model, f.candidates);
        let bt = f.backtest.unwrap();
        assert!(bt.mape_percent < 5.0, "{bt:?}");
        assert_eq!((bt.origins, bt.horizon_hours), (BACKTEST_ORIGINS, 24));
        let p = &f.points[0];
        assert!(
            p.lower_95 <= p.lower_80
                && p.lower_80 <= p.value
                && p.value <= p.upper_80
                && p.upper_80 <= p.upper_95
        );
    }

    #[test]
    fn short_histories_fall_back_and_say_so() {
        let f = forecast(&[3.0, 4.0, 5.0], 5, COUNT_MIN_SIGMA);
        assert_eq!(f.model, "linear_run_rate");
        assert!(f.backtest.is_none());
        let f = forecast(&series(3 * DAY), 24, COUNT_MIN_SIGMA);
        assert!(
            f.model.contains("daily") || f.model == "linear_run_rate",
            "{}",
            f.model
        );
        assert!(
            f.backtest.is_some(),
            "three days can be backtested by daily models"
        );
    }
}
