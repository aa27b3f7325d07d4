//! `[sql]`: limits on the queries `POST /v1/sql` runs, and how many rows
//! of the read endpoints' answers are kept until their data changes, and
//! whether they read the rollups.

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::{ConfigError, require_positive};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlConfig {
    /// A query running longer is stopped and answered with an error.
    pub timeout_ms: u64,
    /// A result with more rows is refused (ask for fewer with LIMIT, or
    /// aggregate); the rows are not held past the limit.
    pub max_rows: usize,
    /// Rows of usage, ledger, forecast and summary answers kept, each until
    /// a commit changes its table; 0 computes every answer afresh.
    pub cache_rows: u64,
    /// Read usage, ledgers, forecasts, KAMACHIQ spend and the marketplace
    /// board from the hourly and daily rollups (`rollup_1h`, `rollup_1d`,
    /// `activity_1h`, `activity_1d`) wherever they answer the question;
    /// false reads the tables they are kept from, to compare.
    pub rollups: bool,
}

impl Default for SqlConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 30_000,
            max_rows: 100_000,
            cache_rows: 1_000_000,
            rollups: true,
        }
    }
}

impl SqlConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_positive(&[
            ("sql.timeout_ms", self.timeout_ms),
            ("sql.max_rows", self.max_rows as u64),
        ])
    }

    /// The limits of one `POST /v1/sql` query.
    pub fn limits(&self) -> crate::QueryLimits {
        crate::QueryLimits {
            timeout: std::time::Duration::from_millis(self.timeout_ms),
            max_rows: self.max_rows,
        }
    }
}
