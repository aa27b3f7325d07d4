//! Round trip: generated events posted over HTTP are all queryable by SQL,
//! with exactly the per-kind counts and sums the generator reports.

use std::time::Duration;

use somaflow_sources::generator::{Generator, GeneratorConfig, ProduceOptions, produce_http};

use crate::support::{Somaflow, sql_number};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_events_come_back_with_exact_counts_and_sums() {
    let dir = tempfile::tempdir().unwrap();
    let node = Somaflow::start(dir.path(), &[("SOMAFLOW_CHECKPOINT__INTERVAL_MS", "500")]);
    node.wait_ready().await;
    let base = node.url();

    let mut generator = Generator::new(GeneratorConfig {
        seed: 7,
        ..Default::default()
    });
    let opts = ProduceOptions {
        batch: 500,
        rate: None,
        count: Some(20_000),
        duration: None,
        concurrency: 4,
        history_days: Some(3),
    };
    let report = produce_http(&mut generator, &base, &opts, |_| {})
        .await
        .expect("produce");
    let stats = report.stats;
    assert_eq!(stats.emitted, 20_000);
    assert!(
        stats.malformed > 0 && stats.duplicates > 0,
        "the run exercises bad and repeated input"
    );
    assert_eq!(
        report.rejected, stats.malformed,
        "HTTP refuses exactly the malformed records"
    );

    // Everything valid lands once; duplicates are dropped, malformed go to dead letters.
    let expected_rows: u64 = stats.valid;
    node.wait_until("all valid events in the lake", Duration::from_secs(60), || {
        let base = base.clone();
        async move {
            let q = "SELECT (SELECT count(*) FROM conversations) + (SELECT count(*) FROM policy_decisions) + (SELECT count(*) FROM capsule_executions) + (SELECT count(*) FROM workflow_executions) + (SELECT count(*) FROM marketplace_transactions) + (SELECT count(*) FROM billing_events)";
            sql_number(&base, q).await >= i128::from(expected_rows)
        }
    })
    .await;

    for (table, k) in &stats.kinds {
        let count = sql_number(&base, &format!("SELECT count(*) FROM {table}")).await;
        let distinct = sql_number(
            &base,
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
        let got = sql_number(&base, &format!("SELECT sum({column}) FROM conversations")).await;
        assert_eq!(got, i128::from(expected), "sum of conversations.{column}");
    }
    let runs = &stats.kinds["capsule_executions"];
    assert_eq!(
        sql_number(&base, "SELECT sum(tokens) FROM capsule_executions").await,
        i128::from(runs.tokens)
    );
    let tx = &stats.kinds["marketplace_transactions"];
    assert_eq!(
        sql_number(
            &base,
            "SELECT sum(amount_cents) FROM marketplace_transactions"
        )
        .await,
        i128::from(tx.amount_cents)
    );
    let billing = &stats.kinds["billing_events"];
    let nanos = sql_number(
        &base,
        "SELECT CAST(sum(quantity) * 1000000000 AS BIGINT) FROM billing_events",
    )
    .await;
    assert_eq!(
        nanos, billing.quantity_nanos,
        "billing quantity, exact to the nano-unit"
    );

    let dead = sql_number(&base, "SELECT count(*) FROM dead_letters").await;
    assert_eq!(
        dead,
        i128::from(stats.malformed),
        "every malformed record is a dead letter"
    );
    let unexplained = sql_number(
        &base,
        "SELECT count(*) FROM dead_letters WHERE reason = '' OR length(raw) = 0",
    )
    .await;
    assert_eq!(
        unexplained, 0,
        "dead letters keep their raw bytes and a reason"
    );
    // The metrics tell the same story.
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let value = |series: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(series))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{series} not in /metrics"))
    };
    assert_eq!(
        value(r#"somaflow_dead_letters_total{node="decode",stage="decode"}"#),
        stats.malformed as f64
    );
    assert_eq!(
        value(r#"somaflow_duplicates_dropped_total{node="dedup"}"#),
        stats.duplicates as f64
    );
    assert_eq!(
        value(r#"somaflow_events_in_total{node="decode"}"#),
        stats.emitted as f64
    );
    assert!(value("somaflow_checkpoint_duration_seconds_count") >= 1.0);
    assert!(value(r#"somaflow_sink_flush_duration_seconds_count{node="lake"}"#) >= 1.0);

    // Partitions are columns, and event times spread over the history window.
    let days = sql_number(&base, "SELECT count(DISTINCT date) FROM conversations").await;
    assert!(
        days >= 3,
        "three days of history span at least three date partitions, got {days}"
    );
}
