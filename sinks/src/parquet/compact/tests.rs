//! The compactor on a real lake folder: a settled folder becomes one
//! sorted file read once through the view, old files go after the grace,
//! a folder being written merges by size class.

use std::time::Duration;

use datafusion::arrow::array::{Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
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
