//! The dashboards and alert rules, checked by the real tools against real
//! somaflow processes: a Prometheus 2.42 scrapes an embedded node and a
//! platform cluster worker (tansu, ClickHouse, Redis); every PromQL
//! expression of `infra/grafana/*.json` must parse and return series, every
//! alert rule must parse, evaluate healthily and have series behind its
//! threshold; `promtool check rules`, `promtool test rules` and `promtool
//! check metrics` pass; and every ClickHouse query of the dashboards runs on
//! the worker's ClickHouse tables.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    ClusterScenario, FAST_CHECKPOINTS, PrivatePrometheus, PrivateRedis, Somaflow, conversation,
    kafka_broker, kafka_serial, metric_sum, post_ndjson, producer_report, promtool, repo,
    sql_number,
};

/// `(file, panel title, query)` of every dashboard target of `kind`
/// (`expr` for Prometheus, `rawSql` for ClickHouse), plus the dashboards'
/// variable queries for ClickHouse.
fn dashboard_queries(key: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo().join("infra/grafana")).expect("infra/grafana") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let dashboard: Value = serde_json::from_slice(&std::fs::read(&path).unwrap())
            .unwrap_or_else(|e| panic!("{file} is not JSON: {e}"));
        let mut panels: Vec<&Value> = Vec::new();
        for panel in dashboard["panels"].as_array().into_iter().flatten() {
            panels.push(panel);
            panels.extend(panel["panels"].as_array().into_iter().flatten());
        }
        for panel in panels {
            for target in panel["targets"].as_array().into_iter().flatten() {
                if let Some(q) = target[key].as_str() {
                    let title = panel["title"].as_str().unwrap_or("?").to_string();
                    out.push((file.clone(), title, q.to_string()));
                }
            }
        }
        if key == "rawSql" {
            for var in dashboard["templating"]["list"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(q) = var["query"].as_str() {
                    out.push((
                        file.clone(),
                        format!("variable {}", var["name"]),
                        q.to_string(),
                    ));
                }
            }
        }
    }
    out
}

/// `(alert name, expression, health, last error)` of every rule Prometheus loaded.
async fn loaded_rules(prometheus: &PrivatePrometheus) -> Vec<(String, String, String, String)> {
    let data = prometheus.api("rules").await;
    let mut out = Vec::new();
    for group in data["groups"].as_array().into_iter().flatten() {
        for rule in group["rules"].as_array().into_iter().flatten() {
            out.push((
                rule["name"].as_str().unwrap_or("?").to_string(),
                rule["query"].as_str().unwrap_or("").to_string(),
                rule["health"].as_str().unwrap_or("").to_string(),
                rule["lastError"].as_str().unwrap_or("").to_string(),
            ));
        }
    }
    out
}

/// The expression left of an alert's top-level comparison (`x > 0` → `x`),
/// or the whole expression when it has none.
fn metric_part(expr: &str) -> &str {
    let bytes = expr.as_bytes();
    let (mut depth, mut quoted) = (0i32, false);
    let mut cut = None;
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        match c {
            b'"' => quoted = !quoted,
            _ if quoted => {}
            b'(' | b'{' | b'[' => depth += 1,
            b')' | b'}' | b']' => depth -= 1,
            b'>' | b'<' if depth == 0 => cut = Some(i),
            b'=' | b'!' if depth == 0 && bytes.get(i + 1) == Some(&b'=') => {
                cut = Some(i);
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    match cut {
        Some(i) => expr[..i].trim(),
        None => expr.trim(),
    }
}

/// Metric names (`somaflow_…`, without `_bucket`/`_sum`/`_count`) an
/// expression reads.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, _) in expr.match_indices("somaflow_") {
        let name: String = expr[i..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s))
            .unwrap_or(&name)
            .to_string();
        names.insert(base);
    }
    names
}

/// Grafana's macros and variables as the ClickHouse data source expands
/// them, for the last day and one tenant.
fn expand_grafana_sql(sql: &str) -> String {
    let now = chrono::Utc::now().timestamp();
    let mut out = sql
        .replace("${tenant:singlequote}", "'tenant-0000'")
        .replace("${pool:singlequote}", "'general'")
        .replace("${currency}", "USD")
        .replace("$__interval_s", "60");
    while let Some(start) = out.find("$__timeFilter(") {
        let open = start + "$__timeFilter(".len();
        let close = open + out[open..].find(')').expect("closing parenthesis");
        let column = out[open..close].to_string();
        out.replace_range(
            start..=close,
            &format!(
                "{column} >= toDateTime({}) AND {column} <= toDateTime({now})",
                now - 86_400
            ),
        );
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_run_against_a_real_prometheus_and_clickhouse() {
    // The rule files first: promtool's own checks and unit tests.
    let alerts = repo().join("infra/prometheus/alerts.yml");
    promtool(&["check", "rules", &alerts.display().to_string()], None)
        .unwrap_or_else(|e| panic!("promtool check rules: {e}"));
    promtool(
        &[
            "test",
            "rules",
            &repo()
                .join("infra/prometheus/alerts.test.yml")
                .display()
                .to_string(),
        ],
        None,
    )
    .unwrap_or_else(|e| panic!("promtool test rules: {e}"));

    // A platform worker: every operator, Kafka, ClickHouse and Redis.
    let _serial = kafka_serial().await;
    let brokers = kafka_broker();
    let redis = PrivateRedis::start().await;
    let scenario = ClusterScenario::platform(&brokers, 2, &redis.url());
    scenario.import_tenants();
    let producer = scenario.produce(&["--rate", "400", "--duration", "15s", "--seed", "8"]);
    let worker = scenario.worker("w1", &[FAST_CHECKPOINTS]);
    worker.wait_ready().await;
    // An embedded node: the durable log, HTTP ingest with a refused event.
    let dir = tempfile::tempdir().unwrap();
    let embedded = Somaflow::start(dir.path(), &[FAST_CHECKPOINTS]);
    embedded.wait_ready().await;
    let (status, _) = post_ndjson(
        &reqwest::Client::new(),
        &embedded.url(),
        &[conversation("obs-1", "t1", 10).into(), "{not json".into()],
    )
    .await
    .unwrap();
    assert_eq!(status, 202);

    let prometheus = PrivatePrometheus::start(
        &[
            format!("127.0.0.1:{}", worker.port),
            format!("127.0.0.1:{}", embedded.port),
        ],
        &[alerts],
    )
    .await;
    let report = producer_report(producer);
    let base = worker.url();
    let conversations = report.stats.kinds["conversations"].count as i128;
    worker
        .wait_until("the stream in the lake", Duration::from_secs(120), || {
            let base = base.clone();
            async move {
                sql_number(&base, "SELECT count(*) FROM conversations").await == conversations
            }
        })
        .await;
    // rate() needs two samples in its window; give it a few more.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let up = prometheus.query("sum(up)").await.unwrap();
    assert_eq!(up[0]["value"][1], "2", "both nodes scraped: {up:?}");

    // What the nodes export, for the name checks.
    let mut exported = String::new();
    for node in [&worker, &embedded] {
        let text = reqwest::get(format!("{}/metrics", node.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        promtool(&["check", "metrics"], Some(text.as_bytes()))
            .unwrap_or_else(|e| panic!("promtool check metrics on {}: {e}", node.url()));
        exported.push_str(&text);
    }
    // End-to-end latency of the embedded node's live event: recorded at its
    // commit, and plausible (the node checkpoints every second).
    let latency = |suffix: &'static str| {
        let embedded = &embedded;
        async move {
            metric_sum(
                embedded,
                &format!("somaflow_event_latency_seconds_{suffix}"),
                "table=\"conversations\"",
            )
            .await
        }
    };
    let (count, sum) = (latency("count").await, latency("sum").await);
    assert_eq!(count, 1.0, "one conversation committed to the lake");
    assert!(sum > 0.0 && sum < 30.0, "its latency {sum} s");
    let mut failures = Vec::new();
    let check_names = |place: &str, expr: &str, failures: &mut Vec<String>| {
        for name in metric_names(expr) {
            if !exported.contains(&format!("# TYPE {name} ")) {
                failures.push(format!(
                    "{place}: `{name}` is not a metric somaflow exports"
                ));
            }
        }
    };

    let panels = dashboard_queries("expr");
    assert!(panels.len() > 30, "the dashboards have PromQL panels");
    for (file, title, expr) in &panels {
        let place = format!("{file} / {title}");
        check_names(&place, expr, &mut failures);
        match prometheus.query(expr).await {
            Ok(series) if series.is_empty() => {
                failures.push(format!("{place}: `{expr}` returned no series"))
            }
            Ok(_) => {}
            Err(e) => failures.push(format!("{place}: `{expr}` failed: {e}")),
        }
    }

    let rules = loaded_rules(&prometheus).await;
    let names: BTreeSet<&str> = rules.iter().map(|r| r.0.as_str()).collect();
    for required in [
        "SomaflowKafkaConsumerLagGrowing",
        "SomaflowDeadLettersRising",
        "SomaflowCheckpointFailing",
        "SomaflowClickHouseInsertRetries",
        "SomaflowBudgetHardCrossed",
    ] {
        assert!(
            names.contains(required),
            "alert {required} is defined: {names:?}"
        );
    }
    for (name, expr, health, error) in &rules {
        let place = format!("alert {name}");
        check_names(&place, expr, &mut failures);
        if health != "ok" {
            failures.push(format!("{place}: health {health:?} {error}"));
        }
        let measured = metric_part(expr);
        match prometheus.query(measured).await {
            Ok(series) if series.is_empty() => {
                failures.push(format!("{place}: `{measured}` returned no series"))
            }
            Ok(_) => {}
            Err(e) => failures.push(format!("{place}: `{measured}` failed: {e}")),
        }
    }

    // The ClickHouse panels, on the worker's own tables.
    let sql_panels = dashboard_queries("rawSql");
    assert!(!sql_panels.is_empty(), "the dashboards read ClickHouse");
    for (file, title, sql) in &sql_panels {
        let expanded = expand_grafana_sql(sql);
        if let Err(e) = scenario.clickhouse.try_query(&expanded).await {
            failures.push(format!("{file} / {title}: {e}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn an_alerts_measured_part_is_left_of_its_top_level_comparison() {
    assert_eq!(metric_part("sum(rate(x[5m])) > 0"), "sum(rate(x[5m]))");
    assert_eq!(
        metric_part(
            r#"(sum(rate(h{status=~"5..",route!="/ready"}[5m])) or vector(0)) / sum(rate(h[5m])) > 0.05"#
        ),
        r#"(sum(rate(h{status=~"5..",route!="/ready"}[5m])) or vector(0)) / sum(rate(h[5m]))"#
    );
    assert_eq!(metric_part("max(up) == 0"), "max(up)");
    assert_eq!(metric_part("a + on (i) b < 1"), "a + on (i) b");
    assert_eq!(metric_part("sum(a)"), "sum(a)");
    assert_eq!(
        metric_names("rate(somaflow_x_bucket[5m]) / somaflow_y_total"),
        BTreeSet::from(["somaflow_x".to_string(), "somaflow_y_total".to_string()])
    );
}

/// The compose file, the Kubernetes manifests, the dashboards and the
/// Prometheus files against their schemas and each other
/// (`scripts/validate-infra.sh`: check-jsonschema's Compose specification,
/// kubernetes-validate's Kubernetes schemas, promtool). No Docker engine
/// runs here, so this is how the deployable parts are checked.
#[test]
fn infra_files_pass_their_schemas_and_tools() {
    let out = std::process::Command::new("bash")
        .arg(repo().join("scripts/validate-infra.sh"))
        .output()
        .expect("run scripts/validate-infra.sh");
    assert!(
        out.status.success(),
        "scripts/validate-infra.sh failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
