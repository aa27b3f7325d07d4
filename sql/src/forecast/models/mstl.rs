//! MSTL (Bandara et al.): the series is split by repeated STL into a daily
//! and a weekly seasonal part, a trend and a remainder; AutoETS (the
//! non-seasonal ETS model with the least AICc) forecasts trend +
//! remainder, and each seasonal part repeats its last cycle. This is
//! statsmodels' `MSTL` with an ETS on the adjusted series, from the
//! `augurs` crates.

use augurs_ets::AutoETS;
use augurs_mstl::MSTLModel;

use super::super::{DAY, WEEK};

/// Two full weeks, so that STL sees the weekly season twice.
pub const MIN_HISTORY: usize = 2 * WEEK;

/// `horizon` values after `y`, or `None` when the model cannot be fitted
/// (too short, or a degenerate series the ETS search rejects).
pub fn forecast(y: &[f64], horizon: usize) -> Option<Vec<f64>> {
    use augurs_core::{Fit, Predict};
    // "AZN": additive error, no trend or an additive one (damped or not),
    // no season (the seasons are MSTL's). Multiplicative errors are left
    // out: their fits on series that touch zero are unstable.
    let trend = AutoETS::new(1, "AAN")
        .ok()?
        .damped(true)
        .ok()?
        .into_trend_model();
    let fitted = MSTLModel::new(vec![DAY, WEEK], trend).fit(y).ok()?;
    let forecast = fitted.predict(horizon, None).ok()?;
    Some(forecast.point)
}
