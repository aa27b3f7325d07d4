//! Round trip: generated events posted over HTTP are all queryable by SQL,
//! with exactly the per-kind counts and sums the generator reports.

use std::time::Duration;

use somaflow::generator::{Generator, GeneratorConfig, ProduceOptions, produce_http};

use crate::support::{Somaflow, assert_lake_matches, sql_number};

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
        token: None,
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

    assert_lake_matches(&base, &stats).await;
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
    // Decode also reads the log's idle ticks (records, never events), which
    // are counted apart so the events can be told from them.
    assert_eq!(
        value(r#"somaflow_events_in_total{node="decode"}"#)
            - value(r#"somaflow_idle_ticks_total{node="decode"}"#),
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
