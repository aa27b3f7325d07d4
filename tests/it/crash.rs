//! Crash safety: SIGKILL `somaflow run` at random moments while a client
//! posts continuously (retrying until it gets an answer, as a producer
//! must); afterwards every acknowledged event is in the lake exactly once
//! and every refused one is in dead letters with its reason.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use rand::{Rng, SeedableRng};
use serde_json::Value;

use crate::support::{Somaflow, conversation, post_ndjson, sql, sql_number};

#[derive(Default)]
struct Ledger {
    acked: HashSet<String>,
    refused: HashSet<String>,
}

/// Posts batches until `stop`; a batch is retried until the server answers,
/// so every event ends up either acknowledged (202) or refused (in `rejected`).
async fn producer(
    base: String,
    ledger: Arc<Mutex<Ledger>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> u32 {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let mut batch_no = 0u32;
    let mut failures = 0u32;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        batch_no += 1;
        let mut records = Vec::new();
        let mut ids = Vec::new();
        for i in 0..50 {
            let id = format!("b{batch_no}-e{i}");
            // Every 25th record is invalid: cached tokens above input tokens.
            let record = if i % 25 == 24 {
                conversation(&id, "tenant-crash", 10)
                    .replace("\"cached_input_tokens\":0", "\"cached_input_tokens\":99")
            } else {
                conversation(&id, "tenant-crash", 10 + i)
            };
            records.push(Bytes::from(record));
            ids.push(id);
        }
        loop {
            match post_ndjson(&client, &base, &records).await {
                Ok((202, answer)) => {
                    let rejected: HashSet<usize> = answer["rejected"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|r| r["index"].as_u64().unwrap() as usize)
                        .collect();
                    let mut l = ledger.lock().unwrap();
                    for (i, id) in ids.iter().enumerate() {
                        if rejected.contains(&i) {
                            l.refused.insert(id.clone());
                        } else {
                            l.acked.insert(id.clone());
                        }
                    }
                    break;
                }
                Ok((status, answer)) if status < 500 => {
                    panic!("unexpected answer {status}: {answer}")
                }
                _ => {
                    // Server down (killed) or mid-restart: the batch may or
                    // may not have landed; send it again, dedup makes it once.
                    failures += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    failures
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut node = Somaflow::start(
        dir.path(),
        &[
            ("SOMAFLOW_CHECKPOINT__INTERVAL_MS", "300"),
            // Small segments, so restarts also cross segment deletion.
            ("SOMAFLOW_LOG__SEGMENT_BYTES", "65536"),
        ],
    );
    node.wait_ready().await;
    let base = node.url();

    let ledger = Arc::new(Mutex::new(Ledger::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let producing = tokio::spawn(producer(base.clone(), ledger.clone(), stop.clone()));

    let mut rng = rand::rngs::StdRng::seed_from_u64(2026);
    let kills = 6;
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..1500))).await;
        node.restart();
        node.wait_ready().await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let failures = producing.await.unwrap();
    let (acked, refused) = {
        let l = ledger.lock().unwrap();
        (l.acked.clone(), l.refused.clone())
    };
    assert!(
        acked.len() > 1000,
        "the stream kept flowing: {} acknowledged",
        acked.len()
    );
    assert!(
        failures > 0,
        "at least one request met a dead server, so the kills were real"
    );

    let expected = acked.len() as i128;
    node.wait_until(
        "every acknowledged event in the lake",
        Duration::from_secs(60),
        || {
            let base = base.clone();
            async move { sql_number(&base, "SELECT count(*) FROM conversations").await >= expected }
        },
    )
    .await;
    // One more checkpoint interval: nothing beyond the acknowledged set arrives.
    tokio::time::sleep(Duration::from_millis(1000)).await;

    let count = sql_number(&base, "SELECT count(*) FROM conversations").await;
    let distinct = sql_number(&base, "SELECT count(DISTINCT event_id) FROM conversations").await;
    assert_eq!(
        count,
        expected,
        "row count equals acknowledged events\n{}",
        node.logs()
    );
    assert_eq!(distinct, expected, "no event_id twice");
    let ids: HashSet<String> = sql(&base, "SELECT event_id FROM conversations")
        .await
        .into_iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, acked, "the lake holds exactly the acknowledged events");

    let dead: Vec<Vec<Value>> =
        sql(&base, "SELECT DISTINCT event_id, reason FROM dead_letters").await;
    let dead_ids: HashSet<String> = dead
        .iter()
        .map(|r| r[0].as_str().unwrap().to_string())
        .collect();
    assert!(
        refused.is_subset(&dead_ids),
        "every refused event is a dead letter"
    );
    assert!(
        dead_ids.is_subset(&refused),
        "nothing else is a dead letter"
    );
    assert!(
        dead.iter()
            .all(|r| r[1].as_str().unwrap().contains("cached_input_tokens")),
        "with its reason"
    );

    let status = node.terminate();
    assert!(
        status.success(),
        "SIGTERM shuts down cleanly: {status:?}\n{}",
        node.logs()
    );
}
