//! KAMACHIQ workflow runs of a tenant in `[from, to)`.
//!
//! A run is the steps sharing a `run_id`; a step is done when one of its
//! attempts succeeded, and a run succeeded when all its steps seen so far
//! did. Duration is the sum of the run's step durations (every attempt);
//! retries are attempts beyond the first. Auto-approval is the share of
//! scored steps with `quality_score ≥ 0.8`. Spend per run is the tenant's
//! billed LLM spend in the range over its runs (conversations carry no
//! run id, so this is an allocation, not a measurement per run).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::error::StoreError;
use crate::money::usd;
use crate::store::{RollupForm, Store, Sum, SumQuery, SumRow};

/// The summary of `tenant`'s runs in `[from, to)` from `store`.
pub async fn summary(
    store: &Store<'_>,
    tenant: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Value, StoreError> {
    let (step_query, spend_query) = (steps(from, to), spend(from, to));
    let (rows, spent) = tokio::try_join!(
        store.sums(&step_query, Some(tenant)),
        store.sums(&spend_query, Some(tenant)),
    )?;
    let spend_nanos = spent.iter().filter_map(|r| r.sums.first()).sum();
    Ok(summarize(&rows, spend_nanos))
}

/// One row per (tenant, run, step): attempts, successes, duration,
/// approvals, scored.
pub(crate) fn steps(from: DateTime<Utc>, to: DateTime<Utc>) -> SumQuery {
    SumQuery {
        table: "workflow_executions",
        time_column: "event_time",
        from,
        to,
        bucket_secs: None,
        groups: vec!["tenant_id", "run_id", "step_id"],
        sums: vec![
            Sum::int("1"),
            Sum::int("CASE WHEN status = 'succeeded' THEN 1 ELSE 0 END"),
            Sum::int("duration_ms"),
            Sum::int("CASE WHEN quality_score >= 0.8 THEN 1 ELSE 0 END"),
            Sum::int("CASE WHEN quality_score IS NULL THEN 0 ELSE 1 END"),
        ],
        condition: None,
        rollup: None,
    }
}

/// The tenant's billed spend in the range.
pub(crate) fn spend(from: DateTime<Utc>, to: DateTime<Utc>) -> SumQuery {
    let mut query = SumQuery {
        table: "usage_1m",
        time_column: "window_start",
        from,
        to,
        bucket_secs: None,
        groups: vec!["tenant_id"],
        sums: vec![Sum::decimal("cost_usd")],
        condition: None,
        rollup: None,
    };
    query.rollup = RollupForm::for_usage(&query);
    query
}

#[derive(Debug, Default)]
struct Run {
    steps: i64,
    done_steps: i64,
    attempts: i64,
    duration_ms: i64,
}

/// The summary of one tenant's step rows and spend.
pub fn summarize(rows: &[SumRow], spend_nanos: i128) -> Value {
    let mut runs: BTreeMap<&str, Run> = BTreeMap::new();
    let (mut approved, mut scored) = (0i64, 0i64);
    for row in rows {
        let v = |i: usize| {
            row.sums
                .get(i)
                .and_then(|x| i64::try_from(*x).ok())
                .unwrap_or(0)
        };
        let run = runs
            .entry(row.group.get(1).map_or("", String::as_str))
            .or_default();
        run.steps += 1;
        run.done_steps += i64::from(v(1) > 0);
        run.attempts += v(0);
        run.duration_ms += v(2);
        approved += v(3);
        scored += v(4);
    }
    let count = runs.len() as i64;
    let succeeded = runs.values().filter(|r| r.done_steps == r.steps).count() as i64;
    let mut durations: Vec<i64> = runs.values().map(|r| r.duration_ms).collect();
    durations.sort_unstable();
    let steps: i64 = runs.values().map(|r| r.steps).sum();
    let retries: i64 = runs.values().map(|r| r.attempts - r.steps).sum();
    let ratio = |a: i64, b: i64| {
        if b == 0 {
            None
        } else {
            Some(a as f64 / b as f64)
        }
    };
    json!({
        "runs": count,
        "succeeded_runs": succeeded,
        "success_rate": ratio(succeeded, count),
        "duration_ms_p50": nearest_rank(&durations, 50.0),
        "duration_ms_p95": nearest_rank(&durations, 95.0),
        "steps_per_run": ratio(steps, count),
        "retries": retries,
        "auto_approval_rate": ratio(approved, scored),
        "spend_usd": usd(spend_nanos),
        "spend_per_run_usd": (count > 0).then(|| usd(spend_nanos / i128::from(count))),
    })
}

/// The nearest-rank percentile of sorted values.
fn nearest_rank(sorted: &[i64], p: f64) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(run: &str, step: &str, sums: &[i128]) -> SumRow {
        SumRow {
            bucket_secs: 0,
            group: vec!["t".into(), run.into(), step.into()],
            sums: sums.to_vec(),
        }
    }

    #[test]
    fn runs_steps_retries_and_approval_add_up() {
        let rows = [
            // run a: two steps done, one retried.
            step("a", "s1", &[2, 1, 300, 1, 1]),
            step("a", "s2", &[1, 1, 100, 0, 1]),
            // run b: one step failed.
            step("b", "s1", &[1, 0, 50, 0, 0]),
        ];
        let s = summarize(&rows, 3_000_000_000);
        assert_eq!(s["runs"], json!(2));
        assert_eq!(s["success_rate"], json!(0.5));
        assert_eq!(s["duration_ms_p50"], json!(50));
        assert_eq!(s["duration_ms_p95"], json!(400));
        assert_eq!(s["steps_per_run"], json!(1.5));
        assert_eq!(s["retries"], json!(1));
        assert_eq!(s["auto_approval_rate"], json!(0.5));
        assert_eq!(s["spend_per_run_usd"], json!("1.500000000"));
    }
}
