//! `[enrich]`: how long Redis metadata is cached, and the metadata files a
//! node without Redis reads instead.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EnrichConfig {
    /// How long a cached tenant or capsule entry is used before it is re-read.
    pub ttl_secs: u64,
    /// Without `[redis] url`: the tenants file (`tenant_id,plan,region,
    /// monthly_budget_usd`), re-read when it changes and rewritten by
    /// `PUT /v1/tenants/{id}`.
    pub tenants: PathBuf,
    /// Without `[redis] url`: the capsules file (`capsule_id,author_id,price_usd`).
    pub capsules: PathBuf,
}

impl Default for EnrichConfig {
    fn default() -> Self {
        Self {
            ttl_secs: 60,
            tenants: PathBuf::from("config/tenants.csv"),
            capsules: PathBuf::from("config/capsules.csv"),
        }
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
