//! The TOML configuration: one file, `SOMAFLOW_…` environment overrides, and
//! startup validation that names the key and the reason.

mod auth;
mod clickhouse;
mod cluster;
mod env;
mod otel;
mod platform;
mod sql;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use auth::{AuthConfig, MIN_AUTH_SECRET_BYTES};
pub use clickhouse::{ClickHouseConfig, is_identifier};
pub use cluster::{ClusterConfig, ClusterMode, is_valid_worker_id};
pub use env::apply_env_overrides;
pub use otel::OtelConfig;
pub use platform::{
    AccountingConfig, BudgetConfig, DispatchConfig, EnrichConfig, PolicyConfig, RedisConfig,
    WindowConfig,
};
pub use sql::SqlConfig;

/// A configuration mistake, reported at startup.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {reason}")]
    Syntax { path: PathBuf, reason: String },
    #[error("config key `{key}`: {reason}")]
    Key { key: String, reason: String },
}

/// An empty value, or an http(s) URL; `example` shows what one looks like.
fn optional_http_url(key: &str, url: &str, example: &str) -> Result<(), ConfigError> {
    if url.is_empty() || url.starts_with("http://") || url.starts_with("https://") {
        return Ok(());
    }
    Err(ConfigError::key(
        key,
        format!("{url:?} is not an http(s) URL ({example})"),
    ))
}

impl ConfigError {
    pub fn key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Base folder for the log, checkpoints and lake when their own paths are unset.
    pub data_dir: PathBuf,
    pub server: ServerConfig,
    pub auth: AuthConfig,
    pub sql: SqlConfig,
    pub otel: OtelConfig,
    pub log: LogConfig,
    pub checkpoint: CheckpointConfig,
    pub pipeline: PipelineConfig,
    pub dedup: DedupConfig,
    pub lake: LakeConfig,
    pub kafka: KafkaConfig,
    pub cluster: ClusterConfig,
    pub clickhouse: ClickHouseConfig,
    pub redis: RedisConfig,
    pub enrich: EnrichConfig,
    pub policy: PolicyConfig,
    pub accounting: AccountingConfig,
    pub window: WindowConfig,
    pub budget: BudgetConfig,
    pub dispatch: DispatchConfig,
}

/// The Kafka cluster: one topic per event kind plus dead letters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// `host:port[,host:port…]`
    pub brokers: String,
    /// Topic of a kind = prefix + table name (`soma.conversations`), unless
    /// `topics` names it.
    pub topic_prefix: String,
    /// Table → topic, overriding the prefix rule.
    pub topics: std::collections::BTreeMap<String, String>,
    /// Defaults to prefix + `dead_letters`.
    pub dead_letter_topic: Option<String>,
    /// Partitions `somaflow topics create` gives each topic.
    pub partitions: i32,
    /// Extra librdkafka settings, passed through as they are (numbers and
    /// booleans too, as `SOMAFLOW_KAFKA__CLIENT__…` overrides produce them).
    #[serde(deserialize_with = "scalars_as_strings")]
    pub client: std::collections::BTreeMap<String, String>,
}

fn scalars_as_strings<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let raw = std::collections::BTreeMap::<String, toml::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            toml::Value::String(s) => Ok((k, s)),
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                Ok((k, v.to_string()))
            }
            other => Err(serde::de::Error::custom(format!(
                "`{k}` must be a string, number or boolean, got {}",
                other.type_str()
            ))),
        })
        .collect()
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:19092".into(),
            topic_prefix: "soma.".into(),
            topics: Default::default(),
            dead_letter_topic: None,
            partitions: 8,
            client: Default::default(),
        }
    }
}

impl KafkaConfig {
    /// The topic events of `kind` go to.
    pub fn topic(&self, kind: crate::events::EventKind) -> String {
        self.topics
            .get(kind.table())
            .cloned()
            .unwrap_or_else(|| format!("{}{}", self.topic_prefix, kind.table()))
    }

    /// Every configured topic: one per kind, then dead letters.
    pub fn all_topics(&self) -> Vec<String> {
        let mut topics: Vec<String> = crate::events::EventKind::ALL
            .iter()
            .map(|k| self.topic(*k))
            .collect();
        topics.push(self.dead_letter_topic());
        topics
    }

    pub fn dead_letter_topic(&self) -> String {
        self.dead_letter_topic
            .clone()
            .unwrap_or_else(|| format!("{}dead_letters", self.topic_prefix))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub body_limit_bytes: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Defaults to `<data_dir>/log`.
    pub dir: Option<PathBuf>,
    pub segment_bytes: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckpointConfig {
    pub interval_ms: u64,
    /// A directory or object-store URL; defaults to `<data_dir>/checkpoints`.
    pub store: Option<String>,
    /// Complete checkpoints kept.
    pub keep: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PipelineConfig {
    /// Records a source reads per batch.
    pub batch_rows: usize,
    /// Rows an edge holds before its producer waits.
    pub channel_rows: usize,
    pub out_of_orderness_ms: u64,
    pub max_event_age_days: u64,
    pub max_future_secs: u64,
    /// The graph; empty means the default embedded graph.
    pub nodes: Vec<NodeConfig>,
}

/// One node of the graph: `inputs` name upstream nodes, `node.output` for a
/// named output other than `out`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub inputs: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    pub ttl_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    /// A local path, `file://…` or `s3://bucket/prefix`; defaults to `<data_dir>/lake`.
    pub url: Option<String>,
    /// Throttle on rows written per second (0 = unlimited), to protect a downstream store.
    pub max_rows_per_sec: u32,
    /// Rows buffered per table partition before they are staged early.
    pub max_buffer_rows: usize,
    /// Memory (MiB) buffered per table partition before it is staged early.
    pub max_buffer_mib: usize,
    pub row_group_rows: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./data"),
            server: ServerConfig::default(),
            auth: AuthConfig::default(),
            sql: SqlConfig::default(),
            otel: OtelConfig::default(),
            log: LogConfig::default(),
            checkpoint: CheckpointConfig::default(),
            pipeline: PipelineConfig::default(),
            dedup: DedupConfig::default(),
            lake: LakeConfig::default(),
            kafka: KafkaConfig::default(),
            cluster: ClusterConfig::default(),
            clickhouse: ClickHouseConfig::default(),
            redis: RedisConfig::default(),
            enrich: EnrichConfig::default(),
            policy: PolicyConfig::default(),
            accounting: AccountingConfig::default(),
            window: WindowConfig::default(),
            budget: BudgetConfig::default(),
            dispatch: DispatchConfig::default(),
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            body_limit_bytes: 10 * 1024 * 1024,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            dir: None,
            segment_bytes: 64 * 1024 * 1024,
        }
    }
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            interval_ms: 10_000,
            store: None,
            keep: 3,
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            batch_rows: 8192,
            channel_rows: 65_536,
            out_of_orderness_ms: 5_000,
            max_event_age_days: 35,
            max_future_secs: 3_600,
            nodes: Vec::new(),
        }
    }
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self { ttl_secs: 86_400 }
    }
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_rows_per_sec: 0,
            max_buffer_rows: 1_000_000,
            max_buffer_mib: 64,
            row_group_rows: 1_000_000,
        }
    }
}

/// The graph used when `pipeline.nodes` is empty: the embedded log through
/// decode and dedup into the lake, dead letters beside it.
pub fn default_nodes() -> Vec<NodeConfig> {
    let node = |id: &str, kind: &str, inputs: &[&str]| NodeConfig {
        id: id.into(),
        kind: kind.into(),
        inputs: inputs.iter().map(|s| s.to_string()).collect(),
    };
    vec![
        node("log", "local_log", &[]),
        node("decode", "decode", &["log"]),
        node("dedup", "dedup", &["decode"]),
        node("lake", "parquet", &["dedup", "decode.dead_letters"]),
    ]
}

impl Config {
    /// Reads `path` (or only defaults when `None`), applies `SOMAFLOW_…`
    /// overrides from `vars`, and validates.
    pub fn load(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                    path: p.to_path_buf(),
                    source,
                })?;
                toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::Syntax {
                    path: p.to_path_buf(),
                    reason: e.to_string(),
                })?
            }
            None => toml::Table::new(),
        };
        apply_env_overrides(&mut table, vars)?;
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
                let key = e.path().to_string();
                ConfigError::key(
                    if key == "." { String::new() } else { key },
                    e.into_inner().to_string(),
                )
            })?;
        config.validate()?;
        Ok(config)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.listen.parse::<SocketAddr>().map_err(|e| {
            ConfigError::key(
                "server.listen",
                format!("{:?} is not host:port ({e})", self.server.listen),
            )
        })?;
        self.auth.validate()?;
        self.otel.validate()?;
        let positive = [
            (
                "server.body_limit_bytes",
                self.server.body_limit_bytes as u64,
            ),
            ("log.segment_bytes", self.log.segment_bytes),
            ("sql.timeout_ms", self.sql.timeout_ms),
            ("sql.max_rows", self.sql.max_rows as u64),
            ("checkpoint.interval_ms", self.checkpoint.interval_ms),
            ("checkpoint.keep", self.checkpoint.keep as u64),
            ("pipeline.batch_rows", self.pipeline.batch_rows as u64),
            ("pipeline.channel_rows", self.pipeline.channel_rows as u64),
            ("lake.max_buffer_rows", self.lake.max_buffer_rows as u64),
            ("lake.max_buffer_mib", self.lake.max_buffer_mib as u64),
            ("lake.row_group_rows", self.lake.row_group_rows as u64),
            ("dedup.ttl_secs", self.dedup.ttl_secs),
        ];
        for (key, value) in positive {
            if value == 0 {
                return Err(ConfigError::key(key, "must be greater than 0"));
            }
        }
        // One event must fit one log record (64 MiB).
        if self.server.body_limit_bytes > 64 * 1024 * 1024 - 8 {
            return Err(ConfigError::key(
                "server.body_limit_bytes",
                "must be at most 67108856 (64 MiB, the largest log record)",
            ));
        }
        for table in self.kafka.topics.keys() {
            if crate::events::EventKind::from_table(table).is_none() {
                return Err(ConfigError::key(
                    format!("kafka.topics.{table}"),
                    "not an event table; use conversations, policy_decisions, capsule_executions, workflow_executions, marketplace_transactions or billing_events",
                ));
            }
        }
        if self.kafka.partitions < 1 {
            return Err(ConfigError::key("kafka.partitions", "must be at least 1"));
        }
        self.cluster.validate()?;
        if self.writes_clickhouse() {
            self.clickhouse.validate()?;
        }
        platform::validate(&self.redis, &self.window, &self.budget, &self.dispatch)?;
        if self.enrich.ttl_secs == 0 {
            return Err(ConfigError::key(
                "enrich.ttl_secs",
                "must be greater than 0",
            ));
        }
        if self.pipeline.channel_rows < self.pipeline.batch_rows {
            return Err(ConfigError::key(
                "pipeline.channel_rows",
                format!(
                    "must be at least pipeline.batch_rows ({}), or every batch would wait alone",
                    self.pipeline.batch_rows
                ),
            ));
        }
        Ok(())
    }

    pub fn log_dir(&self) -> PathBuf {
        self.log
            .dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("log"))
    }

    pub fn checkpoint_store(&self) -> String {
        self.checkpoint
            .store
            .clone()
            .unwrap_or_else(|| self.data_dir.join("checkpoints").display().to_string())
    }

    pub fn lake_url(&self) -> String {
        self.lake
            .url
            .clone()
            .unwrap_or_else(|| self.data_dir.join("lake").display().to_string())
    }

    /// Whether the graph reads Kafka: the node is then a cluster worker
    /// (HTTP ingest produces to Kafka instead of the embedded log).
    pub fn reads_kafka(&self) -> bool {
        self.nodes().iter().any(|n| n.kind == "kafka")
    }

    /// Whether the graph has a `clickhouse` sink (its server then decides `/ready`).
    /// The agent pools' topics when the graph dispatches steps.
    pub fn dispatch_topics(&self) -> Vec<String> {
        if !self.nodes().iter().any(|n| n.kind == "dispatch") {
            return Vec::new();
        }
        self.dispatch
            .pools
            .iter()
            .map(|pool| format!("{}{pool}", self.dispatch.topic_prefix))
            .collect()
    }

    pub fn writes_clickhouse(&self) -> bool {
        self.nodes().iter().any(|n| n.kind == "clickhouse")
    }

    pub fn nodes(&self) -> Vec<NodeConfig> {
        if self.pipeline.nodes.is_empty() {
            default_nodes()
        } else {
            self.pipeline.nodes.clone()
        }
    }

    pub fn time_bounds(&self) -> crate::events::TimeBounds {
        crate::events::TimeBounds {
            max_age_us: (self.pipeline.max_event_age_days as i64).saturating_mul(86_400_000_000),
            max_future_us: (self.pipeline.max_future_secs as i64).saturating_mul(1_000_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.toml");
        std::fs::write(&path, text).unwrap();
        Config::load(
            Some(&path),
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn unknown_key_is_named() {
        let err = load("[server]\nlsten = \"x\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("server.lsten") || err.contains("lsten"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_is_named_with_its_path() {
        let err = load("[checkpoint]\ninterval_ms = \"soon\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("checkpoint.interval_ms"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let err = load("[server]\nlisten = \"nowhere\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.listen"), "{err}");
        let err = load("[checkpoint]\ninterval_ms = 0\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("checkpoint.interval_ms"), "{err}");
    }

    #[test]
    fn a_short_auth_secret_is_named_and_never_printed() {
        let err = load("[auth]\nsecret = \"tooshort\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.secret") && err.contains("32"), "{err}");
        let long = "x".repeat(MIN_AUTH_SECRET_BYTES);
        let config = load(&format!("[auth]\nsecret = \"{long}\"\n"), &[]).unwrap();
        assert!(config.auth.enabled());
        assert!(!format!("{config:?}").contains(&long));
    }

    #[test]
    fn a_jwks_url_turns_auth_on_and_must_be_http() {
        let err = load("[auth]\njwks_url = \"keycloak/certs\"\n", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("auth.jwks_url"), "{err}");
        let config = load(
            "[auth]\njwks_url = \"https://idp/realms/r/protocol/openid-connect/certs\"\n",
            &[],
        )
        .unwrap();
        assert!(config.auth.enabled() && config.auth.secret.is_empty());
    }

    #[test]
    fn environment_overrides_the_file() {
        let c = load(
            "[server]\nlisten = \"127.0.0.1:1\"\n",
            &[
                ("SOMAFLOW_SERVER__LISTEN", "127.0.0.1:2"),
                ("SOMAFLOW_LAKE__MAX_ROWS_PER_SEC", "500"),
                ("OTHER", "x"),
            ],
        )
        .unwrap();
        assert_eq!(c.server.listen, "127.0.0.1:2");
        assert_eq!(c.lake.max_rows_per_sec, 500);
        let err = load("", &[("SOMAFLOW_LAKE__MAX_ROWS_PER_SEC", "many")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("lake.max_rows_per_sec"), "{err}");
    }

    #[test]
    fn shipped_configs_load() {
        for name in ["local.toml", "cluster.toml"] {
            let path = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../config")
                .join(name);
            let config = Config::load(Some(&path), Vec::new())
                .unwrap_or_else(|e| panic!("config/{name}: {e}"));
            assert_eq!(config.writes_clickhouse(), name == "cluster.toml");
        }
    }
}
