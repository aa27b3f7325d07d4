//! `GET /v1/forecasts` and `POST /v1/anomalies/scan` on three weeks of
//! hourly usage sent through the pipeline: the same answer from the lake
//! and ClickHouse, an exact forecast of an exact pattern, and the planted
//! spike and drop found, nothing else.

use std::time::Duration;

use chrono::{DurationRound, Utc};
use serde_json::{Value, json};

use crate::support::{ApiWorker, close_all_windows, conversation, post_ndjson_as, rows_as, token};

const DAYS: i64 = 21;

/// Conversations in hour `h` (hours since the start): a daily wave.
fn per_hour(h: i64) -> i64 {
    20 + (10.0 * (h.rem_euclid(24) as f64 / 24.0 * std::f64::consts::TAU).sin()).round() as i64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecasts_and_scans_agree_across_stores_and_find_the_planted_hours() {
    let api = ApiWorker::start().await;
    let worker = &api.worker;
    let base = api.url();
    let origin = Utc::now()
        .duration_trunc(chrono::Duration::hours(1))
        .unwrap();
    let start = origin - chrono::Duration::days(DAYS);
    // A spike 5 hours before the origin, a drop 10 hours before.
    let (spike, drop) = (DAYS * 24 - 5, DAYS * 24 - 10);
    let mut lines = Vec::new();
    for h in 0..DAYS * 24 {
        let n = match h {
            _ if h == spike => per_hour(h) * 5,
            _ if h == drop => 1,
            _ => per_hour(h),
        };
        for i in 0..n {
            let at = start + chrono::Duration::hours(h) + chrono::Duration::seconds(i * 50 + 7);
            let mut e: Value =
                serde_json::from_str(&conversation(&format!("f{h}-{i}"), "acme", 10)).unwrap();
            e["time"] = json!(at.to_rfc3339());
            lines.push(bytes::Bytes::from(e.to_string()));
        }
    }
    let total = lines.len() as i64;
    let admin = token(None, &["admin"]);
    let client = reqwest::Client::new();
    for chunk in lines.chunks(2_000) {
        let (status, body) = post_ndjson_as(&client, &base, chunk, Some(&admin))
            .await
            .unwrap();
        assert_eq!(status, 202, "{body}");
    }
    close_all_windows(worker, chrono::Duration::minutes(3)).await;
    let db = &api.scenario.clickhouse;
    worker
        .wait_until(
            "every conversation in usage_1m",
            Duration::from_secs(180),
            || {
                let base = base.clone();
                async move {
                    let q = "SELECT sum(requests) FROM usage_1m WHERE tenant_id = 'acme'";
                    let lake = rows_as(&base, &token(None, &["admin"]), q).await;
                    let ch = db
                        .query("SELECT sum(requests) FROM usage_1m FINAL WHERE tenant_id = 'acme'")
                        .await;
                    lake[0][0] == json!(total) && ch.trim() == total.to_string()
                }
            },
        )
        .await;

    // A forecast from a day before the origin: the pattern continues exactly.
    let reader = token(Some("acme"), &["usage:read"]);
    let at = origin - chrono::Duration::days(1);
    let mut answers = Vec::new();
    for source in ["lake", "clickhouse"] {
        let url = format!(
            "{base}/v1/forecasts?tenant=acme&meter=requests&horizon=24h&at={}&source={source}",
            at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        );
        let resp = client.get(url).bearer_auth(&reader).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let mut body: Value = resp.json().await.unwrap();
        body["source"] = Value::Null;
        answers.push(body);
    }
    assert_eq!(
        answers[0], answers[1],
        "the lake and ClickHouse forecast alike"
    );
    let f = &answers[0];
    assert_eq!(f["history_hours"], json!((DAYS - 1) * 24));
    assert!(f["backtest"]["mape_percent"].as_f64().unwrap() < 1.0, "{f}");
    let points = f["points"].as_array().unwrap();
    assert_eq!(points.len(), 24);
    for (i, p) in points.iter().enumerate() {
        let h = (DAYS - 1) * 24 + i as i64;
        let expected = per_hour(h) as f64;
        let value = p["value"].as_f64().unwrap();
        assert!(
            (value - expected).abs() < 0.5,
            "hour {i}: {value} vs {expected}: {f}"
        );
        assert!(
            p["lower_95"].as_f64().unwrap() <= value && value <= p["upper_95"].as_f64().unwrap()
        );
    }
    let resp = client
        .get(format!("{base}/v1/forecasts?tenant=acme&meter=requests"))
        .bearer_auth(token(Some("globex"), &["usage:read"]))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403, "another tenant's forecast");

    // The last day scanned: exactly the planted hours.
    let scan = json!({
        "from": at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "to": origin.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "meters": ["requests"],
    });
    let mut found = Vec::new();
    for source in ["lake", "clickhouse"] {
        let mut body = scan.clone();
        body["source"] = json!(source);
        let resp = client
            .post(format!("{base}/v1/anomalies/scan"))
            .bearer_auth(&reader)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let answer: Value = resp.json().await.unwrap();
        found.push(answer["anomalies"].clone());
    }
    assert_eq!(found[0], found[1], "the lake and ClickHouse scan alike");
    let hours: Vec<(String, String)> = found[0]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["window_start"].as_str().unwrap().to_string(),
                a["direction"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let at_hour = |h: i64| {
        (start + chrono::Duration::hours(h)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    assert_eq!(
        hours,
        vec![
            (at_hour(drop), "drop".to_string()),
            (at_hour(spike), "spike".to_string())
        ],
        "{}",
        found[0]
    );
    let resp = client
        .post(format!("{base}/v1/anomalies/scan"))
        .bearer_auth(&reader)
        .json(&json!({"from": scan["from"], "to": scan["to"], "meters": ["requests"], "tenants": ["globex"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403, "scanning another tenant");
}
