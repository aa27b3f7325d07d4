//! HTTP routes, one file per area.

pub mod alerts;
pub mod billing;
pub mod budgets;
pub mod capsules;
pub mod dispatch;
pub mod events;
pub mod forecasts;
pub mod health;
pub mod kamachiq;
pub mod ledgers;
pub mod me;
pub mod metadata;
pub mod sql;
pub mod usage;
