//! The console in a real browser: an embedded node running the shipped
//! default with auth on, seeded with three days of generated traffic, then
//! `console/tests/console.test.mjs` drives Debian's Chromium through every
//! page with an admin token and a tenant's token (playwright-core from npm,
//! installed by `scripts/console-tools.sh`). Screenshots land in
//! `target/console-screenshots`.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    AUTH_ON, BIN, platform_files, repo, rows_as, start_platform, token, tool_path, wait_caught_up,
};

/// The tenant whose token must see only itself.
const TENANT: &str = "tenant-0003";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_console_page_shows_the_apis_answers_only_to_whom_may_see_them_and_live_within_10_s()
{
    let chromium = tool_path("console-tools.sh", "Chromium and playwright-core (npm)");

    let dir = tempfile::tempdir().unwrap();
    let files = platform_files(dir.path());
    let node = start_platform(dir.path(), &files, &AUTH_ON);
    node.wait_ready().await;
    let base = node.url();
    let admin = token(None, &["admin"]);

    // Three days of history for 20 tenants, malformed records included.
    let seeded = Command::new(BIN)
        .args([
            "produce",
            "--to",
            &base,
            "--count",
            "20000",
            "--history-days",
            "3",
            "--tenants",
            "20",
            "--seed",
            "7",
            "--json",
        ])
        .env("SOMAFLOW_TOKEN", &admin)
        .output()
        .expect("somaflow produce");
    assert!(
        seeded.status.success(),
        "seeding failed: {}",
        String::from_utf8_lossy(&seeded.stderr)
    );
    let report: Value = serde_json::from_slice(&seeded.stdout).expect("produce --json report");
    let accepted = report["accepted"].as_u64().expect("accepted");
    assert!(accepted > 15_000, "{report}");

    // Settled: every accepted event is committed, and every conversation
    // is counted in usage.
    wait_caught_up(&node, Duration::from_secs(180)).await;
    node.wait_until(
        "the lake and usage_1m to settle",
        Duration::from_secs(180),
        || {
            let (base, admin) = (base.clone(), admin.clone());
            async move {
                let rows = rows_as(
                &base,
                &admin,
                "SELECT (SELECT count(*) FROM conversations), (SELECT sum(requests) FROM usage_1m)",
            )
            .await;
                let n = |v: &Value| v.as_i64().unwrap_or(-1);
                n(&rows[0][0]) > 0 && n(&rows[0][0]) == n(&rows[0][1])
            }
        },
    )
    .await;

    let tenant_token = token(
        Some(TENANT),
        &["usage:read", "billing:read", "sql:read", "events:write"],
    );
    let shots = repo().join("target/console-screenshots");
    let out = Command::new("node")
        .arg(repo().join("console/tests/console.test.mjs"))
        .current_dir(repo().join("console"))
        .env("BASE", &base)
        .env("ADMIN_TOKEN", &admin)
        .env("TENANT_TOKEN", &tenant_token)
        .env("TENANT", TENANT)
        .env("ACCEPTED", accepted.to_string())
        .env("CHROMIUM", &chromium)
        .env("SHOTS", &shots)
        .output()
        .expect("node console/tests/console.test.mjs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "the console failed in the browser:\n{stdout}\n{}\nscreenshots: {}",
        String::from_utf8_lossy(&out.stderr),
        shots.display()
    );
    assert!(stdout.contains("all checks passed"), "{stdout}");
}
