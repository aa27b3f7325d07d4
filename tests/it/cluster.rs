//! Cluster mode against the real broker (tansu) and ClickHouse: Kafka →
//! decode → dedup → lake and ClickHouse, exactly once through worker crashes, a stalled broker, a killed
//! broker and consumer-group rebalances; HTTP ingest through Kafka.

use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::Value;

use crate::support::{
    ClusterScenario, FAST_CHECKPOINTS, PrivateBroker, Somaflow, assert_clickhouse_matches,
    assert_clickhouse_settles_to, assert_lake_settles_to, conversation, kafka_broker, kafka_serial,
    lake_event_rows, metric_series, post_ndjson, producer_report, ready, sql, sql_number,
};

/// `(topic, partition) → lag` from `/metrics`.
async fn lags(node: &Somaflow, prefix: &str) -> Vec<(String, f64)> {
    metric_series(node, "somaflow_kafka_consumer_lag", prefix).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produced_events_reach_the_lake_exactly_once_with_the_producers_totals() {
    let _serial = kafka_serial().await;
    let brokers = kafka_broker();
    let scenario = ClusterScenario::new(&brokers, 4);
    let producer = scenario.produce(&["--count", "30000", "--seed", "21", "--history-days", "2"]);
    let worker = scenario.worker("w1", &[FAST_CHECKPOINTS]);
    worker.wait_ready().await;
    let report = producer_report(producer);
    assert_eq!(
        report.accepted, 30_000,
        "the broker acknowledged every record"
    );
    assert!(report.stats.malformed > 0 && report.stats.duplicates > 0);

    assert_lake_settles_to(&worker, &report.stats, Duration::from_secs(120)).await;
    assert_clickhouse_settles_to(&scenario.clickhouse, &report.stats, Duration::from_secs(60))
        .await;

    // Lag per partition: every partition of every kind topic, drained to 0.
    worker
        .wait_until(
            "consumer lag 0 on all 24 partitions",
            Duration::from_secs(30),
            || async {
                let l = lags(&worker, &scenario.prefix).await;
                l.len() == 24 && l.iter().all(|(_, v)| *v == 0.0)
            },
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_ingest_goes_through_kafka_and_answers_503_while_the_broker_is_stalled() {
    let _serial = kafka_serial().await;
    let broker = PrivateBroker::start();
    let scenario = ClusterScenario::new(&broker.brokers(), 2);
    let worker = scenario.worker("w1", &[FAST_CHECKPOINTS]);
    worker.wait_ready().await;
    let client = reqwest::Client::new();
    let base = worker.url();

    let mut records: Vec<bytes::Bytes> = (0..500)
        .map(|i| conversation(&format!("h{i}"), &format!("tenant-{}", i % 7), 10).into())
        .collect();
    records.push(bytes::Bytes::from_static(b"{\"not\": \"an event\"}"));
    let (status, answer) = post_ndjson(&client, &base, &records).await.unwrap();
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], 500);
    assert_eq!(answer["rejected"].as_array().unwrap().len(), 1);
    // A retry of the same request (the client did not see the answer) is deduplicated.
    let (status, _) = post_ndjson(&client, &base, &records[..100]).await.unwrap();
    assert_eq!(status, 202);
    worker
        .wait_until(
            "the posted events in the lake",
            Duration::from_secs(60),
            || async {
                sql_number(&base, "SELECT count(*) FROM conversations").await >= 500
                    && sql_number(&base, "SELECT count(*) FROM dead_letters").await >= 1
            },
        )
        .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        sql_number(&base, "SELECT count(*) FROM conversations").await,
        500
    );
    assert_eq!(
        sql_number(&base, "SELECT sum(input_tokens) FROM conversations").await,
        5000
    );
    // The refused record is a dead letter, as in the embedded mode.
    assert_eq!(
        sql_number(&base, "SELECT count(*) FROM dead_letters").await,
        1
    );

    broker.signal("STOP");
    worker
        .wait_until(
            "/ready to report the stalled broker",
            Duration::from_secs(20),
            || async { !ready(&worker).await },
        )
        .await;
    let resp = client
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/cloudevents+json")
        .body(conversation("during-stall", "tenant-1", 1))
        .send()
        .await
        .unwrap();
    assert_eq!(
        resp.status().as_u16(),
        503,
        "never a 202 for data the broker does not hold"
    );
    assert!(resp.headers().contains_key("retry-after"));
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("do not answer"),
        "{body}"
    );
    broker.signal("CONT");
    worker
        .wait_until(
            "/ready again after SIGCONT",
            Duration::from_secs(30),
            || async { ready(&worker).await },
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_at_random_moments_loses_and_duplicates_nothing_in_assign_mode() {
    let _serial = kafka_serial().await;
    let brokers = kafka_broker();
    let scenario = ClusterScenario::new(&brokers, 4);
    let assign = ("SOMAFLOW_CLUSTER__MODE", "assign");
    let mut worker = scenario.worker("w1", &[FAST_CHECKPOINTS, assign]);
    worker.wait_ready().await;
    let producer = scenario.produce(&["--rate", "2000", "--duration", "50s", "--seed", "5"]);

    let mut rng = rand::rng();
    let mut kills = 0;
    let started = Instant::now();
    // Kill while the producer runs; a restart takes a few seconds on a busy machine.
    while kills < 6 && started.elapsed() < Duration::from_secs(45) {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1500..4000))).await;
        worker.restart(); // SIGKILL, then start again on the same store
        kills += 1;
        worker.wait_ready().await;
    }
    assert!(kills >= 5, "killed {kills} times");
    let report = producer_report(producer);
    // The durable (SQLite) test broker takes a few thousand events/s at
    // best, less with a worker, ClickHouse and the producer sharing two
    // cores: thousands of events across the kills is the stream wanted here.
    assert!(
        report.stats.valid > 5_000,
        "a steady stream: {:?}",
        report.stats
    );
    assert_lake_settles_to(&worker, &report.stats, Duration::from_secs(120)).await;
    assert_clickhouse_settles_to(&scenario.clickhouse, &report.stats, Duration::from_secs(60))
        .await;
    assert!(
        worker.logs().matches("restoring from checkpoint").count() >= 5,
        "restarts resumed from checkpoints"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_stalled_for_15_seconds_costs_nothing() {
    let _serial = kafka_serial().await;
    let broker = PrivateBroker::start();
    let scenario = ClusterScenario::new(&broker.brokers(), 4);
    let worker = scenario.worker("w1", &[FAST_CHECKPOINTS]);
    worker.wait_ready().await;
    let producer = scenario.produce(&["--rate", "2000", "--duration", "35s", "--seed", "8"]);
    let base = worker.url();
    worker
        .wait_until("rows flowing", Duration::from_secs(60), || async {
            lake_event_rows(&base).await > 5_000
        })
        .await;

    broker.signal("STOP");
    let stopped = Instant::now();
    worker
        .wait_until(
            "/ready false during the stall",
            Duration::from_secs(15),
            || async { !ready(&worker).await },
        )
        .await;
    let not_ready_after = stopped.elapsed();
    tokio::time::sleep(Duration::from_secs(15).saturating_sub(stopped.elapsed())).await;
    let rows_at_cont = lake_event_rows(&base).await;
    broker.signal("CONT");
    let resumed = Instant::now();
    worker
        .wait_until(
            "/ready true after SIGCONT",
            Duration::from_secs(60),
            || async { ready(&worker).await },
        )
        .await;
    let ready_after = resumed.elapsed();
    worker
        .wait_until(
            "new rows after SIGCONT",
            Duration::from_secs(90),
            || async { lake_event_rows(&base).await > rows_at_cont },
        )
        .await;
    let flowing_after = resumed.elapsed();
    println!(
        "broker stall: /ready false {:.1}s after SIGSTOP; after SIGCONT /ready true in {:.1}s, new rows in the lake in {:.1}s",
        not_ready_after.as_secs_f64(),
        ready_after.as_secs_f64(),
        flowing_after.as_secs_f64()
    );
    let report = producer_report(producer);
    assert_lake_settles_to(&worker, &report.stats, Duration::from_secs(120)).await;
    assert_clickhouse_settles_to(&scenario.clickhouse, &report.stats, Duration::from_secs(60))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_and_restarted_broker_costs_nothing() {
    let _serial = kafka_serial().await;
    let broker = PrivateBroker::start();
    let scenario = ClusterScenario::new(&broker.brokers(), 4);
    let worker = scenario.worker("w1", &[FAST_CHECKPOINTS]);
    worker.wait_ready().await;
    let producer = scenario.produce(&["--rate", "2000", "--duration", "25s", "--seed", "9"]);
    let base = worker.url();
    worker
        .wait_until("rows flowing", Duration::from_secs(60), || async {
            lake_event_rows(&base).await > 5_000
        })
        .await;
    broker.kill9_and_restart();
    let restarted = Instant::now();
    let rows = lake_event_rows(&base).await;
    worker
        .wait_until(
            "new rows after the broker restart",
            Duration::from_secs(90),
            || async { lake_event_rows(&base).await > rows },
        )
        .await;
    println!(
        "broker SIGKILL + restart: new rows in the lake {:.1}s after the restart",
        restarted.elapsed().as_secs_f64()
    );
    let report = producer_report(producer);
    assert_lake_settles_to(&worker, &report.stats, Duration::from_secs(120)).await;
    assert_clickhouse_settles_to(&scenario.clickhouse, &report.stats, Duration::from_secs(60))
        .await;
}

/// Per-tenant counts and sums of every kind, for comparing two lakes.
async fn per_tenant(base: &str) -> Vec<Vec<Value>> {
    let mut all = Vec::new();
    for (table, measure) in [
        ("conversations", "sum(input_tokens) + sum(output_tokens)"),
        ("policy_decisions", "0"),
        ("capsule_executions", "sum(tokens)"),
        ("workflow_executions", "0"),
        ("marketplace_transactions", "sum(amount_cents)"),
        (
            "billing_events",
            "CAST(sum(quantity) * 1000000000 AS BIGINT)",
        ),
    ] {
        let q = format!(
            "SELECT '{table}', tenant_id, count(*), count(DISTINCT event_id), {measure} FROM {table} GROUP BY tenant_id ORDER BY tenant_id"
        );
        all.extend(sql(base, &q).await);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_workers_rebalance_through_a_crash_and_match_a_single_worker() {
    let _serial = kafka_serial().await;
    let brokers = kafka_broker();
    let scenario = ClusterScenario::new(&brokers, 8);
    let a = scenario.worker("a", &[FAST_CHECKPOINTS]);
    let mut b = scenario.worker("b", &[FAST_CHECKPOINTS]);
    a.wait_ready().await;
    b.wait_ready().await;
    let producer = scenario.produce(&["--rate", "1500", "--duration", "40s", "--seed", "13"]);
    let base = a.url();
    a.wait_until(
        "both workers hold partitions",
        Duration::from_secs(60),
        || async {
            a.logs().contains("partitions assigned") && b.logs().contains("partitions assigned")
        },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(8)).await;
    b.kill9();
    a.wait_until(
        "a takes over every partition",
        Duration::from_secs(90),
        || async { a.logs().contains("partitions=48") },
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    b.restart();
    b.wait_ready().await;
    b.wait_until(
        "b gets partitions again",
        Duration::from_secs(90),
        || async {
            b.logs()
                .rsplit("----- restart -----")
                .next()
                .is_some_and(|l| l.contains("starting a pipeline for the new assignment"))
        },
    )
    .await;
    let report = producer_report(producer);
    assert_lake_settles_to(&a, &report.stats, Duration::from_secs(120)).await;
    assert_clickhouse_settles_to(&scenario.clickhouse, &report.stats, Duration::from_secs(60))
        .await;
    let together = per_tenant(&base).await;

    // The same input read by one worker alone, into its own lake.
    let solo_root = scenario.root.path().join("solo");
    let store = solo_root.join("checkpoints").display().to_string();
    let lake = solo_root.join("lake").display().to_string();
    let group = format!("{}solo", scenario.prefix);
    let solo = scenario.worker(
        "solo",
        &[
            FAST_CHECKPOINTS,
            ("SOMAFLOW_CHECKPOINT__STORE", &store),
            ("SOMAFLOW_LAKE__URL", &lake),
            ("SOMAFLOW_CLUSTER__GROUP_ID", &group),
        ],
    );
    solo.wait_ready().await;
    assert_lake_settles_to(&solo, &report.stats, Duration::from_secs(300)).await;
    // The solo worker inserted everything into ClickHouse a second time: the
    // copies collapse, dedup-aware reads stay exact.
    assert_clickhouse_matches(&scenario.clickhouse, &report.stats).await;
    let alone = per_tenant(&solo.url()).await;
    assert!(
        together.len() > 300,
        "many tenants compared: {}",
        together.len()
    );
    assert_eq!(
        together, alone,
        "per-tenant aggregates of 2 rebalanced workers = 1 worker"
    );
}
