//! `GET /v1/tenants/{tenant}/capsules/top?by=runs|cost|revenue&from=&to=&limit=`:
//! the marketplace leaderboard of a tenant's capsule use, or, with the
//! `admin` scope and tenant `*`, over every tenant. Runs and cost come from
//! capsule runs; revenue is marketplace purchases minus refunds.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use somaflow_sql::marketplace::{self, TopBy};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::params::parse_range;
use crate::state::AppState;

const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TopParams {
    /// runs (default), cost or revenue
    pub by: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub limit: Option<usize>,
    pub source: Option<String>,
}

#[utoipa::path(get, path = "/v1/tenants/{tenant}/capsules/top", tag = "marketplace",
    params(("tenant" = String, Path, description = "A tenant id, or `*` (admin) for every tenant"), TopParams),
    responses((status = 200, description = "`{capsules: [{capsule_id, runs, cost_usd, revenue_usd}]}`", body = Object), (status = 400, description = "A bad parameter: the error names it", body = crate::error::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks the scope or the tenant", body = crate::error::ErrorBody),
        (status = 429, description = "The token's rate limit; see Retry-After", body = crate::error::ErrorBody)),
    security(("bearer" = ["usage:read"])))]
pub async fn get_top(
    State(state): State<AppState>,
    caller: Caller,
    tenant: Result<Path<String>, PathRejection>,
    query: Result<Query<TopParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::UsageRead)?;
    let Path(tenant) =
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
    let limit = p.limit.unwrap_or(10).clamp(1, MAX_LIMIT);
    let (from, to) = parse_range(p.from.as_deref(), p.to.as_deref())?;
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
