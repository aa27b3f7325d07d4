//! Choosing a forecast per series by a rolling-origin backtest, and the
//! forecast with prediction intervals from the backtest's residuals.
//!
//! The candidates are every model of [`Model::ALL`] and the equal-weight
//! means of two or more of the weekly models ([`Model::WEEKLY`]). Each is
//! backtested: 24-hour forecasts from up to [`BACKTEST_ORIGINS`] origins a
//! day apart on the series' own history. The forecast is the mean of the
//! best [`ENSEMBLE_SIZE`] candidates weighted by the inverse of their
//! backtest MAPE — unless the weekly seasonal naive backtests better than
//! that mean, when it is the forecast. Decision 0106 says why: on real
//! series one winner by backtest is often the wrong one, and a weighted
//! few are never far from the best.

use std::collections::HashMap;

use serde::Serialize;

use super::DAY;
use super::models::Model;

/// Backtest horizon: the error reported is that of 24-hour-ahead forecasts.
pub const BACKTEST_HORIZON: usize = DAY;
/// Forecast origins tried, a day apart, ending at the latest hour.
pub const BACKTEST_ORIGINS: usize = 14;
/// How many of the best candidates the forecast is the weighted mean of.
pub const ENSEMBLE_SIZE: usize = 3;

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

/// One candidate of the forecast and its weight in it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Member {
    pub model: String,
    pub weight: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    /// The candidate forecast, or `ensemble` for the weighted mean of
    /// [`Forecast::members`].
    pub model: String,
    /// What the forecast is the weighted mean of (one member: `model`).
    pub members: Vec<Member>,
    /// `None` when the history is too short to backtest anything.
    pub backtest: Option<Backtest>,
    /// Every candidate that could be backtested, with its error.
    pub candidates: Vec<(String, f64)>,
    pub points: Vec<Point>,
}

/// A candidate: one model, or the equal-weight mean of several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate(Vec<Model>);

impl Candidate {
    /// Every candidate: each model alone, then each mean of two or more
    /// weekly models.
    pub fn all() -> Vec<Candidate> {
        let mut out: Vec<Candidate> = Model::ALL.iter().map(|m| Candidate(vec![*m])).collect();
        let weekly = Model::WEEKLY;
        for mask in 1u32..(1 << weekly.len()) {
            if mask.count_ones() >= 2 {
                let members = (0..weekly.len())
                    .filter(|i| mask & (1 << i) != 0)
                    .map(|i| weekly[i])
                    .collect();
                out.push(Candidate(members));
            }
        }
        out
    }

    /// `holt_winters_weekly`, or `holt_winters_weekly+mstl` for a mean.
    pub fn name(&self) -> String {
        let names: Vec<&str> = self.0.iter().map(|m| m.name()).collect();
        names.join("+")
    }

    /// The mean of the members' forecasts, each taken from `forecasts`.
    fn mean_of(&self, forecasts: &HashMap<Model, Vec<f64>>) -> Option<Vec<f64>> {
        let mut sum: Option<Vec<f64>> = None;
        for model in &self.0 {
            let f = forecasts.get(model)?;
            match &mut sum {
                None => sum = Some(f.clone()),
                Some(acc) => acc.iter_mut().zip(f).for_each(|(a, v)| *a += v),
            }
        }
        let n = self.0.len() as f64;
        sum.map(|v| v.into_iter().map(|x| x / n).collect())
    }
}

/// Each model's forecast from each origin (`None` past its least history),
/// so that candidates sharing a model fit it once.
struct Trial<'a> {
    y: &'a [f64],
    /// Origins, latest first.
    origins: Vec<usize>,
    forecasts: Vec<HashMap<Model, Vec<f64>>>,
}

impl<'a> Trial<'a> {
    fn run(y: &'a [f64]) -> Self {
        let origins: Vec<usize> = (0..BACKTEST_ORIGINS)
            .filter_map(|k| y.len().checked_sub(BACKTEST_HORIZON + k * DAY))
            .filter(|o| *o > 0)
            .collect();
        // The origins are independent fits: spread them over the cores
        // (MSTL's decomposition is most of a forecast's time).
        let fit = |origin: usize| -> HashMap<Model, Vec<f64>> {
            Model::ALL
                .iter()
                .filter(|m| origin >= m.min_history())
                .map(|m| (*m, m.forecast(&y[..origin], BACKTEST_HORIZON)))
                .collect()
        };
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = origins.len().div_ceil(threads).max(1);
        let forecasts = std::thread::scope(|scope| {
            let parts: Vec<_> = origins
                .chunks(chunk)
                .map(|part| {
                    let fits =
                        scope.spawn(move || part.iter().map(|o| fit(*o)).collect::<Vec<_>>());
                    (part.len(), fits)
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|(len, fits)| {
                    // A fit that panicked leaves its origins without
                    // forecasts: the candidates are scored on later ones.
                    fits.join().unwrap_or_else(|_| vec![HashMap::new(); len])
                })
                .collect::<Vec<_>>()
        });
        Trial {
            y,
            origins,
            forecasts,
        }
    }

    /// `forecast` (a weighted mean of candidates' forecasts, or None
    /// where one is missing) scored on every origin it has a value for.
    fn score(
        &self,
        forecast: impl Fn(&HashMap<Model, Vec<f64>>) -> Option<Vec<f64>>,
    ) -> Option<Backtest> {
        let mut scored = Vec::new();
        for (origin, fitted) in self.origins.iter().zip(&self.forecasts) {
            match forecast(fitted) {
                Some(f) => scored.push((*origin, f)),
                // Origins are latest first: an earlier one has less history.
                None => break,
            }
        }
        score(self.y, &scored)
    }
}

/// The backtest of forecasts made from `origins` (origin, forecast).
fn score(y: &[f64], scored: &[(usize, Vec<f64>)]) -> Option<Backtest> {
    if scored.is_empty() {
        return None;
    }
    let (mut ape_sum, mut ape_n, mut sum_f, mut sum_a) = (0.0, 0usize, 0.0, 0.0);
    let mut residuals = Vec::new();
    for (origin, f) in scored {
        for (pred, actual) in f.iter().zip(&y[*origin..*origin + BACKTEST_HORIZON]) {
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
        origins: scored.len(),
        sigma: robust_sigma(&residuals),
    })
}

/// Backtests `model` alone on `y`.
pub fn backtest(model: Model, y: &[f64]) -> Option<Backtest> {
    let candidate = Candidate(vec![model]);
    Trial::run(y).score(|f| candidate.mean_of(f))
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

/// What the backtest chose: candidates and their weights.
#[derive(Debug, Clone, PartialEq)]
pub struct Choice {
    pub members: Vec<(Candidate, f64)>,
    /// The backtest of the weighted mean itself.
    pub backtest: Option<Backtest>,
    /// Every candidate that could be backtested, with its MAPE.
    pub candidates: Vec<(String, f64)>,
}

impl Choice {
    /// `ensemble`, or the one member's name.
    pub fn name(&self) -> String {
        match self.members.as_slice() {
            [(one, _)] => one.name(),
            _ => "ensemble".to_owned(),
        }
    }

    /// `horizon` values after `y`, never negative.
    pub fn forecast(&self, y: &[f64], horizon: usize) -> Vec<f64> {
        if y.is_empty() {
            return vec![0.0; horizon];
        }
        let mut fitted = HashMap::new();
        for (candidate, _) in &self.members {
            for model in &candidate.0 {
                fitted
                    .entry(*model)
                    .or_insert_with(|| model.forecast(y, horizon));
            }
        }
        weighted_mean(&self.members, &fitted).unwrap_or_else(|| vec![0.0; horizon])
    }
}

fn weighted_mean(
    members: &[(Candidate, f64)],
    fitted: &HashMap<Model, Vec<f64>>,
) -> Option<Vec<f64>> {
    let mut out: Option<Vec<f64>> = None;
    for (candidate, weight) in members {
        let f = candidate.mean_of(fitted)?;
        match &mut out {
            None => out = Some(f.iter().map(|v| v * weight).collect()),
            Some(acc) => acc.iter_mut().zip(&f).for_each(|(a, v)| *a += v * weight),
        }
    }
    out.map(|v| v.into_iter().map(|x| x.max(0.0)).collect())
}

/// The backtest's choice for `y`; the run-rate when nothing can be
/// backtested.
pub fn choose(y: &[f64]) -> Choice {
    let trial = Trial::run(y);
    let mut ranked: Vec<(Candidate, Backtest)> = Candidate::all()
        .into_iter()
        .filter_map(|c| trial.score(|f| c.mean_of(f)).map(|bt| (c, bt)))
        .collect();
    let candidates = ranked
        .iter()
        .map(|(c, bt)| (c.name(), bt.mape_percent))
        .collect();
    // Stable: ties keep the simpler, earlier candidate first.
    ranked.sort_by(|a, b| a.1.mape_percent.total_cmp(&b.1.mape_percent));
    if ranked.is_empty() {
        return Choice {
            members: vec![(Candidate(vec![Model::LinearRunRate]), 1.0)],
            backtest: None,
            candidates,
        };
    }
    let best: Vec<&(Candidate, Backtest)> = ranked.iter().take(ENSEMBLE_SIZE).collect();
    // A perfect backtest takes all the weight rather than dividing by zero.
    let inverse: Vec<f64> = best
        .iter()
        .map(|(_, bt)| 1.0 / bt.mape_percent.max(1e-6))
        .collect();
    let total: f64 = inverse.iter().sum();
    let members: Vec<(Candidate, f64)> = best
        .iter()
        .zip(&inverse)
        .map(|((c, _), w)| (c.clone(), w / total))
        .collect();
    let backtest = if members.len() == 1 {
        Some(ranked[0].1.clone())
    } else {
        trial.score(|f| weighted_mean(&members, f))
    };
    let naive = Candidate(vec![Model::SeasonalNaiveWeekly]);
    let naive_backtest = ranked.iter().find(|(c, _)| *c == naive).map(|(_, bt)| bt);
    if let (Some(naive_bt), Some(bt)) = (naive_backtest, &backtest)
        && naive_bt.mape_percent < bt.mape_percent
    {
        return Choice {
            members: vec![(naive, 1.0)],
            backtest: Some(naive_bt.clone()),
            candidates,
        };
    }
    Choice {
        members,
        backtest,
        candidates,
    }
}

/// `horizon` hours after `y`, by the backtest's choice; intervals at least
/// `min_sigma` wide on the root scale ([`COUNT_MIN_SIGMA`] for counts, 0
/// for money).
pub fn forecast(y: &[f64], horizon: usize, min_sigma: f64) -> Forecast {
    let choice = choose(y);
    let values = choice.forecast(y, horizon);
    let sigma = choice
        .backtest
        .as_ref()
        .map_or(0.0, |b| b.sigma)
        .max(min_sigma);
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
        model: choice.name(),
        members: choice
            .members
            .iter()
            .map(|(c, w)| Member {
                model: c.name(),
                weight: *w,
            })
            .collect(),
        backtest: choice.backtest,
        candidates: choice.candidates,
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
        assert!(
            f.members.iter().all(|m| m.model.contains("weekly")),
            "{:?} {:?}",
            f.members,
            f.candidates
        );
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
            f.members
                .iter()
                .all(|m| m.model.contains("daily") || m.model == "linear_run_rate"),
            "{:?}",
            f.members
        );
        assert!(
            f.backtest.is_some(),
            "three days can be backtested by daily models"
        );
    }

    #[test]
    fn a_week_that_repeats_exactly_keeps_the_weekly_seasonal_naive() {
        // An irregular shape no smoother follows, repeated week after week:
        // last week is the perfect forecast, and any mean is worse.
        let shape: Vec<f64> = (0..WEEK).map(|t| 50.0 + ((t * 7919) % 97) as f64).collect();
        let y: Vec<f64> = (0..4 * WEEK).map(|t| shape[t % WEEK]).collect();
        let f = forecast(&y, 24, COUNT_MIN_SIGMA);
        assert_eq!(f.model, "seasonal_naive_weekly", "{:?}", f.members);
        assert_eq!(f.backtest.map(|b| b.mape_percent), Some(0.0));
        for (p, expected) in f.points.iter().zip(&shape) {
            assert_eq!(p.value, *expected);
        }
    }

    #[test]
    fn the_forecast_is_the_inverse_error_weighted_mean_of_the_best_three() {
        // ±15% noise, which last week's value repeats and a mean smooths.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let y: Vec<f64> = series(4 * WEEK)
            .iter()
            .map(|v| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                v * (0.85 + 0.3 * (state % 1000) as f64 / 1000.0)
            })
            .collect();
        let choice = choose(&y);
        assert_eq!(
            choice.members.len(),
            ENSEMBLE_SIZE,
            "{:?} {:?} {:?}",
            choice.members,
            choice.backtest,
            choice.candidates
        );
        let total: f64 = choice.members.iter().map(|(_, w)| w).sum();
        assert!((total - 1.0).abs() < 1e-9);
        // The weights fall as the candidates' errors rise.
        let errors: Vec<f64> = choice
            .members
            .iter()
            .map(|(c, _)| {
                let name = c.name();
                choice
                    .candidates
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, e)| *e)
                    .unwrap()
            })
            .collect();
        assert!(errors.windows(2).all(|e| e[0] <= e[1]), "{errors:?}");
        assert!(choice.members.windows(2).all(|m| m[0].1 >= m[1].1));
        // Every candidate: 7 models, 11 means of the weekly ones.
        assert_eq!(Candidate::all().len(), 18);
        assert_eq!(choice.candidates.len(), 18);
    }
}
