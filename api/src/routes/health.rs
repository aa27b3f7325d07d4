//! `/health` (the process answers), `/ready` (it can take and process
//! events), `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
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

#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text exposition", content_type = "text/plain")))]
pub async fn prometheus() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics().encode(),
    )
}
