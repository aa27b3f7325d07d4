//! `GET /v1/usage` against data with known totals: the lake (DataFusion)
//! and ClickHouse give the same answers, and both equal the test's own
//! sums; a tenant's token sees its own usage only.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Duration as Span, DurationRound, Utc};
use serde_json::{Value, json};

use crate::support::{
    ApiWorker, Somaflow, close_all_windows, cloud_event_at, post_ndjson_as, rows_as, token,
};

const MODELS: [(&str, &str); 3] = [
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("claude-sonnet-4", "anthropic"),
];

/// One conversation the test sent, as the test counts it.
struct Sent {
    tenant: &'static str,
    user: String,
    model: &'static str,
    at: DateTime<Utc>,
    tokens: i64,
    cost_nanos: i128,
}

fn conversation(i: usize, at: DateTime<Utc>) -> (String, Sent) {
    let tenant = ["acme", "globex"][i % 2];
    let (model, provider) = MODELS[i % 3];
    let user = format!("u{}", i % 4);
    let (input, output) = (100 + i as i64 * 7, 20 + i as i64 * 3);
    // The producer's cost is billed when present: a known amount per event.
    let cost_nanos = 1_000_000 + i as i128 * 12_345;
    let data = json!({
        "user_id": user, "session_id": "s1", "provider": provider, "model": model,
        "input_tokens": input, "output_tokens": output, "cached_input_tokens": 0,
        "reasoning_tokens": 0, "latency_ms": 12, "status": "ok",
        "cost_usd": format!("0.{cost_nanos:09}"),
    });
    let event = cloud_event_at(
        &format!("conv-{i}"),
        tenant,
        "soma.conversation.v1",
        at,
        data,
    );
    let sent = Sent {
        tenant,
        user,
        model,
        at,
        tokens: input + output,
        cost_nanos,
    };
    (event, sent)
}

fn capsule_run(i: usize, at: DateTime<Utc>) -> String {
    let data = json!({
        "capsule_id": format!("cap-{}", i % 2), "capsule_version": "1", "run_id": format!("r{i}"),
        "agent_id": "a1", "status": "ok", "duration_ms": 10, "tokens": 5,
    });
    cloud_event_at(
        &format!("cap-run-{i}"),
        "acme",
        "soma.capsule_run.v1",
        at,
        data,
    )
}

/// `GET /v1/usage` from one source: its rows, as (start, group, value
/// text), sorted as the test's own maps are (group JSON keys sorted).
async fn usage(
    node: &Somaflow,
    token: &str,
    params: &str,
    source: &str,
) -> Vec<(String, String, String)> {
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/usage?{params}&source={source}", node.url()))
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| {
            let logs = node.logs();
            let tail: Vec<&str> = logs.lines().rev().take(30).collect();
            let tail: Vec<&str> = tail.into_iter().rev().collect();
            panic!(
                "GET /v1/usage?{params}: {e}; the node's last lines:\n{}",
                tail.join("\n")
            )
        });
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.expect("JSON");
    assert_eq!(status, 200, "{params} from {source}: {body}");
    assert_eq!(body["source"], json!(source));
    let mut rows: Vec<_> = body["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .map(|r| {
            let value = match &r["value"] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (
                r["window_start"].as_str().unwrap().to_string(),
                r["group"].to_string(),
                value,
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Tokens per hour × tenant × model, as `usage` answers them.
fn tokens_by_hour_tenant_model(sent: &[Sent]) -> Vec<(String, String, String)> {
    let mut expected: BTreeMap<(String, String), i64> = BTreeMap::new();
    for s in sent {
        let hour = rfc(s.at.duration_trunc(Span::hours(1)).unwrap());
        let group = json!({"tenant": s.tenant, "model": s.model}).to_string();
        *expected.entry((hour, group)).or_default() += s.tokens;
    }
    expected
        .into_iter()
        .map(|((w, g), v)| (w, g, v.to_string()))
        .collect()
}

fn usd(nanos: i128) -> String {
    format!("{}.{:09}", nanos / 1_000_000_000, nanos % 1_000_000_000)
}

fn rfc(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_from_clickhouse_and_the_lake_is_equal_and_exact() {
    let api = ApiWorker::start().await;
    let worker = &api.worker;
    let base = api.url();

    // 60 conversations over 5 hours, from 6 hours ago; 10 capsule runs.
    let start = Utc::now().duration_trunc(Span::hours(1)).unwrap() - Span::hours(6);
    let (lines, sent): (Vec<String>, Vec<Sent>) = (0..60)
        .map(|i| conversation(i, start + Span::minutes(5 * i as i64 + 2)))
        .unzip();
    let runs: Vec<String> = (0..10)
        .map(|i| capsule_run(i, start + Span::minutes(31 * i as i64)))
        .collect();
    let writer = token(None, &["admin"]);
    let client = reqwest::Client::new();
    for batch in [&lines, &runs] {
        let records: Vec<bytes::Bytes> = batch.iter().map(|l| l.clone().into()).collect();
        let (status, body) = post_ndjson_as(&client, &base, &records, Some(&writer))
            .await
            .unwrap();
        assert_eq!(status, 202, "{body}");
    }
    close_all_windows(worker, Span::minutes(3)).await;
    let db = &api.scenario.clickhouse;
    worker
        .wait_until("usage_1m complete in the lake and ClickHouse", Duration::from_secs(120), || {
            let base = base.clone();
            async move {
                let lake = rows_as(&base, &token(None, &["admin"]),
                    "SELECT sum(requests), sum(capsule_runs) FROM usage_1m WHERE tenant_id <> 'tick'").await;
                let ch = db.query("SELECT sum(requests), sum(capsule_runs) FROM usage_1m FINAL WHERE tenant_id <> 'tick'").await;
                lake[0] == [json!(60), json!(10)] && ch.trim() == "60\t10"
            }
        })
        .await;

    let admin = token(None, &["admin"]);
    let range = format!("from={}&to={}", rfc(start), rfc(start + Span::hours(6)));

    // Tokens per hour × tenant × model.
    let params = format!("meter=tokens&window=hour&group_by=tenant,model&{range}");
    let expected = tokens_by_hour_tenant_model(&sent);
    assert_eq!(
        usage(worker, &admin, &params, "lake").await,
        expected,
        "lake"
    );
    assert_eq!(
        usage(worker, &admin, &params, "clickhouse").await,
        expected,
        "ClickHouse"
    );

    // Cost per local day in Kolkata (+05:30) per tenant, exact to the nano-dollar.
    let kolkata = chrono_tz::Asia::Kolkata;
    let mut expected: BTreeMap<(String, String), i128> = BTreeMap::new();
    for s in &sent {
        let day =
            s.at.with_timezone(&kolkata)
                .date_naive()
                .and_hms_opt(0, 0, 0)
                .unwrap();
        let day = rfc(day.and_local_timezone(kolkata).unwrap().with_timezone(&Utc));
        *expected
            .entry((day, json!({"tenant": s.tenant}).to_string()))
            .or_default() += s.cost_nanos;
    }
    let expected: Vec<_> = expected
        .into_iter()
        .map(|((w, g), v)| (w, g, usd(v)))
        .collect();
    let params = format!("meter=cost_usd&window=day&tz=Asia/Kolkata&group_by=tenant&{range}");
    assert_eq!(
        usage(worker, &admin, &params, "lake").await,
        expected,
        "lake"
    );
    assert_eq!(
        usage(worker, &admin, &params, "clickhouse").await,
        expected,
        "ClickHouse"
    );

    // Requests per user (read from the conversations), one window for all.
    let mut expected: BTreeMap<String, i64> = BTreeMap::new();
    for s in &sent {
        *expected
            .entry(json!({"user": s.user}).to_string())
            .or_default() += 1;
    }
    let params = format!("meter=requests&window=month&group_by=user&{range}");
    let lake = usage(worker, &admin, &params, "lake").await;
    assert_eq!(lake, usage(worker, &admin, &params, "clickhouse").await);
    let by_user: BTreeMap<String, i64> = lake.iter().fold(BTreeMap::new(), |mut m, (w, g, v)| {
        assert!(w.ends_with("-01T00:00:00Z"), "{w} is a month start");
        *m.entry(g.clone()).or_default() += v.parse::<i64>().unwrap();
        m
    });
    assert_eq!(by_user, expected);

    // Capsule runs per capsule, for acme's own token; another tenant is refused.
    let acme = token(Some("acme"), &["usage:read"]);
    let params = format!("meter=capsule_runs&window=day&group_by=capsule,tenant&{range}");
    let lake = usage(worker, &acme, &params, "lake").await;
    assert_eq!(lake, usage(worker, &acme, &params, "clickhouse").await);
    let runs: i64 = lake.iter().map(|(_, _, v)| v.parse::<i64>().unwrap()).sum();
    assert_eq!(runs, 10);
    assert!(
        lake.iter()
            .all(|(_, g, _)| g.contains("\"tenant\":\"acme\"")),
        "{lake:?}"
    );
    let params = format!("meter=tokens&group_by=tenant&{range}");
    let acme_rows = usage(worker, &acme, &params, "clickhouse").await;
    assert!(
        acme_rows.iter().all(|(_, g, _)| !g.contains("globex")),
        "{acme_rows:?}"
    );
    let resp = client
        .get(format!("{base}/v1/usage?{params}&tenant=globex"))
        .bearer_auth(&acme)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);

    // CSV, and a mistake named.
    let csv = client
        .get(format!(
            "{base}/v1/usage?meter=requests&window=day&group_by=model&{range}&source=lake"
        ))
        .bearer_auth(&admin)
        .header("accept", "text/csv")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        csv.starts_with("window_start,window_end,model,value\n"),
        "{csv}"
    );
    assert_eq!(
        csv.lines()
            .skip(1)
            .map(|l| l.rsplit(',').next().unwrap().parse::<i64>().unwrap())
            .sum::<i64>(),
        60
    );
    let resp = client
        .get(format!("{base}/v1/usage?meter=watts&{range}"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);

    // Answers are kept (sql.cache_rows), but never past a commit: six more
    // conversations in the range show up in the same question, from both.
    let (more, more_sent): (Vec<String>, Vec<Sent>) = (60..66)
        .map(|i| conversation(i, start + Span::minutes(5 * i as i64 + 2)))
        .unzip();
    let records: Vec<bytes::Bytes> = more.iter().map(|l| l.clone().into()).collect();
    let (status, body) = post_ndjson_as(&client, &base, &records, Some(&writer))
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    close_all_windows(worker, Span::minutes(3)).await;
    worker
        .wait_until("the six in usage_1m", Duration::from_secs(120), || {
            let base = base.clone();
            async move {
                let lake = rows_as(
                    &base,
                    &token(None, &["admin"]),
                    "SELECT sum(requests) FROM usage_1m WHERE tenant_id <> 'tick'",
                )
                .await;
                let ch = db
                    .query("SELECT sum(requests) FROM usage_1m FINAL WHERE tenant_id <> 'tick'")
                    .await;
                lake[0] == [json!(66)] && ch.trim() == "66"
            }
        })
        .await;
    let all: Vec<Sent> = sent.into_iter().chain(more_sent).collect();
    let expected = tokens_by_hour_tenant_model(&all);
    let params = format!("meter=tokens&window=hour&group_by=tenant,model&{range}");
    assert_eq!(
        usage(worker, &admin, &params, "lake").await,
        expected,
        "lake after a commit"
    );
    assert_eq!(
        usage(worker, &admin, &params, "clickhouse").await,
        expected,
        "ClickHouse after a commit"
    );
}
