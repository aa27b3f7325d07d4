//! A private Prometheus (Debian's `prometheus` 2.42, installed by
//! `scripts/services.sh deps`) scraping given somaflow nodes every second,
//! with the repository's alert rules loaded; and `promtool`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

use super::{free_port, wait_for};

const HINT: &str = "install it with `bash scripts/services.sh deps` (Debian package `prometheus`)";

/// Path of a Prometheus tool (`prometheus`, `promtool`); panics saying how
/// to install it when missing.
pub fn prometheus_tool(name: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(name);
    assert!(path.exists(), "`{name}` is not installed: {HINT}");
    path
}

pub struct PrivatePrometheus {
    child: Child,
    pub url: String,
    _dir: tempfile::TempDir,
}

impl PrivatePrometheus {
    /// Starts Prometheus scraping `targets` (`host:port`) every second,
    /// evaluating `rule_files` every second.
    pub async fn start(targets: &[String], rule_files: &[PathBuf]) -> PrivatePrometheus {
        let dir = tempfile::tempdir().expect("prometheus folder");
        let targets: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
        let rules: Vec<String> = rule_files
            .iter()
            .map(|r| format!("  - '{}'", r.display()))
            .collect();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n{}\nscrape_configs:\n  - job_name: somaflow\n    static_configs:\n      - targets: [{}]\n",
            rules.join("\n"),
            targets.join(", ")
        );
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let port = free_port();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).expect("log file");
        let child = Command::new(prometheus_tool("prometheus"))
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start prometheus ({e}): {HINT}"));
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        wait_for("Prometheus to be ready", Duration::from_secs(30), || {
            let ready = ready.clone();
            async move { matches!(reqwest::get(&ready).await, Ok(r) if r.status().is_success()) }
        })
        .await;
        PrivatePrometheus {
            child,
            url,
            _dir: dir,
        }
    }

    /// An instant query: the result vector, or Prometheus's error.
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.url))
            .query(&[("query", expr)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(format!("{}: {}", body["errorType"], body["error"]));
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// `GET /api/v1/<path>`'s `data`.
    pub async fn api(&self, path: &str) -> Value {
        let body: Value = reqwest::get(format!("{}/api/v1/{path}", self.url))
            .await
            .expect("Prometheus API")
            .json()
            .await
            .expect("JSON");
        body["data"].clone()
    }
}

impl Drop for PrivatePrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `promtool ARGS` with `stdin`; its combined output on failure.
pub fn promtool(args: &[&str], stdin: Option<&[u8]>) -> Result<String, String> {
    use std::io::Write;
    let mut child = Command::new(prometheus_tool("promtool"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run promtool ({e}): {HINT}"));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input)
            .expect("write to promtool");
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().expect("promtool");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(text)
    } else {
        Err(text)
    }
}
