//! `GET /v1/tenants/{tenant}/capsules/top?by=runs|cost|revenue&from=&to=&limit=`:
//! the marketplace leaderboard of a tenant's capsule use, or, with the
//! `admin` scope and tenant `*`, over every tenant. Runs and cost come from
//! capsule runs; revenue is marketplace purchases minus refunds.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use somaflow_pipeline::rules::TIME;
use somaflow_sql::contract;
use somaflow_sql::marketplace::{self, TopBy};
use utoipa::openapi::path::{Parameter, ParameterIn};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::params::parse_range;
use crate::routes::forecasts::SOURCE;
use crate::state::AppState;

const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Deserialize)]
pub struct TopParams {
    pub by: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
    pub source: Option<String>,
}

impl utoipa::IntoParams for TopParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        use contract::query;
        vec![
            query(
                "by",
                false,
                "Ordered by runs (default), cost or revenue",
                contract::top_by(),
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
            query(
                "limit",
                false,
                "How many capsules (default 10)",
                contract::integer(1, MAX_LIMIT as u64),
            ),
            query("source", false, SOURCE, contract::source()),
        ]
    }
}

/// `{tenant}`: a tenant id, or `*` (admin) for every tenant.
#[derive(Debug, Deserialize)]
pub struct TopPath {
    pub tenant: String,
}

impl utoipa::IntoParams for TopPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![contract::path(
            "tenant",
            "A tenant id, or `*` (admin) for every tenant",
            contract::id(),
        )]
    }
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/capsules/top", tag = "marketplace",
    params(TopPath, TopParams),
    responses((status = 200, description = "`{capsules: [{capsule_id, runs, cost_usd, revenue_usd}]}`", body = Object),
        (status = 422, description = "`from` is not before `to`, or a day that does not exist", body = crate::error::ErrorBody),
        crate::responses::Refusals),
    security(("bearer" = ["usage:read"])))]
pub async fn get_top(
    State(state): State<AppState>,
    caller: Caller,
    tenant: Result<Path<TopPath>, PathRejection>,
    query: Result<Query<TopParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::UsageRead)?;
    let Path(TopPath { tenant }) =
        tenant.map_err(|e| ApiError::bad_request("invalid_tenant", e.body_text()))?;
    let Query(p) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let scope = if tenant == "*" {
        caller.require(Scope::Admin)?;
        None
    } else {
        caller.tenant(Some(&tenant))?
    };
    let by = p.by.as_deref().unwrap_or("runs");
    let top_by = TopBy::parse(by)?;
    let limit = p.limit.unwrap_or(10);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit={limit}: ask for 1 to {MAX_LIMIT} capsules"),
        ));
    }
    let (from, to) = parse_range(p.from.as_deref(), p.to.as_deref(), &TIME)?;
    let store = state.stores.pick(p.source.as_deref())?;
    let capsules =
        marketplace::top_capsules(&store, scope.as_deref(), top_by, from, to, limit).await?;
    Ok(Json(json!({
        "tenant": if tenant == "*" { Value::Null } else { json!(tenant) },
        "by": by,
        "from": from.to_rfc3339(),
        "to": to.to_rfc3339(),
        "source": store.name(),
        "capsules": capsules,
    })))
}
