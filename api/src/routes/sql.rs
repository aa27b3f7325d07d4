//! `POST /v1/sql`: `{"sql": "..."}` → `{"columns", "rows"}`, or CSV when the
//! client sends `Accept: text/csv`. Only read queries run, within
//! `[sql]`'s time and row limits; a tenant's token queries views of its
//! own rows only (see `somaflow_sql::LakeSql::query_scoped`).

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use somaflow_sql::TenantScope;

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SqlRequest {
    pub sql: String,
}

#[utoipa::path(post, path = "/v1/sql", tag = "sql",
    request_body = SqlRequest,
    responses(
        (status = 200, description = "`{columns, rows}`; CSV with `Accept: text/csv`. A tenant token reads views of its own rows only", body = Object),
        (status = 422, description = "The SQL does not parse or plan, is not a read, or breaks [sql]'s limits; `code` says which", body = crate::error::ErrorBody),
        crate::responses::Refusals),
    security(("bearer" = ["sql:read"])))]
pub async fn post_sql(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    request: Result<Json<SqlRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(request) = request.map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!("{}; send {{\"sql\": \"SELECT …\"}}", e.body_text()),
        )
    })?;
    caller.require(Scope::SqlRead)?;
    let tenant = caller.tenant(None)?;
    let scope = tenant
        .as_deref()
        .map_or(TenantScope::All, TenantScope::Tenant);
    let result = state
        .sql
        .query_scoped(&request.sql, scope, state.sql_limits)
        .await
        .map_err(|e| {
            // Any text is a well-formed request; SQL that does not parse,
            // plan or stay within the limits cannot be answered.
            if e.is_client_error() {
                ApiError::Unprocessable {
                    code: e.code(),
                    message: e.to_string(),
                }
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
