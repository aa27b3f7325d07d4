//! Forecasts and anomaly scans on hourly series (one tenant × meter).
//!
//! Models ([`models`]): seasonal naive (daily and weekly season), a weekly
//! seasonal median, Holt-Winters (additive, damped, optimised weights;
//! daily and weekly season), MSTL with AutoETS (`augurs`), and a linear
//! run-rate for short histories. [`select`] backtests each model and each
//! mean of the weekly ones on the series' own history, forecasts the
//! inverse-error-weighted mean of the best three (decision 0106), and
//! takes prediction intervals from that mean's backtest residuals;
//! [`anomaly`] flags the hours outside its 99% interval.
//!
//! Residuals are measured on the square root of the values: usage counts
//! behave like Poisson counts, whose spread grows with the level, and the
//! root makes it nearly constant, so one interval width fits busy
//! afternoons and quiet nights alike.

pub mod anomaly;
pub mod models;
pub mod select;
pub mod usage;

pub use anomaly::{Direction, Flag, MIN_CHANGE_PERCENT, scan};
pub use models::Model;
pub use select::{Backtest, COUNT_MIN_SIGMA, Forecast, Point, forecast};

/// Hours in a day and in a week: the two seasons.
pub const DAY: usize = 24;
pub const WEEK: usize = 168;
