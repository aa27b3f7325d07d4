//! The ClickHouse DDL and SQL for current releases, on a current ClickHouse.
//! The only server this machine can install is Debian's 18.16, so
//! `sql/clickhouse/current/` and the read paths' SQL on 22.8+ would
//! otherwise never run. chdb (PyPI `chdb-core`) is ClickHouse 26 in
//! process: `tests/fixtures/chdb_check.py` applies every current migration
//! in a fresh session, loads the rows an embedded node wrote to its lake
//! (the rows the ClickHouse sink inserts, column by column), runs the
//! versions probe and the ClickHouse SQL of every query the read endpoints
//! send (`somaflow_sql::catalogue`, each cut into its rollup pieces as
//! the store cuts it, for one tenant and for all), adds the pieces up as the
//! store does, and compares each answer with the lake's.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DurationRound, TimeDelta, Utc};
use serde_json::{Value, json};
use somaflow::generator::{Generator, GeneratorConfig};
use somaflow_sql::catalogue::catalogue;
use somaflow_sql::store::cache::AnswerCache;
use somaflow_sql::store::clickhouse::{VERSIONS_SQL, sql_text};
use somaflow_sql::store::rollup::pieces;
use somaflow_sql::store::{Stores, SumRow};
use somaflow_sql::{LakeSql, QueryLimits, SQL_TABLES};

use crate::support::{
    platform_files, post_ndjson, repo, sql_number, start_platform, tool_path, wait_caught_up,
};

/// The tenant asked about alone (the generator's busiest).
const TENANT: &str = "tenant-0000";

fn lake_rows(rows: &[SumRow]) -> Value {
    rows.iter()
        .map(|r| {
            json!({
                "bucket": r.bucket_secs.to_string(),
                "group": r.group,
                "sums": r.sums.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_clickhouse_read_query_answers_as_the_lake_on_clickhouse_26() {
    let python = tool_path("python-tools.sh", "chdb-core (ClickHouse 26 in process)");
    let dir = tempfile::tempdir().unwrap();
    let files = platform_files(dir.path());
    // Merges would leave replaced files beside merged ones for a while:
    // the checker reads the folders as they are.
    let mut node = start_platform(
        dir.path(),
        &files,
        &[("SOMAFLOW_LAKE__COMPACTION", "false")],
    );
    node.wait_ready().await;
    let base = node.url();

    // Three days of traffic in time order, ending two minutes ago: whole
    // days, whole hours and the minutes at both edges of every range.
    let mut generator = Generator::new(GeneratorConfig {
        seed: 26,
        tenants: 20,
        ..GeneratorConfig::default()
    });
    let end = Utc::now() - TimeDelta::minutes(2);
    let span = TimeDelta::days(3);
    let n = 6_000i64;
    let client = reqwest::Client::new();
    let records: Vec<Bytes> = (0..n)
        .map(|i| {
            let at = end - span + span * (i as i32) / (n as i32);
            generator.next_at(at).bytes
        })
        .collect();
    for chunk in records.chunks(500) {
        let (status, body) = post_ndjson(&client, &base, chunk).await.expect("POST");
        assert_eq!(status, 202, "{body}");
    }
    wait_caught_up(&node, Duration::from_secs(60)).await;
    let conversations = sql_number(&base, "SELECT count(*) FROM conversations").await;
    assert!(conversations > 2_000, "{conversations} conversations");
    let status = node.terminate();
    assert!(status.success(), "the node stops cleanly: {status}");

    // Rollups are kept in one folder per day (few rows): three days of
    // traffic are at most four folders, and their `hour` is always 00.
    let lake_dir = dir.path().join("lake");
    for rollup in ["rollup_1h", "rollup_1d", "activity_1h", "activity_1d"] {
        let folders: Vec<String> = std::fs::read_dir(lake_dir.join(rollup))
            .unwrap()
            .flat_map(|day| std::fs::read_dir(day.unwrap().path()).unwrap())
            .map(|hour| hour.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            (3..=4).contains(&folders.len()) && folders.iter().all(|h| h == "hour=00"),
            "{rollup}: {folders:?}"
        );
    }

    // Every query over ranges whose edges cut minutes, hours and days.
    let lake = Arc::new(
        LakeSql::open(lake_dir.to_str().unwrap())
            .await
            .expect("the lake"),
    );
    let stores = Stores::new(
        lake,
        QueryLimits::NONE,
        None,
        Arc::new(AnswerCache::new(0)),
        true,
    );
    let store = stores.pick(Some("lake")).unwrap();
    let hour = TimeDelta::hours(1);
    let from = (end - span).duration_trunc(hour).unwrap() + TimeDelta::minutes(17);
    let to = end.duration_trunc(TimeDelta::minutes(1)).unwrap();
    let mut queries = Vec::new();
    let (mut rollup_pieces, mut answered) = (0, 0);
    for (name, query) in catalogue(from, to) {
        for tenant in [Some(TENANT), None] {
            let lake_answer = store.sums(&query, tenant).await.unwrap_or_else(|e| {
                panic!("{name}: the lake: {e}");
            });
            answered += usize::from(!lake_answer.is_empty());
            let cut = pieces(&query);
            rollup_pieces += cut.iter().filter(|p| p.table.starts_with("rollup")).count();
            let sql: Vec<Value> = cut
                .iter()
                .map(|piece| {
                    let text = sql_text(piece, tenant.is_some());
                    let text = match tenant {
                        Some(t) => text.replace('?', &format!("'{t}'")),
                        None => text,
                    };
                    json!({
                        "sql": text,
                        "decimals": piece.sums.iter().map(|s| s.decimal).collect::<Vec<_>>(),
                    })
                })
                .collect();
            queries.push(json!({
                "name": name,
                "scope": tenant.unwrap_or("every tenant"),
                "pieces": sql,
                "lake": lake_rows(&lake_answer),
            }));
        }
    }
    assert!(rollup_pieces > 0, "some queries read the rollups");
    // An empty answer equals an empty answer: nearly every question must have rows.
    assert!(
        answered * 10 >= queries.len() * 9,
        "only {answered} of {} queries have rows in the lake",
        queries.len()
    );
    let migrations: Vec<String> = somaflow_sinks::clickhouse::MIGRATIONS
        .iter()
        .map(|m| {
            repo()
                .join(format!("sql/clickhouse/current/{}.sql", m.name))
                .display()
                .to_string()
        })
        .collect();
    let tables: Vec<(&str, &str)> = SQL_TABLES
        .iter()
        .copied()
        .filter(|(name, _)| *name != "dead_letters")
        .collect();
    let plan = json!({
        "lake": lake_dir,
        "migrations": migrations,
        "tables": tables,
        "versions_sql": VERSIONS_SQL,
        "queries": queries,
    });
    let plan_path = dir.path().join("chdb-plan.json");
    std::fs::write(&plan_path, serde_json::to_vec(&plan).unwrap()).unwrap();

    let out = std::process::Command::new(&python)
        .arg(repo().join("tests/fixtures/chdb_check.py"))
        .arg(&plan_path)
        .output()
        .expect("run tests/fixtures/chdb_check.py");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{report}");
    assert!(
        out.status.success(),
        "ClickHouse 26 and the lake disagree:\n{report}"
    );
    assert!(
        report.lines().any(|line| line == "0 failures"),
        "the checker reports no failure: {report}"
    );
}
