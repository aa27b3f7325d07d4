//! The Parquet lake: its `[lake]` section, errors, and the sink: rows partitioned by table, date and
//! hour, sorted by `(tenant_id, event_time)`, written with zstd, page
//! indexes and a bloom filter on `tenant_id`. Files are staged under
//! `_staging/` and renamed into the lake only when their checkpoint is
//! complete, so readers never see rows a crash could take back. On the
//! lake's only writer a compactor merges small files (compact.rs).

mod commit;
mod compact;
mod config;
mod error;
mod file;
mod fold;
mod kmerge;
mod sink;

pub use commit::{LakeCommitter, StagedFile};
pub use config::{CompactionSettings, LakeConfig, ParquetSinkConfig};
pub use error::ParquetSinkError;
pub use sink::ParquetSink;
