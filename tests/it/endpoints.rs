//! The remaining read and write endpoints on known data: reported usage
//! idempotent on its key, budgets set and read back, the KAMACHIQ summary
//! and the capsule leaderboard equal from the lake and ClickHouse and
//! equal to the test's own figures.

use chrono::Utc;
use serde_json::{Value, json};

use crate::support::{ApiWorker, cloud_event, post_ndjson_as, rows_as, token};

/// GET `path` from both stores with `token`; asserts they agree, returns one.
async fn both(base: &str, token: &str, path: &str) -> Value {
    let mut answers = Vec::new();
    for source in ["lake", "clickhouse"] {
        let sep = if path.contains('?') { '&' } else { '?' };
        let resp = reqwest::Client::new()
            .get(format!("{base}{path}{sep}source={source}"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        let mut body: Value = resp.json().await.unwrap();
        assert_eq!(status, 200, "{path}: {body}");
        body["source"] = Value::Null;
        answers.push(body);
    }
    assert_eq!(
        answers[0], answers[1],
        "{path}: the lake and ClickHouse agree"
    );
    answers.remove(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn billing_reports_budgets_workflows_and_capsules() {
    let api = ApiWorker::start().await;
    let base = api.url();
    let client = reqwest::Client::new();
    let writer = token(Some("acme"), &["events:write"]);

    // Reported usage: three reports, one sent twice; another tenant refused.
    let reports = json!([
        {"meter": "storage", "quantity": "1.5", "unit": "GB-h", "idempotency_key": "k1", "time": "2026-11-30T10:00:00Z"},
        {"meter": "storage", "quantity": "2.25", "unit": "GB-h", "idempotency_key": "k2", "time": "2026-11-30T10:00:00Z"},
        {"meter": "seats", "quantity": 3, "unit": "seat", "idempotency_key": "k3"},
    ]);
    let post = |body: Value, token: String| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let resp = client
                .post(format!("{base}/v1/billing/events"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, first) = post(reports.clone(), writer.clone()).await;
    assert_eq!(status, 202, "{first}");
    assert_eq!(first["accepted"], json!(3));
    let (status, again) = post(reports[0].clone(), writer.clone()).await;
    assert_eq!(status, 202);
    assert_eq!(
        again["event_ids"][0], first["event_ids"][0],
        "same key, same event"
    );
    let (status, body) = post(json!({"tenant": "globex", "meter": "m", "quantity": "1", "unit": "u", "idempotency_key": "x"}), writer.clone()).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = post(
        json!({"meter": "m", "quantity": "1", "unit": "u"}),
        writer.clone(),
    )
    .await;
    assert_eq!(status, 400, "a report needs its idempotency key: {body}");

    // Workflow steps: run r1 (two steps, one retried after a failure), r2 (a failed step).
    let now = Utc::now() - chrono::Duration::minutes(20);
    let step = |id: &str,
                run: &str,
                step: &str,
                status: &str,
                attempt: i64,
                ms: i64,
                q: Option<f64>| {
        let mut e: Value = serde_json::from_str(&cloud_event(id, "acme", "soma.workflow_step.v1", json!({
            "workflow_id": "wf", "run_id": run, "step_id": step, "step_type": "plan",
            "status": status, "agent_pool": "p", "attempt": attempt, "duration_ms": ms, "quality_score": q,
        }))).unwrap();
        e["time"] = json!(now.to_rfc3339());
        bytes::Bytes::from(e.to_string())
    };
    let mut events = vec![
        step("w1", "r1", "s1", "failed", 1, 100, None),
        step("w2", "r1", "s1", "succeeded", 2, 300, Some(0.9)),
        step("w3", "r1", "s2", "succeeded", 1, 200, Some(0.5)),
        step("w4", "r2", "s1", "failed", 1, 50, None),
    ];
    // Capsule runs and sales: cap-b has more runs, cap-a more revenue.
    for (i, capsule) in ["cap-a", "cap-b", "cap-b", "cap-b"].iter().enumerate() {
        let mut e: Value = serde_json::from_str(&cloud_event(&format!("k{i}"), "acme", "soma.capsule_run.v1", json!({
            "capsule_id": capsule, "capsule_version": "1", "run_id": format!("cr{i}"), "agent_id": "a",
            "status": "ok", "duration_ms": 5, "tokens": 1, "cost_usd": "0.01"}))).unwrap();
        e["time"] = json!(now.to_rfc3339());
        events.push(e.to_string().into());
    }
    for (i, (capsule, tx, cents)) in [
        ("cap-a", "purchase", 5000),
        ("cap-b", "purchase", 1000),
        ("cap-b", "refund", 1000),
    ]
    .iter()
    .enumerate()
    {
        let mut e: Value = serde_json::from_str(&cloud_event(&format!("t{i}"), "acme", "soma.marketplace_tx.v1", json!({
            "capsule_id": capsule, "author_id": "au", "tx_type": tx, "amount_cents": cents, "currency": "USD"}))).unwrap();
        e["time"] = json!(now.to_rfc3339());
        events.push(e.to_string().into());
    }
    let (status, body) = post_ndjson_as(&client, &base, &events, Some(&writer))
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");

    api.wait_for_rows(
        &[
            "billing_events",
            "workflow_executions",
            "capsule_executions",
            "marketplace_transactions",
        ],
        14,
    )
    .await;
    let admin = token(None, &["admin"]);
    let rows = rows_as(&base, &admin, "SELECT CAST(sum(quantity) AS VARCHAR), count(*) FROM billing_events WHERE meter = 'storage'").await;
    assert_eq!(
        rows[0],
        [json!("3.750000000"), json!(2)],
        "the repeated report counted once"
    );

    let reader = token(Some("acme"), &["usage:read"]);
    let range = format!(
        "from={}&to={}",
        (now - chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        (now + chrono::Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let s = both(
        &base,
        &reader,
        &format!("/v1/kamachiq/summary?tenant=acme&{range}"),
    )
    .await;
    assert_eq!(s["runs"], json!(2));
    assert_eq!(s["success_rate"], json!(0.5));
    assert_eq!(s["retries"], json!(1));
    assert_eq!(s["steps_per_run"], json!(1.5));
    assert_eq!(s["auto_approval_rate"], json!(0.5));
    assert_eq!(
        (s["duration_ms_p50"].clone(), s["duration_ms_p95"].clone()),
        (json!(50), json!(600))
    );

    let top = both(
        &base,
        &reader,
        &format!("/v1/tenants/acme/capsules/top?by=runs&{range}"),
    )
    .await;
    let order: Vec<&str> = top["capsules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["capsule_id"].as_str().unwrap())
        .collect();
    assert_eq!(order, ["cap-b", "cap-a"]);
    assert_eq!(top["capsules"][0]["runs"], json!(3));
    assert_eq!(top["capsules"][0]["cost_usd"], json!("0.030000000"));
    let top = both(
        &base,
        &reader,
        &format!("/v1/tenants/acme/capsules/top?by=revenue&{range}"),
    )
    .await;
    assert_eq!(
        top["capsules"][0],
        json!({"capsule_id": "cap-a", "runs": 1, "cost_usd": "0.010000000", "revenue_usd": "50.000000000"})
    );
    assert_eq!(
        top["capsules"][1]["revenue_usd"],
        json!("0.000000000"),
        "purchase minus refund"
    );
    let resp = client
        .get(format!("{base}/v1/tenants/*/capsules/top"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403, "overall needs admin");

    // Budgets: billing:admin sets, billing:read reads, others are refused.
    let put = |token: String, body: Value| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let resp = client
                .put(format!("{base}/v1/budgets/acme"))
                .bearer_auth(token)
                .json(&body)
                .send()
                .await
                .unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
        }
    };
    let (status, _) = put(
        token(Some("acme"), &["billing:read"]),
        json!({"monthly_budget_usd": "100"}),
    )
    .await;
    assert_eq!(status, 403);
    let (status, body) = put(
        token(Some("acme"), &["billing:admin"]),
        json!({"monthly_budget_usd": "-5"}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = put(
        token(Some("acme"), &["billing:admin"]),
        json!({"monthly_budget_usd": "100.50"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["budget_usd"], json!("100.500000000"));
    let resp = client
        .get(format!("{base}/v1/budgets/acme"))
        .bearer_auth(token(Some("acme"), &["billing:read"]))
        .send()
        .await
        .unwrap();
    let read: Value = resp.json().await.unwrap();
    assert_eq!(read["budget_usd"], json!("100.500000000"));
    let stored: Option<String> = redis::cmd("HGET")
        .arg("tenant:acme")
        .arg("monthly_budget_usd")
        .query(&mut api.redis.connection())
        .unwrap();
    assert_eq!(
        stored.as_deref(),
        Some("100.5"),
        "the tenant metadata enrich reads"
    );
}
