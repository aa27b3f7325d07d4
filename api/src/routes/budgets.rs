//! `GET /v1/budgets/{tenant}[?month=YYYY-MM]`: a tenant's month-to-date
//! spend against its monthly budget (default: the current UTC month), as
//! the budget ledger in Redis holds it (see [`somaflow_sql::budgets`]).
//! `PUT /v1/budgets/{tenant}` `{"monthly_budget_usd": "250.00"}`: sets a
//! tenant's monthly budget (0 removes it; `billing:admin`). It applies to
//! the current month's ledger at once; the pipeline picks the new metadata
//! up within `enrich.ttl_secs` (until then a push may carry the old budget
//! from its cache). Answers the budget as `GET` does.
//!
//! Answers: 400 for a bad month, tenant id or budget, 404 for a tenant
//! with neither metadata nor spend that month, 501 when the node has no
//! `[redis]` url (the ledger then lives inside the pipeline process only),
//! 503 while Redis does not answer.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::Value;
use somaflow_pipeline::events::decimal::{format_decimal, parse_decimal};
use somaflow_sql::budgets::{BudgetAnswer, Budgets};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::params::{parse_month, visible_tenant};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BudgetQuery {
    /// `YYYY-MM` (UTC); default the current month.
    pub month: Option<String>,
}

#[utoipa::path(get, path = "/v1/budgets/{tenant}", tag = "billing",
    params(("tenant" = String, Path), BudgetQuery),
    responses((status = 200, description = "Budget, month-to-date spend and status", body = BudgetAnswer),
        (status = 404, description = "Unknown tenant", body = crate::error::ErrorBody),
        (status = 501, description = "No [redis] url on this node", body = crate::error::ErrorBody), (status = 400, description = "A bad parameter: the error names it", body = crate::error::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks the scope or the tenant", body = crate::error::ErrorBody),
        (status = 429, description = "The token's rate limit; see Retry-After", body = crate::error::ErrorBody)),
    security(("bearer" = ["billing:read"])))]
pub async fn get_budget(
    State(state): State<AppState>,
    caller: Caller,
    tenant: Result<Path<String>, PathRejection>,
    query: Result<Query<BudgetQuery>, QueryRejection>,
) -> Result<Json<BudgetAnswer>, ApiError> {
    let Path(tenant) =
        tenant.map_err(|e| ApiError::bad_request("invalid_tenant", e.body_text()))?;
    caller.require(Scope::BillingRead)?;
    caller.tenant(Some(&tenant))?;
    let Query(query) = query.map_err(|e| {
        ApiError::bad_request(
            "invalid_query",
            format!("{}; the only parameter is month=YYYY-MM", e.body_text()),
        )
    })?;
    answer(state.budgets.as_ref(), &tenant, query.month.as_deref())
        .await
        .map(Json)
}

/// The handler without axum: checks, then reads, then answers.
async fn answer(
    budgets: Option<&Budgets>,
    tenant: &str,
    month: Option<&str>,
) -> Result<BudgetAnswer, ApiError> {
    visible_tenant(tenant)?;
    let month = match month {
        Some(m) => parse_month(m)?,
        None => chrono::Utc::now().format("%Y-%m").to_string(),
    };
    let budgets = budgets.ok_or_else(|| ApiError::NotConfigured {
        code: "budgets_not_configured",
        message: "this node has no [redis] url: budgets are then counted inside the pipeline \
                  process only and cannot be read here; set redis.url (SOMAFLOW_REDIS__URL)"
            .to_string(),
    })?;
    Ok(budgets.status(tenant, &month).await?)
}

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
    responses((status = 200, description = "The budget as GET answers it", body = BudgetAnswer), (status = 400, description = "A bad parameter: the error names it", body = crate::error::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks the scope or the tenant", body = crate::error::ErrorBody),
        (status = 429, description = "The token's rate limit; see Retry-After", body = crate::error::ErrorBody)),
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

#[cfg(test)]
mod tests {
    use somaflow_operators::budget::{BudgetConfig, LedgerState};
    use somaflow_operators::redis::RedisConfig;
    use somaflow_sql::budgets::build_answer;

    use super::*;

    /// The status and message the client gets.
    fn code(e: impl Into<ApiError>) -> (u16, String) {
        use axum::response::IntoResponse;
        let e: ApiError = e.into();
        let message = e.to_string();
        (e.into_response().status().as_u16(), message)
    }

    #[test]
    fn a_tenant_without_metadata_or_spend_is_unknown() {
        let e = build_answer("ghost", "2026-12", &LedgerState::default(), None, 80).unwrap_err();
        let (status, message) = code(e);
        assert_eq!(status, 404);
        assert!(message.contains("tenant:ghost"), "{message}");
    }

    #[test]
    fn months_are_checked() {
        assert_eq!(parse_month("2026-12").unwrap(), "2026-12");
        assert_eq!(parse_month("2024-02").unwrap(), "2024-02");
        for bad in [
            "2026-13",
            "2026-00",
            "2026-1",
            "26-01",
            "2026/01",
            "2026-1x",
            "",
            "２０２６-01",
        ] {
            let e = parse_month(bad).unwrap_err();
            assert_eq!(code(e).0, 400, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn errors_before_and_without_redis() {
        // A bad month or tenant id is 400 whatever the node's config.
        let e = answer(None, "t", Some("2026-13")).await.unwrap_err();
        assert_eq!(code(e).0, 400);
        let e = answer(None, "a b", None).await.unwrap_err();
        assert_eq!(code(e).0, 400);
        let e = answer(None, "t", None).await.unwrap_err();
        let (status, message) = code(e);
        assert_eq!(status, 501);
        assert!(message.contains("redis.url"), "{message}");
    }

    #[tokio::test]
    async fn a_redis_that_does_not_answer_is_503() {
        // A port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let redis = RedisConfig {
            url: Some(format!("redis://:secret@127.0.0.1:{port}")),
            timeout_ms: 300,
        };
        let budgets = Budgets::connect(&redis, &BudgetConfig::default())
            .unwrap()
            .unwrap();
        let e = answer(Some(&budgets), "t", Some("2026-12"))
            .await
            .unwrap_err();
        let (status, message) = code(e);
        assert_eq!(status, 503);
        assert!(!message.contains("secret"), "no password in {message}");
    }
}
