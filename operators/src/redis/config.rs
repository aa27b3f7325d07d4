//! `[redis]`: where Redis is. Unset `url` means no Redis: enrichment adds
//! nulls and budgets are counted in this process only.

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::ConfigError;

/// Redis: tenant and capsule metadata, budget counters.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://host:port[/db]`; `scripts/services.sh start redis` listens on 16379.
    pub url: Option<String>,
    /// A command taking longer counts as a failure (Redis is then "down").
    pub timeout_ms: u64,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            timeout_ms: 500,
        }
    }
}

impl RedisConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(url) = &self.url
            && !(url.starts_with("redis://") || url.starts_with("rediss://"))
        {
            return Err(ConfigError::key(
                "redis.url",
                format!("{url:?} is not a redis:// URL (e.g. redis://127.0.0.1:16379)"),
            ));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::key(
                "redis.timeout_ms",
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}
