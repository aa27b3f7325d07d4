//! The `alerts` node: a sink fed the budget operator's `budget_events`.
//! Writing only stages alerts in the hub's outbox; the pre-commit is the
//! outbox itself, kept in the checkpoint; the committer lets the delivery
//! task send what a durable checkpoint holds. No network I/O happens on
//! the pipeline's path, so a webhook that is down never slows ingest.

use std::sync::Arc;

use async_trait::async_trait;
use somaflow_pipeline::checkpoint::NodeCheckpoint;
use somaflow_pipeline::events::schema::BUDGET_EVENTS_TABLE;
use somaflow_pipeline::runtime::{Batch, Committer, NodeError, Sink};

use super::alert::Alert;
use super::hub::{AlertsHub, Sealed};

pub struct AlertsSink {
    node: String,
    hub: Arc<AlertsHub>,
}

impl AlertsSink {
    pub fn new(node: &str, hub: Arc<AlertsHub>) -> Self {
        Self {
            node: node.to_owned(),
            hub,
        }
    }
}

#[async_trait]
impl Sink for AlertsSink {
    async fn write(&mut self, batch: Batch) -> Result<(), NodeError> {
        if batch.table != BUDGET_EVENTS_TABLE {
            return Err(format!(
                "{}: alerts are made of `{BUDGET_EVENTS_TABLE}` rows (a budget node's output), not `{}`",
                self.node, batch.table
            )
            .into());
        }
        let alerts = Alert::from_budget_events(&batch.rows).map_err(|e| e.to_string())?;
        let staged = self.hub.stage(&alerts);
        tracing::debug!(node = %self.node, alerts = alerts.len(), staged, "alerts staged");
        Ok(())
    }

    async fn pre_commit(&mut self, epoch: u64) -> Result<serde_json::Value, NodeError> {
        Ok(serde_json::to_value(self.hub.seal(epoch)).map_err(|e| e.to_string())?)
    }

    fn committer(&self) -> Arc<dyn Committer> {
        Arc::new(AlertsCommitter {
            hub: self.hub.clone(),
        })
    }
}

struct AlertsCommitter {
    hub: Arc<AlertsHub>,
}

fn sealed(checkpoint: &NodeCheckpoint) -> Result<Option<Sealed>, NodeError> {
    match &checkpoint.pre_commit {
        None => Ok(None),
        Some(v) => Ok(Some(serde_json::from_value(v.clone()).map_err(|e| {
            format!("the alerts outbox in the checkpoint cannot be read: {e}")
        })?)),
    }
}

#[async_trait]
impl Committer for AlertsCommitter {
    async fn commit(&self, epoch: u64, checkpoint: &NodeCheckpoint) -> Result<(), NodeError> {
        if let Some(s) = sealed(checkpoint)? {
            self.hub.committed(epoch, &s);
        }
        Ok(())
    }

    async fn recover(&self, checkpoint: Option<&NodeCheckpoint>) -> Result<(), NodeError> {
        if let Some(s) = checkpoint.map(sealed).transpose()?.flatten() {
            self.hub.restore(s);
        }
        Ok(())
    }
}
