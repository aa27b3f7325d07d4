//! The candidate models: each forecasts `horizon` hours after `history`.

mod holt_winters;
mod mstl;
mod naive;
mod nelder_mead;

use self::naive::{run_rate, seasonal_mean, seasonal_naive};
use super::{DAY, WEEK};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    SeasonalNaiveDaily,
    SeasonalNaiveWeekly,
    SeasonalMeanWeekly,
    HoltWintersDaily,
    HoltWintersWeekly,
    Mstl,
    LinearRunRate,
}

impl Model {
    pub const ALL: [Model; 7] = [
        Model::SeasonalNaiveDaily,
        Model::SeasonalNaiveWeekly,
        Model::SeasonalMeanWeekly,
        Model::HoltWintersDaily,
        Model::HoltWintersWeekly,
        Model::Mstl,
        Model::LinearRunRate,
    ];

    /// The models with a weekly season, whose means are candidates too.
    pub const WEEKLY: [Model; 4] = [
        Model::SeasonalNaiveWeekly,
        Model::SeasonalMeanWeekly,
        Model::HoltWintersWeekly,
        Model::Mstl,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Model::SeasonalNaiveDaily => "seasonal_naive_daily",
            Model::SeasonalNaiveWeekly => "seasonal_naive_weekly",
            Model::SeasonalMeanWeekly => "seasonal_mean_weekly",
            Model::HoltWintersDaily => "holt_winters_daily",
            Model::HoltWintersWeekly => "holt_winters_weekly",
            Model::Mstl => "mstl",
            Model::LinearRunRate => "linear_run_rate",
        }
    }

    /// The least history the model can be fitted on.
    pub fn min_history(self) -> usize {
        match self {
            Model::SeasonalNaiveDaily => DAY,
            Model::HoltWintersDaily => holt_winters::min_history(DAY),
            Model::SeasonalNaiveWeekly => WEEK,
            Model::SeasonalMeanWeekly => 2 * WEEK,
            Model::HoltWintersWeekly => holt_winters::min_history(WEEK),
            Model::Mstl => mstl::MIN_HISTORY,
            Model::LinearRunRate => 2,
        }
    }

    /// `horizon` values after `history` (never negative).
    pub fn forecast(self, history: &[f64], horizon: usize) -> Vec<f64> {
        let out = match self {
            Model::SeasonalNaiveDaily => seasonal_naive(history, DAY, horizon),
            Model::SeasonalNaiveWeekly => seasonal_naive(history, WEEK, horizon),
            Model::SeasonalMeanWeekly => seasonal_mean(history, WEEK, 4, horizon),
            Model::HoltWintersDaily => holt_winters::forecast(history, DAY, horizon),
            Model::HoltWintersWeekly => holt_winters::forecast(history, WEEK, horizon),
            // A series MSTL cannot fit is continued by its last week.
            Model::Mstl => mstl::forecast(history, horizon)
                .unwrap_or_else(|| seasonal_naive(history, WEEK, horizon)),
            Model::LinearRunRate => run_rate(history, horizon),
        };
        out.into_iter().map(|v| v.max(0.0)).collect()
    }
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

    #[test]
    fn mstl_continues_a_daily_and_weekly_season() {
        let shape = |t: usize| {
            let weekend = if (t / DAY) % 7 >= 5 { 0.6 } else { 1.0 };
            weekend * (100.0 + 40.0 * ((t % DAY) as f64 / DAY as f64 * std::f64::consts::TAU).sin())
        };
        let y: Vec<f64> = (0..4 * WEEK).map(shape).collect();
        let f = Model::Mstl.forecast(&y, 48);
        for (h, v) in f.iter().enumerate() {
            let expected = shape(4 * WEEK + h);
            assert!(
                (v - expected).abs() < 0.05 * expected,
                "{h}: {v} vs {expected}"
            );
        }
    }
}
