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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_url_is_valid_and_a_wrong_one_is_named() {
        RedisConfig::default().validate().unwrap();
        let bad = RedisConfig {
            url: Some("http://127.0.0.1:16379".into()),
            ..RedisConfig::default()
        };
        let e = bad.validate().unwrap_err().to_string();
        assert!(e.contains("redis.url") && e.contains("redis://"), "{e}");
        let bad = RedisConfig {
            timeout_ms: 0,
            ..RedisConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("redis.timeout_ms")
        );
    }
}
