//! Settings of the platform operators (DESIGN §5): where Redis is, the rule
//! and price files, window size, budget thresholds and dispatch limits.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::ConfigError;

/// Redis: tenant and capsule metadata, budget counters. Unset `url` means no
/// Redis: enrichment adds nulls and budgets are counted in this process only.
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// The rule file (`[[rules]]` with id, table, when, decision, reason).
    pub rules: PathBuf,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            rules: PathBuf::from("config/policies.toml"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountingConfig {
    /// The price file (`[[prices]]`, USD per 1M tokens by usage type).
    pub prices: PathBuf,
}

impl Default for AccountingConfig {
    fn default() -> Self {
        Self {
            prices: PathBuf::from("config/prices.toml"),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    /// Tumbling window length in event time.
    pub size_secs: u64,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self { size_secs: 60 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Share of the monthly budget that raises the soft alert, in percent.
    pub soft_percent: u32,
    /// How often each worker re-reads the shared budget state of tenants it
    /// has not pushed spend for (dispatch decisions use it).
    pub status_refresh_ms: u64,
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            soft_percent: 80,
            status_refresh_ms: 1_000,
        }
    }
}

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
        }
    }
}

/// Checks the platform sections; called from `Config::validate`.
pub(super) fn validate(
    redis: &RedisConfig,
    window: &WindowConfig,
    budget: &BudgetConfig,
    dispatch: &DispatchConfig,
) -> Result<(), ConfigError> {
    if let Some(url) = &redis.url
        && !(url.starts_with("redis://") || url.starts_with("rediss://"))
    {
        return Err(ConfigError::key(
            "redis.url",
            format!("{url:?} is not a redis:// URL (e.g. redis://127.0.0.1:16379)"),
        ));
    }
    if redis.timeout_ms == 0 {
        return Err(ConfigError::key(
            "redis.timeout_ms",
            "must be greater than 0",
        ));
    }
    if window.size_secs == 0 || 86_400 % window.size_secs != 0 {
        return Err(ConfigError::key(
            "window.size_secs",
            format!(
                "{} must be greater than 0 and divide a day (60, 300, 3600…), so windows line up with hours",
                window.size_secs
            ),
        ));
    }
    if budget.soft_percent == 0 || budget.soft_percent >= 100 {
        return Err(ConfigError::key(
            "budget.soft_percent",
            format!("{} must be between 1 and 99", budget.soft_percent),
        ));
    }
    if budget.status_refresh_ms == 0 {
        return Err(ConfigError::key(
            "budget.status_refresh_ms",
            "must be greater than 0",
        ));
    }
    if dispatch.per_tenant_per_sec == 0 || dispatch.burst == 0 {
        return Err(ConfigError::key(
            if dispatch.burst == 0 {
                "dispatch.burst"
            } else {
                "dispatch.per_tenant_per_sec"
            },
            "must be greater than 0",
        ));
    }
    Ok(())
}
