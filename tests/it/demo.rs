//! `somaflow demo`, the README's first command, run as a newcomer runs it
//! (from the repository, `config/local.toml`, no servers): it must show the
//! whole chain working — spend, budgets, policy, dispatch, the API's
//! answers and example SQL with cost and `usage_1m` — and exit cleanly.

use std::process::Stdio;
use std::time::Duration;

use crate::support::{BIN, free_port, repo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_shows_spend_budgets_policy_dispatch_and_answers() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let listen = format!("127.0.0.1:{}", free_port());
    let child = tokio::process::Command::new(BIN)
        .args([
            "demo",
            "--duration",
            "8s",
            "--rate",
            "500",
            "--history-events",
            "20000",
        ])
        .current_dir(repo())
        .env("SOMAFLOW_DATA_DIR", &data_dir)
        .env("SOMAFLOW_SERVER__LISTEN", &listen)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Closing waits for the newest minute to close: up to a minute plus
    // the out-of-orderness, the idle timeout and two checkpoints.
    let output = tokio::time::timeout(Duration::from_secs(240), child.wait_with_output())
        .await
        .expect("the demo ends on its own after --duration")
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "demo failed:\n{out}\n{err}");

    let has = |text: &str| out.contains(text);
    assert!(
        has(
            "graph: log → decode → dedup → enrich → policy → accounting → window → budget → dispatch → lake"
        ),
        "the demo runs the whole chain of config/local.toml:\n{out}"
    );
    for shown in [
        "spend $",
        "budget crossings:",
        "policy: ",
        "dispatched, ",
        "Month-to-date spend, top tenants",
        "Ledger of tenant-",
        "total owed $",
        "Budget of tenant-0001:",
        "'s spend, next 24 hours:",
        "backtest error (MAPE)",
    ] {
        assert!(has(shown), "the demo shows {shown:?}:\n{out}");
    }
    assert!(
        !has("could not be read") && !has("(query failed"),
        "every API answer and example query worked:\n{out}"
    );

    // Rows it says it committed, per table: priced conversations, closed
    // usage minutes and policy verdicts are all there.
    let rows = |table: &str| -> u64 {
        out.lines()
            .find_map(|l| {
                let mut words = l.split_whitespace();
                (words.next() == Some(table))
                    .then(|| words.next())
                    .flatten()
                    .map(|n| n.replace(',', "").parse::<u64>().unwrap())
            })
            .unwrap_or_else(|| panic!("no row count for {table}:\n{out}"))
    };
    for table in ["conversations", "usage_1m", "policy_decisions"] {
        assert!(rows(table) > 0, "{table} has rows:\n{out}");
    }
    // The cost query prints a priced row per model, rated by somaflow.
    let cost_rows = out
        .lines()
        .skip_while(|l| !l.contains("sum(rated_cost_usd) AS cost_usd"))
        .take_while(|l| !l.starts_with("-- "))
        .filter(|l| l.starts_with("| ") && !l.contains("cost_usd"))
        .count();
    assert!(cost_rows >= 2, "cost per model has rows:\n{out}");
}
