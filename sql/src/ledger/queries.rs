//! The sums a ledger is built from, one [`SumQuery`] each, over a month.
//! Every query groups by tenant first, so one run answers one tenant or,
//! for the export, all of them.

use chrono::{DateTime, Utc};
use somaflow_pipeline::events::schema::USAGE_ROLLUPS;

use crate::store::{RollupForm, Sum, SumQuery};

/// Conversations somaflow rated (no producer cost): token quantities per
/// model × price × rate card, one per rate dimension in
/// [`Dimension::ALL`](somaflow_operators::accounting::Dimension::ALL)'s
/// order (each token counted once), then requests. Cache-write counts are
/// null in files written before them: 0.
pub fn rated(from: DateTime<Utc>, to: DateTime<Utc>) -> SumQuery {
    let sums = |requests: &'static str| {
        vec![
            Sum::int(
                "input_tokens - cached_input_tokens - coalesce(cache_creation_input_tokens, 0)",
            ),
            Sum::int("cached_input_tokens"),
            Sum::int(
                "coalesce(cache_creation_input_tokens, 0) \
                 - coalesce(cache_creation_1h_input_tokens, 0)",
            ),
            Sum::int("coalesce(cache_creation_1h_input_tokens, 0)"),
            Sum::int("output_tokens - reasoning_tokens"),
            Sum::int("reasoning_tokens"),
            Sum::int(requests),
        ]
    };
    SumQuery {
        table: "conversations",
        time_column: "event_time",
        from,
        to,
        bucket_secs: None,
        groups: vec![
            "tenant_id",
            "model",
            "provider",
            "coalesce(price_id, '')",
            "coalesce(price_tier, '')",
        ],
        sums: sums("1"),
        condition: Some("cost_usd IS NULL"),
        rollup: Some(RollupForm {
            family: &USAGE_ROLLUPS,
            groups: vec![
                "tenant_id",
                "model",
                "provider",
                "price_id",
                "coalesce(price_tier, '')",
            ],
            sums: sums("requests"),
            condition: Some("cost_from = 'rated'"),
        }),
    }
}

/// Conversations whose producer sent a cost: billed at that cost.
pub fn reported(from: DateTime<Utc>, to: DateTime<Utc>) -> SumQuery {
    SumQuery {
        table: "conversations",
        time_column: "event_time",
        from,
        to,
        bucket_secs: None,
        groups: vec!["tenant_id", "model", "provider"],
        sums: vec![Sum::int("1"), Sum::decimal("cost_usd")],
        condition: Some("cost_usd IS NOT NULL"),
        rollup: Some(RollupForm {
            family: &USAGE_ROLLUPS,
            groups: vec!["tenant_id", "model", "provider"],
            sums: vec![Sum::int("requests"), Sum::decimal("cost_usd")],
            condition: Some("cost_from = 'producer'"),
        }),
    }
}

/// Capsule runs per capsule, at the cost each run reported.
pub fn capsule_runs(from: DateTime<Utc>, to: DateTime<Utc>) -> SumQuery {
    let query = SumQuery {
        table: "capsule_executions",
        time_column: "event_time",
        from,
        to,
        bucket_secs: None,
        groups: vec!["tenant_id", "capsule_id"],
        sums: vec![Sum::int("1"), Sum::decimal("cost_usd")],
        condition: None,
        rollup: None,
    };
    let form = RollupForm::for_activity(&query, "source = 'capsule_executions'");
    query.with_rollup(form)
}

/// Marketplace transactions per capsule × type × author.
pub fn marketplace(from: DateTime<Utc>, to: DateTime<Utc>) -> SumQuery {
    let query = SumQuery {
        table: "marketplace_transactions",
        time_column: "event_time",
        from,
        to,
        bucket_secs: None,
        groups: vec![
            "tenant_id",
            "capsule_id",
            "tx_type",
            "author_id",
            "currency",
        ],
        sums: vec![Sum::int("1"), Sum::int("amount_cents")],
        condition: None,
        rollup: None,
    };
    let form = RollupForm::for_activity(&query, "source = 'marketplace_transactions'");
    query.with_rollup(form)
}

/// Usage reported directly, per meter × unit.
pub fn billing(from: DateTime<Utc>, to: DateTime<Utc>) -> SumQuery {
    let query = SumQuery {
        table: "billing_events",
        time_column: "event_time",
        from,
        to,
        bucket_secs: None,
        groups: vec!["tenant_id", "meter", "unit"],
        sums: vec![Sum::int("1"), Sum::decimal("quantity")],
        condition: None,
        rollup: None,
    };
    let form = RollupForm::for_activity(&query, "source = 'billing_events'");
    query.with_rollup(form)
}
