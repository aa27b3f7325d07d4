//! HTTP routes, one file per area.

pub mod budgets;
pub mod events;
pub mod forecasts;
pub mod health;
pub mod ledgers;
pub mod sql;
pub mod usage;
