//! `GET /v1/tenants/{tenant}/capsules/top?by=runs|cost|revenue&from=&to=&limit=`:
//! the marketplace leaderboard of a tenant's capsule use, or, with the
//! `admin` scope and tenant `*`, over every tenant. Runs and cost come from
//! capsule runs; revenue is marketplace purchases minus refunds.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use somaflow_sql::money::usd;
use somaflow_sql::store::{Sum, SumQuery};

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
    if !["runs", "cost", "revenue"].contains(&by) {
        return Err(ApiError::bad_request(
            "invalid_by",
            format!("by={by:?}: use runs, cost or revenue"),
        ));
    }
    let limit = p.limit.unwrap_or(10).clamp(1, MAX_LIMIT);
    let (from, to) = parse_range(p.from.as_deref(), p.to.as_deref())?;
    let store = state.stores.pick(p.source.as_deref())?;
    let runs = SumQuery {
        table: "capsule_executions",
        time_column: "event_time",
        from,
        to,
        bucket_secs: None,
        groups: vec!["capsule_id"],
        sums: vec![Sum::int("1"), Sum::decimal("cost_usd")],
        condition: None,
    };
    let revenue = SumQuery {
        table: "marketplace_transactions",
        time_column: "event_time",
        from,
        to,
        bucket_secs: None,
        groups: vec!["capsule_id"],
        sums: vec![
            Sum::int("CASE WHEN tx_type = 'purchase' THEN amount_cents ELSE 0 END"),
            Sum::int("CASE WHEN tx_type = 'refund' THEN amount_cents ELSE 0 END"),
        ],
        condition: Some("currency = 'USD'"),
    };
    let (runs, revenue) = tokio::try_join!(
        store.sums(&runs, scope.as_deref()),
        store.sums(&revenue, scope.as_deref())
    )?;
    // capsule → (runs, cost nanos, revenue nanos)
    let mut board: BTreeMap<String, (i128, i128, i128)> = BTreeMap::new();
    for r in &runs {
        let e = board.entry(r.group[0].clone()).or_default();
        e.0 += r.sums[0];
        e.1 += r.sums[1];
    }
    for r in &revenue {
        let e = board.entry(r.group[0].clone()).or_default();
        e.2 += (r.sums[0] - r.sums[1].abs()) * 10_000_000;
    }
    let mut rows: Vec<(String, (i128, i128, i128))> = board.into_iter().collect();
    let key = |v: &(i128, i128, i128)| match by {
        "runs" => v.0,
        "cost" => v.1,
        _ => v.2,
    };
    // Highest first; ties by capsule id, so both stores order alike.
    rows.sort_by(|a, b| key(&b.1).cmp(&key(&a.1)).then_with(|| a.0.cmp(&b.0)));
    let top: Vec<Value> = rows
        .into_iter()
        .take(limit)
        .map(|(capsule, (runs, cost, revenue))| {
            json!({"capsule_id": capsule, "runs": runs as i64, "cost_usd": usd(cost), "revenue_usd": usd(revenue)})
        })
        .collect();
    Ok(Json(json!({
        "tenant": if tenant == "*" { Value::Null } else { json!(tenant) },
        "by": by,
        "from": from.to_rfc3339(),
        "to": to.to_rfc3339(),
        "source": store.name(),
        "capsules": top,
    })))
}
