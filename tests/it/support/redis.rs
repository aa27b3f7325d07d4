//! A private Redis server per test (Debian's redis-server, no persistence),
//! so tests that pause Redis or read its keys never meet another test's.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::{free_port, services, wait_for};

pub struct PrivateRedis {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        let dir = tempfile::tempdir().expect("redis folder");
        let port = free_port();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start redis-server ({e}): install it with `bash scripts/services.sh start redis`"
                )
            });
        let redis = PrivateRedis {
            port,
            child,
            _dir: dir,
        };
        let url = redis.url();
        wait_for(
            "the private Redis to answer",
            Duration::from_secs(20),
            || {
                let url = url.clone();
                async move {
                    redis::Client::open(url.as_str())
                        .and_then(|c| c.get_connection())
                        .and_then(|mut c| redis::cmd("PING").query::<String>(&mut c))
                        .is_ok()
                }
            },
        )
        .await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url().as_str())
            .and_then(|c| c.get_connection())
            .expect("connect to the private Redis")
    }

    /// SIGSTOP: Redis stops answering (clients time out) but keeps its data.
    pub fn pause(&self) {
        let _ = Command::new("kill")
            .args(["-STOP", &self.child.id().to_string()])
            .status();
    }

    pub fn resume(&self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.resume();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shared Redis of `scripts/services.sh` (port 16379, or
/// `SOMAFLOW_REDIS_PORT`), started if needed; fails the test, saying how to
/// start it, when it cannot be reached.
pub fn shared_redis() -> String {
    static STARTED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let started = STARTED.get_or_init(|| services(&["start", "redis"], &[]));
    if let Err(e) = started {
        panic!(
            "Redis is not running and could not be started: {e}\nstart it with: scripts/services.sh start redis"
        );
    }
    let port = std::env::var("SOMAFLOW_REDIS_PORT").unwrap_or_else(|_| "16379".into());
    format!("redis://127.0.0.1:{port}")
}
