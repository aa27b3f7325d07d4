//! `PUT /v1/budgets/{tenant}` `{"monthly_budget_usd": "250.00"}`: sets a
//! tenant's monthly budget (0 removes it; `billing:admin`). It applies to
//! the current month's ledger at once; the pipeline picks the new metadata
//! up within `enrich.ttl_secs` (until then a push may carry the old budget
//! from its cache). Answers the budget as `GET` does.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::Value;
use somaflow_pipeline::events::decimal::{format_decimal, parse_decimal};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::routes::budgets::{BudgetAnswer, answer, visible_tenant};
use crate::state::AppState;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetUpdate {
    /// A decimal string or number, in USD.
    #[schema(value_type = String)]
    pub monthly_budget_usd: Value,
}

#[utoipa::path(put, path = "/v1/budgets/{tenant}", tag = "billing",
    params(("tenant" = String, Path)),
    request_body = BudgetUpdate,
    responses((status = 200, description = "The budget as GET answers it", body = crate::routes::budgets::BudgetAnswer), (status = 400, description = "A bad parameter: the error names it", body = crate::openapi::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token lacks the scope or the tenant", body = crate::openapi::ErrorBody),
        (status = 429, description = "The token's rate limit; see Retry-After", body = crate::openapi::ErrorBody)),
    security(("bearer" = ["billing:admin"])))]
pub async fn put_budget(
    State(state): State<AppState>,
    caller: Caller,
    tenant: Result<Path<String>, PathRejection>,
    body: Result<Json<BudgetUpdate>, JsonRejection>,
) -> Result<Json<BudgetAnswer>, ApiError> {
    let Path(tenant) =
        tenant.map_err(|e| ApiError::bad_request("invalid_tenant", e.body_text()))?;
    caller.require(Scope::BillingAdmin)?;
    caller.tenant(Some(&tenant))?;
    visible_tenant(&tenant)?;
    let Json(update) = body.map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!(
                "{}; send {{\"monthly_budget_usd\": \"250.00\"}}",
                e.body_text()
            ),
        )
    })?;
    let text = match &update.monthly_budget_usd {
        Value::String(s) => s.trim().to_string(),
        Value::Number(n) => n.to_string(),
        other => {
            return Err(ApiError::bad_request(
                "invalid_budget",
                format!("monthly_budget_usd must be a decimal, not {other}"),
            ));
        }
    };
    let nanos = parse_decimal(&text)
        .ok()
        .filter(|n| *n >= 0)
        .ok_or_else(|| {
            ApiError::bad_request(
                "invalid_budget",
                format!("monthly_budget_usd {text:?} must be a decimal of at least 0 with at most 9 places"),
            )
        })?;
    let budgets = state
        .budgets
        .as_ref()
        .ok_or_else(|| ApiError::NotConfigured {
            code: "budgets_not_configured",
            message: "this node has no [redis] url, where budgets live; set redis.url".into(),
        })?;
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    budgets
        .set_monthly(&tenant, &month, nanos, &format_decimal(nanos))
        .await?;
    answer(Some(budgets), &tenant, Some(&month)).await.map(Json)
}
