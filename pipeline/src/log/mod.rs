//! The embedded durable log: an append-only, segmented record log on local
//! disk. `append` returns only after its records are fsynced (group commit:
//! one fsync for everything queued meanwhile); readers see only durable
//! records, by offset, exactly as a Kafka partition is read.
//!
//! The HTTP ingest of an embedded node appends to it; the `local_log`
//! source (`sources/src/local_log/`) reads it.

mod idle;
mod queues;
mod reader;
mod segment;
mod shared;
mod writer;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, require_positive};

pub use idle::{IDLE_TICK, is_idle_tick};
pub use queues::{Fetched, QueueError, QueueRecord, Queues};
pub use reader::LogReader;
pub use segment::{LogRecord, MAX_PAYLOAD_BYTES};
pub use writer::DurableLog;

/// `[log]`: where the embedded log keeps its segments.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Defaults to `<data_dir>/log`.
    pub dir: Option<PathBuf>,
    pub segment_bytes: u64,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            dir: None,
            segment_bytes: 64 * 1024 * 1024,
        }
    }
}

impl LogConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_positive(&[("log.segment_bytes", self.segment_bytes)])
    }

    /// `dir`, or `<data_dir>/log`.
    pub fn dir_in(&self, data_dir: &Path) -> PathBuf {
        self.dir.clone().unwrap_or_else(|| data_dir.join("log"))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("log I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("log segment {path} is corrupt: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "offset {offset} is no longer in the log (it starts at {first}); the checkpoint is older than the log's retention"
    )]
    OffsetGone { offset: u64, first: u64 },
    #[error(
        "offset {offset} is beyond the end of the log ({end}); the log directory does not belong to this checkpoint store"
    )]
    OffsetBeyondEnd { offset: u64, end: u64 },
    #[error("the log writer has stopped after an I/O error; restart somaflow")]
    WriterStopped,
    #[error("a record of {size} bytes is larger than the log's limit of {limit} bytes")]
    RecordTooLarge { size: usize, limit: usize },
}

impl LogError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        LogError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
