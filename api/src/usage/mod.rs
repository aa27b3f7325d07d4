//! `GET /v1/usage`: a meter over `[from, to)` in windows, grouped by
//! dimensions. Both stores answer through one plan ([`plan::UsagePlan`]):
//! each sums the meter per fine time bucket and group ([`lake`],
//! [`clickhouse`]), and [`windows`] folds the buckets into the requested
//! windows in the requested time zone, so the two can only differ if
//! their data does.

pub mod clickhouse;
pub mod lake;
pub mod plan;
pub mod request;
pub mod windows;

/// One store's sum for one bucket and group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketSum {
    /// Unix seconds of the bucket's start (a multiple of the plan's granularity).
    pub bucket_secs: i64,
    /// The group's values, in the plan's dimension order.
    pub group: Vec<String>,
    /// The meter: a count, or nano-USD for `cost_usd`.
    pub value: i128,
}

#[derive(Debug, thiserror::Error)]
pub enum UsageError {
    #[error("{0}")]
    Store(String),
    #[error("the store answered a value that is not a number: {0:?}")]
    BadValue(String),
}
