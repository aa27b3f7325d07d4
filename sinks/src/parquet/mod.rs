//! The Parquet lake sink (DESIGN §6): rows partitioned by table, date and
//! hour, sorted by `(tenant_id, event_time)`, written with zstd, page
//! indexes and a bloom filter on `tenant_id`. Files are staged under
//! `_staging/` and renamed into the lake only when their checkpoint is
//! complete, so readers never see rows a crash could take back.

mod commit;
mod config;
mod file;
mod sink;

pub use commit::{LakeCommitter, StagedFile};
pub use config::ParquetSinkConfig;
pub use sink::ParquetSink;

#[derive(Debug, thiserror::Error)]
pub enum ParquetSinkError {
    #[error("lake storage: {0}")]
    Store(#[from] datafusion::object_store::Error),
    #[error(transparent)]
    Location(#[from] somaflow_pipeline::storage::StorageError),
    #[error("encoding Parquet: {0}")]
    Parquet(#[from] datafusion::parquet::errors::ParquetError),
    #[error("arranging rows: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
    #[error("table `{0}` is not one the lake knows")]
    UnknownTable(String),
    #[error(
        "checkpoint {epoch} lists staged file {staged} but neither it nor {target} exists: the staging area was changed outside somaflow"
    )]
    StagedFileMissing {
        epoch: u64,
        staged: String,
        target: String,
    },
    #[error("pre-commit record is unreadable: {0}")]
    BadPreCommit(#[from] serde_json::Error),
}
