//! The marketplace leaderboard: capsules by runs, cost or revenue in
//! `[from, to)`, for one tenant or every tenant. Runs and cost come from
//! capsule runs; revenue is marketplace purchases minus refunds (USD only).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::error::{QueryError, StoreError};
use crate::money::usd;
use crate::store::{RollupForm, Store, Sum, SumQuery};

/// What the board is ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopBy {
    Runs,
    Cost,
    Revenue,
}

impl TopBy {
    pub const ALL: [(&'static str, TopBy); 3] = [
        ("runs", TopBy::Runs),
        ("cost", TopBy::Cost),
        ("revenue", TopBy::Revenue),
    ];

    /// `runs`, `cost` or `revenue`; anything else names the three.
    pub fn parse(text: &str) -> Result<TopBy, QueryError> {
        TopBy::ALL
            .iter()
            .find(|(n, _)| *n == text)
            .map(|(_, b)| *b)
            .ok_or_else(|| {
                QueryError::bad_param(
                    "invalid_by",
                    format!("by={text:?}: use runs, cost or revenue"),
                )
            })
    }
}

/// The `limit` capsules highest by `by` (ties by capsule id, so both
/// stores order alike), as `{capsule_id, runs, cost_usd, revenue_usd}`;
/// `tenant` `None` reads every tenant.
pub async fn top_capsules(
    store: &Store<'_>,
    tenant: Option<&str>,
    by: TopBy,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<Value>, StoreError> {
    let (runs, revenue) = (runs_query(from, to), revenue_query(from, to));
    let (runs, revenue) =
        tokio::try_join!(store.sums(&runs, tenant), store.sums(&revenue, tenant))?;
    // capsule → (runs, cost nanos, revenue nanos)
    let mut board: BTreeMap<String, (i128, i128, i128)> = BTreeMap::new();
    for r in &runs {
        let e = board.entry(r.group[0].clone()).or_default();
        e.0 += r.sums[0];
        e.1 += r.sums[1];
    }
    for r in &revenue {
        let e = board.entry(r.group[0].clone()).or_default();
        e.2 += (r.sums[0] - r.sums[1].abs()) * 10_000_000;
    }
    let mut rows: Vec<(String, (i128, i128, i128))> = board.into_iter().collect();
    let key = |v: &(i128, i128, i128)| match by {
        TopBy::Runs => v.0,
        TopBy::Cost => v.1,
        TopBy::Revenue => v.2,
    };
    // Highest first; ties by capsule id, so both stores order alike.
    rows.sort_by(|a, b| key(&b.1).cmp(&key(&a.1)).then_with(|| a.0.cmp(&b.0)));
    let top = rows
        .into_iter()
        .take(limit)
        .map(|(capsule, (runs, cost, revenue))| {
            json!({"capsule_id": capsule, "runs": runs as i64, "cost_usd": usd(cost), "revenue_usd": usd(revenue)})
        })
        .collect();
    Ok(top)
}

/// Capsule runs and their cost per capsule.
pub(crate) fn runs_query(from: DateTime<Utc>, to: DateTime<Utc>) -> SumQuery {
    let query = SumQuery {
        table: "capsule_executions",
        time_column: "event_time",
        from,
        to,
        bucket_secs: None,
        groups: vec!["capsule_id"],
        sums: vec![Sum::int("1"), Sum::decimal("cost_usd")],
        condition: None,
        rollup: None,
    };
    let form = RollupForm::for_activity(&query, "source = 'capsule_executions'");
    query.with_rollup(form)
}

/// Purchases and refunds (USD cents) per capsule.
pub(crate) fn revenue_query(from: DateTime<Utc>, to: DateTime<Utc>) -> SumQuery {
    let query = SumQuery {
        table: "marketplace_transactions",
        time_column: "event_time",
        from,
        to,
        bucket_secs: None,
        groups: vec!["capsule_id"],
        sums: vec![
            Sum::int("CASE WHEN tx_type = 'purchase' THEN amount_cents ELSE 0 END"),
            Sum::int("CASE WHEN tx_type = 'refund' THEN amount_cents ELSE 0 END"),
        ],
        condition: Some("currency = 'USD'"),
        rollup: None,
    };
    let form = RollupForm::for_activity(
        &query,
        "source = 'marketplace_transactions' AND currency = 'USD'",
    );
    query.with_rollup(form)
}
