//! Shared helpers: start/kill a `somaflow run` child process on its own data
//! folder and port, talk to its HTTP API, poll until a condition holds.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use somaflow_sources::generator::{GeneratorStats, ProduceReport};

pub const BIN: &str = env!("CARGO_BIN_EXE_somaflow");

pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// A `somaflow run` child process.
pub struct Somaflow {
    child: Option<Child>,
    pub data_dir: PathBuf,
    pub port: u16,
    env: Vec<(String, String)>,
    starts: u32,
}

impl Somaflow {
    /// Starts on `data_dir` with `SOMAFLOW_…` overrides in `env`.
    pub fn start(data_dir: &Path, env: &[(&str, &str)]) -> Somaflow {
        let mut s = Somaflow {
            child: None,
            data_dir: data_dir.to_path_buf(),
            port: free_port(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            starts: 0,
        };
        s.spawn();
        s
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let log =
            std::fs::File::create(self.data_dir.join(format!("somaflow-{}.log", self.starts)))
                .expect("log file");
        let child = Command::new(BIN)
            .arg("run")
            .env("SOMAFLOW_DATA_DIR", &self.data_dir)
            .env(
                "SOMAFLOW_SERVER__LISTEN",
                format!("127.0.0.1:{}", self.port),
            )
            .env("RUST_LOG", "info")
            .env_remove("RUST_BACKTRACE")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&self.data_dir)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn somaflow");
        self.child = Some(child);
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).expect("running")
    }

    /// SIGKILL: no flush, no final checkpoint.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    /// SIGTERM, and the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let _ = Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status();
        c.wait().expect("wait for somaflow")
    }

    /// Resident memory of the process, in KiB.
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }

    pub async fn wait_ready(&self) {
        let client = reqwest::Client::new();
        let url = format!("{}/ready", self.url());
        wait_for("somaflow to answer /ready", Duration::from_secs(30), || {
            let client = client.clone();
            let url = url.clone();
            async move { matches!(client.get(&url).send().await, Ok(r) if r.status().is_success()) }
        })
        .await;
    }

    /// Waits until `check` holds, panicking with the node's recent log lines on timeout.
    pub async fn wait_until<F, Fut>(&self, what: &str, timeout: Duration, mut check: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = Instant::now() + timeout;
        while !check().await {
            if Instant::now() >= deadline {
                let logs = self.logs();
                let tail: Vec<&str> = logs
                    .lines()
                    .rev()
                    .take(60)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect();
                panic!(
                    "timed out after {timeout:?} waiting for {what}; somaflow log tail:\n{}",
                    tail.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn logs(&self) -> String {
        (1..=self.starts)
            .map(|i| {
                std::fs::read_to_string(self.data_dir.join(format!("somaflow-{i}.log")))
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join("\n----- restart -----\n")
    }
}

impl Drop for Somaflow {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Polls `check` every 100 ms until it holds; panics with `what` on timeout.
pub async fn wait_for<F, Fut>(what: &str, timeout: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    while !check().await {
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a query through `POST /v1/sql`, returning its rows.
pub async fn sql(base: &str, query: &str) -> Vec<Vec<Value>> {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/sql"))
        .json(&serde_json::json!({ "sql": query }))
        .send()
        .await
        .expect("POST /v1/sql");
    let status = resp.status();
    let body: Value = resp.json().await.expect("JSON answer");
    assert!(status.is_success(), "query {query:?} failed: {body}");
    serde_json::from_value(body["rows"].clone()).expect("rows")
}

/// A single number from a one-row, one-column query.
pub async fn sql_number(base: &str, query: &str) -> i128 {
    let rows = sql(base, query).await;
    match &rows[0][0] {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_f64().map(|f| f as i128))
            .expect("integer"),
        Value::String(s) => s
            .split('.')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("numeric string"),
        Value::Null => 0,
        other => panic!("not a number: {other}"),
    }
}

/// Posts NDJSON; returns the status and the JSON answer.
pub async fn post_ndjson(
    client: &reqwest::Client,
    base: &str,
    records: &[bytes::Bytes],
) -> reqwest::Result<(u16, Value)> {
    let mut body = Vec::new();
    for r in records {
        body.extend_from_slice(r);
        body.push(b'\n');
    }
    let resp = client
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let json = resp.json().await.unwrap_or(Value::Null);
    Ok((status, json))
}

/// A valid conversation event with the given id, dated now.
pub fn conversation(id: &str, tenant: &str, input_tokens: i64) -> String {
    let time = chrono::Utc::now().to_rfc3339();
    format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/test","type":"soma.conversation.v1","time":"{time}","tenantid":"{tenant}","data":{{"user_id":"u1","session_id":"s1","provider":"openai","model":"gpt-4o","input_tokens":{input_tokens},"output_tokens":7,"cached_input_tokens":0,"reasoning_tokens":0,"latency_ms":12,"status":"ok"}}}}"#
    )
}

/// Rows of `table` the lake sink has committed, read from `/metrics`.
pub async fn committed_rows(base: &str, table: &str) -> u64 {
    let text = reqwest::get(format!("{base}/metrics"))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    let prefix = "somaflow_sink_rows_committed_total{";
    text.lines()
        .filter(|l| l.starts_with(prefix) && l.contains(&format!("table=\"{table}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

/// Whether `/ready` answers 200.
pub async fn ready(node: &Somaflow) -> bool {
    matches!(reqwest::get(format!("{}/ready", node.url())).await, Ok(r) if r.status().is_success())
}

/// Checkpoints every second: rows show up fast and crashes replay little.
pub const FAST_CHECKPOINTS: (&str, &str) = ("SOMAFLOW_CHECKPOINT__INTERVAL_MS", "1000");

/// `(series, value)` of every series of `metric` in `/metrics` whose labels
/// contain `label` (e.g. `table="conversations"`).
pub async fn metric_series(node: &Somaflow, metric: &str, label: &str) -> Vec<(String, f64)> {
    let text = reqwest::get(format!("{}/metrics", node.url()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text");
    text.lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The sum of [`metric_series`].
pub async fn metric_sum(node: &Somaflow, metric: &str, label: &str) -> f64 {
    metric_series(node, metric, label)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .sum()
}

/// Starts the Kafka-compatible broker through `scripts/services.sh` (builds
/// it on first use) and returns its address; fails the test, with how to
/// start it by hand, when it cannot.
pub fn kafka_broker() -> String {
    static STARTED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let started = STARTED.get_or_init(|| services(&["start", "kafka"], &[]));
    if let Err(e) = started {
        panic!(
            "the Kafka broker is not running and could not be started: {e}\nstart it with: scripts/services.sh start kafka"
        );
    }
    format!(
        "127.0.0.1:{}",
        std::env::var("SOMAFLOW_KAFKA_PORT").unwrap_or_else(|_| "19092".into())
    )
}

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

/// A Kafka broker of the test's own (port, storage), for tests that stop or
/// kill it; started and stopped through `scripts/services.sh`.
pub struct PrivateBroker {
    dir: tempfile::TempDir,
    pub port: u16,
}

impl PrivateBroker {
    pub fn start() -> PrivateBroker {
        kafka_broker(); // builds tansu if needed, and fails clearly without it
        let broker = PrivateBroker {
            dir: tempfile::tempdir().expect("broker folder"),
            port: free_port(),
        };
        broker.services("start");
        broker
    }

    fn services(&self, action: &str) {
        let env = [
            (
                "SOMAFLOW_SERVICES_DIR",
                self.dir.path().display().to_string(),
            ),
            ("SOMAFLOW_KAFKA_PORT", self.port.to_string()),
        ];
        if let Err(e) = services(&[action, "kafka"], &env) {
            panic!(
                "scripts/services.sh {action} kafka (port {}): {e}",
                self.port
            );
        }
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn pid(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("kafka/broker.pid"))
            .expect("broker pid file")
            .trim()
            .to_string()
    }

    /// Sends a signal (`STOP`, `CONT`, `KILL`) to the broker process.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.pid()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{signal} broker");
    }

    /// SIGKILL, then a new broker on the same storage and port.
    pub fn kill9_and_restart(&self) {
        self.signal("KILL");
        // Wait for the port to be free before starting again.
        std::thread::sleep(Duration::from_millis(500));
        self.services("start");
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.pid()]).status();
        self.services("stop");
    }
}

/// Workers of one cluster on a broker: their own topics (unique prefix), a
/// shared checkpoint store and lake, `config/cluster.toml` for the rest.
pub struct ClusterScenario {
    pub brokers: String,
    pub prefix: String,
    pub root: tempfile::TempDir,
    /// The scenario's own database on the shared ClickHouse server.
    pub clickhouse: ClickHouseDb,
}

impl ClusterScenario {
    /// Creates this scenario's topics with `partitions` partitions each.
    pub fn new(brokers: &str, partitions: u32) -> ClusterScenario {
        let id = format!(
            "{}_{}",
            std::process::id(),
            chrono::Utc::now().timestamp_micros()
        );
        let scenario = ClusterScenario {
            brokers: brokers.to_string(),
            prefix: format!("c{}.", id.replace('_', "-")),
            root: tempfile::tempdir().expect("scenario folder"),
            clickhouse: ClickHouseDb {
                url: clickhouse_server(),
                database: format!("test_{id}"),
            },
        };
        let out = scenario
            .command(
                &["topics", "create"],
                &[("SOMAFLOW_KAFKA__PARTITIONS", &partitions.to_string())],
            )
            .output()
            .expect("somaflow topics create");
        assert!(
            out.status.success(),
            "somaflow topics create: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        scenario
    }

    fn env(&self) -> Vec<(String, String)> {
        let root = self.root.path();
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/cluster.toml");
        [
            ("SOMAFLOW_CONFIG", config.display().to_string()),
            ("SOMAFLOW_KAFKA__BROKERS", self.brokers.clone()),
            ("SOMAFLOW_KAFKA__TOPIC_PREFIX", self.prefix.clone()),
            (
                "SOMAFLOW_CLUSTER__GROUP_ID",
                format!("{}group", self.prefix),
            ),
            (
                "SOMAFLOW_CHECKPOINT__STORE",
                root.join("checkpoints").display().to_string(),
            ),
            (
                "SOMAFLOW_LAKE__URL",
                root.join("lake").display().to_string(),
            ),
            ("SOMAFLOW_CLICKHOUSE__URL", self.clickhouse.url.clone()),
            (
                "SOMAFLOW_CLICKHOUSE__DATABASE",
                self.clickhouse.database.clone(),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// A `somaflow` command with this scenario's settings.
    pub fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut c = Command::new(BIN);
        c.args(args)
            .envs(self.env())
            .envs(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())))
            .env_remove("RUST_BACKTRACE")
            .current_dir(self.root.path());
        c
    }

    /// Starts worker `id` (its log folder under the scenario root).
    pub fn worker(&self, id: &str, extra: &[(&str, &str)]) -> Somaflow {
        let dir = self.root.path().join(id);
        std::fs::create_dir_all(&dir).expect("worker folder");
        let mut env = self.env();
        env.push(("SOMAFLOW_CLUSTER__WORKER_ID".into(), id.into()));
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Somaflow::start(&dir, &env)
    }

    /// Starts `somaflow produce --to kafka … --json` in the background.
    pub fn produce(&self, args: &[&str]) -> Child {
        let mut all = vec!["produce", "--to", "kafka", "--json"];
        all.extend_from_slice(args);
        self.command(&all, &[])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn somaflow produce")
    }
}

/// Waits for a producer started by [`ClusterScenario::produce`]; its report.
pub fn producer_report(child: Child) -> ProduceReport {
    let out = child.wait_with_output().expect("wait for the producer");
    assert!(
        out.status.success(),
        "somaflow produce failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("producer JSON report")
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

/// Held by each test that runs workers against a broker: under `cargo test`
/// (one process, many threads) they run one at a time, as nextest's `kafka`
/// test group does (.config/nextest.toml).
pub async fn kafka_serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

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

fn services(args: &[&str], env: &[(&str, String)]) -> Result<(), String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("bash")
        .arg(root.join("scripts/services.sh"))
        .args(args)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// One database on a ClickHouse server, queried over HTTP.
pub struct ClickHouseDb {
    pub url: String,
    pub database: String,
}

impl ClickHouseDb {
    /// The answer as TSV text; panics with the server's message on an error.
    pub async fn query(&self, sql: &str) -> String {
        let response = reqwest::Client::new()
            .post(format!("{}/?database={}", self.url, self.database))
            .body(sql.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("ClickHouse at {}: {e}", self.url));
        let status = response.status();
        let text = response.text().await.expect("ClickHouse answer");
        assert!(status.is_success(), "ClickHouse refused `{sql}`: {text}");
        text
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

pub const EVENT_TABLES: [&str; 6] = [
    "conversations",
    "policy_decisions",
    "capsule_executions",
    "workflow_executions",
    "marketplace_transactions",
    "billing_events",
];

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
