//! Compacted lake files, and the view of the lake every reader takes.
//!
//! The compactor (`sinks/src/parquet/compact.rs`) merges small files of one
//! partition folder into one file named `c-….parquet`. Before that file
//! appears it writes beside it `<name>.covers.json`: every file whose rows
//! the new file holds, including what the compacted files it merged held
//! (the closure), so the order old files are later deleted in never matters.
//!
//! The one rename that makes a compacted file appear is the switch: a reader
//! listing the folder through [`LakeView`] is shown every file that no
//! listed compacted file covers. It sees either the old files or the new one,
//! never both and never neither, whichever moment it lists. Covered files are
//! deleted only after a grace period longer than any query may run, so a
//! reader that listed before the switch can still read what it listed.
//!
//! A folder holding a single Parquet file needs no covers record read, which
//! is every settled hour; the records read are kept in a small cache (they
//! never change).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use datafusion::object_store::path::Path;
use datafusion::object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    ObjectStoreExt, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result as StoreResult,
};
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

/// Names of compacted files start with this; names the sink writes start
/// with their epoch's digits.
pub const COMPACTED_PREFIX: &str = "c-";
/// The covers record of `x.parquet` is `x.parquet.covers.json`.
pub const COVERS_SUFFIX: &str = ".covers.json";

/// Records kept in memory at most; past this the cache starts over.
const CACHE_ENTRIES: usize = 1024;

/// What a compacted file holds: the names (in its folder) of every file
/// whose rows it replaces, and how many rows it has.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Covers {
    pub files: Vec<String>,
    pub rows: u64,
}

impl Covers {
    pub fn to_json(&self) -> Bytes {
        // A struct of strings and a number always serialises.
        Bytes::from(serde_json::to_vec(self).unwrap_or_default())
    }
}

/// The last part of a path.
pub fn file_name(path: &Path) -> &str {
    path.as_ref().rsplit('/').next().unwrap_or_default()
}

/// The folder of a path (everything before its last part).
pub fn folder_of(path: &Path) -> &str {
    path.as_ref().rsplit_once('/').map_or("", |(f, _)| f)
}

/// Whether `name` is a compacted Parquet file.
pub fn is_compacted(name: &str) -> bool {
    name.starts_with(COMPACTED_PREFIX) && name.ends_with(".parquet")
}

/// Where the covers record of the compacted file at `path` is.
pub fn covers_path(path: &Path) -> Path {
    Path::from(format!("{}{COVERS_SUFFIX}", path.as_ref()))
}

/// One folder as readers see it.
#[derive(Debug, Default)]
pub struct FolderView {
    /// Every listed object that no compacted file covers (covers records
    /// included; readers take only `.parquet`).
    pub visible: Vec<ObjectMeta>,
    /// Files a listed compacted file covers, with the time the first of
    /// those appeared: when readers stopped being shown the file.
    pub hidden: Vec<(ObjectMeta, DateTime<Utc>)>,
}

#[derive(Debug, thiserror::Error)]
pub enum CompactionError {
    #[error("compacted file {file} has no readable covers record: {reason}")]
    Covers { file: String, reason: String },
    #[error(transparent)]
    Store(#[from] datafusion::object_store::Error),
}

/// Covers records read so far, by the path of their compacted file.
#[derive(Debug, Default)]
pub struct CoversCache {
    records: Mutex<HashMap<Path, Arc<Covers>>>,
}

impl CoversCache {
    /// The covers record of the compacted file at `file`.
    pub async fn get(
        &self,
        store: &dyn ObjectStore,
        file: &Path,
    ) -> Result<Arc<Covers>, CompactionError> {
        if let Some(hit) = self.lock().get(file) {
            return Ok(hit.clone());
        }
        let err = |reason: String| CompactionError::Covers {
            file: file.to_string(),
            reason,
        };
        let bytes = store
            .get(&covers_path(file))
            .await
            .map_err(|e| err(e.to_string()))?
            .bytes()
            .await
            .map_err(|e| err(e.to_string()))?;
        let covers: Arc<Covers> =
            Arc::new(serde_json::from_slice(&bytes).map_err(|e| err(e.to_string()))?);
        let mut records = self.lock();
        if records.len() >= CACHE_ENTRIES {
            records.clear();
        }
        records.insert(file.clone(), covers.clone());
        Ok(covers)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Path, Arc<Covers>>> {
        // The map is only ever inserted into or cleared: a panic elsewhere
        // cannot leave it inconsistent.
        self.records
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Splits a listing into what readers see and what compacted files cover,
/// folder by folder (a compacted file covers only files of its own folder).
pub async fn split_listing(
    store: &dyn ObjectStore,
    cache: &CoversCache,
    listing: Vec<ObjectMeta>,
) -> Result<BTreeMap<String, FolderView>, CompactionError> {
    let mut folders: BTreeMap<String, Vec<ObjectMeta>> = BTreeMap::new();
    for meta in listing {
        folders
            .entry(folder_of(&meta.location).to_string())
            .or_default()
            .push(meta);
    }
    let mut views = BTreeMap::new();
    for (folder, objects) in folders {
        views.insert(folder, split_folder(store, cache, objects).await?);
    }
    Ok(views)
}

async fn split_folder(
    store: &dyn ObjectStore,
    cache: &CoversCache,
    objects: Vec<ObjectMeta>,
) -> Result<FolderView, CompactionError> {
    let parquet = objects
        .iter()
        .filter(|m| m.location.as_ref().ends_with(".parquet"))
        .count();
    let compacted: Vec<&ObjectMeta> = objects
        .iter()
        .filter(|m| is_compacted(file_name(&m.location)))
        .collect();
    // One file covers nothing that is still there.
    if parquet < 2 || compacted.is_empty() {
        return Ok(FolderView {
            visible: objects,
            hidden: Vec::new(),
        });
    }
    let mut hidden_since: HashMap<String, DateTime<Utc>> = HashMap::new();
    let mut unreadable = Vec::new();
    for meta in compacted {
        let covers = match cache.get(store, &meta.location).await {
            Ok(covers) => covers,
            Err(e) => {
                unreadable.push((file_name(&meta.location).to_string(), e));
                continue;
            }
        };
        for name in &covers.files {
            hidden_since
                .entry(name.clone())
                .and_modify(|t| *t = (*t).min(meta.last_modified))
                .or_insert(meta.last_modified);
        }
    }
    // A merged file that a later merge covers is hidden whatever its own
    // record says (its record may already be gone); any other one without
    // a record would be read beside the files it holds.
    if let Some((_, e)) = unreadable
        .into_iter()
        .find(|(name, _)| !hidden_since.contains_key(name))
    {
        return Err(e);
    }
    let mut view = FolderView::default();
    for meta in objects {
        match hidden_since.get(file_name(&meta.location)) {
            Some(since) => view.hidden.push((meta, *since)),
            None => view.visible.push(meta),
        }
    }
    Ok(view)
}

/// The names of a folder's visible files, for tests and the compactor.
pub fn names(metas: &[ObjectMeta]) -> HashSet<String> {
    metas
        .iter()
        .map(|m| file_name(&m.location).to_string())
        .collect()
}

/// An object store as lake readers must see it: listings leave out every
/// file a listed compacted file covers. Everything else passes through.
#[derive(Debug)]
pub struct LakeView {
    inner: Arc<dyn ObjectStore>,
    cache: Arc<CoversCache>,
}

impl LakeView {
    pub fn new(inner: Arc<dyn ObjectStore>) -> LakeView {
        LakeView {
            inner,
            cache: Arc::default(),
        }
    }

    async fn visible(
        inner: Arc<dyn ObjectStore>,
        cache: Arc<CoversCache>,
        listing: Vec<ObjectMeta>,
    ) -> StoreResult<Vec<ObjectMeta>> {
        let views = split_listing(inner.as_ref(), &cache, listing)
            .await
            .map_err(|e| datafusion::object_store::Error::Generic {
                store: "lake",
                source: Box::new(e),
            })?;
        Ok(views.into_values().flat_map(|v| v.visible).collect())
    }
}

impl fmt::Display for LakeView {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LakeView({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for LakeView {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> StoreResult<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> StoreResult<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> StoreResult<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> StoreResult<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, StoreResult<Path>>,
    ) -> BoxStream<'static, StoreResult<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, StoreResult<ObjectMeta>> {
        let listing = self.inner.list(prefix);
        let (inner, cache) = (self.inner.clone(), self.cache.clone());
        // The whole listing is needed to know what its compacted files cover.
        futures::stream::once(async move {
            let listing: Vec<ObjectMeta> = listing.try_collect().await?;
            Self::visible(inner, cache, listing).await
        })
        .map_ok(|metas| futures::stream::iter(metas.into_iter().map(Ok)))
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> StoreResult<ListResult> {
        let listed = self.inner.list_with_delimiter(prefix).await?;
        Ok(ListResult {
            common_prefixes: listed.common_prefixes,
            objects: Self::visible(self.inner.clone(), self.cache.clone(), listed.objects).await?,
        })
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> StoreResult<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> StoreResult<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use datafusion::object_store::local::LocalFileSystem;

    use super::*;

    async fn put(store: &dyn ObjectStore, path: &str, body: &'static [u8]) {
        store
            .put(&Path::from(path), PutPayload::from_static(body))
            .await
            .unwrap();
    }

    async fn listed(view: &LakeView, prefix: &str) -> HashSet<String> {
        let metas: Vec<ObjectMeta> = view
            .list(Some(&Path::from(prefix)))
            .try_collect()
            .await
            .unwrap();
        names(&metas)
    }

    async fn compact(store: &dyn ObjectStore, folder: &str, name: &str, covers: &[&str]) {
        let record = Covers {
            files: covers.iter().map(|s| s.to_string()).collect(),
            rows: 0,
        };
        let path = Path::from(format!("{folder}/{name}"));
        store
            .put(&covers_path(&path), PutPayload::from(record.to_json()))
            .await
            .unwrap();
        store
            .put(&path, PutPayload::from_static(b"c"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn listings_hide_what_compacted_files_cover_transitively() {
        let dir = tempfile::tempdir().unwrap();
        let fs: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let view = LakeView::new(fs.clone());
        let hour = "t/date=2026-12-06/hour=10";
        for f in ["1.parquet", "2.parquet", "3.parquet"] {
            put(fs.as_ref(), &format!("{hour}/{f}"), b"r").await;
        }
        put(fs.as_ref(), "t/date=2026-12-06/hour=11/9.parquet", b"r").await;
        assert_eq!(listed(&view, "t").await.len(), 4);

        compact(
            fs.as_ref(),
            hour,
            "c-a.parquet",
            &["1.parquet", "2.parquet"],
        )
        .await;
        let seen = listed(&view, hour).await;
        assert!(seen.contains("c-a.parquet") && seen.contains("3.parquet"));
        assert!(!seen.contains("1.parquet") && !seen.contains("2.parquet"));
        assert_eq!(
            listed(&view, "t").await.len(),
            4,
            "the other hour is untouched"
        );

        // A second compaction covers the first and what it covered.
        compact(
            fs.as_ref(),
            hour,
            "c-b.parquet",
            &["c-a.parquet", "1.parquet", "2.parquet", "3.parquet"],
        )
        .await;
        let parquet = |s: &HashSet<String>| {
            let mut v: Vec<String> = s
                .iter()
                .filter(|n| n.ends_with(".parquet"))
                .cloned()
                .collect();
            v.sort();
            v
        };
        assert_eq!(parquet(&listed(&view, hour).await), ["c-b.parquet"]);
        // Deleting in any order changes nothing readers see, even the
        // record of a merged file that a later merge covers going first.
        fs.delete(&covers_path(&Path::from(format!("{hour}/c-a.parquet"))))
            .await
            .unwrap();
        let fresh_view = LakeView::new(fs.clone());
        assert_eq!(parquet(&listed(&fresh_view, hour).await), ["c-b.parquet"]);
        fs.delete(&Path::from(format!("{hour}/c-a.parquet")))
            .await
            .unwrap();
        assert_eq!(parquet(&listed(&view, hour).await), ["c-b.parquet"]);

        let listed_with_delimiter = view
            .list_with_delimiter(Some(&Path::from(hour)))
            .await
            .unwrap();
        assert_eq!(
            parquet(&names(&listed_with_delimiter.objects)),
            ["c-b.parquet"]
        );
    }

    #[tokio::test]
    async fn a_compacted_file_without_its_record_is_an_error_not_a_double_count() {
        let dir = tempfile::tempdir().unwrap();
        let fs: Arc<dyn ObjectStore> =
            Arc::new(LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        put(fs.as_ref(), "t/h/1.parquet", b"r").await;
        put(fs.as_ref(), "t/h/c-x.parquet", b"c").await;
        let view = LakeView::new(fs);
        let listing: StoreResult<Vec<ObjectMeta>> =
            view.list(Some(&Path::from("t"))).try_collect().await;
        let err = listing.unwrap_err().to_string();
        assert!(err.contains("c-x.parquet"), "{err}");
    }
}
