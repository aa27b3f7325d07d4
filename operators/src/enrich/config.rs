//! `[enrich]`: how long tenant and capsule metadata is cached.

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichConfig {
    /// How long a cached tenant or capsule entry is used before it is re-read.
    pub ttl_secs: u64,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        Self { ttl_secs: 60 }
    }
}

impl EnrichConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ttl_secs == 0 {
            return Err(ConfigError::key(
                "enrich.ttl_secs",
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}
