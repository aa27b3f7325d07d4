//! Backpressure: with the Parquet sink throttled (`lake.max_rows_per_sec`),
//! ingest keeps being accepted, the pipeline moves at the throttled rate,
//! memory stays bounded while the backlog waits on disk, nothing is dropped.

use std::time::{Duration, Instant};

use bytes::Bytes;

use crate::support::{Somaflow, committed_rows, conversation, post_ndjson, sql_number};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_sink_slows_the_pipeline_without_growing_memory_or_losing_rows() {
    const EVENTS: usize = 75_000;
    const RATE: usize = 5_000;
    const PER_REQUEST: usize = 500;
    let dir = tempfile::tempdir().unwrap();
    let node = Somaflow::start(
        dir.path(),
        &[
            ("SOMAFLOW_LAKE__MAX_ROWS_PER_SEC", "5000"),
            ("SOMAFLOW_PIPELINE__BATCH_ROWS", "256"),
            ("SOMAFLOW_PIPELINE__CHANNEL_ROWS", "512"),
            ("SOMAFLOW_CHECKPOINT__INTERVAL_MS", "1000"),
            ("SOMAFLOW_LAKE__MAX_BUFFER_MIB", "8"),
            // What is measured is whether the pipeline buffers its
            // backlog. The compactor's merges hold memory of their own
            // (bounded by lake.compaction_memory_mib, not by the backlog),
            // which on these 8 KiB rows would blur that.
            ("SOMAFLOW_LAKE__COMPACTION", "false"),
        ],
    );
    node.wait_ready().await;
    let base = node.url();
    let baseline_kib = node.rss_kib();

    // 8 KiB of message text per event: the backlog (~600 MiB of JSON) dwarfs
    // what bounded channels and capped sink buffers may hold.
    let text = "lorem ipsum dolor sit amet ".repeat(300);
    let client = reqwest::Client::new();
    let started = Instant::now();
    let mut peak_kib = baseline_kib;
    let mut backlog_bytes = 0usize;
    for chunk in 0..EVENTS / PER_REQUEST {
        let records: Vec<Bytes> = (0..PER_REQUEST)
            .map(|i| {
                let event = conversation(
                    &format!("bp-{chunk}-{i}"),
                    &format!("tenant-{}", i % 50),
                    100,
                );
                Bytes::from(event.replace(
                    r#""status":"ok""#,
                    &format!(r#""status":"ok","message":"{text}""#),
                ))
            })
            .collect();
        backlog_bytes += records.iter().map(|r| r.len()).sum::<usize>();
        let (status, answer) = post_ndjson(&client, &base, &records).await.unwrap();
        assert_eq!(status, 202, "{answer}");
        assert_eq!(answer["accepted"], PER_REQUEST);
        peak_kib = peak_kib.max(node.rss_kib());
        // The throttle is a ceiling: never more than the rate allows (plus
        // one second of burst), however fast or slow this machine is.
        let committed = committed_rows(&base, "conversations").await;
        let ceiling = (started.elapsed().as_secs_f64() + 1.0) * RATE as f64;
        assert!(
            committed as f64 <= ceiling,
            "{committed} rows committed, the throttle allows {ceiling:.0}"
        );
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let min_secs = EVENTS as f64 / RATE as f64;

    node.wait_until(
        "the throttled sink to drain the backlog",
        Duration::from_secs(120),
        || {
            let base = base.clone();
            let rss = node.rss_kib();
            peak_kib = peak_kib.max(rss);
            // Progress from /metrics, not SQL: the query engine's caches would
            // blur what this test measures, the pipeline's own memory.
            async move { committed_rows(&base, "conversations").await == EVENTS as u64 }
        },
    )
    .await;
    let drain_secs = started.elapsed().as_secs_f64();
    assert!(
        drain_secs >= min_secs * 0.9,
        "{EVENTS} rows at {RATE} rows/s take at least {min_secs:.0}s; done in {drain_secs:.1}s means the throttle did not hold"
    );
    let growth_mib = (peak_kib.saturating_sub(baseline_kib)) / 1024;
    let backlog_mib = backlog_bytes / (1024 * 1024);
    eprintln!(
        "backpressure: backlog {backlog_mib} MiB, RSS baseline {} MiB, peak {} MiB, ingest {ingest_secs:.1}s, drained {drain_secs:.1}s",
        baseline_kib / 1024,
        peak_kib / 1024
    );
    // Holding the backlog would take more than its size in memory; bounded
    // channels and capped sink buffers keep the peak to a fraction of it.
    assert!(
        growth_mib < (backlog_mib / 3) as u64,
        "memory grew by {growth_mib} MiB for a {backlog_mib} MiB backlog: something buffers it"
    );
    let distinct = sql_number(&base, "SELECT count(DISTINCT event_id) FROM conversations").await;
    assert_eq!(distinct, EVENTS as i128, "nothing dropped, nothing doubled");
}
