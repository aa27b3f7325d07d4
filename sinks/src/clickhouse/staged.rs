//! `usage_1m` published once per completed checkpoint. Usage rows are
//! aggregates whose split into rows depends on when watermarks arrived, so a
//! replay after a crash may produce the same totals in different rows; rows
//! inserted before the crash would then count twice. So the sink inserts a
//! checkpoint's usage rows into `usage_1m_staging` at pre-commit, tagged with
//! its run and epoch, and the committer copies exactly those into
//! `usage_1m` once the checkpoint is durable. A repeated copy (commit again
//! at restart) inserts the same `row_id`s, which ReplacingMergeTree collapses.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};
use somaflow_pipeline::checkpoint::NodeCheckpoint;
use somaflow_pipeline::events::schema::{USAGE_TABLE, usage_schema};
use somaflow_pipeline::runtime::{Committer, NodeError};
use tracing::{info, warn};

use super::ClickHouseError;
use super::client::client_error;
use super::writer::{Shared, deliver};

/// The staging table of `usage_1m`.
pub const USAGE_STAGING: &str = "usage_1m_staging";

/// What a checkpoint staged, as kept in its manifest.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StagedUsage {
    pub run_id: String,
    pub epoch: u64,
    pub rows: u64,
}

/// Stages `batches` (rows of `usage_1m`) for `epoch`.
pub async fn stage(
    shared: &Shared,
    epoch: u64,
    batches: &[RecordBatch],
) -> Result<StagedUsage, ClickHouseError> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut tagged = Vec::with_capacity(batches.len());
    for batch in batches {
        tagged.push(with_stage_columns(batch, &shared.run_id, epoch)?);
    }
    let identity = format!("{}-{}-{USAGE_STAGING}-{epoch}", shared.node, shared.run_id);
    deliver(shared, USAGE_STAGING, &tagged, &identity).await?;
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

/// Copies a checkpoint's staged usage rows into `usage_1m`.
pub struct UsageCommitter {
    pub(super) shared: Arc<Shared>,
}

/// Attempts before a commit gives up (the restart then commits again).
const COMMIT_ATTEMPTS: u32 = 30;

impl UsageCommitter {
    async fn publish(&self, checkpoint: &NodeCheckpoint) -> Result<(), ClickHouseError> {
        let Some(staged) = checkpoint
            .pre_commit
            .as_ref()
            .and_then(|p| p.get("staged_usage"))
            .and_then(|s| serde_json::from_value::<StagedUsage>(s.clone()).ok())
            .filter(|s| s.rows > 0)
        else {
            return Ok(());
        };
        let columns: Vec<String> = usage_schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let columns = columns.join(", ");
        // run_id is hex made by this program; epoch a number.
        let sql = format!(
            "INSERT INTO {USAGE_TABLE} ({columns}) SELECT {columns} FROM {USAGE_STAGING} \
             WHERE run_id = '{}' AND epoch = {}",
            staged.run_id.replace('\'', ""),
            staged.epoch
        );
        let mut attempt = 0;
        loop {
            match self.shared.client.query(&sql).execute().await {
                Ok(()) => {
                    info!(
                        rows = staged.rows,
                        epoch = staged.epoch,
                        "usage_1m rows published"
                    );
                    return Ok(());
                }
                Err(e) if attempt + 1 < COMMIT_ATTEMPTS => {
                    let wait = self.shared.backoff(attempt);
                    attempt += 1;
                    warn!(error = %e, attempt, retry_in_ms = wait.as_millis() as u64,
                        "publishing usage_1m rows failed; retrying");
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
