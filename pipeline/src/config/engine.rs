//! The engine's own sections: `[checkpoint]` (how often and where epochs
//! are committed) and `[pipeline]` (the graph, batch and channel sizes, the
//! event-time bounds), and what the runtime asks of a whole config.

use serde::{Deserialize, Serialize};

use super::{ConfigError, require_positive};
use crate::events::TimeBounds;

/// What the runtime reads from a node's configuration. The binary's config
/// implements it; node factories get the same value, so each reads its own
/// section from it.
pub trait EngineConfig: Sync {
    /// The graph to run: `pipeline.nodes`, or the default graph when the
    /// file names none.
    fn nodes(&self) -> Vec<NodeConfig>;
    fn pipeline(&self) -> &PipelineConfig;
    fn checkpoint(&self) -> &CheckpointConfig;
    /// A directory or object-store URL.
    fn checkpoint_store(&self) -> String;
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

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            interval_ms: 10_000,
            store: None,
            keep: 3,
        }
    }
}

impl CheckpointConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_positive(&[
            ("checkpoint.interval_ms", self.interval_ms),
            ("checkpoint.keep", self.keep as u64),
        ])
    }
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
    /// After this long without a new record, the embedded log gets an idle
    /// tick and windows before (clock − out_of_orderness) close; 0: never.
    pub idle_timeout_ms: u64,
    /// The graph; empty means the default graph.
    pub nodes: Vec<NodeConfig>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            batch_rows: 8192,
            channel_rows: 65_536,
            out_of_orderness_ms: 5_000,
            max_event_age_days: 35,
            max_future_secs: 3_600,
            idle_timeout_ms: 5_000,
            nodes: Vec::new(),
        }
    }
}

impl PipelineConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_positive(&[
            ("pipeline.batch_rows", self.batch_rows as u64),
            ("pipeline.channel_rows", self.channel_rows as u64),
        ])?;
        if self.channel_rows < self.batch_rows {
            return Err(ConfigError::key(
                "pipeline.channel_rows",
                format!(
                    "must be at least pipeline.batch_rows ({}), or every batch would wait alone",
                    self.batch_rows
                ),
            ));
        }
        Ok(())
    }

    /// How old or how far ahead of ingest time an event may be.
    pub fn time_bounds(&self) -> TimeBounds {
        TimeBounds {
            max_age_us: (self.max_event_age_days as i64).saturating_mul(86_400_000_000),
            max_future_us: (self.max_future_secs as i64).saturating_mul(1_000_000),
        }
    }

    /// How late an event may arrive after a later one, in microseconds.
    pub fn out_of_orderness_us(&self) -> i64 {
        (self.out_of_orderness_ms as i64).saturating_mul(1000)
    }
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

impl NodeConfig {
    pub fn new(id: &str, kind: &str, inputs: &[&str]) -> Self {
        NodeConfig {
            id: id.into(),
            kind: kind.into(),
            inputs: inputs.iter().map(|s| s.to_string()).collect(),
        }
    }
}
