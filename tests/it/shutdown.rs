//! Clean shutdown: SIGTERM while the pipeline is behind still puts every
//! accepted event in the lake before the process exits 0.

use std::process::Command;

use bytes::Bytes;

use crate::support::{BIN, Somaflow, conversation, post_ndjson};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_the_backlog_into_the_lake() {
    let dir = tempfile::tempdir().unwrap();
    // A throttled sink and a long checkpoint interval: at SIGTERM most of
    // what was accepted has not been read, let alone committed.
    let mut node = Somaflow::start(
        dir.path(),
        &[
            ("SOMAFLOW_LAKE__MAX_ROWS_PER_SEC", "3000"),
            ("SOMAFLOW_CHECKPOINT__INTERVAL_MS", "60000"),
        ],
    );
    node.wait_ready().await;
    let client = reqwest::Client::new();
    let mut accepted = 0u64;
    for chunk in 0..24 {
        let records: Vec<Bytes> = (0..500)
            .map(|i| Bytes::from(conversation(&format!("sd-{chunk}-{i}"), "tenant-stop", 1)))
            .collect();
        let (status, answer) = post_ndjson(&client, &node.url(), &records).await.unwrap();
        assert_eq!(status, 202, "{answer}");
        accepted += answer["accepted"].as_u64().unwrap();
    }
    let status = node.terminate();
    assert!(status.success(), "clean exit: {status:?}\n{}", node.logs());

    // Read the lake with the CLI: no server runs any more.
    let out = Command::new(BIN)
        .args([
            "sql",
            "--format",
            "csv",
            "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM conversations",
        ])
        .env("SOMAFLOW_DATA_DIR", dir.path())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert_eq!(csv, format!("n,d\n{accepted},{accepted}\n"));
}
