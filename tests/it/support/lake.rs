//! Assertions on the lake against the generator's report.

use std::time::Duration;

use somaflow::generator::GeneratorStats;

use super::{Somaflow, sql_number};

/// Asserts the lake holds exactly what the generator reports: per kind, the
/// row count, one row per event id, and the token / amount / quantity sums;
/// every malformed record as one dead letter with its raw bytes and reason.
pub async fn assert_lake_matches(base: &str, stats: &GeneratorStats) {
    for (table, k) in &stats.kinds {
        let count = sql_number(base, &format!("SELECT count(*) FROM {table}")).await;
        let distinct = sql_number(
            base,
            &format!("SELECT count(DISTINCT event_id) FROM {table}"),
        )
        .await;
        assert_eq!(count, i128::from(k.count), "{table}: row count");
        assert_eq!(distinct, count, "{table}: no duplicate event_id");
    }
    let conv = &stats.kinds["conversations"];
    for (column, expected) in [
        ("input_tokens", conv.input_tokens),
        ("output_tokens", conv.output_tokens),
        ("cached_input_tokens", conv.cached_input_tokens),
        ("reasoning_tokens", conv.reasoning_tokens),
    ] {
        let got = sql_number(base, &format!("SELECT sum({column}) FROM conversations")).await;
        assert_eq!(got, i128::from(expected), "sum of conversations.{column}");
    }
    assert_eq!(
        sql_number(base, "SELECT sum(tokens) FROM capsule_executions").await,
        i128::from(stats.kinds["capsule_executions"].tokens),
        "sum of capsule_executions.tokens"
    );
    assert_eq!(
        sql_number(
            base,
            "SELECT sum(amount_cents) FROM marketplace_transactions"
        )
        .await,
        i128::from(stats.kinds["marketplace_transactions"].amount_cents),
        "sum of marketplace_transactions.amount_cents"
    );
    let nanos = sql_number(
        base,
        "SELECT CAST(sum(quantity) * 1000000000 AS BIGINT) FROM billing_events",
    )
    .await;
    assert_eq!(
        nanos, stats.kinds["billing_events"].quantity_nanos,
        "billing quantity, exact to the nano-unit"
    );
    let dead = sql_number(base, "SELECT count(*) FROM dead_letters").await;
    assert_eq!(
        dead,
        i128::from(stats.malformed),
        "every malformed record is one dead letter"
    );
    let distinct_origins = sql_number(
        base,
        "SELECT count(*) FROM (SELECT DISTINCT source_topic, source_partition, source_offset FROM dead_letters)",
    )
    .await;
    assert_eq!(distinct_origins, dead, "no dead letter twice");
    let unexplained = sql_number(
        base,
        "SELECT count(*) FROM dead_letters WHERE reason = '' OR length(raw) = 0",
    )
    .await;
    assert_eq!(
        unexplained, 0,
        "dead letters keep their raw bytes and a reason"
    );
}

/// Rows of every event table together.
pub async fn lake_event_rows(base: &str) -> i128 {
    sql_number(
        base,
        "SELECT (SELECT count(*) FROM conversations) + (SELECT count(*) FROM policy_decisions) + (SELECT count(*) FROM capsule_executions) + (SELECT count(*) FROM workflow_executions) + (SELECT count(*) FROM marketplace_transactions) + (SELECT count(*) FROM billing_events)",
    )
    .await
}

/// Waits until the lake has every valid event and dead letter the producer
/// reported, then one checkpoint interval more (a late duplicate would show),
/// and checks it exactly.
pub async fn assert_lake_settles_to(node: &Somaflow, stats: &GeneratorStats, within: Duration) {
    let base = node.url();
    let expected = i128::from(stats.valid);
    let malformed = i128::from(stats.malformed);
    node.wait_until("every produced event in the lake", within, || {
        let base = base.clone();
        async move {
            lake_event_rows(&base).await >= expected
                && sql_number(&base, "SELECT count(*) FROM dead_letters").await >= malformed
        }
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_lake_matches(&base, stats).await;
}
