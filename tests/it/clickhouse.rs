//! The ClickHouse sink against a real ClickHouse (Debian's 18.16) and the
//! real broker: an outage of the server, and a table that starts refusing
//! rows mid-stream. (Every test in `cluster` also checks ClickHouse exactly:
//! all six kinds, worker SIGKILLs, broker stalls and rebalances.)

use std::time::{Duration, Instant};

use crate::support::{
    ClickHouseDb, ClusterScenario, EVENT_TABLES, FAST_CHECKPOINTS, PrivateClickHouse,
    assert_clickhouse_settles_to, assert_lake_settles_to, kafka_broker, kafka_serial,
    lake_event_rows, metric_sum, producer_report, ready,
};

/// Fixed partitions: no rebalance, so nothing is replayed and the insert
/// counters can be compared with the tables exactly.
const ASSIGN: (&str, &str) = ("SOMAFLOW_CLUSTER__MODE", "assign");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clickhouse_outage_of_30_seconds_loses_and_duplicates_nothing() {
    let _serial = kafka_serial().await;
    let server = PrivateClickHouse::start();
    let scenario = ClusterScenario::new(&kafka_broker(), 4);
    let db = ClickHouseDb {
        url: server.url(),
        database: scenario.clickhouse.database.clone(),
    };
    let url = server.url();
    let worker = scenario.worker(
        "w1",
        &[FAST_CHECKPOINTS, ("SOMAFLOW_CLICKHOUSE__URL", &url)],
    );
    worker.wait_ready().await;
    let producer = scenario.produce(&["--rate", "2000", "--duration", "55s", "--seed", "31"]);
    tokio::time::sleep(Duration::from_secs(8)).await;

    server.stop();
    let stopped = Instant::now();
    worker
        .wait_until(
            "/ready to report ClickHouse down",
            Duration::from_secs(10),
            || async { !ready(&worker).await },
        )
        .await;
    // One checkpoint covers every sink: while ClickHouse cannot acknowledge
    // its rows, no checkpoint completes, so the lake publishes nothing new
    // (the rows wait in Kafka, not in memory).
    tokio::time::sleep(Duration::from_secs(5)).await;
    let lake_during = lake_event_rows(&worker.url()).await;
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(stopped.elapsed())).await;
    assert_eq!(
        lake_event_rows(&worker.url()).await,
        lake_during,
        "the lake waited while ClickHouse was down"
    );
    server.restart();
    worker
        .wait_until(
            "/ready again after ClickHouse restarts",
            Duration::from_secs(15),
            || async { ready(&worker).await },
        )
        .await;

    let report = producer_report(producer);
    assert_lake_settles_to(&worker, &report.stats, Duration::from_secs(180)).await;
    assert_clickhouse_settles_to(&db, &report.stats, Duration::from_secs(60)).await;
    assert!(
        metric_sum(&worker, "somaflow_clickhouse_insert_retries_total", "").await > 0.0,
        "inserts were retried during the outage"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_column_sends_that_tables_rows_to_dead_letters_and_the_rest_flows() {
    let _serial = kafka_serial().await;
    let scenario = ClusterScenario::new(&kafka_broker(), 4);
    let db = &scenario.clickhouse;
    let worker = scenario.worker("w1", &[FAST_CHECKPOINTS, ASSIGN]);
    worker.wait_ready().await;
    let producer = scenario.produce(&["--rate", "2000", "--duration", "20s", "--seed", "41"]);
    worker
        .wait_until(
            "first workflow steps in ClickHouse",
            Duration::from_secs(30),
            || async { db.number("SELECT count() FROM workflow_executions").await > 0 },
        )
        .await;
    db.query("ALTER TABLE workflow_executions DROP COLUMN quality_score")
        .await;
    let report = producer_report(producer);
    let stats = &report.stats;
    assert_lake_settles_to(&worker, stats, Duration::from_secs(120)).await;

    // The other tables are exact.
    for table in EVENT_TABLES.iter().filter(|t| **t != "workflow_executions") {
        let count = db
            .number(&format!("SELECT count() FROM {table} FINAL"))
            .await;
        assert_eq!(
            count,
            i128::from(stats.kinds[*table].count),
            "ClickHouse {table}"
        );
    }
    // Workflow steps: each one either in its table (before the drop) or a
    // dead letter carrying the server's message (after), never both.
    let expected = i128::from(stats.kinds["workflow_executions"].count);
    let stored = db
        .number("SELECT count() FROM workflow_executions FINAL")
        .await;
    let rejected = db
        .number("SELECT count() FROM dead_letters FINAL WHERE stage = 'clickhouse'")
        .await;
    assert!(
        stored > 0 && rejected > 0,
        "stored {stored}, rejected {rejected}"
    );
    assert_eq!(
        stored + rejected,
        expected,
        "every workflow step is somewhere"
    );
    let distinct = db
        .number(
            "SELECT uniqExact(event_id) FROM (SELECT event_id FROM workflow_executions \
             UNION ALL SELECT event_id FROM dead_letters WHERE stage = 'clickhouse')",
        )
        .await;
    assert_eq!(
        distinct, expected,
        "no workflow step both stored and dead-lettered"
    );
    let explained = db
        .number(
            "SELECT count() FROM dead_letters FINAL WHERE stage = 'clickhouse' \
             AND reason LIKE '%quality_score%' \
             AND position(raw, concat('\"event_id\":\"', event_id, '\"')) > 0",
        )
        .await;
    assert_eq!(
        explained, rejected,
        "dead letters carry the server's message and the row"
    );
    assert_eq!(
        db.number("SELECT count() FROM dead_letters FINAL WHERE stage = 'decode'")
            .await,
        i128::from(stats.malformed),
        "decode dead letters unaffected"
    );

    // Nothing is counted as inserted that was not.
    let table = r#"table="workflow_executions""#;
    let inserted = metric_sum(&worker, "somaflow_clickhouse_rows_inserted_total", table).await;
    let refused = metric_sum(&worker, "somaflow_clickhouse_rows_rejected_total", table).await;
    assert_eq!(
        inserted as i128, stored,
        "inserted counter = rows in the table"
    );
    assert_eq!(refused as i128, rejected, "rejected counter = dead letters");

    // Putting the column back lets new rows in again, with no restart.
    db.query("ALTER TABLE workflow_executions ADD COLUMN quality_score Nullable(Float64)")
        .await;
    let more = producer_report(scenario.produce(&["--count", "3000", "--seed", "42"]));
    let total_steps = expected + i128::from(more.stats.kinds["workflow_executions"].count);
    worker
        .wait_until(
            "new workflow steps stored after the column is back",
            Duration::from_secs(60),
            || async {
                db.number("SELECT count() FROM workflow_executions FINAL")
                    .await
                    + rejected
                    >= total_steps
            },
        )
        .await;
    assert_eq!(
        db.number("SELECT count() FROM workflow_executions FINAL")
            .await
            + rejected,
        total_steps
    );
}

/// Workers of one group start together and each applies the migrations:
/// the column additions must not fail the one that comes second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_migrating_one_database_at_once_all_succeed() {
    let url = crate::support::clickhouse_server();
    let config = somaflow_sinks::clickhouse::ClickHouseConfig {
        url: url.clone(),
        database: format!("test_migrate_{}", std::process::id()),
        ..Default::default()
    };
    let db = ClickHouseDb {
        url,
        database: config.database.clone(),
    };
    let runs = (0..3).map(|_| {
        let config = config.clone();
        tokio::spawn(async move { somaflow_sinks::clickhouse::migrate(&config).await })
    });
    for run in runs.collect::<Vec<_>>() {
        let report = run.await.expect("migration task");
        assert!(report.is_ok(), "a concurrent migration failed: {report:?}");
    }
    let price_columns = db
        .number(
            "SELECT count() FROM system.columns WHERE database = currentDatabase() \
             AND table = 'conversations' AND name IN ('cost_usd', 'price_id')",
        )
        .await;
    assert_eq!(price_columns, 2);
}
