//! `[cluster]`: how a worker takes part in a cluster that reads Kafka.

use serde::{Deserialize, Serialize};

use super::ConfigError;
use crate::checkpoint::parse_shard;

/// How a worker gets its partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClusterMode {
    /// A consumer group spreads partitions over the running workers.
    Group,
    /// Fixed partitions (`cluster.partitions`), positions only from checkpoints.
    Assign,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This worker's name: its folder in the shared checkpoint store and its
    /// staging folder in the lake. Must stay the same across restarts.
    /// Default: the host name.
    pub worker_id: Option<String>,
    pub mode: ClusterMode,
    /// Consumer group of `group` mode (offsets are committed under it in both modes).
    pub group_id: String,
    /// `assign` mode: `topic@partition` entries; empty = every partition of
    /// every kind topic.
    pub partitions: Vec<String>,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            worker_id: None,
            mode: ClusterMode::Group,
            group_id: "somaflow".into(),
            partitions: Vec::new(),
        }
    }
}

/// Letters, digits, `-`, `_` or `.`: the id names a folder in the shared store.
pub fn is_valid_worker_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl ClusterConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.group_id.is_empty() {
            return Err(ConfigError::key("cluster.group_id", "must not be empty"));
        }
        if let Some(p) = self.partitions.iter().find(|p| parse_shard(p).is_none()) {
            return Err(ConfigError::key(
                "cluster.partitions",
                format!("{p:?} is not `topic@partition`, e.g. \"soma.conversations@0\""),
            ));
        }
        if let Some(id) = &self.worker_id
            && !is_valid_worker_id(id)
        {
            return Err(ConfigError::key(
                "cluster.worker_id",
                format!("{id:?} must use only letters, digits, `-`, `_` or `.`"),
            ));
        }
        Ok(())
    }

    /// The configured worker id, or the host name.
    pub fn worker_id(&self) -> String {
        self.worker_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_default();
            let host: String = host
                .trim()
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            if host.is_empty() {
                "worker".into()
            } else {
                host
            }
        })
    }
}
