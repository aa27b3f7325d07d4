//! `[budget]`: the soft threshold and how often shared budget state is re-read.

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::ConfigError;

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

impl BudgetConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.soft_percent == 0 || self.soft_percent >= 100 {
            return Err(ConfigError::key(
                "budget.soft_percent",
                format!("{} must be between 1 and 99", self.soft_percent),
            ));
        }
        if self.status_refresh_ms == 0 {
            return Err(ConfigError::key(
                "budget.status_refresh_ms",
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}
