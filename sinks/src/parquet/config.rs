//! `[lake]`: where the lake is and how its sink buffers and throttles; and
//! the settings of one Parquet sink drawn from it.

use std::path::Path;

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::{ConfigError, require_positive};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LakeConfig {
    /// A local path, `file://…` or `s3://bucket/prefix`; defaults to `<data_dir>/lake`.
    pub url: Option<String>,
    /// Throttle on rows written per second (0 = unlimited), to protect a downstream store.
    pub max_rows_per_sec: u32,
    /// Rows buffered per table partition before they are staged early.
    pub max_buffer_rows: usize,
    /// Memory (MiB) buffered per table partition before it is staged early.
    pub max_buffer_mib: usize,
    pub row_group_rows: usize,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_rows_per_sec: 0,
            max_buffer_rows: 1_000_000,
            max_buffer_mib: 64,
            row_group_rows: 1_000_000,
        }
    }
}

impl LakeConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_positive(&[
            ("lake.max_buffer_rows", self.max_buffer_rows as u64),
            ("lake.max_buffer_mib", self.max_buffer_mib as u64),
            ("lake.row_group_rows", self.row_group_rows as u64),
        ])
    }

    /// `url`, or `<data_dir>/lake`.
    pub fn url_in(&self, data_dir: &Path) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| data_dir.join("lake").display().to_string())
    }
}

/// Settings of one Parquet sink.
#[derive(Debug, Clone)]
pub struct ParquetSinkConfig {
    /// Local path, `file://…` or `s3://bucket/prefix`.
    pub url: String,
    /// Rows per second at most (0 = unlimited).
    pub max_rows_per_sec: u32,
    /// Rows buffered for one partition before they are staged early.
    pub max_buffer_rows: usize,
    /// Bytes buffered for one partition before they are staged early.
    pub max_buffer_bytes: usize,
    pub row_group_rows: usize,
    /// The cluster worker this sink runs in: its staging folder is its own,
    /// so one worker's restart never discards another's staged files.
    pub worker: Option<String>,
}

impl ParquetSinkConfig {
    /// A sink writing the lake at `url` (see [`LakeConfig::url_in`]) from
    /// worker `worker` (`None` on an embedded node).
    pub fn new(lake: &LakeConfig, url: String, worker: Option<String>) -> Self {
        Self {
            url,
            max_rows_per_sec: lake.max_rows_per_sec,
            max_buffer_rows: lake.max_buffer_rows,
            max_buffer_bytes: lake.max_buffer_mib.saturating_mul(1024 * 1024),
            row_group_rows: lake.row_group_rows,
            worker,
        }
    }
}
