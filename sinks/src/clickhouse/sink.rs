//! The `clickhouse` sink node: routes each table's rows to its writer and
//! turns a barrier into "every writer has flushed and been acknowledged".

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::schema::{
    BUDGET_EVENTS_TABLE, DEAD_LETTERS_TABLE, USAGE_TABLE, is_rollup,
};
use somaflow_pipeline::runtime::{Batch, Committer, NodeError, Sink};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::debug;

use super::config::ClickHouseConfig;
use super::staged;
use super::writer::{Command, Shared, TableWriter};
use super::{ClickHouseError, clickhouse_table};

/// Batches a writer holds in its inbox before the sink waits for it.
const INBOX_BATCHES: usize = 4;

struct Writer {
    inbox: mpsc::Sender<Command>,
    task: JoinHandle<Result<(), ClickHouseError>>,
}

pub struct ClickHouseSink {
    shared: Arc<Shared>,
    writers: BTreeMap<&'static str, Writer>,
    /// usage_1m and rollup rows since the last barrier, by table: staged at
    /// pre-commit (see `staged`).
    staged: BTreeMap<&'static str, Vec<RecordBatch>>,
}

impl ClickHouseSink {
    pub fn new(node: &str, config: &ClickHouseConfig) -> ClickHouseSink {
        ClickHouseSink {
            shared: Arc::new(Shared::new(node, config)),
            writers: BTreeMap::new(),
            staged: BTreeMap::new(),
        }
    }

    fn writer(&mut self, table: &'static str) -> &Writer {
        self.writers.entry(table).or_insert_with(|| {
            let (inbox, receiver) = mpsc::channel(INBOX_BATCHES);
            let task = TableWriter::spawn(self.shared.clone(), clickhouse_table(table), receiver);
            Writer { inbox, task }
        })
    }

    /// The error a writer stopped with (its inbox is closed).
    async fn failure(&mut self, table: &'static str) -> ClickHouseError {
        match self.writers.remove(table) {
            Some(w) => match w.task.await {
                Ok(Err(e)) => e,
                _ => ClickHouseError::WriterGone(table.to_string()),
            },
            None => ClickHouseError::WriterGone(table.to_string()),
        }
    }
}

impl Drop for ClickHouseSink {
    fn drop(&mut self) {
        // A pipeline that failed or was aborted does not call close(); its
        // writers must not keep retrying in the background.
        for writer in self.writers.values() {
            writer.task.abort();
        }
    }
}

#[async_trait]
impl Sink for ClickHouseSink {
    async fn write(&mut self, batch: Batch) -> Result<(), NodeError> {
        let table = batch.table;
        if table == USAGE_TABLE || is_rollup(table) {
            self.staged.entry(table).or_default().push(batch.rows);
            return Ok(());
        }
        if table != DEAD_LETTERS_TABLE
            && table != BUDGET_EVENTS_TABLE
            && EventKind::from_table(table).is_none()
        {
            return Err(ClickHouseError::UnknownTable(table.to_string()).into());
        }
        let sent = self
            .writer(table)
            .inbox
            .send(Command::Rows(batch.rows))
            .await;
        if sent.is_err() {
            return Err(self.failure(table).await.into());
        }
        Ok(())
    }

    async fn pre_commit(&mut self, epoch: u64) -> Result<serde_json::Value, NodeError> {
        let mut replies = Vec::new();
        for (table, writer) in &self.writers {
            let (done, reply) = oneshot::channel();
            if writer
                .inbox
                .send(Command::Barrier { epoch, done })
                .await
                .is_ok()
            {
                replies.push((*table, reply));
            } else {
                let table = *table;
                return Err(self.failure(table).await.into());
            }
        }
        let mut inserted = serde_json::Map::new();
        for (table, reply) in replies {
            match reply.await {
                Ok(Ok(rows)) => {
                    inserted.insert(clickhouse_table(table).to_string(), rows.into());
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_) => return Err(self.failure(table).await.into()),
            }
        }
        debug!(epoch, node = %self.shared.node, ?inserted, "ClickHouse inserts acknowledged");
        let mut reply = serde_json::json!({ "inserted": inserted });
        let mut rollups = serde_json::Map::new();
        for (table, batches) in std::mem::take(&mut self.staged) {
            let staged = staged::stage(&self.shared, epoch, table, &batches).await?;
            let staged = serde_json::to_value(staged)
                .map_err(|e| ClickHouseError::Staging(e.to_string()))?;
            if table == USAGE_TABLE {
                reply["staged_usage"] = staged;
            } else {
                rollups.insert(table.to_string(), staged);
            }
        }
        if !rollups.is_empty() {
            reply["staged_rollups"] = rollups.into();
        }
        Ok(reply)
    }

    /// Input ended: whatever is not acknowledged yet is replayed from the
    /// last checkpoint, so the writers (and their retries) just stop.
    async fn close(&mut self) -> Result<(), NodeError> {
        for (_, writer) in std::mem::take(&mut self.writers) {
            writer.task.abort();
        }
        Ok(())
    }

    fn committer(&self) -> Arc<dyn Committer> {
        Arc::new(staged::UsageCommitter {
            shared: self.shared.clone(),
        })
    }
}
