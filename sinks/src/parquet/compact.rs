//! The lake's compactor: merges a partition folder's small files into one
//! sorted, larger file, publishes the merge with one rename, and deletes the
//! files it replaced once no query can still hold them.
//!
//! Why readers see a merge atomically is in
//! [`somaflow_pipeline::compaction`]. The compactor runs on its own task on
//! the lake's only writer (the embedded node); the committer tells it which
//! folders each commit changed, and at start it looks at every folder once.
//!
//! Which files merge: a folder still being written merges files of one size
//! class (each class `fanout` times the one below) once it has `fanout` of
//! them, so a row is rewritten about log_fanout(files) times, not once per
//! checkpoint; a folder not written for `settle` merges all its files below
//! the target size into one. A merge is capped at the target size.
//! Merging `usage_1m` folds each window and group's rows into one.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::object_store::path::Path;
use datafusion::object_store::{ObjectMeta, ObjectStore, ObjectStoreExt, PutPayload};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::file::properties::WriterProperties;
use futures::TryStreamExt;
use somaflow_pipeline::compaction::{
    Covers, CoversCache, FolderView, covers_path, file_name, is_compacted, split_listing,
};
use somaflow_pipeline::events::schema::time_column;
use somaflow_pipeline::metrics::{NodeTableLabels, metrics};
use somaflow_pipeline::storage::StorageLocation;
use tokio::sync::mpsc;
use tracing::{Instrument, debug, info, info_span, warn};

use super::ParquetSinkError;
use super::config::CompactionSettings;
use super::file::encode;
use super::fold::{fold_rows, folded_schema};
use super::kmerge::merge_sorted;

/// Size of the smallest class is the target over fanout³ (256 KiB for
/// 128 MiB and 8): three classes of merges below the target.
const CLASSES_BELOW_TARGET: u32 = 3;

pub struct Compactor {
    node: String,
    location: StorageLocation,
    /// Folder (relative to the lake) where merges are written before their rename.
    staging: String,
    run: String,
    seq: u64,
    settings: CompactionSettings,
    props: Arc<WriterProperties>,
    cache: CoversCache,
    /// Folders (store paths) that may need work, with when they were last written.
    folders: BTreeMap<String, DateTime<Utc>>,
}

/// What one look at a folder decided.
#[derive(Debug, PartialEq)]
enum Tended {
    /// Nothing left to do until the folder is written again.
    Done,
    /// Look again later (merged now, waiting to settle, or files to delete).
    Again,
}

impl Compactor {
    pub fn new(
        node: &str,
        location: StorageLocation,
        staging: String,
        run: &str,
        settings: CompactionSettings,
        props: Arc<WriterProperties>,
    ) -> Compactor {
        Compactor {
            node: node.to_string(),
            location,
            staging,
            run: run.to_string(),
            seq: 0,
            settings,
            props,
            cache: CoversCache::default(),
            folders: BTreeMap::new(),
        }
    }

    /// Runs until `changed` closes (its committer is gone). `changed`
    /// carries the folders each commit wrote.
    pub async fn run(mut self, mut changed: mpsc::UnboundedReceiver<Vec<String>>) {
        if let Err(e) = self.look_everywhere().await {
            warn!(node = %self.node, error = %e, "compactor: listing the lake failed; it compacts what commits change");
        }
        let mut tick = tokio::time::interval(self.settings.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                folders = changed.recv() => match folders {
                    Some(folders) => {
                        let now = Utc::now();
                        for folder in folders {
                            self.folders.insert(folder, now);
                        }
                    }
                    None => return,
                },
                _ = tick.tick() => self.pass().await,
            }
        }
    }

    /// Notes every partition folder of the lake (files a past run left).
    async fn look_everywhere(&mut self) -> Result<(), ParquetSinkError> {
        let listing: Vec<ObjectMeta> = self
            .location
            .store
            .list(Some(&self.location.prefix))
            .try_collect()
            .await?;
        for meta in listing {
            let Some(table) = self.table_of(&meta.location) else {
                continue;
            };
            if table.starts_with('_') {
                continue;
            }
            let folder = somaflow_pipeline::compaction::folder_of(&meta.location).to_string();
            let written = self.folders.entry(folder).or_insert(meta.last_modified);
            *written = (*written).max(meta.last_modified);
        }
        Ok(())
    }

    /// One look at every folder that may need work.
    async fn pass(&mut self) {
        let folders: Vec<(String, DateTime<Utc>)> =
            self.folders.iter().map(|(f, t)| (f.clone(), *t)).collect();
        for (folder, written) in folders {
            let span = info_span!("compact", node = %self.node, folder = %folder);
            match self.tend(&folder, written).instrument(span).await {
                Ok(Tended::Done) => {
                    // Unless a commit wrote it again meanwhile.
                    if self.folders.get(&folder) == Some(&written) {
                        self.folders.remove(&folder);
                    }
                }
                Ok(Tended::Again) => {}
                Err(e) => {
                    warn!(node = %self.node, %folder, error = %e, "compaction of a folder failed; tried again at the next pass")
                }
            }
        }
    }

    /// Deletes what merges replaced past the grace period, then merges if
    /// the folder's files call for it.
    async fn tend(
        &mut self,
        folder: &str,
        written: DateTime<Utc>,
    ) -> Result<Tended, ParquetSinkError> {
        let store = self.location.store.clone();
        let listed = store
            .list_with_delimiter(Some(&Path::from(folder)))
            .await?
            .objects;
        let view = split_listing(store.as_ref(), &self.cache, listed)
            .await?
            .remove(folder)
            .unwrap_or_default();
        let now = Utc::now();
        let waiting = self.delete_replaced(&view, now).await?;
        let settled = now
            .signed_duration_since(written)
            .to_std()
            .unwrap_or_default()
            >= self.settings.settle;
        if let Some(group) = self.choose(&view.visible, settled) {
            self.merge(folder, &group).await?;
            return Ok(Tended::Again);
        }
        Ok(if settled && !waiting {
            Tended::Done
        } else {
            Tended::Again
        })
    }

    /// Deletes replaced files whose grace period is over, and covers
    /// records whose compacted file is gone. Whether files still wait.
    async fn delete_replaced(
        &self,
        view: &FolderView,
        now: DateTime<Utc>,
    ) -> Result<bool, ParquetSinkError> {
        let store = &self.location.store;
        let mut waiting = false;
        let mut deleted = 0u64;
        let mut table = None;
        // Files still there after this pass: a covers record of one of them
        // is not an orphan, even when its file is hidden.
        let mut present = somaflow_pipeline::compaction::names(&view.visible);
        for (meta, since) in &view.hidden {
            let hidden_for = now
                .signed_duration_since(*since)
                .to_std()
                .unwrap_or_default();
            if hidden_for < self.settings.grace {
                waiting = true;
                present.insert(file_name(&meta.location).to_string());
                continue;
            }
            delete_if_present(store.as_ref(), &meta.location).await?;
            if is_compacted(file_name(&meta.location)) {
                delete_if_present(store.as_ref(), &covers_path(&meta.location)).await?;
            }
            deleted += 1;
            table = table.or_else(|| self.table_of(&meta.location).map(str::to_string));
        }
        // A covers record without its file: a merge that crashed before its
        // rename, or a deletion that crashed between the two.
        for meta in &view.visible {
            let name = file_name(&meta.location);
            let Some(parquet) = name.strip_suffix(somaflow_pipeline::compaction::COVERS_SUFFIX)
            else {
                continue;
            };
            let old = now
                .signed_duration_since(meta.last_modified)
                .to_std()
                .unwrap_or_default()
                >= self.settings.grace;
            if !present.contains(parquet) && old {
                delete_if_present(store.as_ref(), &meta.location).await?;
            }
        }
        if deleted > 0 {
            metrics()
                .lake_files_deleted
                .get_or_create(&self.labels(table.as_deref().unwrap_or_default()))
                .inc_by(deleted);
            debug!(deleted, "deleted replaced lake files");
        }
        Ok(waiting)
    }

    /// The files to merge now, if any: all small ones once settled, else
    /// the smallest size class that has `fanout` files.
    fn choose(&self, visible: &[ObjectMeta], settled: bool) -> Option<Vec<ObjectMeta>> {
        let target = self.settings.target_bytes;
        let mut small: Vec<&ObjectMeta> = visible
            .iter()
            .filter(|m| m.location.as_ref().ends_with(".parquet") && m.size < target)
            .collect();
        small.sort_by_key(|m| (m.size, m.location.clone()));
        let group: Vec<&ObjectMeta> = if settled {
            small
        } else {
            let fanout = self.settings.fanout;
            let mut classes: BTreeMap<u32, Vec<&ObjectMeta>> = BTreeMap::new();
            for m in small {
                classes
                    .entry(size_class(m.size, target, fanout))
                    .or_default()
                    .push(m);
            }
            classes.into_values().find(|c| c.len() >= fanout)?
        };
        // Smallest first, up to the target size.
        let mut total = 0u64;
        let capped: Vec<ObjectMeta> = group
            .into_iter()
            .take_while(|m| {
                total = total.saturating_add(m.size);
                total <= target
            })
            .cloned()
            .collect();
        (capped.len() >= 2).then_some(capped)
    }

    /// Merges `group` (files of `folder`) into one file and publishes it.
    async fn merge(&mut self, folder: &str, group: &[ObjectMeta]) -> Result<(), ParquetSinkError> {
        let table = self
            .table_of(&group[0].location)
            .ok_or_else(|| ParquetSinkError::Compaction(format!("{folder} is outside the lake")))?
            .to_string();
        let store = self.location.store.clone();
        let mut inputs = Vec::with_capacity(group.len());
        for meta in group {
            let bytes = store.get(&meta.location).await?.bytes().await?;
            inputs.push((file_name(&meta.location).to_string(), bytes));
        }
        let props = self.props.clone();
        let for_table = table.clone();
        let memory = self.settings.memory_bytes;
        // Sorting and encoding are CPU work: off the async workers.
        let merged =
            tokio::task::spawn_blocking(move || merge_files(inputs, &for_table, &props, memory))
                .await
                .map_err(|e| {
                    ParquetSinkError::Compaction(format!("the merge task failed: {e}"))
                })??;
        if merged.used.len() < 2 {
            return Ok(());
        }
        let mut covered: Vec<String> = merged.used.clone();
        for name in &merged.used {
            if is_compacted(name) {
                let path = Path::from(format!("{folder}/{name}"));
                covered.extend(
                    self.cache
                        .get(store.as_ref(), &path)
                        .await?
                        .files
                        .iter()
                        .cloned(),
                );
            }
        }
        covered.sort();
        covered.dedup();

        self.seq += 1;
        let name = format!("c-{}-{:06}.parquet", self.run, self.seq);
        let staged = self.location.path(&format!("{}/{name}", self.staging));
        let target = Path::from(format!("{folder}/{name}"));
        store.put(&staged, PutPayload::from(merged.bytes)).await?;
        // The record first: the moment the file appears, readers need it.
        let record = Covers {
            files: covered,
            rows: merged.rows,
        };
        store
            .put(&covers_path(&target), PutPayload::from(record.to_json()))
            .await?;
        store.rename(&staged, &target).await?;

        let labels = self.labels(&table);
        metrics().lake_compactions.get_or_create(&labels).inc();
        metrics()
            .lake_files_merged
            .get_or_create(&labels)
            .inc_by(merged.used.len() as u64);
        info!(node = %self.node, %table, %folder, files = merged.used.len(), rows = merged.rows, file = %name, "merged lake files");
        Ok(())
    }

    /// The table a lake path belongs to: its first folder below the lake.
    fn table_of<'a>(&self, path: &'a Path) -> Option<&'a str> {
        let prefix = self.location.prefix.as_ref();
        let rest = path.as_ref().strip_prefix(prefix)?.trim_start_matches('/');
        let (table, below) = rest.split_once('/')?;
        (!below.is_empty()).then_some(table)
    }

    fn labels(&self, table: &str) -> NodeTableLabels {
        NodeTableLabels {
            node: self.node.clone(),
            table: table.to_string(),
        }
    }
}

/// The size class of a file: 0 below target/fanout³, then one more per
/// factor of `fanout`.
fn size_class(size: u64, target: u64, fanout: usize) -> u32 {
    let fanout = fanout.max(2) as u64;
    let mut bound = (target / fanout.saturating_pow(CLASSES_BELOW_TARGET)).max(1);
    let mut class = 0;
    while size >= bound && class < 64 {
        bound = bound.saturating_mul(fanout);
        class += 1;
    }
    class
}

async fn delete_if_present(store: &dyn ObjectStore, path: &Path) -> Result<(), ParquetSinkError> {
    match store.delete(path).await {
        Ok(()) | Err(datafusion::object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// A merge's output: the file, its rows, and which inputs it holds (files
/// with another table layout than the first, written by an older version,
/// are left for a later merge of their own).
struct Merged {
    bytes: Bytes,
    rows: u64,
    used: Vec<String>,
}

fn merge_files(
    inputs: Vec<(String, Bytes)>,
    table: &str,
    props: &Arc<WriterProperties>,
    memory_bytes: usize,
) -> Result<Merged, ParquetSinkError> {
    let mut schema: Option<SchemaRef> = None;
    let mut files = Vec::new();
    let mut used = Vec::new();
    let mut expected_rows = 0u64;
    for (name, bytes) in inputs {
        let builder = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())?;
        let file_schema = builder.schema().clone();
        if schema
            .as_ref()
            .is_some_and(|s| s.fields() != file_schema.fields())
        {
            continue;
        }
        schema.get_or_insert(file_schema);
        expected_rows += builder.metadata().file_metadata().num_rows().max(0) as u64;
        files.push(bytes);
        used.push(name);
    }
    let Some(schema) = schema else {
        return Ok(Merged {
            bytes: Bytes::new(),
            rows: 0,
            used,
        });
    };
    let time = time_column(table);
    let (bytes, read) = if let Some(layout) = folded_schema(table) {
        // usage_1m and rollup rows of one window and group fold into one
        // (fold.rs). They are small, and few once folded.
        let mut batches = Vec::new();
        for file in &files {
            for batch in ParquetRecordBatchReaderBuilder::try_new(file.clone())?.build()? {
                batches.push(batch?);
            }
        }
        let read: u64 = batches.iter().map(|b| b.num_rows() as u64).sum();
        let batches = match fold_rows(&layout, &batches)? {
            Some(folded) => vec![folded],
            None => batches,
        };
        (encode(&batches, time, props)?, read)
    } else {
        merge_sorted(&files, schema, time, props, memory_bytes)?
    };
    if read != expected_rows {
        return Err(ParquetSinkError::Compaction(format!(
            "read {read} rows from files whose footers say {expected_rows}"
        )));
    }
    let rows = ParquetRecordBatchReaderBuilder::try_new(bytes.clone())?
        .metadata()
        .file_metadata()
        .num_rows()
        .max(0) as u64;
    Ok(Merged { bytes, rows, used })
}

#[cfg(test)]
mod tests;
