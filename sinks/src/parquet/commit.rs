//! Publishing staged files: a rename per file, idempotent, and at restart the
//! roll-forward of the newest checkpoint plus removal of orphaned staging.

use async_trait::async_trait;
use datafusion::object_store::ObjectStoreExt;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use somaflow_pipeline::checkpoint::NodeCheckpoint;
use somaflow_pipeline::metrics::{NodeTableLabels, metrics};
use somaflow_pipeline::runtime::{Committer, NodeError};
use somaflow_pipeline::storage::StorageLocation;
use tracing::{debug, info};

use super::ParquetSinkError;

/// A file written to staging and where it goes at commit.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StagedFile {
    pub table: String,
    pub staged: String,
    pub target: String,
    pub rows: u64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct PreCommit {
    pub files: Vec<StagedFile>,
}

pub struct LakeCommitter {
    pub node: String,
    pub worker: Option<String>,
    pub location: StorageLocation,
}

impl LakeCommitter {
    pub fn staging_root(&self) -> String {
        match &self.worker {
            Some(worker) => format!("_staging/{worker}/{}", self.node),
            None => format!("_staging/{}", self.node),
        }
    }

    async fn publish(&self, epoch: u64, files: &[StagedFile]) -> Result<(), ParquetSinkError> {
        let store = &self.location.store;
        for f in files {
            let staged = self.location.path(&f.staged);
            let target = self.location.path(&f.target);
            match store.rename(&staged, &target).await {
                Ok(()) => {
                    metrics()
                        .sink_rows_committed
                        .get_or_create(&NodeTableLabels {
                            node: self.node.clone(),
                            table: f.table.clone(),
                        })
                        .inc_by(f.rows);
                }
                Err(datafusion::object_store::Error::NotFound { .. }) => {
                    // Renamed by an earlier attempt (crash after the rename).
                    if store.head(&target).await.is_err() {
                        return Err(ParquetSinkError::StagedFileMissing {
                            epoch,
                            staged: f.staged.clone(),
                            target: f.target.clone(),
                        });
                    }
                    debug!(target = %f.target, "already published");
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

fn files_of(checkpoint: &NodeCheckpoint) -> Result<Vec<StagedFile>, ParquetSinkError> {
    match &checkpoint.pre_commit {
        Some(v) => Ok(serde_json::from_value::<PreCommit>(v.clone())?.files),
        None => Ok(Vec::new()),
    }
}

#[async_trait]
impl Committer for LakeCommitter {
    async fn commit(&self, epoch: u64, checkpoint: &NodeCheckpoint) -> Result<(), NodeError> {
        let files = files_of(checkpoint)?;
        self.publish(epoch, &files).await?;
        Ok(())
    }

    async fn recover(&self, checkpoint: Option<&NodeCheckpoint>) -> Result<(), NodeError> {
        if let Some(cp) = checkpoint {
            let files = files_of(cp)?;
            self.publish(0, &files).await?;
        }
        // Whatever is still staged belongs to checkpoints that never completed;
        // its rows will be read again from the source positions.
        let prefix = self.location.path(&self.staging_root());
        let orphans: Vec<_> = self
            .location
            .store
            .list(Some(&prefix))
            .try_collect()
            .await?;
        for meta in &orphans {
            self.location.store.delete(&meta.location).await?;
        }
        if !orphans.is_empty() {
            info!(node = %self.node, files = orphans.len(), "discarded staged files of an incomplete checkpoint");
        }
        Ok(())
    }
}
