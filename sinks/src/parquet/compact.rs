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
mod tests {
    use std::time::Duration;

    use datafusion::arrow::array::{
        Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use somaflow_pipeline::compaction::LakeView;

    use super::super::file::writer_properties;
    use super::*;

    const HOUR: &str = "t/date=2026-12-06/hour=10";

    fn settings(settle: Duration, grace: Duration) -> CompactionSettings {
        CompactionSettings {
            target_bytes: 128 * 1024 * 1024,
            fanout: 4,
            settle,
            grace,
            interval: Duration::from_millis(10),
            memory_bytes: 1024 * 1024,
        }
    }

    /// A lake with `files` small files of 3 rows each in one hour folder.
    async fn lake_with(files: usize) -> (tempfile::TempDir, StorageLocation) {
        let dir = tempfile::tempdir().unwrap();
        let location = StorageLocation::parse(dir.path().to_str().unwrap()).unwrap();
        let props = writer_properties(1000).unwrap();
        for f in 0..files {
            let n = f as i64;
            let batch = RecordBatch::try_from_iter(vec![
                (
                    "tenant_id",
                    Arc::new(StringArray::from(vec!["b", "a", "c"])) as _,
                ),
                (
                    "event_time",
                    Arc::new(TimestampMicrosecondArray::from(vec![n, n + 1, n + 2])) as _,
                ),
                (
                    "v",
                    Arc::new(Int64Array::from(vec![n, 10 * n, 100 * n])) as _,
                ),
            ])
            .unwrap();
            let bytes = encode(&[batch], "event_time", &props).unwrap();
            let path = location.path(&format!("{HOUR}/{f:010}-lake-0-0000-run.parquet"));
            location
                .store
                .put(&path, PutPayload::from(bytes))
                .await
                .unwrap();
        }
        (dir, location)
    }

    /// What a reader listing the lake through the view is shown.
    async fn listed(location: &StorageLocation) -> (LakeView, Vec<ObjectMeta>) {
        let view = LakeView::new(location.store.clone());
        let metas: Vec<ObjectMeta> = view
            .list(Some(&location.prefix))
            .try_collect()
            .await
            .unwrap();
        (view, metas)
    }

    /// Rows and the sum of `v` over the Parquet files a reader is shown.
    async fn read_through_view(location: &StorageLocation) -> (usize, i64, usize) {
        let (view, metas) = listed(location).await;
        let (mut rows, mut sum, mut files) = (0, 0, 0);
        for m in metas
            .iter()
            .filter(|m| m.location.as_ref().ends_with(".parquet"))
        {
            files += 1;
            let bytes = view.get(&m.location).await.unwrap().bytes().await.unwrap();
            for b in ParquetRecordBatchReaderBuilder::try_new(bytes)
                .unwrap()
                .build()
                .unwrap()
            {
                let b = b.unwrap();
                rows += b.num_rows();
                let v = b.column_by_name("v").unwrap();
                let v = v.as_any().downcast_ref::<Int64Array>().unwrap();
                sum += v.iter().flatten().sum::<i64>();
            }
        }
        (rows, sum, files)
    }

    fn compactor(location: &StorageLocation, settings: CompactionSettings) -> Compactor {
        Compactor::new(
            "lake",
            location.clone(),
            "_staging/lake/compact".into(),
            "run",
            settings,
            writer_properties(1000).unwrap(),
        )
    }

    #[tokio::test]
    async fn a_settled_folder_becomes_one_sorted_file_and_the_old_files_go_after_the_grace() {
        let (_dir, location) = lake_with(6).await;
        let before = read_through_view(&location).await;
        assert_eq!(before, (18, (0..6).map(|n| 111 * n).sum(), 6));

        let mut c = compactor(
            &location,
            settings(Duration::ZERO, Duration::from_millis(200)),
        );
        c.look_everywhere().await.unwrap();
        c.pass().await;
        let after = read_through_view(&location).await;
        assert_eq!((after.0, after.1), (before.0, before.1), "same rows");
        assert_eq!(after.2, 1, "one file");
        let on_disk = |location: &StorageLocation| {
            let location = location.clone();
            async move {
                let all: Vec<ObjectMeta> = location
                    .store
                    .list(Some(&location.prefix))
                    .try_collect()
                    .await
                    .unwrap();
                all.iter()
                    .filter(|m| m.location.as_ref().ends_with(".parquet"))
                    .count()
            }
        };
        assert_eq!(
            on_disk(&location).await,
            7,
            "the old files wait for the grace period"
        );
        c.pass().await;
        assert_eq!(on_disk(&location).await, 7, "still within it");
        tokio::time::sleep(Duration::from_millis(250)).await;
        c.pass().await;
        assert_eq!(on_disk(&location).await, 1, "deleted after it");
        assert_eq!(read_through_view(&location).await, after);
        assert!(c.folders.is_empty(), "nothing left to do");

        // The merged file is sorted by tenant, then time.
        let (view, metas) = listed(&location).await;
        let file = metas
            .iter()
            .find(|m| m.location.as_ref().ends_with(".parquet"))
            .unwrap();
        let bytes = view
            .get(&file.location)
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        let batch = ParquetRecordBatchReaderBuilder::try_new(bytes)
            .unwrap()
            .build()
            .unwrap()
            .next()
            .unwrap()
            .unwrap();
        let tenants = batch.column_by_name("tenant_id").unwrap();
        let tenants = tenants.as_any().downcast_ref::<StringArray>().unwrap();
        let tenants: Vec<&str> = tenants.iter().flatten().collect();
        let mut sorted = tenants.clone();
        sorted.sort();
        assert_eq!(tenants, sorted);
    }

    #[tokio::test]
    async fn a_folder_being_written_merges_only_once_a_size_class_is_full() {
        let (_dir, location) = lake_with(3).await;
        let mut c = compactor(
            &location,
            settings(Duration::from_secs(3600), Duration::from_secs(3600)),
        );
        c.folders
            .insert(location.path(HOUR).to_string(), Utc::now());
        c.pass().await;
        assert_eq!(
            read_through_view(&location).await.2,
            3,
            "3 files of a class, fanout 4"
        );
        let (_dir2, more) = lake_with(4).await;
        let mut c = compactor(
            &more,
            settings(Duration::from_secs(3600), Duration::from_secs(3600)),
        );
        c.folders.insert(more.path(HOUR).to_string(), Utc::now());
        c.pass().await;
        let seen = read_through_view(&more).await;
        assert_eq!((seen.0, seen.2), (12, 1), "4 files of a class merge");
        assert_eq!(c.folders.len(), 1, "a folder being written stays watched");
    }

    #[test]
    fn size_classes_grow_by_the_fanout() {
        let mib = 1024 * 1024;
        let target = 128 * mib;
        assert_eq!(size_class(1, target, 8), 0);
        assert_eq!(size_class(255 * 1024, target, 8), 0);
        assert_eq!(size_class(256 * 1024, target, 8), 1);
        assert_eq!(size_class(2 * mib, target, 8), 2);
        assert_eq!(size_class(16 * mib, target, 8), 3);
        assert_eq!(size_class(200 * mib, target, 8), 4);
    }
}
