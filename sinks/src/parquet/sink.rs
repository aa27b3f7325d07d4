//! The sink task's side: buffer rows per (table, hour), stage files when a
//! buffer is full or a barrier arrives, and hand the staged list to the
//! checkpoint. An optional governor throttle caps rows per second.

use std::collections::BTreeMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::DateTime;
use datafusion::arrow::array::{AsArray, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take_record_batch;
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::object_store::{ObjectStoreExt, PutPayload};
use datafusion::parquet::file::properties::WriterProperties;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use somaflow_pipeline::events::schema::{RAW_TABLE, is_rollup, table_schema, time_column};
use somaflow_pipeline::runtime::{Batch, Committer, NodeError, Sink};
use somaflow_pipeline::storage::StorageLocation;
use tracing::debug;

use super::ParquetSinkError;
use super::commit::{LakeCommitter, PreCommit, StagedFile};
use super::config::ParquetSinkConfig;
use super::file::{encode, writer_properties};

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

/// The time one folder of `table` spans: an hour, or a day for the
/// rollups, whose rows are few: a month's question then opens 30 files of
/// `rollup_1h`, not 720 (their `hour` folder is always `00`).
fn folder_span_us(table: &str) -> i64 {
    if is_rollup(table) { DAY_US } else { HOUR_US }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct PartitionKey {
    table: &'static str,
    hour: i64,
}

impl PartitionKey {
    /// `lake/<table>/date=YYYY-MM-DD/hour=HH`
    fn folder(&self) -> String {
        let start = DateTime::from_timestamp_micros(self.hour * HOUR_US).unwrap_or_default();
        format!(
            "{}/date={}/hour={}",
            self.table,
            start.format("%Y-%m-%d"),
            start.format("%H")
        )
    }
}

#[derive(Default)]
struct Buffer {
    batches: Vec<RecordBatch>,
    rows: usize,
    bytes: usize,
}

/// Staged but not yet assigned to a checkpoint.
struct Pending {
    key: PartitionKey,
    staged: String,
    rows: u64,
}

pub struct ParquetSink {
    node: String,
    task: u32,
    location: StorageLocation,
    props: Arc<WriterProperties>,
    max_buffer_rows: usize,
    max_buffer_bytes: usize,
    limiter: Option<(DefaultDirectRateLimiter, u32)>,
    buffers: BTreeMap<PartitionKey, Buffer>,
    pending: Vec<Pending>,
    run_id: String,
    staged_seq: u64,
    committer: Arc<LakeCommitter>,
}

impl ParquetSink {
    pub fn new(node: &str, config: &ParquetSinkConfig) -> Result<Self, ParquetSinkError> {
        let location = StorageLocation::parse(&config.url)?;
        let limiter = NonZeroU32::new(config.max_rows_per_sec)
            .map(|rate| (RateLimiter::direct(Quota::per_second(rate)), rate.get()));
        // Unique per process run: staging of a crashed run is never reused.
        let run_id = format!(
            "{:x}{:x}",
            chrono::Utc::now().timestamp_micros(),
            std::process::id()
        );
        let props = writer_properties(config.row_group_rows)?;
        Ok(Self {
            node: node.to_string(),
            task: 0,
            committer: Arc::new(LakeCommitter::new(
                node,
                config.worker.clone(),
                location.clone(),
                &run_id,
                config.compaction.clone().map(|c| (c, props.clone())),
            )),
            location,
            props,
            max_buffer_rows: config.max_buffer_rows,
            max_buffer_bytes: config.max_buffer_bytes,
            limiter,
            buffers: BTreeMap::new(),
            pending: Vec::new(),
            run_id,
            staged_seq: 0,
        })
    }

    async fn throttle(&self, rows: usize) {
        let Some((limiter, burst)) = &self.limiter else {
            return;
        };
        let mut left = rows;
        while left > 0 {
            let n = left.min(*burst as usize);
            if let Some(n) = NonZeroU32::new(n as u32) {
                // n ≤ burst, so capacity is never insufficient.
                let _ = limiter.until_n_ready(n).await;
            }
            left -= n;
        }
    }

    fn partition(
        table: &'static str,
        rows: &RecordBatch,
    ) -> Result<Vec<(PartitionKey, RecordBatch)>, ParquetSinkError> {
        let times = rows
            .column_by_name(time_column(table))
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or_else(|| ParquetSinkError::UnknownTable(table.to_string()))?;
        let span = folder_span_us(table);
        let hours: Vec<i64> = times
            .values()
            .iter()
            .map(|t| t.div_euclid(span) * (span / HOUR_US))
            .collect();
        if hours.windows(2).all(|w| w[0] == w[1]) {
            let hour = hours.first().copied().unwrap_or(0);
            return Ok(vec![(PartitionKey { table, hour }, rows.clone())]);
        }
        let mut groups: BTreeMap<i64, Vec<u32>> = BTreeMap::new();
        for (i, h) in hours.iter().enumerate() {
            groups.entry(*h).or_default().push(i as u32);
        }
        groups
            .into_iter()
            .map(|(hour, idx)| {
                Ok((
                    PartitionKey { table, hour },
                    take_record_batch(rows, &UInt32Array::from(idx))?,
                ))
            })
            .collect()
    }

    async fn stage(&mut self, key: PartitionKey) -> Result<(), ParquetSinkError> {
        let Some(buffer) = self.buffers.remove(&key) else {
            return Ok(());
        };
        if buffer.rows == 0 {
            return Ok(());
        }
        let props = self.props.clone();
        let time = time_column(key.table);
        let batches = buffer.batches;
        // Sorting and encoding are CPU work: keep them off the async workers.
        let bytes = tokio::task::spawn_blocking(move || encode(&batches, time, &props))
            .await
            .map_err(|e| {
                ParquetSinkError::Arrow(datafusion::arrow::error::ArrowError::ExternalError(
                    Box::new(e),
                ))
            })??;
        self.staged_seq += 1;
        let staged = format!(
            "{}/{}/{:08}.parquet",
            self.committer.staging_root(),
            self.run_id,
            self.staged_seq
        );
        self.location
            .store
            .put(&self.location.path(&staged), PutPayload::from(bytes))
            .await?;
        debug!(node = %self.node, table = key.table, rows = buffer.rows, %staged, "staged");
        self.pending.push(Pending {
            key,
            staged,
            rows: buffer.rows as u64,
        });
        Ok(())
    }
}

#[async_trait]
impl Sink for ParquetSink {
    async fn write(&mut self, batch: Batch) -> Result<(), NodeError> {
        if table_schema(batch.table).is_none() || batch.table == RAW_TABLE {
            return Err(ParquetSinkError::UnknownTable(batch.table.to_string()).into());
        }
        self.throttle(batch.num_rows()).await;
        for (key, rows) in Self::partition(batch.table, &batch.rows)? {
            let buffer = self.buffers.entry(key).or_default();
            buffer.rows += rows.num_rows();
            buffer.bytes += rows.get_array_memory_size();
            buffer.batches.push(rows);
            if buffer.rows >= self.max_buffer_rows || buffer.bytes >= self.max_buffer_bytes {
                self.stage(key).await?;
            }
        }
        Ok(())
    }

    async fn pre_commit(&mut self, epoch: u64) -> Result<serde_json::Value, NodeError> {
        let keys: Vec<PartitionKey> = self.buffers.keys().copied().collect();
        for key in keys {
            self.stage(key).await?;
        }
        let files = self
            .pending
            .drain(..)
            .enumerate()
            .map(|(seq, p)| StagedFile {
                table: p.key.table.to_string(),
                // The run id keeps names unique even if the checkpoint store
                // is reset under an existing lake (epochs restart at 1).
                target: format!(
                    "{}/{epoch:010}-{}-{}-{seq:04}-{}.parquet",
                    p.key.folder(),
                    self.node,
                    self.task,
                    self.run_id
                ),
                staged: p.staged,
                rows: p.rows,
            })
            .collect();
        Ok(serde_json::to_value(PreCommit { files })?)
    }

    fn committer(&self) -> Arc<dyn Committer> {
        self.committer.clone()
    }
}
