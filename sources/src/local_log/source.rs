//! Reads the embedded log in batches of raw records, remembers the next
//! offset for checkpoints, and drops segments below a committed checkpoint.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use somaflow_pipeline::checkpoint::{NodeCheckpoint, Positions, shard};
use somaflow_pipeline::events::RawBatchBuilder;
use somaflow_pipeline::events::schema::RAW_TABLE;
use somaflow_pipeline::log::{DurableLog, LogReader, LogRecord};
use somaflow_pipeline::metrics::metrics;
use somaflow_pipeline::runtime::{Batch, Committer, NodeError, Source, SourcePoll};
use tracing::debug;

/// `source_topic` of rows read from the embedded log.
pub const LOG_TOPIC: &str = "log";

/// The one shard of the embedded log.
fn log_shard() -> String {
    shard(LOG_TOPIC, 0)
}

pub struct LocalLogSource {
    log: DurableLog,
    reader: Option<LogReader>,
    batch_rows: usize,
    buf: Vec<LogRecord>,
}

impl LocalLogSource {
    pub fn new(log: DurableLog, batch_rows: usize) -> Self {
        Self {
            log,
            reader: None,
            batch_rows,
            buf: Vec::with_capacity(batch_rows),
        }
    }

    fn to_batch(records: &[LogRecord]) -> Result<RecordBatch, NodeError> {
        let bytes: usize = records.iter().map(|r| r.payload.len()).sum();
        let mut builder = RawBatchBuilder::with_capacity(LOG_TOPIC, 0, records.len(), bytes);
        for r in records {
            builder.append(&r.payload, r.ingest_time_us, r.offset as i64);
        }
        Ok(builder.finish()?)
    }
}

#[async_trait]
impl Source for LocalLogSource {
    async fn restore(&mut self, positions: &Positions) -> Result<(), NodeError> {
        let from = match positions.get(&log_shard()) {
            Some(offset) => u64::try_from(*offset)?,
            None => self.log.first_offset(),
        };
        debug!(from, "log source seeks");
        self.reader = Some(self.log.reader(from)?);
        Ok(())
    }

    async fn poll(&mut self) -> Result<SourcePoll, NodeError> {
        let reader = match self.reader.as_mut() {
            Some(r) => r,
            None => self
                .reader
                .insert(self.log.reader(self.log.first_offset())?),
        };
        self.buf.clear();
        if reader.read(self.batch_rows, &mut self.buf)? == 0 {
            reader.wait(Duration::from_millis(100)).await;
            return Ok(SourcePoll::Idle);
        }
        metrics().log_read_offset.set(reader.next_offset() as i64);
        Ok(SourcePoll::Batch(Batch::new(
            RAW_TABLE,
            Self::to_batch(&self.buf)?,
        )))
    }

    fn position(&self) -> Positions {
        let offset = self.reader.as_ref().map_or(0, |r| r.next_offset());
        [(log_shard(), offset as i64)].into()
    }

    fn caught_up(&self) -> bool {
        self.reader
            .as_ref()
            .is_some_and(|r| r.next_offset() >= self.log.end_offset())
    }

    fn committer(&self) -> Option<Arc<dyn Committer>> {
        Some(Arc::new(LogRetention {
            log: self.log.clone(),
        }))
    }
}

/// Deletes log segments that a complete checkpoint no longer needs.
struct LogRetention {
    log: DurableLog,
}

#[async_trait]
impl Committer for LogRetention {
    async fn commit(&self, _epoch: u64, checkpoint: &NodeCheckpoint) -> Result<(), NodeError> {
        if let Some(offset) = checkpoint.positions.get(&log_shard()) {
            let offset = u64::try_from(*offset)?;
            let deleted = self.log.delete_below(offset)?;
            if deleted > 0 {
                debug!(deleted, below = offset, "log segments deleted");
            }
        }
        Ok(())
    }

    async fn recover(&self, _checkpoint: Option<&NodeCheckpoint>) -> Result<(), NodeError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;

    use super::*;

    async fn log_with(records: &[&str]) -> (tempfile::TempDir, DurableLog) {
        let dir = tempfile::tempdir().unwrap();
        let log = DurableLog::open(dir.path(), 1 << 20).unwrap();
        let payloads = records.iter().map(|r| Bytes::from(r.to_string())).collect();
        log.append(7, payloads).await.unwrap();
        (dir, log)
    }

    fn offsets(poll: SourcePoll) -> Vec<i64> {
        let SourcePoll::Batch(batch) = poll else {
            panic!("expected a batch");
        };
        assert_eq!(batch.table, RAW_TABLE);
        let column = batch.rows.column(4).as_primitive::<Int64Type>();
        column.values().to_vec()
    }

    #[tokio::test]
    async fn reads_in_batches_and_resumes_from_a_checkpointed_position() {
        let (_dir, log) = log_with(&["a", "b", "c"]).await;
        let mut source = LocalLogSource::new(log.clone(), 2);
        source.restore(&Positions::new()).await.unwrap();
        assert_eq!(offsets(source.poll().await.unwrap()), [0, 1]);
        assert_eq!(source.position()[&log_shard()], 2);
        assert_eq!(offsets(source.poll().await.unwrap()), [2]);
        assert!(matches!(source.poll().await.unwrap(), SourcePoll::Idle));

        let mut resumed = LocalLogSource::new(log, 8);
        resumed.restore(&[(log_shard(), 1)].into()).await.unwrap();
        assert_eq!(offsets(resumed.poll().await.unwrap()), [1, 2]);
    }
}
