//! `GET /v1/usage`: a meter over `[from, to)` in windows, grouped by
//! dimensions. [`plan::UsagePlan`] turns the question into one
//! [`crate::store::SumQuery`] (the meter per fine time bucket and group),
//! which either store answers; [`windows`] folds the buckets into the
//! requested windows in the requested time zone.

pub mod plan;
pub mod request;
pub mod windows;
