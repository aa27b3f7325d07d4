//! `POST /v1/sql`: `{"sql": "..."}` → `{"columns", "rows"}`, or CSV when the
//! client sends `Accept: text/csv`. Only read queries run.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct SqlRequest {
    pub sql: String,
}

pub async fn post_sql(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: Result<Json<SqlRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = request.map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!("{}; send {{\"sql\": \"SELECT …\"}}", e.body_text()),
        )
    })?;
    let result = state.sql.query(&request.sql).await.map_err(|e| {
        if e.is_client_error() {
            ApiError::bad_request("invalid_query", e.to_string())
        } else {
            ApiError::Internal(e.to_string())
        }
    })?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv {
        let csv = result
            .to_csv()
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        return Ok((
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            csv,
        )
            .into_response());
    }
    let json = result
        .to_json()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok(Json(json).into_response())
}
