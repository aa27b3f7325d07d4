//! Bad input gets its documented answer and affects nothing else.

use std::time::Duration;

use serde_json::Value;

use crate::support::{Somaflow, conversation, sql, sql_number};

async fn post(
    client: &reqwest::Client,
    base: &str,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let resp = client
        .post(format!("{base}/v1/events"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

const SINGLE: &str = "application/cloudevents+json";

fn first_error(answer: &Value) -> String {
    answer["rejected"][0]["error"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_bad_input_gets_its_answer_and_nothing_else_is_affected() {
    let dir = tempfile::tempdir().unwrap();
    let node = Somaflow::start(
        dir.path(),
        &[
            ("SOMAFLOW_CHECKPOINT__INTERVAL_MS", "300"),
            ("SOMAFLOW_SERVER__BODY_LIMIT_BYTES", "65536"),
        ],
    );
    node.wait_ready().await;
    let base = node.url();
    let c = reqwest::Client::new();

    // A good event before and after: the bad ones must not disturb them.
    assert_eq!(
        post(&c, &base, SINGLE, conversation("good-1", "t-bad", 5))
            .await
            .0,
        202
    );

    let (status, answer) = post(&c, &base, SINGLE, r#"{"specversion":"1.0","id":"#).await;
    assert_eq!(status, 422);
    assert!(
        first_error(&answer).starts_with("malformed JSON"),
        "{answer}"
    );

    let (status, answer) = post(
        &c,
        &base,
        SINGLE,
        conversation("no-tenant", "x", 5).replace(r#""tenantid":"x","#, ""),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(first_error(&answer), "tenantid: is required");

    let (status, answer) = post(
        &c,
        &base,
        SINGLE,
        conversation("wrong-type", "t-bad", 5)
            .replace(r#""input_tokens":5"#, r#""input_tokens":"five""#),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        first_error(&answer).starts_with("data.input_tokens: expected a non-negative integer"),
        "{answer}"
    );

    let (status, answer) = post(
        &c,
        &base,
        SINGLE,
        conversation("unknown-type", "t-bad", 5)
            .replace("soma.conversation.v1", "soma.teleport.v1"),
    )
    .await;
    assert_eq!(status, 422);
    assert!(
        first_error(&answer).starts_with("type: unknown event type"),
        "{answer}"
    );

    let old = (chrono::Utc::now() - chrono::Duration::days(40)).to_rfc3339();
    let now_text = |e: &str| {
        e.split(r#""time":""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string()
    };
    let ev = conversation("too-old", "t-bad", 5);
    let (status, answer) = post(&c, &base, SINGLE, ev.replace(&now_text(&ev), &old)).await;
    assert_eq!(status, 422);
    assert!(
        first_error(&answer).starts_with("time:") && first_error(&answer).contains("older than"),
        "{answer}"
    );
    let future = (chrono::Utc::now() + chrono::Duration::hours(2)).to_rfc3339();
    let ev = conversation("from-future", "t-bad", 5);
    let (status, answer) = post(&c, &base, SINGLE, ev.replace(&now_text(&ev), &future)).await;
    assert_eq!(status, 422);
    assert!(first_error(&answer).contains("in the future"), "{answer}");

    let mut bad_utf8 = conversation("bad-utf8", "t-bad", 5).into_bytes();
    let at = bad_utf8.iter().position(|b| *b == b'u').unwrap();
    bad_utf8[at] = 0xff;
    let (status, answer) = post(&c, &base, SINGLE, bad_utf8).await;
    assert_eq!(status, 422);
    assert!(first_error(&answer).contains("invalid UTF-8"), "{answer}");

    // Whole-request failures: nothing is stored.
    let big = "x".repeat(70_000);
    let (status, answer) = post(&c, &base, SINGLE, big).await;
    assert_eq!(status, 413);
    assert_eq!(answer["error"]["code"], "body_too_large");
    let (status, answer) = post(&c, &base, "text/plain", conversation("plain", "t-bad", 5)).await;
    assert_eq!(status, 415);
    assert_eq!(answer["error"]["code"], "unsupported_media_type");
    let (status, answer) = post(&c, &base, "application/cloudevents-batch+json", "[{\"a\":").await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["code"], "invalid_body");

    // A batch mixing good and bad: the good part is accepted.
    let batch = format!(
        "[{},{}]",
        conversation("good-2", "t-bad", 5),
        conversation("neg", "t-bad", -3)
    );
    let (status, answer) = post(&c, &base, "application/cloudevents-batch+json", batch).await;
    assert_eq!(status, 202);
    assert_eq!(answer["accepted"], 1);
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert!(
        first_error(&answer).contains("must not be negative"),
        "{answer}"
    );

    assert_eq!(
        post(&c, &base, SINGLE, conversation("good-3", "t-bad", 5))
            .await
            .0,
        202
    );

    node.wait_until(
        "good events and dead letters in the lake",
        Duration::from_secs(30),
        || {
            let base = base.clone();
            async move {
                sql_number(&base, "SELECT count(*) FROM conversations").await == 3
                    && sql_number(&base, "SELECT count(*) FROM dead_letters").await == 8
            }
        },
    )
    .await;
    let ids = sql(
        &base,
        "SELECT event_id FROM conversations ORDER BY event_id",
    )
    .await;
    assert_eq!(
        ids,
        vec![
            vec![Value::from("good-1")],
            vec![Value::from("good-2")],
            vec![Value::from("good-3")]
        ]
    );
    let reasons = sql(
        &base,
        "SELECT stage, reason FROM dead_letters ORDER BY source_offset",
    )
    .await;
    let reasons: Vec<String> = reasons
        .iter()
        .map(|r| format!("{}: {}", r[0].as_str().unwrap(), r[1].as_str().unwrap()))
        .collect();
    for expected in [
        "malformed JSON",
        "tenantid",
        "data.input_tokens",
        "type",
        "older than",
        "future",
        "UTF-8",
        "negative",
    ] {
        assert!(
            reasons
                .iter()
                .any(|r| r.contains(expected) && r.starts_with("decode: ")),
            "a dead letter for {expected}: {reasons:?}"
        );
    }

    // A bad query is a 422 with DataFusion's message; writes are refused.
    let resp = c
        .post(format!("{base}/v1/sql"))
        .json(&serde_json::json!({"sql": "SELECT nope FROM conversations"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"].as_str().unwrap().contains("nope"),
        "{body}"
    );
    let resp = c
        .post(format!("{base}/v1/sql"))
        .json(&serde_json::json!({"sql": "DROP TABLE conversations"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 422);
    let csv = c
        .post(format!("{base}/v1/sql"))
        .header("accept", "text/csv")
        .json(&serde_json::json!({"sql": "SELECT event_id, input_tokens FROM conversations ORDER BY event_id"}))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(csv, "event_id,input_tokens\ngood-1,5\ngood-2,5\ngood-3,5\n");

    let ready = c.get(format!("{base}/ready")).send().await.unwrap();
    assert_eq!(
        ready.status().as_u16(),
        200,
        "the pipeline is still running"
    );
}

#[test]
fn a_config_mistake_stops_startup_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::support::BIN)
        .arg("run")
        .env("SOMAFLOW_DATA_DIR", dir.path())
        .env("SOMAFLOW_CHECKPOINT__INTERVAL_MS", "soon")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("checkpoint.interval_ms"), "{stderr}");
}
