//! The OpenAPI contract, checked from outside: schemathesis (from PyPI)
//! generates requests from `/openapi.json` — valid ones, invalid ones, and
//! ones without a token — against an embedded node running the shipped
//! default (`config/local.toml`, auth on), and runs every check it has:
//! no server error, only documented statuses and content types, answers
//! that match their schemas, every schema-valid request accepted and every
//! schema-violating one refused. Configuration: tests/contract/schemathesis.toml.

use std::process::Command;

use crate::support::{AUTH_ON, platform_files, repo, start_platform, token, tool_path};

/// Examples per operation in the fuzzing phase (the coverage phase adds
/// its own, from the schema's boundaries).
const EXAMPLES: &str = "30";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_nothing_against_the_embedded_node() {
    let dir = tempfile::tempdir().unwrap();
    let files = platform_files(dir.path());
    let node = start_platform(dir.path(), &files, &AUTH_ON);
    node.wait_ready().await;
    let python = tool_path("python-tools.sh", "schemathesis from PyPI");
    let schemathesis = std::path::Path::new(&python).with_file_name("schemathesis");
    let admin = token(None, &["admin"]);
    let out = Command::new(schemathesis)
        .current_dir(dir.path())
        .arg("--no-color")
        .arg("--config-file")
        .arg(repo().join("tests/contract/schemathesis.toml"))
        .args(["run", &format!("{}/openapi.json", node.url())])
        .args(["--header", &format!("Authorization: Bearer {admin}")])
        .args(["--checks", "all", "--max-examples", EXAMPLES])
        .args(["--seed", "42", "--generation-database", "none"])
        .output()
        .expect("schemathesis");
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis found contract failures:\n{report}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // "3915 generated, 3915 passed, 28 skipped": every case passed, and
    // there were many (a run that reached nothing would pass too).
    let counts = report
        .lines()
        .find(|l| l.contains(" generated, "))
        .unwrap_or_else(|| panic!("no case counts in:\n{report}"));
    let numbers: Vec<u64> = counts
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    assert!(
        numbers.len() >= 2 && numbers[0] == numbers[1] && numbers[0] >= 1_000,
        "{counts}"
    );
}
