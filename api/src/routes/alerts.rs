//! `GET /v1/alerts[?tenant=&limit=100]`: the alerts this node is delivering
//! and has delivered: each delivery still waiting (`pending`: for its
//! checkpoint or for its next attempt, with the last failure), then the
//! recent attempts, newest first (`delivered`, or `failed` and retried).
//! A tenant token sees its tenant's only. 501 when the node has no
//! `alerts` node (see docs/alerts.md).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use serde::Deserialize;
use serde_json::{Value, json};
use somaflow_sql::contract;
use utoipa::openapi::path::{Parameter, ParameterIn};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::state::AppState;

/// The most deliveries one answer lists.
const MAX_LIMIT: usize = 1_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsQuery {
    pub tenant: Option<String>,
    pub limit: Option<usize>,
}

impl utoipa::IntoParams for AlertsQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![
            contract::query(
                "tenant",
                false,
                "Only this tenant's alerts (a tenant token: its own)",
                contract::id(),
            ),
            contract::query(
                "limit",
                false,
                "Most deliveries listed, 1 to 1000 (default 100)",
                contract::integer(1, MAX_LIMIT as u64),
            ),
        ]
    }
}

#[utoipa::path(get, path = "/v1/alerts", tag = "billing",
    params(AlertsQuery),
    responses((status = 200, description = "`{alerts: [{alert_id, event, tenant, webhook, status: pending|delivered|failed|dropped, attempts, http_status, error, at}]}`: waiting deliveries first, then recent attempts, newest first", body = Object),
        (status = 501, description = "The node has no `alerts` node", body = crate::error::ErrorBody),
        crate::responses::Refusals),
    security(("bearer" = ["billing:read"])))]
pub async fn get_alerts(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<AlertsQuery>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::BillingRead)?;
    let Query(q) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let tenant = caller.tenant(q.tenant.as_deref())?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit={limit}: ask for 1 to {MAX_LIMIT} deliveries"),
        ));
    }
    let hub = state.alerts.as_ref().ok_or_else(|| ApiError::NotConfigured {
        code: "alerts_not_configured",
        message: "this node delivers no alerts: add an `alerts` node fed `budget.budget_events` and [[alerts.webhooks]] (docs/alerts.md)".into(),
    })?;
    Ok(Json(
        json!({ "alerts": hub.recent(tenant.as_deref(), limit) }),
    ))
}
