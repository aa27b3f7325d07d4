//! `[lake]`: where the lake is and how its sink buffers and throttles; and
//! the settings of one Parquet sink drawn from it.

use std::path::Path;
use std::time::Duration;

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
    /// Merge small files into larger sorted ones: on by default where the
    /// node is the lake's only writer (embedded); refused on cluster workers.
    pub compaction: Option<bool>,
    /// Size (MiB) a merge aims for; files this large are left alone.
    pub compaction_target_mib: u64,
    /// A partition still being written merges files of one size class once
    /// it has this many of them.
    pub compaction_fanout: usize,
    /// A partition not written for this long is merged whole.
    pub compaction_settle_secs: u64,
    /// Merged files are deleted this long after readers stopped being shown
    /// them; longer than any query runs (`sql.timeout_ms`).
    pub compaction_grace_secs: u64,
    /// How often the compactor looks at the partitions that changed.
    pub compaction_interval_ms: u64,
    /// Decoded rows (MiB) a merge holds at most, over all its input files.
    pub compaction_memory_mib: usize,
}

impl Default for LakeConfig {
    fn default() -> Self {
        Self {
            url: None,
            max_rows_per_sec: 0,
            max_buffer_rows: 1_000_000,
            max_buffer_mib: 64,
            row_group_rows: 1_000_000,
            compaction: None,
            compaction_target_mib: 128,
            compaction_fanout: 8,
            compaction_settle_secs: 120,
            compaction_grace_secs: 300,
            compaction_interval_ms: 5_000,
            compaction_memory_mib: 64,
        }
    }
}

impl LakeConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_positive(&[
            ("lake.max_buffer_rows", self.max_buffer_rows as u64),
            ("lake.max_buffer_mib", self.max_buffer_mib as u64),
            ("lake.row_group_rows", self.row_group_rows as u64),
            ("lake.compaction_target_mib", self.compaction_target_mib),
            ("lake.compaction_interval_ms", self.compaction_interval_ms),
            (
                "lake.compaction_memory_mib",
                self.compaction_memory_mib as u64,
            ),
        ])?;
        if self.compaction_fanout < 2 {
            return Err(ConfigError::key(
                "lake.compaction_fanout",
                "must be at least 2: a merge takes two files or more",
            ));
        }
        Ok(())
    }

    /// The compactor's settings when this node compacts: `worker` is the
    /// cluster worker the node is (`None` embedded). Workers share the lake
    /// and do not compact it; asking one to is a config error.
    pub fn compaction_for(
        &self,
        worker: Option<&str>,
    ) -> Result<Option<CompactionSettings>, ConfigError> {
        match (self.compaction, worker) {
            (Some(true), Some(_)) => Err(ConfigError::key(
                "lake.compaction",
                "cluster workers share the lake and do not compact it (one writer must own a partition's merges); leave it unset or false",
            )),
            (Some(false), _) | (None, Some(_)) => Ok(None),
            (_, None) => Ok(Some(CompactionSettings {
                target_bytes: self.compaction_target_mib.saturating_mul(1024 * 1024),
                fanout: self.compaction_fanout,
                settle: Duration::from_secs(self.compaction_settle_secs),
                grace: Duration::from_secs(self.compaction_grace_secs),
                interval: Duration::from_millis(self.compaction_interval_ms),
                memory_bytes: self.compaction_memory_mib.saturating_mul(1024 * 1024),
            })),
        }
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
    /// Whether and how the node compacts the lake.
    pub compaction: Option<CompactionSettings>,
}

/// How the compactor merges (see `[lake]` `compaction_*`).
#[derive(Debug, Clone, PartialEq)]
pub struct CompactionSettings {
    pub target_bytes: u64,
    pub fanout: usize,
    pub settle: Duration,
    pub grace: Duration,
    pub interval: Duration,
    /// Decoded rows a merge holds at most.
    pub memory_bytes: usize,
}

impl ParquetSinkConfig {
    /// A sink writing the lake at `url` (see [`LakeConfig::url_in`]) from
    /// worker `worker` (`None` on an embedded node). The config was
    /// validated, so the compaction settings are those of
    /// [`LakeConfig::compaction_for`].
    pub fn new(lake: &LakeConfig, url: String, worker: Option<String>) -> Self {
        Self {
            compaction: lake.compaction_for(worker.as_deref()).unwrap_or(None),
            url,
            max_rows_per_sec: lake.max_rows_per_sec,
            max_buffer_rows: lake.max_buffer_rows,
            max_buffer_bytes: lake.max_buffer_mib.saturating_mul(1024 * 1024),
            row_group_rows: lake.row_group_rows,
            worker,
        }
    }
}
