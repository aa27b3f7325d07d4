//! The lake's compactor on a running node: while events arrive every
//! checkpoint (5 a second) and the compactor merges and deletes files, a
//! reader queries the lake in a loop and every answer is whole: no row twice
//! (count = distinct ids), none lost (the count never falls, and once every
//! event is committed the totals are exact on every query), through merges,
//! deletions and a SIGKILL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{Value, json};

use crate::support::{Somaflow, cloud_event_at, metric_sum, post_ndjson, sql};

/// Checkpoints and compactor passes fast, merges of 2 files, a folder
/// settled after 2 s, replaced files deleted 2 s after the switch.
const FAST: &[(&str, &str)] = &[
    ("SOMAFLOW_CHECKPOINT__INTERVAL_MS", "200"),
    ("SOMAFLOW_LAKE__COMPACTION_FANOUT", "2"),
    ("SOMAFLOW_LAKE__COMPACTION_SETTLE_SECS", "2"),
    ("SOMAFLOW_LAKE__COMPACTION_GRACE_SECS", "2"),
    ("SOMAFLOW_LAKE__COMPACTION_INTERVAL_MS", "100"),
    ("SOMAFLOW_SQL__TIMEOUT_MS", "1500"),
];

const BATCHES: i64 = 40;
const PER_BATCH: i64 = 50;

/// Rows, distinct event ids and the sum of input tokens of conversations.
async fn totals(base: &str) -> (i64, i64, i64) {
    let rows = sql(
        base,
        "SELECT count(*), count(DISTINCT event_id), coalesce(sum(input_tokens), 0) FROM conversations",
    )
    .await;
    let n = |v: &Value| {
        v.as_i64()
            .or_else(|| v.as_str()?.parse().ok())
            .unwrap_or(-1)
    };
    (n(&rows[0][0]), n(&rows[0][1]), n(&rows[0][2]))
}

/// Parquet files of conversations on disk (visible or waiting for deletion).
fn files_on_disk(node: &Somaflow) -> usize {
    fn walk(dir: &std::path::Path, n: &mut usize) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, n);
            } else if path.extension().is_some_and(|e| e == "parquet") {
                *n += 1;
            }
        }
    }
    let mut n = 0;
    walk(&node.data_dir.join("lake/conversations"), &mut n);
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_during_compaction_never_see_a_row_twice_or_miss_one() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Somaflow::start(dir.path(), FAST);
    node.wait_ready().await;
    let base = node.url();

    // Posted before the request is sent: a committed row is always counted.
    let posted = Arc::new(AtomicI64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (base, posted, done) = (base.clone(), posted.clone(), done.clone());
        tokio::spawn(async move {
            let (mut queries, mut last) = (0u32, 0i64);
            while !done.load(Ordering::SeqCst) {
                let bound = posted.load(Ordering::SeqCst);
                let (rows, distinct, _) = totals(&base).await;
                assert_eq!(
                    rows, distinct,
                    "a row counted twice after {queries} queries"
                );
                assert!(
                    rows >= last,
                    "rows went from {last} to {rows}: some were missed"
                );
                assert!(rows <= bound, "{rows} rows but only {bound} posted");
                last = rows;
                queries += 1;
            }
            queries
        })
    };

    // Three hours of event time, so three folders fill at once.
    let client = reqwest::Client::new();
    let now = chrono::Utc::now();
    let mut tokens = 0i64;
    for b in 0..BATCHES {
        let records: Vec<Bytes> = (0..PER_BATCH)
            .map(|i| {
                let n = b * PER_BATCH + i;
                tokens += n;
                let at = now - chrono::Duration::minutes(60 * (n % 3) + 1);
                cloud_event_at(
                    &format!("c-{n}"),
                    "acme",
                    "soma.conversation.v1",
                    at,
                    json!({"user_id": "u", "session_id": "s", "provider": "openai", "model": "gpt-4o",
                           "input_tokens": n, "output_tokens": 1, "cached_input_tokens": 0,
                           "reasoning_tokens": 0, "latency_ms": 1, "status": "ok"}),
                )
                .into()
            })
            .collect();
        posted.fetch_add(PER_BATCH, Ordering::SeqCst);
        let (status, body) = post_ndjson(&client, &base, &records).await.expect("POST");
        assert_eq!(status, 202, "{body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let total = BATCHES * PER_BATCH;
    let want = (total, total, tokens);
    node.wait_until(
        "every conversation committed",
        Duration::from_secs(30),
        || {
            let base = base.clone();
            async move { totals(&base).await.0 == total }
        },
    )
    .await;
    let merges_while_writing = metric_sum(&node, "somaflow_lake_compactions_total", "").await;

    // Every answer exact while folders settle, merge whole and old files go.
    let started = Instant::now();
    let mut answers = 0;
    loop {
        assert_eq!(
            totals(&base).await,
            want,
            "answer {answers} after every commit"
        );
        answers += 1;
        let deleted = metric_sum(&node, "somaflow_lake_files_deleted_total", "").await;
        if deleted > 0.0 && files_on_disk(&node) == 3 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(40),
            "the three folders did not end as one file each: {} files, {deleted} deleted; logs:\n{}",
            files_on_disk(&node),
            node.logs()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    done.store(true, Ordering::SeqCst);
    let queries = reader.await.expect("the reader's checks");
    assert!(merges_while_writing >= 1.0, "merges happened while writing");
    assert!(queries >= 10, "the reader ran {queries} queries");
    let merged = metric_sum(&node, "somaflow_lake_files_merged_total", "").await;
    eprintln!(
        "{queries} queries while writing, {answers} after; {merges_while_writing} merges while writing, {merged} files merged"
    );

    // A SIGKILL and a restart: the newest checkpoint's files, merged since,
    // roll forward without error, and the answers stay exact.
    node.restart();
    node.wait_ready().await;
    assert_eq!(totals(&base).await, want, "after a SIGKILL");
    assert_eq!(files_on_disk(&node), 3);
}
