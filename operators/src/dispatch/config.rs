//! `[dispatch]`: agent pools, their topics, and per-tenant rate limits.

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DispatchConfig {
    /// Topic of an agent pool = prefix + pool name.
    pub topic_prefix: String,
    /// Steps dispatched per tenant per second (steady rate)…
    pub per_tenant_per_sec: u32,
    /// …and how many may go at once after a quiet spell.
    pub burst: u32,
    /// Agent pools whose topics `somaflow topics create` makes.
    pub pools: Vec<String>,
    /// Without a broker: how long a pool's queue keeps records every
    /// consumer group has committed past (seconds).
    pub queue_retention_secs: u64,
}

impl Default for DispatchConfig {
    fn default() -> Self {
        Self {
            topic_prefix: "soma.agents.".into(),
            per_tenant_per_sec: 50,
            burst: 200,
            pools: ["general", "coding", "research", "browser", "data"]
                .map(String::from)
                .to_vec(),
            queue_retention_secs: 86_400,
        }
    }
}

impl DispatchConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.per_tenant_per_sec == 0 || self.burst == 0 {
            return Err(ConfigError::key(
                if self.burst == 0 {
                    "dispatch.burst"
                } else {
                    "dispatch.per_tenant_per_sec"
                },
                "must be greater than 0",
            ));
        }
        Ok(())
    }

    /// The topic of each pool.
    pub fn pool_topics(&self) -> Vec<String> {
        self.pools
            .iter()
            .map(|pool| format!("{}{pool}", self.topic_prefix))
            .collect()
    }
}
