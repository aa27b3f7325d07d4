//! `/health` (the process answers), `/ready` (it can take and process
//! events), `/metrics` (Prometheus).

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde_json::json;
use somaflow_pipeline::metrics::metrics;

use crate::state::AppState;

pub async fn health() -> impl IntoResponse {
    Json(json!({ "status": "ok" }))
}

pub async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    let mut problems = Vec::new();
    if !state.log.is_healthy() {
        problems.push("the embedded log stopped after a write error".to_string());
    }
    if !state.pipeline.is_running() {
        problems.push(match state.pipeline.failure() {
            Some(reason) => format!("the pipeline failed: {reason}"),
            None => "the pipeline is not running".to_string(),
        });
    }
    let body = json!({
        "ready": problems.is_empty(),
        "problems": problems,
        "last_checkpoint": state.pipeline.last_checkpoint(),
        "log_end_offset": state.log.end_offset(),
    });
    let status = if problems.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

pub async fn prometheus() -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        metrics().encode(),
    )
}
