//! The ClickHouse side: the shared server, one database per scenario,
//! exact assertions against the generator's report, and private servers a
//! test may stop.

use std::process::Command;
use std::time::Duration;

use somaflow::generator::GeneratorStats;

use super::{EVENT_TABLES, free_port, services, wait_for};

/// Starts ClickHouse through `scripts/services.sh` (installs the Debian
/// package if missing) and returns its HTTP URL; fails the test, with how to
/// start it by hand, when it cannot.
pub fn clickhouse_server() -> String {
    static STARTED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let started = STARTED.get_or_init(|| services(&["start", "clickhouse"], &[]));
    if let Err(e) = started {
        panic!(
            "ClickHouse is not running and could not be started: {e}\nstart it with: scripts/services.sh start clickhouse"
        );
    }
    format!(
        "http://127.0.0.1:{}",
        std::env::var("SOMAFLOW_CLICKHOUSE_PORT").unwrap_or_else(|_| "18123".into())
    )
}
/// One database on a ClickHouse server, queried over HTTP.
pub struct ClickHouseDb {
    pub url: String,
    pub database: String,
}

impl ClickHouseDb {
    /// The answer as TSV text; panics with the server's message on an error.
    pub async fn query(&self, sql: &str) -> String {
        self.try_query(sql).await.unwrap_or_else(|e| panic!("{e}"))
    }

    /// The answer as TSV text, or the server's message.
    pub async fn try_query(&self, sql: &str) -> Result<String, String> {
        let response = reqwest::Client::new()
            .post(format!("{}/?database={}", self.url, self.database))
            .body(sql.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ClickHouse at {}: {e}", self.url));
        let status = response.status();
        let text = response.text().await.expect("ClickHouse answer");
        if status.is_success() {
            Ok(text)
        } else {
            Err(format!("ClickHouse refused `{sql}`: {text}"))
        }
    }

    /// The first value of a one-row answer, as an integer.
    pub async fn number(&self, sql: &str) -> i128 {
        let text = self.query(&format!("{sql} FORMAT TSV")).await;
        text.trim()
            .parse()
            .unwrap_or_else(|_| panic!("`{sql}` answered {text:?}, not an integer"))
    }

    /// Rows of every event table together, read dedup-aware (FINAL).
    pub async fn event_rows(&self) -> i128 {
        let mut total = 0;
        for table in EVENT_TABLES {
            total += self
                .number(&format!("SELECT count() FROM {table} FINAL"))
                .await;
        }
        total
    }
}

impl Drop for ClickHouseDb {
    fn drop(&mut self) {
        // Best effort: keep the shared server small.
        let _ = Command::new("curl")
            .args(["-fsS", &format!("{}/", self.url), "--data-binary"])
            .arg(format!("DROP DATABASE IF EXISTS {}", self.database))
            .output();
    }
}

/// Asserts ClickHouse holds exactly what the generator reports, read
/// dedup-aware (FINAL): per table the row count with one row per event id,
/// the token / amount / quantity sums, and every malformed record as one
/// decode dead letter.
pub async fn assert_clickhouse_matches(db: &ClickHouseDb, stats: &GeneratorStats) {
    for (table, k) in &stats.kinds {
        let count = db
            .number(&format!("SELECT count() FROM {table} FINAL"))
            .await;
        let distinct = db
            .number(&format!("SELECT uniqExact(event_id) FROM {table}"))
            .await;
        assert_eq!(count, i128::from(k.count), "ClickHouse {table}: row count");
        assert_eq!(distinct, count, "ClickHouse {table}: no duplicate event_id");
    }
    let conv = &stats.kinds["conversations"];
    let sums = [
        (
            "conversations",
            "input_tokens",
            i128::from(conv.input_tokens),
        ),
        (
            "conversations",
            "output_tokens",
            i128::from(conv.output_tokens),
        ),
        (
            "conversations",
            "cached_input_tokens",
            i128::from(conv.cached_input_tokens),
        ),
        (
            "conversations",
            "reasoning_tokens",
            i128::from(conv.reasoning_tokens),
        ),
        (
            "capsule_executions",
            "tokens",
            i128::from(stats.kinds["capsule_executions"].tokens),
        ),
        (
            "marketplace_transactions",
            "amount_cents",
            i128::from(stats.kinds["marketplace_transactions"].amount_cents),
        ),
    ];
    for (table, column, expected) in sums {
        let got = db
            .number(&format!("SELECT sum({column}) FROM {table} FINAL"))
            .await;
        assert_eq!(got, expected, "ClickHouse sum of {table}.{column}");
    }
    // Decimal(38, 9) as text → integer nano-units, exact.
    let text = db
        .query("SELECT toString(sum(quantity)) FROM billing_events FINAL FORMAT TSV")
        .await;
    let (units, fraction) = text.trim().split_once('.').unwrap_or((text.trim(), ""));
    let nanos: i128 = format!("{units}{fraction:0<9}")
        .parse()
        .unwrap_or_else(|_| panic!("billing quantity {text:?} is not a decimal"));
    assert_eq!(
        nanos, stats.kinds["billing_events"].quantity_nanos,
        "ClickHouse billing quantity, exact to the nano-unit"
    );
    let dead = db
        .number("SELECT count() FROM dead_letters FINAL WHERE stage = 'decode'")
        .await;
    assert_eq!(
        dead,
        i128::from(stats.malformed),
        "ClickHouse: every malformed record is one dead letter"
    );
}

/// Waits until ClickHouse has every event the producer reported, then
/// checks it exactly (the lake check before it has waited for the pipeline).
pub async fn assert_clickhouse_settles_to(
    db: &ClickHouseDb,
    stats: &GeneratorStats,
    within: Duration,
) {
    let expected = i128::from(stats.valid);
    wait_for("every produced event in ClickHouse", within, || async {
        db.event_rows().await >= expected
    })
    .await;
    assert_clickhouse_matches(db, stats).await;
}

/// A ClickHouse server of the test's own (port, data folder), for tests
/// that stop it; started and stopped through `scripts/services.sh`.
pub struct PrivateClickHouse {
    dir: tempfile::TempDir,
    pub port: u16,
    tcp_port: u16,
}

impl PrivateClickHouse {
    pub fn start() -> PrivateClickHouse {
        clickhouse_server(); // installs the package if needed, fails clearly without it
        let server = PrivateClickHouse {
            dir: tempfile::tempdir().expect("ClickHouse folder"),
            port: free_port(),
            tcp_port: free_port(),
        };
        server.services("start");
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn services(&self, action: &str) {
        let env = [
            (
                "SOMAFLOW_SERVICES_DIR",
                self.dir.path().display().to_string(),
            ),
            ("SOMAFLOW_CLICKHOUSE_PORT", self.port.to_string()),
            ("SOMAFLOW_CLICKHOUSE_TCP_PORT", self.tcp_port.to_string()),
        ];
        if let Err(e) = services(&[action, "clickhouse"], &env) {
            panic!(
                "scripts/services.sh {action} clickhouse (port {}): {e}",
                self.port
            );
        }
    }

    /// Stops the server (SIGTERM, waits for the process to exit).
    pub fn stop(&self) {
        self.services("stop");
    }

    /// Starts it again on the same data folder and port.
    pub fn restart(&self) {
        self.services("start");
    }
}

impl Drop for PrivateClickHouse {
    fn drop(&mut self) {
        // Never panic here: a failing test is already unwinding.
        let env = [
            (
                "SOMAFLOW_SERVICES_DIR",
                self.dir.path().display().to_string(),
            ),
            ("SOMAFLOW_CLICKHOUSE_PORT", self.port.to_string()),
        ];
        if let Err(e) = services(&["stop", "clickhouse"], &env) {
            eprintln!("stopping the private ClickHouse on {}: {e}", self.port);
        }
    }
}
