//! Publishing staged files: a rename per file, idempotent, and at restart the
//! roll-forward of the newest checkpoint plus removal of orphaned staging.
//! Each publication is bracketed in the writer's publication record
//! ([`somaflow_pipeline::publications`]): its days are marked in progress
//! before the first rename and recorded as changed after the last.

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use datafusion::object_store::ObjectStoreExt;
use datafusion::object_store::path::Path;
use datafusion::parquet::file::properties::WriterProperties;
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use somaflow_pipeline::checkpoint::NodeCheckpoint;
use somaflow_pipeline::compaction::{CoversCache, folder_of, split_listing};
use somaflow_pipeline::metrics::{NodeTableLabels, metrics};
use somaflow_pipeline::publications::{DaysByTable, PublicationRecord, read_record, write_record};
use somaflow_pipeline::runtime::{Committer, NodeError};
use somaflow_pipeline::storage::StorageLocation;
use tokio::sync::mpsc;
use tracing::{debug, info};

use super::ParquetSinkError;
use super::compact::Compactor;
use super::config::CompactionSettings;

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
    node: String,
    worker: Option<String>,
    location: StorageLocation,
    /// Names this process run's publications in the record.
    run: String,
    /// This writer's publication record, read at the first publication.
    record: tokio::sync::Mutex<Option<PublicationRecord>>,
    /// How this writer compacts the lake, if it does.
    compaction: Option<(CompactionSettings, Arc<WriterProperties>)>,
    /// Tells the compactor, started at recovery, which folders a commit wrote.
    compactor: OnceLock<mpsc::UnboundedSender<Vec<String>>>,
}

impl LakeCommitter {
    pub fn new(
        node: &str,
        worker: Option<String>,
        location: StorageLocation,
        run: &str,
        compaction: Option<(CompactionSettings, Arc<WriterProperties>)>,
    ) -> LakeCommitter {
        LakeCommitter {
            node: node.to_string(),
            worker,
            location,
            run: run.to_string(),
            record: tokio::sync::Mutex::new(None),
            compaction,
            compactor: OnceLock::new(),
        }
    }

    /// Starts this writer's compactor (once), after recovery cleared staging.
    fn start_compactor(&self) {
        let Some((settings, props)) = &self.compaction else {
            return;
        };
        if self.compactor.get().is_some() {
            return;
        }
        let (tx, rx) = mpsc::unbounded_channel();
        if self.compactor.set(tx).is_ok() {
            let compactor = Compactor::new(
                &self.node,
                self.location.clone(),
                format!("{}/compact", self.staging_root()),
                &self.run,
                settings.clone(),
                props.clone(),
            );
            tokio::spawn(compactor.run(rx));
        }
    }

    /// Tells the compactor which folders `files` went to.
    fn changed(&self, files: &[StagedFile]) {
        let Some(tx) = self.compactor.get() else {
            return;
        };
        let mut folders: Vec<String> = files
            .iter()
            .map(|f| folder_of(&self.location.path(&f.target)).to_string())
            .collect();
        folders.sort();
        folders.dedup();
        // A compactor that stopped only means no more merges.
        let _ = tx.send(folders);
    }

    /// This writer's name among the lake's writers: its worker and node.
    fn writer(&self) -> String {
        match &self.worker {
            Some(worker) => format!("{worker}/{}", self.node),
            None => self.node.clone(),
        }
    }

    pub fn staging_root(&self) -> String {
        format!("_staging/{}", self.writer())
    }

    /// Renames `files` into the lake, bracketed in the publication record.
    async fn publish(&self, epoch: u64, files: &[StagedFile]) -> Result<(), ParquetSinkError> {
        let mut guard = self.record.lock().await;
        if files.is_empty() && guard.is_some() {
            return Ok(());
        }
        let record = match guard.as_mut() {
            Some(record) => record,
            None => guard.insert(
                read_record(&self.location, &self.writer())
                    .await?
                    .unwrap_or_default(),
            ),
        };
        if !files.is_empty() {
            record.begin(&days_of(files));
            write_record(&self.location, &self.writer(), record).await?;
            self.rename_all(epoch, files).await?;
            record.finish(&self.run);
            self.changed(files);
        }
        // Also written with nothing to publish the first time (recovery): a
        // lake with a writer always has its record, which readers rely on.
        write_record(&self.location, &self.writer(), record).await?;
        Ok(())
    }

    async fn rename_all(&self, epoch: u64, files: &[StagedFile]) -> Result<(), ParquetSinkError> {
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
                    // Renamed by an earlier attempt (crash after the rename),
                    // and maybe merged into a compacted file since.
                    if store.head(&target).await.is_err() && !self.merged(&target).await? {
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

impl LakeCommitter {
    /// Whether a compacted file in `target`'s folder holds it.
    async fn merged(&self, target: &Path) -> Result<bool, ParquetSinkError> {
        let store = &self.location.store;
        let folder = Path::from(folder_of(target));
        let listed = store.list_with_delimiter(Some(&folder)).await?.objects;
        let views = split_listing(store.as_ref(), &CoversCache::default(), listed).await?;
        Ok(views
            .values()
            .any(|v| v.hidden.iter().any(|(m, _)| m.location == *target)))
    }
}

/// The days each table's files go to, from their `date=` folders.
fn days_of(files: &[StagedFile]) -> DaysByTable {
    let mut days = DaysByTable::new();
    for f in files {
        // A target without a date folder is not one the sink writes; its
        // whole table is marked instead (the empty day), which readers take
        // as every day.
        let day = f
            .target
            .split('/')
            .find_map(|part| part.strip_prefix("date="))
            .unwrap_or_default();
        days.entry(f.table.clone())
            .or_default()
            .insert(day.to_string());
    }
    days
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
        let files = match checkpoint {
            Some(cp) => files_of(cp)?,
            None => Vec::new(),
        };
        self.publish(0, &files).await?;
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
        self.start_compactor();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use datafusion::object_store::PutPayload;

    use super::*;

    #[tokio::test]
    async fn a_publication_is_recorded_by_day_after_its_files_are_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let location = StorageLocation::parse(dir.path().to_str().unwrap()).unwrap();
        let committer =
            LakeCommitter::new("lake", Some("w1".into()), location.clone(), "run1", None);
        committer.recover(None).await.unwrap();
        let record = read_record(&location, "w1/lake").await.unwrap();
        assert_eq!(
            record,
            Some(PublicationRecord::default()),
            "written at recovery"
        );

        let staged = format!("{}/x/1.parquet", committer.staging_root());
        location
            .store
            .put(&location.path(&staged), PutPayload::from_static(b"rows"))
            .await
            .unwrap();
        let target = "usage_1m/date=2026-12-01/hour=10/1.parquet";
        let files = [StagedFile {
            table: "usage_1m".into(),
            staged,
            target: target.into(),
            rows: 1,
        }];
        committer.publish(1, &files).await.unwrap();
        assert!(location.store.head(&location.path(target)).await.is_ok());
        let record = read_record(&location, "w1/lake").await.unwrap().unwrap();
        assert_eq!(record.days["usage_1m"]["2026-12-01"], "run1:1");
        assert!(record.in_progress.is_empty());

        // A publication whose file is gone fails and leaves its day in progress.
        let missing = [StagedFile {
            table: "usage_1m".into(),
            staged: "_staging/w1/lake/x/2.parquet".into(),
            target: "usage_1m/date=2026-12-02/hour=00/2.parquet".into(),
            rows: 1,
        }];
        assert!(committer.publish(2, &missing).await.is_err());
        let record = read_record(&location, "w1/lake").await.unwrap().unwrap();
        assert!(record.in_progress["usage_1m"].contains("2026-12-02"));
        assert_eq!(record.seq, 1);
    }
}
