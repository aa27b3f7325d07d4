//! Shared helpers: start/kill a `somaflow run` child process on its own data
//! folder and port, talk to its HTTP API, poll until a condition holds. The
//! lake assertions, the Kafka side (broker, cluster scenarios) and the
//! ClickHouse side live in the submodules.

mod auth;
mod clickhouse;
mod embedded;
mod kafka;
mod lake;
mod money;
mod prometheus;
mod redis;

pub use auth::*;
pub use clickhouse::*;
pub use embedded::*;
pub use kafka::*;
pub use lake::*;
pub use money::*;
pub use prometheus::*;
pub use redis::*;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

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
        self.wait_until("somaflow to answer /ready", Duration::from_secs(30), || {
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
    post_ndjson_as(client, base, records, None).await
}

/// Posts NDJSON with a bearer token (a node with auth off ignores it).
pub async fn post_ndjson_as(
    client: &reqwest::Client,
    base: &str,
    records: &[bytes::Bytes],
    token: Option<&str>,
) -> reqwest::Result<(u16, Value)> {
    let mut body = Vec::new();
    for r in records {
        body.extend_from_slice(r);
        body.push(b'\n');
    }
    let mut request = client
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let resp = request.send().await?;
    let status = resp.status().as_u16();
    let json = resp.json().await.unwrap_or(Value::Null);
    Ok((status, json))
}

/// A billing event dated `ahead` in the future: it moves the watermark past
/// every window of the test's traffic, so all of them close. Sent with an
/// admin token, which a node with auth off ignores.
pub async fn close_all_windows(node: &Somaflow, ahead: chrono::Duration) {
    let tick = cloud_event_at(
        &format!("tick-{}", chrono::Utc::now().timestamp_micros()),
        "tick",
        "soma.billing.v1",
        chrono::Utc::now() + ahead,
        serde_json::json!({"meter": "tick", "quantity": "1", "unit": "tick"}),
    );
    let admin = token(None, &["admin"]);
    let (status, body) = post_ndjson_as(
        &reqwest::Client::new(),
        &node.url(),
        &[tick.into()],
        Some(&admin),
    )
    .await
    .expect("POST the tick event");
    assert_eq!(status, 202, "tick event: {body}");
}

/// A valid conversation event with the given id, dated now.
pub fn conversation(id: &str, tenant: &str, input_tokens: i64) -> String {
    cloud_event(
        id,
        tenant,
        "soma.conversation.v1",
        serde_json::json!({
            "user_id": "u1", "session_id": "s1", "provider": "openai", "model": "gpt-4o",
            "input_tokens": input_tokens, "output_tokens": 7, "cached_input_tokens": 0,
            "reasoning_tokens": 0, "latency_ms": 12, "status": "ok",
        }),
    )
}

/// A valid CloudEvent of `type_name` (e.g. `soma.workflow_step.v1`) with
/// the given id, tenant and `data`, dated now.
pub fn cloud_event(id: &str, tenant: &str, type_name: &str, data: Value) -> String {
    cloud_event_at(id, tenant, type_name, chrono::Utc::now(), data)
}

/// [`cloud_event`] dated `at`.
pub fn cloud_event_at(
    id: &str,
    tenant: &str,
    type_name: &str,
    at: chrono::DateTime<chrono::Utc>,
    data: Value,
) -> String {
    serde_json::json!({
        "specversion": "1.0",
        "id": id,
        "source": "/test",
        "type": type_name,
        "time": at.to_rfc3339(),
        "tenantid": tenant,
        "data": data,
    })
    .to_string()
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
    metrics_text(node)
        .await
        .lines()
        .filter(|l| l.starts_with(&format!("{metric}{{")) && l.contains(label))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Waits until an embedded node's pipeline has read everything its log
/// holds and two checkpoints have completed since: every accepted event is
/// then committed (with checkpoints every second, rows counted in SQL and
/// in usage agree at every commit, so agreement alone says nothing about
/// whether the pipeline has caught up).
pub async fn wait_caught_up(node: &Somaflow, within: Duration) {
    node.wait_until("the pipeline to read the whole log", within, || async {
        let end = metric_value(node, "somaflow_log_end_offset").await;
        end > 0.0 && metric_value(node, "somaflow_log_read_offset").await >= end
    })
    .await;
    let done = metric_value(node, "somaflow_checkpoints_completed_total").await;
    node.wait_until("two checkpoints after that", within, || async {
        metric_value(node, "somaflow_checkpoints_completed_total").await >= done + 2.0
    })
    .await;
}

/// The value of a metric without labels in `/metrics` (0 when absent).
pub async fn metric_value(node: &Somaflow, metric: &str) -> f64 {
    metrics_text(node)
        .await
        .lines()
        .find_map(|l| l.strip_prefix(metric)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or(0.0)
}

/// The node's `/metrics` exposition.
async fn metrics_text(node: &Somaflow) -> String {
    reqwest::get(format!("{}/metrics", node.url()))
        .await
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics text")
}

/// The sum of [`metric_series`].
pub async fn metric_sum(node: &Somaflow, metric: &str, label: &str) -> f64 {
    metric_series(node, metric, label)
        .await
        .into_iter()
        .map(|(_, v)| v)
        .sum()
}

/// The repository's root: config files, scripts and the shipped data.
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a tool installer (`scripts/python-tools.sh`, `console-tools.sh`)
/// and returns the path it prints; `what` says what it installs, for the
/// failure message, which names the script to run by hand.
pub fn tool_path(script: &str, what: &str) -> String {
    let out = Command::new("bash")
        .arg(repo().join("scripts").join(script))
        .output()
        .unwrap_or_else(|e| panic!("running scripts/{script}: {e}"));
    assert!(
        out.status.success(),
        "installing {what} failed: {}\nrun `bash scripts/services.sh deps`, then `bash scripts/{script}`",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// `SOMAFLOW_…` settings of a node with auth on (tokens from
/// [`token`]) and a rate limit no test reaches.
pub const AUTH_ON: [(&str, &str); 3] = [
    ("SOMAFLOW_AUTH__SECRET", TEST_SECRET),
    ("SOMAFLOW_AUTH__REQUESTS_PER_SECOND", "100000"),
    ("SOMAFLOW_AUTH__REQUEST_BURST", "100000"),
];

/// Runs `scripts/services.sh ARGS` with `env`; its stderr on failure.
pub fn services(args: &[&str], env: &[(&str, String)]) -> Result<(), String> {
    let out = Command::new("bash")
        .arg(repo().join("scripts/services.sh"))
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

/// The six event tables.
pub const EVENT_TABLES: [&str; 6] = [
    "conversations",
    "policy_decisions",
    "capsule_executions",
    "workflow_executions",
    "marketplace_transactions",
    "billing_events",
];
