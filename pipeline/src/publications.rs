//! The lake's publication records: one small file per lake writer saying,
//! per table and UTC day, which of its publications last added files there,
//! and which days a publication is adding files to right now.
//!
//! Readers that keep answers (the API) need to know when the files under an
//! answer change. Listing a table's files tells them, but costs a walk of
//! every file (thousands a month); reading these records costs one small
//! read per writer, and says *which days* changed, so an answer over last
//! month survives today's commits. A writer marks the days as in progress
//! before its first rename and records the publication after its last, so
//! a reader never keeps an answer computed while files were appearing.

use std::collections::{BTreeMap, BTreeSet};

use datafusion::object_store::path::Path;
use datafusion::object_store::{ObjectStoreExt, PutPayload};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use crate::storage::{StorageError, StorageLocation};

/// The lake folder the records live in, beside the table folders.
pub const PUBLICATIONS_FOLDER: &str = "_published";

/// Days (`YYYY-MM-DD`) per table folder.
pub type DaysByTable = BTreeMap<String, BTreeSet<String>>;

/// One writer's publications.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PublicationRecord {
    /// Publications this writer has recorded.
    pub seq: u64,
    /// Per table folder, per UTC day of the table's time column: the
    /// publication that last added files to it, as `<run>:<seq>` (unique
    /// across restarts, so a day's entry never comes back to an old value).
    pub days: BTreeMap<String, BTreeMap<String, String>>,
    /// Days a publication is adding files to now; empty between publications.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub in_progress: DaysByTable,
}

impl PublicationRecord {
    /// Marks `days` as being published (added to any left by a publication
    /// that failed part-way: those stay in progress until one completes).
    pub fn begin(&mut self, days: &DaysByTable) {
        for (table, table_days) in days {
            self.in_progress
                .entry(table.clone())
                .or_default()
                .extend(table_days.iter().cloned());
        }
    }

    /// Records the days in progress as changed by a new publication of `run`.
    pub fn finish(&mut self, run: &str) {
        self.seq += 1;
        let id = format!("{run}:{}", self.seq);
        for (table, table_days) in std::mem::take(&mut self.in_progress) {
            let entries = self.days.entry(table).or_default();
            for day in table_days {
                entries.insert(day, id.clone());
            }
        }
    }
}

fn record_path(location: &StorageLocation, writer: &str) -> Path {
    location.path(&format!("{PUBLICATIONS_FOLDER}/{writer}.json"))
}

fn bad_record(path: &Path, e: impl std::fmt::Display) -> StorageError {
    StorageError::Location {
        location: path.to_string(),
        reason: format!("not a publication record: {e}"),
    }
}

/// `writer`'s record, `None` if it has never written one.
pub async fn read_record(
    location: &StorageLocation,
    writer: &str,
) -> Result<Option<PublicationRecord>, StorageError> {
    let path = record_path(location, writer);
    match location.store.get(&path).await {
        Ok(got) => {
            let bytes = got.bytes().await?;
            serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| bad_record(&path, e))
        }
        Err(datafusion::object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Replaces `writer`'s record (a whole-object put: readers see the old one
/// or the new one).
pub async fn write_record(
    location: &StorageLocation,
    writer: &str,
    record: &PublicationRecord,
) -> Result<(), StorageError> {
    let path = record_path(location, writer);
    let json = serde_json::to_vec(record).map_err(|e| bad_record(&path, e))?;
    location.store.put(&path, PutPayload::from(json)).await?;
    Ok(())
}

/// Every writer's record, ordered by writer.
pub async fn read_all(
    location: &StorageLocation,
) -> Result<Vec<(String, PublicationRecord)>, StorageError> {
    let folder = location.path(PUBLICATIONS_FOLDER);
    let mut paths: Vec<Path> = location
        .store
        .list(Some(&folder))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await?;
    paths.sort();
    let mut records = Vec::with_capacity(paths.len());
    for path in paths {
        let Some(writer) = path
            .prefix_match(&folder)
            .map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>())
            .map(|parts| parts.join("/"))
            .and_then(|name| name.strip_suffix(".json").map(str::to_string))
        else {
            continue;
        };
        // A record removed between the listing and the read has no
        // publications left to report.
        match location.store.get(&path).await {
            Ok(got) => {
                let bytes = got.bytes().await?;
                let record = serde_json::from_slice(&bytes).map_err(|e| bad_record(&path, e))?;
                records.push((writer, record));
            }
            Err(datafusion::object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(table: &str, list: &[&str]) -> DaysByTable {
        BTreeMap::from([(
            table.to_string(),
            list.iter().map(|d| d.to_string()).collect(),
        )])
    }

    #[test]
    fn a_publication_moves_its_days_from_in_progress_to_a_new_id() {
        let mut record = PublicationRecord::default();
        record.begin(&days("conversations", &["2026-11-03"]));
        assert_eq!(record.in_progress, days("conversations", &["2026-11-03"]));
        record.finish("r1");
        assert!(record.in_progress.is_empty());
        assert_eq!(record.days["conversations"]["2026-11-03"], "r1:1");

        // A publication that failed part-way leaves its days in progress
        // until the next one completes.
        record.begin(&days("conversations", &["2026-11-04"]));
        record.begin(&days("conversations", &["2026-11-03"]));
        assert_eq!(record.in_progress["conversations"].len(), 2);
        record.finish("r2");
        assert_eq!(record.days["conversations"]["2026-11-03"], "r2:2");
        assert_eq!(record.days["conversations"]["2026-11-04"], "r2:2");
    }

    #[tokio::test]
    async fn records_round_trip_and_list_by_writer() {
        let dir = tempfile::tempdir().unwrap();
        let location = StorageLocation::parse(dir.path().to_str().unwrap()).unwrap();
        assert_eq!(read_record(&location, "w1/lake").await.unwrap(), None);
        assert!(read_all(&location).await.unwrap().is_empty());

        let mut record = PublicationRecord::default();
        record.begin(&days("usage_1m", &["2026-12-01"]));
        record.finish("run");
        write_record(&location, "w1/lake", &record).await.unwrap();
        write_record(&location, "lake", &PublicationRecord::default())
            .await
            .unwrap();
        assert_eq!(
            read_record(&location, "w1/lake").await.unwrap().as_ref(),
            Some(&record)
        );
        let all = read_all(&location).await.unwrap();
        let writers: Vec<&str> = all.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(writers, ["lake", "w1/lake"]);
        assert_eq!(all[1].1, record);
    }
}
