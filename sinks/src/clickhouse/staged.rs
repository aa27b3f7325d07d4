//! `usage_1m` and the rollups (`rollup_1h`, `rollup_1d`, `activity_1h`,
//! `activity_1d`) published once per
//! completed checkpoint. Usage rows are
//! aggregates whose split into rows depends on when watermarks arrived, so a
//! replay after a crash may produce the same totals in different rows; rows
//! inserted before the crash would then count twice. So the sink inserts a
//! checkpoint's usage rows into `usage_1m_staging` (rollups into
//! `<rollup>_staging`) at pre-commit, tagged with its run and epoch, and the
//! committer copies exactly those into their tables once the checkpoint is
//! durable. A repeated copy (commit again at restart) inserts the same
//! `row_id`s, which ReplacingMergeTree collapses.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};
use somaflow_pipeline::checkpoint::NodeCheckpoint;
use somaflow_pipeline::events::schema::{USAGE_TABLE, table_schema};
use somaflow_pipeline::runtime::{Committer, NodeError};
use tracing::{info, warn};

use super::ClickHouseError;
use super::client::client_error;
use super::writer::{Shared, deliver};

/// What a checkpoint staged, as kept in its manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StagedUsage {
    pub run_id: String,
    pub epoch: u64,
    pub rows: u64,
}

/// The staging table of a staged table (`usage_1m` or a rollup).
pub fn staging_table(table: &str) -> String {
    format!("{table}_staging")
}

/// Stages `batches` (rows of `table`: `usage_1m` or a rollup) for `epoch`.
pub async fn stage(
    shared: &Shared,
    epoch: u64,
    table: &str,
    batches: &[RecordBatch],
) -> Result<StagedUsage, ClickHouseError> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut tagged = Vec::with_capacity(batches.len());
    for batch in batches {
        tagged.push(with_stage_columns(batch, &shared.run_id, epoch)?);
    }
    let staging = staging_table(table);
    let identity = format!("{}-{}-{staging}-{epoch}", shared.node, shared.run_id);
    deliver(shared, &staging, &tagged, &identity).await?;
    Ok(StagedUsage {
        run_id: shared.run_id.clone(),
        epoch,
        rows: rows as u64,
    })
}

fn with_stage_columns(
    batch: &RecordBatch,
    run_id: &str,
    epoch: u64,
) -> Result<RecordBatch, ClickHouseError> {
    let n = batch.num_rows();
    let mut fields = vec![
        Field::new("run_id", DataType::Utf8, false),
        // Int64: the encoder range-checks it into the UInt64 column.
        Field::new("epoch", DataType::Int64, false),
    ];
    fields.extend(batch.schema().fields().iter().map(|f| f.as_ref().clone()));
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![run_id; n])),
        Arc::new(Int64Array::from(vec![epoch as i64; n])),
    ];
    columns.extend(batch.columns().iter().cloned());
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| ClickHouseError::Staging(e.to_string()))
}

/// Copies a checkpoint's staged usage and rollup rows into their tables.
pub struct UsageCommitter {
    pub(super) shared: Arc<Shared>,
}

/// Attempts before a commit gives up (the restart then commits again).
const COMMIT_ATTEMPTS: u32 = 30;

impl UsageCommitter {
    /// What the checkpoint staged, per table: `staged_usage` (`usage_1m`,
    /// the key older manifests have) and `staged_rollups`.
    fn staged(checkpoint: &NodeCheckpoint) -> Vec<(String, StagedUsage)> {
        let Some(pre_commit) = checkpoint.pre_commit.as_ref() else {
            return Vec::new();
        };
        let mut staged = Vec::new();
        if let Some(usage) = pre_commit
            .get("staged_usage")
            .and_then(|s| serde_json::from_value::<StagedUsage>(s.clone()).ok())
        {
            staged.push((USAGE_TABLE.to_string(), usage));
        }
        if let Some(rollups) = pre_commit.get("staged_rollups").and_then(|r| r.as_object()) {
            for (table, s) in rollups {
                if let Ok(rows) = serde_json::from_value::<StagedUsage>(s.clone()) {
                    staged.push((table.clone(), rows));
                }
            }
        }
        staged.retain(|(_, s)| s.rows > 0);
        staged
    }

    async fn publish(&self, checkpoint: &NodeCheckpoint) -> Result<(), ClickHouseError> {
        for (table, staged) in Self::staged(checkpoint) {
            self.copy(&table, &staged).await?;
        }
        Ok(())
    }

    async fn copy(&self, table: &str, staged: &StagedUsage) -> Result<(), ClickHouseError> {
        let Some(schema) = table_schema(table) else {
            return Err(ClickHouseError::UnknownTable(table.to_string()));
        };
        let columns: Vec<String> = schema.fields().iter().map(|f| f.name().clone()).collect();
        let columns = columns.join(", ");
        // The table is one the sink staged (a name from code), run_id hex
        // made by this program, epoch a number.
        let sql = format!(
            "INSERT INTO {table} ({columns}) SELECT {columns} FROM {staging} \
             WHERE run_id = '{run}' AND epoch = {epoch}",
            staging = staging_table(table),
            run = staged.run_id.replace('\'', ""),
            epoch = staged.epoch
        );
        let mut attempt = 0;
        loop {
            match self.shared.client.query(&sql).execute().await {
                Ok(()) => {
                    info!(
                        table,
                        rows = staged.rows,
                        epoch = staged.epoch,
                        "staged rows published"
                    );
                    return Ok(());
                }
                Err(e) if attempt + 1 < COMMIT_ATTEMPTS => {
                    let wait = self.shared.backoff(attempt);
                    attempt += 1;
                    warn!(table, error = %e, attempt, retry_in_ms = wait.as_millis() as u64,
                        "publishing staged rows failed; retrying");
                    tokio::time::sleep(wait.max(Duration::from_millis(100))).await;
                }
                Err(e) => return Err(client_error(&self.shared.config)(e)),
            }
        }
    }
}

#[async_trait]
impl Committer for UsageCommitter {
    async fn commit(&self, _epoch: u64, checkpoint: &NodeCheckpoint) -> Result<(), NodeError> {
        Ok(self.publish(checkpoint).await?)
    }

    async fn recover(&self, checkpoint: Option<&NodeCheckpoint>) -> Result<(), NodeError> {
        match checkpoint {
            Some(cp) => Ok(self.publish(cp).await?),
            None => Ok(()),
        }
    }
}
