//! The Kafka side: the shared broker, private brokers a test may stop or
//! kill, cluster scenarios (own topics, shared store and lake, own
//! ClickHouse database) and the producer's report.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use somaflow::generator::ProduceReport;

use super::{
    BIN, ClickHouseDb, FAST_CHECKPOINTS, PrivateRedis, Somaflow, TEST_SECRET, clickhouse_server,
    free_port, rows_as, services, token,
};

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
    /// `config/cluster.toml`, or `config/platform.toml` with its settings.
    config: &'static str,
    extra_env: Vec<(String, String)>,
}

impl ClusterScenario {
    /// Creates this scenario's topics with `partitions` partitions each.
    pub fn new(brokers: &str, partitions: u32) -> ClusterScenario {
        Self::with_config(brokers, partitions, "config/cluster.toml", Vec::new())
    }

    /// The whole platform pipeline (`config/platform.toml`) with `redis_url`
    /// for metadata and budgets; rule and price files from the repository.
    pub fn platform(brokers: &str, partitions: u32, redis_url: &str) -> ClusterScenario {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let env = vec![
            ("SOMAFLOW_REDIS__URL".to_string(), redis_url.to_string()),
            (
                "SOMAFLOW_POLICY__RULES".to_string(),
                repo.join("config/policies.toml").display().to_string(),
            ),
            (
                "SOMAFLOW_ACCOUNTING__PRICES".to_string(),
                repo.join("config/prices.toml").display().to_string(),
            ),
        ];
        Self::with_config(brokers, partitions, "config/platform.toml", env)
    }

    fn with_config(
        brokers: &str,
        partitions: u32,
        config: &'static str,
        extra_env: Vec<(String, String)>,
    ) -> ClusterScenario {
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
            config,
            extra_env,
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
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join(self.config);
        let mut env: Vec<(String, String)> = [
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
        .collect();
        env.extend(self.extra_env.iter().cloned());
        env
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

    /// Loads `config/tenants.csv` and `config/capsules.csv` into the
    /// scenario's Redis (`somaflow tenants import`), for the enrich node.
    pub fn import_tenants(&self) {
        let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
        let out = self
            .command(
                &[
                    "tenants",
                    "import",
                    &repo.join("config/tenants.csv").display().to_string(),
                    "--capsules",
                    &repo.join("config/capsules.csv").display().to_string(),
                ],
                &[],
            )
            .output()
            .expect("somaflow tenants import");
        assert!(
            out.status.success(),
            "tenants import: {}",
            String::from_utf8_lossy(&out.stderr)
        );
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

/// Held by each test that runs workers against a broker: under `cargo test`
/// (one process, many threads) they run one at a time, as nextest's `kafka`
/// test group does (.config/nextest.toml).
pub async fn kafka_serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// What the API tests read from: one platform worker (`config/platform.toml`)
/// with auth on, on the shared broker and a Redis of its own, ready. Hold it
/// for the whole test; it holds the broker's test lock too.
pub struct ApiWorker {
    pub worker: Somaflow,
    pub scenario: ClusterScenario,
    pub redis: PrivateRedis,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

impl ApiWorker {
    pub async fn start() -> ApiWorker {
        let serial = kafka_serial().await;
        let redis = PrivateRedis::start().await;
        let scenario = ClusterScenario::platform(&kafka_broker(), 2, &redis.url());
        let worker = scenario.worker(
            "w1",
            &[FAST_CHECKPOINTS, ("SOMAFLOW_AUTH__SECRET", TEST_SECRET)],
        );
        worker.wait_ready().await;
        ApiWorker {
            worker,
            scenario,
            redis,
            _serial: serial,
        }
    }

    pub fn url(&self) -> String {
        self.worker.url()
    }

    /// Waits (up to 2 minutes) until the lake and ClickHouse (deduplicated,
    /// `FINAL`) each hold `expected` rows over `tables` together.
    pub async fn wait_for_rows(&self, tables: &[&str], expected: u64) {
        let total = |count: &str, suffix: &str| {
            let parts: Vec<String> = tables
                .iter()
                .map(|t| format!("(SELECT {count} FROM {t}{suffix})"))
                .collect();
            format!("SELECT {}", parts.join(" + "))
        };
        let (lake_query, clickhouse_query) = (total("count(*)", ""), total("count()", " FINAL"));
        let (base, db) = (self.url(), &self.scenario.clickhouse);
        let what = format!(
            "{expected} rows of {} in the lake and ClickHouse",
            tables.join(", ")
        );
        self.worker
            .wait_until(&what, Duration::from_secs(120), || {
                let (base, lake_query, clickhouse_query) =
                    (base.clone(), lake_query.clone(), clickhouse_query.clone());
                async move {
                    let lake = rows_as(&base, &token(None, &["admin"]), &lake_query).await;
                    let ch = db.query(&clickhouse_query).await;
                    lake[0][0] == serde_json::json!(expected) && ch.trim() == expected.to_string()
                }
            })
            .await;
    }
}
