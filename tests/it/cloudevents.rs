//! Real CloudEvents clients, unchanged: the official Python SDK (PyPI
//! `cloudevents`) sends events in both content modes of the HTTP binding
//! to an embedded node, and makes Kafka records in both modes of the Kafka
//! binding that a real producer sends to a cluster worker. Every event
//! lands once; an event with a bad attribute is refused with the same
//! reason in both modes.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;
use rdkafka::ClientConfig;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::{Value, json};

use crate::support::{
    ClusterScenario, FAST_CHECKPOINTS, Somaflow, kafka_broker, kafka_serial, repo, sql, tool_path,
};

/// Runs the SDK script on `request`; its JSON answer.
fn sdk(request: &Value) -> Value {
    let python = tool_path("python-tools.sh", "the CloudEvents SDK from PyPI");
    let mut child = Command::new(python)
        .arg(repo().join("tests/fixtures/cloudevents_sdk.py"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the SDK script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("the SDK script's JSON answer")
}

/// Events of three kinds, ids prefixed by `mode`, plus one without the
/// `tenantid` attribute (refused).
fn events(mode: &str) -> (Vec<Value>, String) {
    let time = (chrono::Utc::now() - chrono::Duration::seconds(30))
        .to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let mut events = Vec::new();
    for i in 0..10 {
        events.push(json!({
            "id": format!("{mode}-conv-{i}"), "source": "/agents/eu west", "type": "soma.conversation.v1",
            "time": time, "tenantid": "tenant-0003",
            "data": {"user_id": "u", "session_id": "s", "provider": "openai", "model": "gpt-4o",
                     "input_tokens": 100 + i, "output_tokens": 7, "cached_input_tokens": 0,
                     "reasoning_tokens": 0, "latency_ms": 3, "status": "ok",
                     "message": "Grüße aus Köln"}
        }));
    }
    for i in 0..5 {
        events.push(json!({
            "id": format!("{mode}-bill-{i}"), "source": "/billing", "type": "soma.billing.v1",
            "time": time, "tenantid": "tenant-0003",
            "data": {"meter": "storage", "quantity": "1.5", "unit": "GB-h"}
        }));
    }
    let bad = format!("{mode}-bad");
    events.push(json!({
        "id": bad, "source": "/billing", "type": "soma.billing.v1", "time": time,
        "data": {"meter": "storage", "quantity": "1", "unit": "GB-h"}
    }));
    (events, bad)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_sends_over_http_in_both_modes_and_every_event_lands_once() {
    let dir = tempfile::tempdir().unwrap();
    let node = Somaflow::start(dir.path(), &[FAST_CHECKPOINTS]);
    node.wait_ready().await;
    let base = node.url();
    let mut reasons = Vec::new();
    for mode in ["binary", "structured"] {
        let (events, bad) = events(mode);
        let answers = sdk(&json!({
            "target": "http", "mode": mode, "url": format!("{base}/v1/events"), "events": events
        }));
        for a in answers.as_array().unwrap() {
            if a["id"] == json!(bad) {
                assert_eq!(a["status"], 422, "{mode}: {a}");
                reasons.push(a["body"]["rejected"][0]["error"].clone());
            } else {
                assert_eq!(a["status"], 202, "{mode}: {a}");
                assert_eq!(a["body"]["accepted"], 1, "{mode}: {a}");
            }
        }
    }
    assert_eq!(reasons[0], reasons[1], "one reason in both modes");
    assert!(
        reasons[0].as_str().unwrap().contains("tenantid"),
        "{reasons:?}"
    );

    node.wait_until(
        "both modes' events in the lake",
        Duration::from_secs(30),
        || {
            let base = base.clone();
            async move {
                sql(&base, "SELECT count(*) FROM conversations").await[0][0] == json!(20)
                    && sql(&base, "SELECT count(*) FROM billing_events").await[0][0] == json!(10)
            }
        },
    )
    .await;
    let rows = sql(
        &base,
        "SELECT event_id, source, input_tokens, message FROM conversations ORDER BY event_id",
    )
    .await;
    let binary: Vec<&Vec<Value>> = rows
        .iter()
        .filter(|r| r[0].as_str().unwrap().starts_with("binary"))
        .collect();
    let structured: Vec<&Vec<Value>> = rows
        .iter()
        .filter(|r| r[0].as_str().unwrap().starts_with("structured"))
        .collect();
    assert_eq!(binary.len(), 10);
    for (b, s) in binary.iter().zip(&structured) {
        assert_eq!(b[1..], s[1..], "the same row from either mode");
    }
    assert_eq!(binary[0][1], json!("/agents/eu west"), "percent-decoded");
    assert_eq!(binary[0][3], json!("Grüße aus Köln"));
    let dead = sql(
        &base,
        "SELECT event_id, reason FROM dead_letters ORDER BY event_id",
    )
    .await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert_eq!(
        dead[0][1], dead[1][1],
        "one dead-letter reason in both modes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdks_kafka_records_in_both_modes_reach_a_cluster_worker_once() {
    let _serial = kafka_serial().await;
    let brokers = kafka_broker();
    let scenario = ClusterScenario::new(&brokers, 2);
    let worker = scenario.worker("w1", &[FAST_CHECKPOINTS]);
    worker.wait_ready().await;
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("enable.idempotence", "true")
        .create()
        .unwrap();
    for mode in ["binary", "structured"] {
        let (events, _) = events(mode);
        let records = sdk(&json!({"target": "kafka", "mode": mode, "events": events}));
        for r in records.as_array().unwrap() {
            let id = r["id"].as_str().unwrap();
            let kind = if id.contains("conv") {
                "conversations"
            } else {
                "billing_events"
            };
            let topic = format!("{}{kind}", scenario.prefix);
            let value = base64::engine::general_purpose::STANDARD
                .decode(r["value_b64"].as_str().unwrap())
                .unwrap();
            let headers =
                r["headers"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .fold(OwnedHeaders::new(), |h, (k, v)| {
                        h.insert(Header {
                            key: k,
                            value: v.as_str(),
                        })
                    });
            let mut record = FutureRecord::to(&topic).payload(&value).headers(headers);
            let key = r["key"].as_str().unwrap_or("tenant-0003").to_string();
            record = record.key(&key);
            producer
                .send(record, Duration::from_secs(30))
                .await
                .map_err(|(e, _)| e)
                .expect("produced");
        }
    }
    let base = worker.url();
    worker
        .wait_until(
            "both modes' records in the lake",
            Duration::from_secs(90),
            || {
                let base = base.clone();
                async move {
                    sql(&base, "SELECT count(*) FROM conversations").await[0][0] == json!(20)
                        && sql(&base, "SELECT count(*) FROM billing_events").await[0][0]
                            == json!(10)
                        && sql(&base, "SELECT count(*) FROM dead_letters").await[0][0] == json!(2)
                }
            },
        )
        .await;
    let distinct = sql(&base, "SELECT count(DISTINCT event_id) FROM conversations").await;
    assert_eq!(distinct[0][0], json!(20), "each once");
    let dead = sql(&base, "SELECT event_id, reason FROM dead_letters").await;
    assert_eq!(
        dead[0][1], dead[1][1],
        "one dead-letter reason in both modes: {dead:?}"
    );
    assert!(
        dead[0][1].as_str().unwrap().contains("tenantid"),
        "{dead:?}"
    );
}
