//! Budget crossings reach a webhook: a real HTTP receiver started by the
//! test fails at first, the node retries with backoff, is SIGKILLed while
//! the crossings wait in its checkpointed outbox, and after the restart
//! and the receiver's recovery each crossing is acknowledged exactly once,
//! signed, with the same idempotency key on every attempt.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;
use somaflow_sinks::alerts::signature;

use crate::support::{
    conversation, free_port, platform_files, post_ndjson, start_platform, wait_for,
};

const SECRET: &str = "0123456789abcdef0123456789abcdef-test-secret";
const TENANT: &str = "tenant-alerts";

/// One request the receiver got, and what it answered.
#[derive(Debug, Clone)]
struct Received {
    key: String,
    attempt: u32,
    signed: bool,
    answered: u16,
    body: Value,
}

#[derive(Clone, Default)]
struct Receiver {
    up: Arc<AtomicBool>,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn got(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Acknowledged requests per idempotency key.
    fn acked(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for r in self.got().iter().filter(|r| r.answered == 200) {
            *out.entry(r.key.clone()).or_default() += 1;
        }
        out
    }
}

async fn receive(State(rx): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let sig = header("x-somaflow-signature");
    let t: i64 = sig
        .strip_prefix("t=")
        .and_then(|rest| rest.split(',').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_default();
    let answered = if rx.up.load(Ordering::SeqCst) {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    rx.got.lock().unwrap().push(Received {
        key: header("idempotency-key"),
        attempt: header("x-somaflow-attempt").parse().unwrap_or(0),
        signed: sig == signature(SECRET.as_bytes(), t, &body),
        answered: answered.as_u16(),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    });
    answered
}

async fn alerts(base: &str) -> Vec<Value> {
    let answer: Value = reqwest::get(format!("{base}/v1/alerts?tenant={TENANT}"))
        .await
        .expect("GET /v1/alerts")
        .json()
        .await
        .expect("JSON");
    answer["alerts"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crossings_reach_a_failing_webhook_once_through_a_sigkill() {
    let rx = Receiver::default();
    let port = free_port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the webhook receiver");
    let app = axum::Router::new()
        .route("/hook", post(receive))
        .with_state(rx.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let files = platform_files(dir.path());
    // A tenant with a $1 budget: five calls of 100k input tokens of
    // gpt-4o ($0.25 each) cross 80 % and then 100 %.
    let mut tenants = std::fs::read_to_string(&files.tenants).unwrap();
    tenants.push_str(&format!("{TENANT},pro,us,1.00\n"));
    std::fs::write(&files.tenants, tenants).unwrap();
    let hooks =
        format!(r#"[{{name = "ops", url = "http://127.0.0.1:{port}/hook", secret = "{SECRET}"}}]"#);
    let mut node = start_platform(
        dir.path(),
        &files,
        &[
            ("SOMAFLOW_ALERTS__WEBHOOKS", hooks.as_str()),
            ("SOMAFLOW_ALERTS__RETRY_INITIAL_MS", "100"),
            ("SOMAFLOW_ALERTS__RETRY_MAX_MS", "400"),
        ],
    );
    node.wait_ready().await;
    let base = node.url();
    let client = reqwest::Client::new();
    let calls: Vec<bytes::Bytes> = (0..5)
        .map(|i| conversation(&format!("alert-call-{i}"), TENANT, 100_000).into())
        .collect();
    let (status, body) = post_ndjson(&client, &base, &calls).await.unwrap();
    assert_eq!(status, 202, "{body}");
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let ids = [
        format!("budget:{TENANT}:{month}:hard"),
        format!("budget:{TENANT}:{month}:soft"),
    ];

    // The receiver is down: both crossings are committed and retried.
    node.wait_until(
        "both crossings retried after 503s",
        Duration::from_secs(60),
        || async {
            let got = rx.got();
            ids.iter().all(|id| {
                got.iter()
                    .filter(|r| &r.key == id && r.answered == 503)
                    .count()
                    >= 2
            })
        },
    )
    .await;
    let pending = alerts(&base).await;
    for id in &ids {
        assert!(
            pending.iter().any(|a| a["alert_id"] == id.as_str()
                && a["status"] == "pending"
                && a["http_status"] == 503),
            "{id} waits with its last failure: {pending:?}"
        );
    }

    // A checkpoint records the failed attempts (one a second).
    tokio::time::sleep(Duration::from_secs(2)).await;
    // SIGKILL between the crossing and its delivery; the receiver recovers.
    node.kill9();
    rx.up.store(true, Ordering::SeqCst);
    node.restart();
    node.wait_ready().await;
    wait_for(
        "both crossings acknowledged",
        Duration::from_secs(60),
        || async { rx.acked().len() == ids.len() },
    )
    .await;
    // More spend past the budget crosses nothing again.
    let more: Vec<bytes::Bytes> = (5..8)
        .map(|i| conversation(&format!("alert-call-{i}"), TENANT, 100_000).into())
        .collect();
    let (status, body) = post_ndjson(&client, &node.url(), &more).await.unwrap();
    assert_eq!(status, 202, "{body}");
    tokio::time::sleep(Duration::from_secs(4)).await;

    let acked = rx.acked();
    assert_eq!(
        acked,
        ids.iter()
            .map(|id| (id.clone(), 1))
            .collect::<BTreeMap<_, _>>(),
        "each crossing acknowledged exactly once: {:?}",
        rx.got()
    );
    let got = rx.got();
    assert!(
        got.iter().all(|r| r.signed),
        "every request signed: {got:?}"
    );
    assert!(
        got.iter().all(|r| ids.contains(&r.key)),
        "no other alert: {got:?}"
    );
    for id in &ids {
        let attempts: Vec<&Received> = got.iter().filter(|r| &r.key == id).collect();
        let bodies: Vec<&Value> = attempts.iter().map(|r| &r.body).collect();
        assert!(
            bodies.windows(2).all(|w| w[0] == w[1]),
            "the same body on every attempt of {id}: {bodies:?}"
        );
        let last = attempts.last().unwrap();
        assert!(last.attempt >= 3, "counted across the restart: {last:?}");
        assert_eq!(last.body["tenant"], TENANT);
        assert_eq!(last.body["detail"]["budget_usd"], "1");
        let level = id.rsplit(':').next().unwrap();
        assert_eq!(last.body["event"], format!("budget.{level}"));
    }
    let listed = alerts(&node.url()).await;
    for id in &ids {
        assert!(
            listed
                .iter()
                .any(|a| a["alert_id"] == id.as_str() && a["status"] == "delivered"),
            "{id} listed as delivered: {listed:?}"
        );
    }
    assert!(
        !listed.iter().any(|a| a["status"] == "pending"),
        "nothing waits: {listed:?}"
    );
}
