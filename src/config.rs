//! The whole configuration file: every section, each declared and
//! validated beside the code it configures, put together here; loaded from
//! TOML with `SOMAFLOW_…` environment overrides, and checked at startup so
//! a mistake names its key and the reason.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use somaflow_api::ServerConfig;
use somaflow_api::auth::AuthConfig;
use somaflow_operators::DedupConfig;
use somaflow_operators::accounting::AccountingConfig;
use somaflow_operators::budget::BudgetConfig;
use somaflow_operators::dispatch::DispatchConfig;
use somaflow_operators::enrich::EnrichConfig;
use somaflow_operators::policy::PolicyConfig;
use somaflow_operators::redis::RedisConfig;
use somaflow_operators::window::WindowConfig;
use somaflow_pipeline::config::{
    CheckpointConfig, ConfigError, EngineConfig, NodeConfig, PipelineConfig, deserialize,
    read_table,
};
use somaflow_pipeline::events::TimeBounds;
use somaflow_pipeline::log::LogConfig;
use somaflow_sinks::alerts::AlertsConfig;
use somaflow_sinks::clickhouse::ClickHouseConfig;
use somaflow_sinks::parquet::{LakeConfig, ParquetSinkConfig};
use somaflow_sources::kafka::{ClusterConfig, KafkaConfig};
use somaflow_sql::SqlConfig;

use crate::telemetry::OtelConfig;

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
    pub alerts: AlertsConfig,
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
            alerts: AlertsConfig::default(),
        }
    }
}

/// The graph used when `pipeline.nodes` is empty: the embedded log through
/// decode and dedup into the lake, dead letters beside it.
pub fn default_nodes() -> Vec<NodeConfig> {
    vec![
        NodeConfig::new("log", "local_log", &[]),
        NodeConfig::new("decode", "decode", &["log"]),
        NodeConfig::new("dedup", "dedup", &["decode"]),
        NodeConfig::new("lake", "parquet", &["dedup", "decode.dead_letters"]),
    ]
}

impl Config {
    /// Reads `path` (or only defaults when `None`), applies `SOMAFLOW_…`
    /// overrides from `vars`, and validates.
    pub fn load(
        path: Option<&Path>,
        vars: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let config: Config = deserialize(read_table(path, vars)?)?;
        config.validate()?;
        Ok(config)
    }

    /// Every section's own checks; ClickHouse's only when the graph writes it.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.server.validate()?;
        self.auth.validate()?;
        self.otel.validate()?;
        self.sql.validate()?;
        self.log.validate()?;
        self.checkpoint.validate()?;
        self.pipeline.validate()?;
        self.lake.validate()?;
        if let Some(compaction) = self.lake.compaction_for(self.worker().as_deref())? {
            // A query lists its files, then reads them: a merged file must
            // outlive the longest query that may have listed it.
            if compaction.grace.as_millis() <= u128::from(self.sql.timeout_ms) {
                return Err(ConfigError::key(
                    "lake.compaction_grace_secs",
                    format!(
                        "must be longer than sql.timeout_ms ({} ms): a query that listed a merged file may still read it",
                        self.sql.timeout_ms
                    ),
                ));
            }
        }
        self.dedup.validate()?;
        self.kafka.validate()?;
        self.cluster.validate()?;
        if self.writes_clickhouse() {
            self.clickhouse.validate()?;
        }
        self.redis.validate()?;
        self.window.validate()?;
        self.budget.validate()?;
        self.dispatch.validate()?;
        self.enrich.validate()?;
        self.alerts.validate()?;
        let delivers = self.nodes().iter().any(|n| n.kind == "alerts");
        if !self.alerts.webhooks.is_empty() && !delivers {
            return Err(ConfigError::key(
                "alerts.webhooks",
                "webhooks are set but no `alerts` node delivers to them: add `[[pipeline.nodes]] id = \"alerts\" type = \"alerts\" inputs = [\"budget.budget_events\"]`",
            ));
        }
        Ok(())
    }

    /// The graph to run: `pipeline.nodes`, or [`default_nodes`].
    pub fn nodes(&self) -> Vec<NodeConfig> {
        if self.pipeline.nodes.is_empty() {
            default_nodes()
        } else {
            self.pipeline.nodes.clone()
        }
    }

    /// `checkpoint.store`, or `<data_dir>/checkpoints`.
    pub fn checkpoint_store(&self) -> String {
        self.checkpoint
            .store
            .clone()
            .unwrap_or_else(|| self.data_dir.join("checkpoints").display().to_string())
    }

    pub fn log_dir(&self) -> PathBuf {
        self.log.dir_in(&self.data_dir)
    }

    pub fn lake_url(&self) -> String {
        self.lake.url_in(&self.data_dir)
    }

    /// Whether the graph reads Kafka: the node is then a cluster worker
    /// (HTTP ingest produces to Kafka instead of the embedded log).
    pub fn reads_kafka(&self) -> bool {
        self.nodes().iter().any(|n| n.kind == "kafka")
    }

    /// Whether the graph has a `clickhouse` sink (its server then decides `/ready`).
    pub fn writes_clickhouse(&self) -> bool {
        self.nodes().iter().any(|n| n.kind == "clickhouse")
    }

    /// The agent pools' topics when the graph dispatches steps.
    pub fn dispatch_topics(&self) -> Vec<String> {
        if !self.nodes().iter().any(|n| n.kind == "dispatch") {
            return Vec::new();
        }
        self.dispatch.pool_topics()
    }

    pub fn time_bounds(&self) -> TimeBounds {
        self.pipeline.time_bounds()
    }

    /// The settings of a `parquet` node: the lake, and the worker whose
    /// staging folder it writes when this node is a cluster worker.
    pub fn parquet_sink(&self) -> ParquetSinkConfig {
        ParquetSinkConfig::new(&self.lake, self.lake_url(), self.worker())
    }

    /// This node's worker id when it is a cluster worker.
    fn worker(&self) -> Option<String> {
        self.reads_kafka().then(|| self.cluster.worker_id())
    }
}

impl EngineConfig for Config {
    fn nodes(&self) -> Vec<NodeConfig> {
        Config::nodes(self)
    }

    fn pipeline(&self) -> &PipelineConfig {
        &self.pipeline
    }

    fn checkpoint(&self) -> &CheckpointConfig {
        &self.checkpoint
    }

    fn checkpoint_store(&self) -> String {
        Config::checkpoint_store(self)
    }
}
#[cfg(test)]
mod tests {
    use somaflow_api::auth::MIN_AUTH_SECRET_BYTES;

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
                // Read by `somaflow produce --token`, not a config key.
                ("SOMAFLOW_TOKEN", "eyJ.x.y"),
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
                .join("config")
                .join(name);
            let config = Config::load(Some(&path), Vec::new())
                .unwrap_or_else(|e| panic!("config/{name}: {e}"));
            assert_eq!(config.writes_clickhouse(), name == "cluster.toml");
        }
    }
}
