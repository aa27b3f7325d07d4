//! Forecasts and anomaly scans on hourly series (one tenant × meter).
//!
//! Candidate models ([`models`]): seasonal naive (daily and weekly season),
//! a weekly seasonal mean, Holt-Winters (additive, daily and weekly
//! season), and a linear run-rate for short histories. [`select`] picks
//! one per series by a rolling-origin backtest on the series' own history
//! and takes prediction intervals from the backtest residuals; [`anomaly`]
//! flags the hours outside the chosen model's 99% interval.
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
