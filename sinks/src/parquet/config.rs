//! Settings of one Parquet sink, taken from the `[lake]` section.

use somaflow_pipeline::Config;

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
    pub fn from_config(config: &Config) -> Self {
        Self {
            url: config.lake_url(),
            max_rows_per_sec: config.lake.max_rows_per_sec,
            max_buffer_rows: config.lake.max_buffer_rows,
            max_buffer_bytes: config.lake.max_buffer_mib.saturating_mul(1024 * 1024),
            row_group_rows: config.lake.row_group_rows,
            worker: config.reads_kafka().then(|| config.cluster.worker_id()),
        }
    }
}
