//! `GET /v1/kamachiq/summary?tenant=&from=&to=`: the tenant's KAMACHIQ
//! workflow runs in `[from, to)` (see [`somaflow_sql::kamachiq`]).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use somaflow_sql::kamachiq;

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::params::parse_range;
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryParams {
    pub tenant: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub source: Option<String>,
}

#[utoipa::path(get, path = "/v1/kamachiq/summary", tag = "kamachiq",
    params(SummaryParams),
    responses((status = 200, description = "`{runs, succeeded_runs, success_rate, duration_ms_p50, duration_ms_p95, steps_per_run, retries, auto_approval_rate, spend_usd, spend_per_run_usd}`", body = Object), (status = 400, description = "A bad parameter: the error names it", body = crate::error::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks the scope or the tenant", body = crate::error::ErrorBody),
        (status = 429, description = "The token's rate limit; see Retry-After", body = crate::error::ErrorBody)),
    security(("bearer" = ["usage:read"])))]
pub async fn get_summary(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<SummaryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::UsageRead)?;
    let Query(p) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let tenant = caller
        .tenant(p.tenant.as_deref())?
        .ok_or_else(|| ApiError::bad_request("tenant_required", "name the tenant: tenant=<id>"))?;
    let range = parse_range(p.from.as_deref(), p.to.as_deref())?;
    let store = state.stores.pick(p.source.as_deref())?;
    let mut body = kamachiq::summary(&store, &tenant, range.0, range.1).await?;
    body["tenant"] = json!(tenant);
    body["source"] = json!(store.name());
    Ok(Json(body))
}
