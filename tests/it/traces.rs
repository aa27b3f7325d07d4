//! OpenTelemetry traces: a running node exports spans over OTLP/HTTP to the
//! configured endpoint — one per HTTP request, child of the caller's
//! `traceparent` header, and one per batch through each node, joined to the
//! trace named by the CloudEvents `traceparent` of the events in it.
//!
//! The endpoint here is the test's own OTLP/HTTP receiver: it decodes what
//! somaflow's exporter sends with the OpenTelemetry protocol's published
//! protobuf types, so the assertions read real OTLP requests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use crate::support::{Somaflow, conversation, free_port, post_ndjson};

const EVENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const EVENT_PARENT: &str = "00f067aa0ba902b7";
const CALLER_TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN: &str = "b7ad6b7169203331";
const MIXED_TRACES: [&str; 2] = [
    "11111111111111111111111111111111",
    "22222222222222222222222222222222",
];

/// Spans received, with their resource's `service.name`; an entry with an
/// empty span and the decode error in place of the service name stands for
/// a request that was not OTLP.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

async fn receive(
    State(received): State<Received>,
    body: Bytes,
) -> (axum::http::StatusCode, Vec<u8>) {
    let mut spans = received.lock().unwrap();
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => {
            spans.push((format!("not OTLP: {e}"), Span::default()));
            return (axum::http::StatusCode::BAD_REQUEST, Vec::new());
        }
    };
    for resource in request.resource_spans {
        let service = resource
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .and_then(|kv| kv.value.as_ref())
            .map(|v| format!("{:?}", v.value))
            .unwrap_or_default();
        for scope in resource.scope_spans {
            spans.extend(scope.spans.into_iter().map(|s| (service.clone(), s)));
        }
    }
    // An empty ExportTraceServiceResponse: full success.
    (axum::http::StatusCode::OK, Vec::new())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
        .and_then(|v| match &v.value {
            Some(opentelemetry_proto::tonic::common::v1::any_value::Value::StringValue(s)) => {
                Some(s.clone())
            }
            Some(opentelemetry_proto::tonic::common::v1::any_value::Value::IntValue(i)) => {
                Some(i.to_string())
            }
            _ => None,
        })
}

/// Whether a span belongs to the event's trace: its child, or linked to it.
fn in_event_trace(span: &Span) -> bool {
    hex(&span.trace_id) == EVENT_TRACE || span.links.iter().any(|l| hex(&l.trace_id) == EVENT_TRACE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_follow_requests_and_batches_into_the_producers_traces() {
    let received: Received = Arc::default();
    let port = free_port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("bind the OTLP receiver");
    let app = axum::Router::new()
        .route("/v1/traces", post(receive))
        .with_state(received.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{port}");
    let node = Somaflow::start(
        dir.path(),
        &[
            ("SOMAFLOW_CHECKPOINT__INTERVAL_MS", "500"),
            ("SOMAFLOW_OTEL__ENDPOINT", &endpoint),
            ("SOMAFLOW_OTEL__SERVICE_NAME", "somaflow-trace-test"),
        ],
    );
    node.wait_ready().await;

    // One event carrying the producer's trace, posted by a caller with a
    // trace of its own.
    let traced = conversation("traced-1", "t1", 40).replacen(
        "\"tenantid\"",
        &format!("\"traceparent\":\"00-{EVENT_TRACE}-{EVENT_PARENT}-01\",\"tenantid\""),
        1,
    );
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events", node.url()))
        .header("content-type", "application/cloudevents+json")
        .header("traceparent", format!("00-{CALLER_TRACE}-{CALLER_SPAN}-01"))
        .body(traced)
        .send()
        .await
        .expect("POST /v1/events");
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());

    // Wait for each node's batch span of the traced event: decode, dedup and
    // the lake sink (spans are exported in batches every few seconds).
    let nodes = ["decode", "dedup", "lake"];
    node.wait_until(
        "batch spans of decode, dedup and lake in the event's trace",
        Duration::from_secs(40),
        || {
            let received = received.clone();
            async move {
                let spans = received.lock().unwrap();
                nodes.iter().all(|n| {
                    spans.iter().any(|(_, s)| {
                        attribute(s, "node").as_deref() == Some(n) && in_event_trace(s)
                    })
                })
            }
        },
    )
    .await;

    // Untraced traffic still gets spans, in traces of its own.
    let (status, _) = post_ndjson(
        &reqwest::Client::new(),
        &node.url(),
        &[conversation("plain-1", "t1", 5).into()],
    )
    .await
    .unwrap();
    assert_eq!(status, 202);
    node.wait_until(
        "a dedup batch span outside the event's trace",
        Duration::from_secs(40),
        || {
            let received = received.clone();
            async move {
                received.lock().unwrap().iter().any(|(_, s)| {
                    attribute(s, "node").as_deref() == Some("dedup") && !in_event_trace(s)
                })
            }
        },
    )
    .await;

    // Two events of two traces in one batch: the batch links to both.
    let with_trace = |id: &str, trace: &str| {
        conversation(id, "t1", 9).replacen(
            "\"tenantid\"",
            &format!("\"traceparent\":\"00-{trace}-{EVENT_PARENT}-01\",\"tenantid\""),
            1,
        )
    };
    let (status, _) = post_ndjson(
        &reqwest::Client::new(),
        &node.url(),
        &[
            with_trace("mixed-1", MIXED_TRACES[0]).into(),
            with_trace("mixed-2", MIXED_TRACES[1]).into(),
        ],
    )
    .await
    .unwrap();
    assert_eq!(status, 202);
    node.wait_until(
        "a dedup batch span linked to both traces of its events",
        Duration::from_secs(40),
        || {
            let received = received.clone();
            async move {
                received.lock().unwrap().iter().any(|(_, s)| {
                    attribute(s, "node").as_deref() == Some("dedup")
                        && MIXED_TRACES
                            .iter()
                            .all(|t| s.links.iter().any(|l| hex(&l.trace_id) == *t))
                })
            }
        },
    )
    .await;

    let spans = received.lock().unwrap().clone();
    let strangers: Vec<&String> = spans
        .iter()
        .map(|(service, _)| service)
        .filter(|service| !service.contains("somaflow-trace-test"))
        .collect();
    assert!(
        strangers.is_empty(),
        "every request is OTLP and every span names the configured service: {strangers:?}"
    );
    // The request span is the caller's child, named by its route.
    let request = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| hex(&s.trace_id) == CALLER_TRACE)
        .expect("the POST's span in the caller's trace");
    assert_eq!(hex(&request.parent_span_id), CALLER_SPAN);
    assert_eq!(request.name, "POST /v1/events");
    assert_eq!(
        attribute(request, "http.response.status_code").as_deref(),
        Some("202")
    );
    // A batch of one event's trace is that trace's child: the producer's
    // span is its parent, and it names the node and the rows.
    let dedup = spans
        .iter()
        .map(|(_, s)| s)
        .find(|s| attribute(s, "node").as_deref() == Some("dedup") && in_event_trace(s))
        .unwrap();
    assert_eq!(hex(&dedup.trace_id), EVENT_TRACE);
    assert_eq!(hex(&dedup.parent_span_id), EVENT_PARENT);
    assert_eq!(attribute(dedup, "table").as_deref(), Some("conversations"));
    assert_eq!(attribute(dedup, "rows").as_deref(), Some("1"));
    assert_eq!(dedup.name, "dedup conversations");
}
