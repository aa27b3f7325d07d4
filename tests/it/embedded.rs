//! The whole platform on the embedded default, `config/local.toml`, with no
//! server: generated traffic through every operator, priced to the cent
//! against the test's own computation from `config/prices.toml`, windows
//! closed by idle ticks, budgets from the ledger in process, and metadata
//! changed through the API. The agent pools' queues: `dispatch.rs`.

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};
use somaflow::generator::{Generated, Generator, GeneratorConfig};

use crate::support::{
    Somaflow, Tenant, cloud_event, divide_half_even, expected, list_prices, nanos, platform_files,
    post_ndjson, sql, start_platform, value_nanos,
};

/// Posts every record as NDJSON, 500 a request.
async fn post_all(base: &str, records: &[Generated]) {
    let client = reqwest::Client::new();
    for chunk in records.chunks(500) {
        let lines: Vec<Bytes> = chunk.iter().map(|g| g.bytes.clone()).collect();
        let (status, body) = post_ndjson(&client, base, &lines).await.expect("POST");
        assert_eq!(status, 202, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_default_runs_every_operator_and_prices_every_token_to_the_cent() {
    let dir = tempfile::tempdir().unwrap();
    let files = platform_files(dir.path());
    let node = start_platform(dir.path(), &files, &[]);
    node.wait_ready().await;
    let base = node.url();

    // Generated traffic over the last three minutes, none after: the last
    // window closes only because the stream goes quiet.
    let mut generator = Generator::new(GeneratorConfig {
        seed: 19,
        ..GeneratorConfig::default()
    });
    let end = chrono::Utc::now() - chrono::Duration::seconds(70);
    let records: Vec<Generated> = (0..4_000)
        .map(|i| generator.next_at(end - chrono::Duration::milliseconds(30 * (4_000 - i))))
        .collect();
    let want = expected(&records);
    post_all(&base, &records).await;

    node.wait_until(
        "every conversation in the lake",
        Duration::from_secs(60),
        || {
            let base = base.clone();
            async move {
                let rows = sql(&base, "SELECT count(*) FROM conversations").await;
                rows[0][0] == json!(want.conversations)
            }
        },
    )
    .await;
    // usage_1m holds every token once the idle ticks closed the last window.
    node.wait_until(
        "usage_1m to hold every token",
        Duration::from_secs(60),
        || {
            let base = base.clone();
            async move {
                let rows = sql(
                    &base,
                    "SELECT CAST(sum(input_tokens) AS BIGINT), CAST(sum(output_tokens) AS BIGINT), \
                 CAST(sum(requests) AS BIGINT) FROM usage_1m",
                )
                .await;
                rows[0]
                    == [
                        json!(want.input),
                        json!(want.output),
                        json!(want.conversations),
                    ]
            }
        },
    )
    .await;

    // Every conversation rated, per tenant exactly as the test prices it.
    let rated = sql(
        &base,
        "SELECT tenant_id, CAST(sum(rated_cost_usd) AS VARCHAR), count(tenant_plan), count(*) \
         FROM conversations GROUP BY tenant_id",
    )
    .await;
    assert_eq!(rated.len(), want.tenants.len());
    for row in &rated {
        let tenant = row[0].as_str().unwrap();
        assert_eq!(
            nanos(row[1].as_str().unwrap()),
            want.tenants[tenant].rated,
            "{tenant}: rated cost"
        );
        assert_eq!(
            row[2], row[3],
            "{tenant}: every row enriched from the files"
        );
    }
    let usage_cost = sql(&base, "SELECT CAST(sum(cost_usd) AS VARCHAR) FROM usage_1m").await;
    let total: i128 = want.tenants.values().map(|t| t.rated).sum();
    assert_eq!(value_nanos(&usage_cost[0][0]), total, "usage_1m cost");
    // The hourly and daily rollups hold the same, split by price.
    for rollup in ["rollup_1h", "rollup_1d"] {
        let sums = sql(
            &base,
            &format!(
                "SELECT CAST(sum(cost_usd) AS VARCHAR), CAST(sum(requests) AS BIGINT), \
                 CAST(sum(input_tokens) AS BIGINT), \
                 CAST(sum(CASE WHEN cost_from = 'rated' THEN requests ELSE 0 END) AS BIGINT) \
                 FROM {rollup}"
            ),
        )
        .await;
        assert_eq!(value_nanos(&sums[0][0]), total, "{rollup} cost");
        assert_eq!(
            sums[0][1..],
            [
                json!(want.conversations),
                json!(want.input),
                json!(want.conversations)
            ],
            "{rollup}: requests, input tokens, all rated by somaflow"
        );
    }

    // The ledger and the budget of the busiest tenants agree with the test.
    let prices = list_prices();
    let period = end.format("%Y-%m").to_string();
    let mut busiest: Vec<(&String, &Tenant)> = want.tenants.iter().collect();
    busiest.sort_by_key(|(_, t)| -t.rated);
    for (tenant, t) in busiest.into_iter().take(3) {
        let ledger: Value = reqwest::get(format!(
            "{base}/v1/billing/ledgers?tenant={tenant}&period={period}"
        ))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
        let lines: i128 = t
            .lines
            .iter()
            .flat_map(|(model, q)| q.iter().zip(prices[model.as_str()]))
            .map(|(q, p)| divide_half_even(q * p, 1_000_000))
            .sum();
        assert_eq!(
            nanos(ledger["totals"]["llm_usd"].as_str().unwrap()),
            lines,
            "{tenant}: the ledger prices every line: {ledger}"
        );
        let budget: Value = reqwest::get(format!("{base}/v1/budgets/{tenant}?month={period}"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            nanos(budget["spend_usd"].as_str().unwrap()),
            t.rated,
            "{tenant}: month-to-date spend from the ledger in process: {budget}"
        );
    }

    // Policy verdicts and dispatched steps were produced too.
    let decisions = sql(&base, "SELECT count(*) FROM policy_decisions").await;
    assert!(decisions[0][0].as_i64().unwrap() > 0, "policy verdicts");
    let steps: Value = reqwest::get(format!("{base}/v1/dispatch/general?group=check&max=10000"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let steps = steps["steps"].as_array().expect("steps");
    assert!(!steps.is_empty(), "queued steps reach the general pool");
    assert!(steps.iter().all(|s| s["step"]["event_id"].is_string()));
}

/// A tenant's metadata as enrich wrote it on the rows of conversation `id`.
async fn plan_of(base: &str, id: &str) -> Value {
    let rows = sql(
        base,
        &format!("SELECT tenant_plan FROM conversations WHERE event_id = '{id}'"),
    )
    .await;
    rows.first().map_or(Value::Null, |r| r[0].clone())
}

fn conversation(id: &str, tenant: &str) -> Bytes {
    cloud_event(
        id,
        tenant,
        "soma.conversation.v1",
        json!({"user_id": "u", "session_id": "s", "provider": "openai", "model": "gpt-4o",
               "input_tokens": 10, "output_tokens": 5, "cached_input_tokens": 0,
               "reasoning_tokens": 0, "latency_ms": 3, "status": "ok"}),
    )
    .into()
}

async fn put_tenant(base: &str, tenant: &str, plan: &str) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .put(format!("{base}/v1/tenants/{tenant}"))
        .json(&json!({"plan": plan, "region": "eu", "monthly_budget_usd": "100"}))
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn send_and_read_plan(node: &Somaflow, id: &str, tenant: &str) -> Value {
    let base = node.url();
    let (status, body) = post_ndjson(&reqwest::Client::new(), &base, &[conversation(id, tenant)])
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    node.wait_until(
        &format!("{id} in the lake"),
        Duration::from_secs(30),
        || {
            let base = base.clone();
            async move { !plan_of(&base, id).await.is_null() || sql_has(&base, id).await }
        },
    )
    .await;
    plan_of(&base, id).await
}

async fn sql_has(base: &str, id: &str) -> bool {
    let rows = sql(
        base,
        &format!("SELECT count(*) FROM conversations WHERE event_id = '{id}'"),
    )
    .await;
    rows[0][0] == json!(1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_metadata_change_through_the_api_reaches_enrichment_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let files = platform_files(dir.path());
    let mut node = start_platform(dir.path(), &files, &[]);
    node.wait_ready().await;
    let base = node.url();

    assert_eq!(send_and_read_plan(&node, "m0", "newco").await, Value::Null);
    let (status, body) = put_tenant(&base, "newco", "pro").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(send_and_read_plan(&node, "m1", "newco").await, json!("pro"));
    let (status, _) = put_tenant(&base, "newco", "enterprise").await;
    assert_eq!(status, 200);
    assert_eq!(
        send_and_read_plan(&node, "m2", "newco").await,
        json!("enterprise")
    );
    let (status, body) = put_tenant(&base, "newco", "platinum").await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("plan"),
        "{body}"
    );

    let text = std::fs::read_to_string(&files.tenants).unwrap();
    assert!(
        text.ends_with("newco,enterprise,eu,100\n"),
        "the file holds the change"
    );
    node.kill9();
    node.restart();
    node.wait_ready().await;
    assert_eq!(
        send_and_read_plan(&node, "m3", "newco").await,
        json!("enterprise"),
        "after a restart"
    );
}
