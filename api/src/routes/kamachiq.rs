//! `GET /v1/kamachiq/summary?tenant=&from=&to=`: the tenant's KAMACHIQ
//! workflow runs in `[from, to)` (see [`somaflow_sql::kamachiq`]).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use somaflow_pipeline::rules::TIME;
use somaflow_sql::contract;
use somaflow_sql::kamachiq;
use utoipa::openapi::path::{Parameter, ParameterIn};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::params::parse_range;
use crate::routes::forecasts::SOURCE;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct SummaryParams {
    pub tenant: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub source: Option<String>,
}

impl utoipa::IntoParams for SummaryParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        use contract::query;
        vec![
            query(
                "tenant",
                false,
                "The tenant; required for a token bound to none",
                contract::id(),
            ),
            query(
                "from",
                false,
                "Start; default 30 days before `to`",
                contract::time(),
            ),
            query(
                "to",
                false,
                "End (exclusive); default now",
                contract::time(),
            ),
            query("source", false, SOURCE, contract::source()),
        ]
    }
}

#[utoipa::path(get, path = "/v1/kamachiq/summary", tag = "kamachiq",
    params(SummaryParams),
    responses((status = 200, description = "`{runs, succeeded_runs, success_rate, duration_ms_p50, duration_ms_p95, steps_per_run, retries, auto_approval_rate, spend_usd, spend_per_run_usd}`", body = Object),
        (status = 422, description = "`from` is not before `to`, or a day that does not exist", body = crate::error::ErrorBody),
        crate::responses::Refusals),
    security(("bearer" = ["usage:read"])))]
pub async fn get_summary(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<SummaryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::UsageRead)?;
    let Query(p) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let tenant = caller.one_tenant(p.tenant.as_deref())?;
    let range = parse_range(p.from.as_deref(), p.to.as_deref(), &TIME)?;
    let store = state.stores.pick(p.source.as_deref())?;
    let mut body = kamachiq::summary(&store, &tenant, range.0, range.1).await?;
    body["tenant"] = json!(tenant);
    body["source"] = json!(store.name());
    Ok(Json(body))
}
