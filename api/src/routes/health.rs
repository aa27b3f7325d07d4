//! `/health` (the process answers), `/ready` (it can take and process
//! events), `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use somaflow_pipeline::exposition::{OPENMETRICS_TEXT, PROMETHEUS_TEXT, to_prometheus_text};
use somaflow_pipeline::metrics::metrics;

use crate::ingest::Ingest;
use crate::state::AppState;

#[utoipa::path(get, path = "/health", tag = "operations", responses((status = 200, description = "The process is up")))]
pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

#[utoipa::path(get, path = "/ready", tag = "operations", responses((status = 200, description = "Ready, with warnings"), (status = 503, description = "Not ready: what is down")))]
pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let mut problems: Vec<String> = state.ingest.problem().into_iter().collect();
    if let Some(ch) = state.clickhouse.as_ref().filter(|ch| !ch.is_up()) {
        problems.push(format!("ClickHouse at {} does not answer", ch.url()));
    }
    // A cluster worker between assignments (or with none) has no pipeline
    // running and is still ready; a failed pipeline never is.
    let embedded = matches!(state.ingest, Ingest::Log(_));
    if let Some(reason) = state.pipeline.failure() {
        problems.push(format!("the pipeline failed: {reason}"));
    } else if embedded && !state.pipeline.is_running() {
        problems.push("the pipeline is not running".to_string());
    }
    // Redis down slows nothing (enrich serves its cache, budgets keep their
    // spend until it answers), so it is a warning, not a reason to be unready.
    let mut warnings: Vec<String> = Vec::new();
    if state.budgets.is_some() && metrics().redis_up.get() == 0 {
        warnings.push(
            "Redis does not answer: enrich serves cached tenant and capsule metadata (unknown ones \
             get nulls) and budget spend is pushed to the ledger once Redis is back"
                .to_string(),
        );
    }
    let mut body = json!({
        "ready": problems.is_empty(),
        "problems": problems,
        "warnings": warnings,
        "last_checkpoint": state.pipeline.last_checkpoint(),
        "last_checkpoint_at_ms": state.pipeline.last_checkpoint_at_ms(),
    });
    if let Ingest::Log(log) = &state.ingest {
        body["log_end_offset"] = json!(log.end_offset());
    }
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// OpenMetrics for a client that asks for it (Prometheus does), the classic
/// text format otherwise (curl, promtool, older scrapers).
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition (OpenMetrics when the Accept header asks for it)", content_type = "text/plain")))]
pub async fn prometheus(headers: HeaderMap) -> impl IntoResponse {
    let openmetrics = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| v.contains("application/openmetrics-text"));
    let text = metrics().encode();
    // The answer depends on Accept: a cache in front must know.
    if openmetrics {
        (
            [
                (header::CONTENT_TYPE, OPENMETRICS_TEXT),
                (header::VARY, "accept"),
            ],
            text,
        )
    } else {
        (
            [
                (header::CONTENT_TYPE, PROMETHEUS_TEXT),
                (header::VARY, "accept"),
            ],
            to_prometheus_text(&text),
        )
    }
}
