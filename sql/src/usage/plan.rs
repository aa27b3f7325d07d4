//! What both stores compute for a [`UsageQuery`]: which table, which
//! columns, what to sum, and how fine the time buckets are. The SQL each
//! store runs is built from this, in its own dialect.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::request::{Dim, Meter, UsageQuery, Window};
use crate::error::QueryError;
use crate::store::{RollupForm, Sum, SumQuery};

/// A usage question as table, columns and sums.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsagePlan {
    pub table: &'static str,
    /// The time column buckets are cut from.
    pub time_column: &'static str,
    /// Bucket size in seconds; windows are unions of whole buckets.
    pub granularity_secs: i64,
    /// One expression per group dimension, in the query's order; it is a
    /// plain column or `coalesce(column, '')`, valid in both dialects.
    pub group_columns: Vec<&'static str>,
    /// What is summed per row, valid in both dialects.
    pub value: &'static str,
    /// Whether the sum is money (nano-USD) rather than a count.
    pub is_money: bool,
}

impl UsagePlan {
    /// Usage comes from `usage_1m`, the window operator's per-minute sums.
    /// It has no user column, so grouping by user reads the conversations
    /// themselves (the same sums, one row per conversation); meters that
    /// are not conversations have no user to group by.
    pub fn for_query(query: &UsageQuery) -> Result<UsagePlan, QueryError> {
        let by_user = query.group_by.contains(&Dim::User);
        let (table, time_column) = if by_user {
            ("conversations", "event_time")
        } else {
            ("usage_1m", "window_start")
        };
        let value = match (query.meter, by_user) {
            (meter, false) => rollup_expr(meter),
            (Meter::Tokens, true) => "input_tokens + output_tokens",
            (Meter::InputTokens, true) => "input_tokens",
            (Meter::OutputTokens, true) => "output_tokens",
            // The producer's cost when it sent one, else ours: as billed.
            (Meter::CostUsd, true) => "coalesce(cost_usd, rated_cost_usd)",
            (Meter::Requests, true) => "1",
            (meter @ (Meter::CapsuleRuns | Meter::WorkflowSteps), true) => {
                return Err(QueryError::bad_param(
                    "invalid_group_by",
                    format!(
                        "{} have no user; group them by tenant, capsule, model or provider",
                        meter.name()
                    ),
                ));
            }
        };
        let group_columns = query
            .group_by
            .iter()
            .map(|dim| match (dim, by_user) {
                (Dim::Tenant, _) => "tenant_id",
                (Dim::User, _) => "user_id",
                (Dim::Model, _) => "model",
                (Dim::Provider, _) => "provider",
                (Dim::Capsule, false) => "capsule_id",
                (Dim::Capsule, true) => "coalesce(capsule_id, '')",
            })
            .collect();
        Ok(UsagePlan {
            table,
            time_column,
            granularity_secs: granularity_secs(query.window, query.tz),
            group_columns,
            value,
            is_money: query.meter == Meter::CostUsd,
        })
    }

    /// What a store sums for it over `query`'s range.
    pub fn sum_query(&self, query: &UsageQuery) -> SumQuery {
        let mut sums = SumQuery {
            table: self.table,
            time_column: self.time_column,
            from: query.from,
            to: query.to,
            bucket_secs: Some(self.granularity_secs),
            groups: self.group_columns.clone(),
            sums: vec![if self.is_money {
                Sum::decimal(self.value)
            } else {
                Sum::int(self.value)
            }],
            condition: None,
            rollup: None,
        };
        sums.rollup = RollupForm::for_usage(&sums);
        sums
    }
}

/// What `usage_1m` sums for `meter`.
fn rollup_expr(meter: Meter) -> &'static str {
    match meter {
        Meter::Tokens => "input_tokens + output_tokens",
        Meter::InputTokens => "input_tokens",
        Meter::OutputTokens => "output_tokens",
        Meter::CostUsd => "cost_usd",
        Meter::Requests => "requests",
        Meter::CapsuleRuns => "capsule_runs",
        Meter::WorkflowSteps => "workflow_steps",
    }
}

/// `meter` per tenant × hour over `[from, to)`, from `usage_1m`: the
/// series forecasts and anomaly scans work on.
pub fn hourly_by_tenant(meter: Meter, from: DateTime<Utc>, to: DateTime<Utc>) -> SumQuery {
    let expr = rollup_expr(meter);
    let mut query = SumQuery {
        table: "usage_1m",
        time_column: "window_start",
        from,
        to,
        bucket_secs: Some(3_600),
        groups: vec!["tenant_id"],
        sums: vec![if meter == Meter::CostUsd {
            Sum::decimal(expr)
        } else {
            Sum::int(expr)
        }],
        condition: None,
        rollup: None,
    };
    query.rollup = RollupForm::for_usage(&query);
    query
}

/// Minutes for minute windows; hours when every window edge is a UTC hour
/// (UTC); otherwise 15 minutes, the finest step of any zone's offset.
fn granularity_secs(window: Window, tz: Tz) -> i64 {
    match window {
        Window::Minute => 60,
        _ if tz == Tz::UTC => 3_600,
        _ => 900,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::request::UsageParams;

    fn plan(meter: &str, group_by: &str, window: &str, tz: &str) -> Result<UsagePlan, QueryError> {
        let q = UsageQuery::parse(&UsageParams {
            meter: Some(meter.into()),
            from: Some("2026-11-01T00:00:00Z".into()),
            to: Some("2026-11-02T00:00:00Z".into()),
            window: Some(window.into()),
            tz: Some(tz.into()),
            group_by: Some(group_by.into()),
            ..UsageParams::default()
        })?;
        UsagePlan::for_query(&q)
    }

    #[test]
    fn user_grouping_reads_conversations_and_other_grouping_the_rollup() {
        let p = plan("cost_usd", "model,user", "hour", "UTC").unwrap();
        assert_eq!((p.table, p.time_column), ("conversations", "event_time"));
        assert_eq!(p.group_columns, ["model", "user_id"]);
        assert!(p.is_money && p.value.contains("rated_cost_usd"));
        let p = plan("tokens", "capsule", "day", "Asia/Kolkata").unwrap();
        assert_eq!((p.table, p.granularity_secs), ("usage_1m", 900));
        assert_eq!(
            plan("requests", "", "minute", "UTC")
                .unwrap()
                .granularity_secs,
            60
        );
        assert_eq!(
            plan("requests", "", "month", "UTC")
                .unwrap()
                .granularity_secs,
            3_600
        );
        assert!(plan("capsule_runs", "user", "hour", "UTC").is_err());
    }
}
