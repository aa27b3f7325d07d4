//! `[sql]`: limits on the queries `POST /v1/sql` runs.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SqlConfig {
    /// A query running longer is stopped and answered with an error.
    pub timeout_ms: u64,
    /// A result with more rows is refused (ask for fewer with LIMIT, or
    /// aggregate); the rows are not held past the limit.
    pub max_rows: usize,
}

impl Default for SqlConfig {
    fn default() -> Self {
        Self {
            timeout_ms: 30_000,
            max_rows: 100_000,
        }
    }
}
