//! What can go wrong writing or committing the lake.

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
    #[error("compacting the lake: {0}")]
    Compaction(String),
    #[error(transparent)]
    Covers(#[from] somaflow_pipeline::compaction::CompactionError),
    #[error("pre-commit record is unreadable: {0}")]
    BadPreCommit(#[from] serde_json::Error),
}
