//! `GET /v1/budgets/{tenant}[?month=YYYY-MM]`: a tenant's month-to-date
//! spend against its monthly budget (default: the current UTC month), as
//! the budget ledger holds it: in Redis on a cluster node, in the pipeline
//! process on an embedded one (see [`somaflow_sql::budgets`]).
//! `PUT /v1/budgets/{tenant}` `{"monthly_budget_usd": "250.00"}`: sets a
//! tenant's monthly budget (0 removes it; `billing:admin`). It applies to
//! the current month's ledger at once and to the tenant's metadata (the
//! tenants file, or Redis). Answers the budget as `GET` does.
//!
//! Answers: 400 for a bad month, tenant id or budget, 404 for a tenant
//! with neither metadata nor spend that month, 501 on a cluster node
//! without a `[redis]` url (its ledger is in no place the API can read),
//! 503 while Redis does not answer.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::Deserialize;
use serde_json::Value;
use somaflow_pipeline::events::decimal::{format_decimal, parse_decimal};
use somaflow_pipeline::rules::AMOUNT;
use somaflow_sql::budgets::{BudgetAnswer, Budgets};
use somaflow_sql::checks::check_id;
use somaflow_sql::contract;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::params::{TenantPath, month_or_current, whole_number};
use crate::state::AppState;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetQuery {
    pub month: Option<String>,
}

impl utoipa::IntoParams for BudgetQuery {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![contract::query(
            "month",
            false,
            "The month (UTC); default the current month",
            contract::month(),
        )]
    }
}

/// Most whole dollars a budget sent as a JSON number may hold (the
/// [`AMOUNT`] rule's bound).
const MAX_WHOLE_USD: u64 = 999_999_999;

/// `monthly_budget_usd`: an [`AMOUNT`] string, or a whole number of dollars
/// (a JSON number with a fraction would be a float, not money).
fn budget_schema() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(contract::amount())
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0))
                    .maximum(Some(MAX_WHOLE_USD)),
            )
            .build(),
    )
}

/// The budget in nanodollars, if it reads as [`budget_schema`] says.
fn budget_nanos(value: &Value) -> Result<i128, ApiError> {
    let text = match value {
        Value::String(s) if AMOUNT.matches(s) => Some(s.clone()),
        Value::Number(n) => whole_number(n)
            .filter(|n| *n <= MAX_WHOLE_USD)
            .map(|n| n.to_string()),
        _ => None,
    };
    text.and_then(|t| parse_decimal(&t).ok()).ok_or_else(|| {
        ApiError::bad_request(
            "invalid_budget",
            format!(
                "monthly_budget_usd {value} must be a string of {}, or a whole number of dollars up to {MAX_WHOLE_USD}",
                AMOUNT.words
            ),
        )
    })
}

#[utoipa::path(get, path = "/v1/budgets/{tenant}", tag = "billing",
    params(TenantPath, BudgetQuery),
    responses((status = 200, description = "Budget, month-to-date spend and status", body = BudgetAnswer),
        (status = 404, description = "Unknown tenant", body = crate::error::ErrorBody),
        (status = 501, description = "A cluster node without a [redis] url", body = crate::error::ErrorBody), crate::responses::Refusals),
    security(("bearer" = ["billing:read"])))]
pub async fn get_budget(
    State(state): State<AppState>,
    caller: Caller,
    tenant: Result<Path<TenantPath>, PathRejection>,
    query: Result<Query<BudgetQuery>, QueryRejection>,
) -> Result<Json<BudgetAnswer>, ApiError> {
    let tenant = TenantPath::read(tenant)?;
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
    check_id("tenant", tenant)?;
    let month = month_or_current(month)?;
    let budgets = budgets.ok_or_else(|| ApiError::NotConfigured {
        code: "budgets_not_configured",
        message: "this cluster node has no [redis] url: its budgets are counted by the \
                  workers, where the API cannot read them; set redis.url (SOMAFLOW_REDIS__URL)"
            .to_string(),
    })?;
    Ok(budgets.status(tenant, &month).await?)
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetUpdate {
    /// USD: a decimal string, or a whole number of dollars; 0 removes the budget.
    #[schema(schema_with = budget_schema)]
    pub monthly_budget_usd: Value,
}

#[utoipa::path(put, path = "/v1/budgets/{tenant}", tag = "billing",
    params(TenantPath),
    request_body = BudgetUpdate,
    responses((status = 200, description = "The budget as GET answers it", body = BudgetAnswer),
        (status = 404, description = "Unknown tenant: create it with PUT /v1/tenants/{tenant}", body = crate::error::ErrorBody),
        (status = 501, description = "No [redis] url on a cluster node", body = crate::error::ErrorBody),
        crate::responses::Refusals),
    security(("bearer" = ["billing:admin"])))]
pub async fn put_budget(
    State(state): State<AppState>,
    caller: Caller,
    tenant: Result<Path<TenantPath>, PathRejection>,
    body: Result<Json<BudgetUpdate>, JsonRejection>,
) -> Result<Json<BudgetAnswer>, ApiError> {
    let tenant = TenantPath::read(tenant)?;
    caller.require(Scope::BillingAdmin)?;
    caller.tenant(Some(&tenant))?;
    let Json(update) = body.map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!(
                "{}; send {{\"monthly_budget_usd\": \"250.00\"}}",
                e.body_text()
            ),
        )
    })?;
    let nanos = budget_nanos(&update.monthly_budget_usd)?;
    let budgets = state
        .budgets
        .as_ref()
        .ok_or_else(|| ApiError::NotConfigured {
            code: "budgets_not_configured",
            message: "this cluster node has no [redis] url, where budgets live; set redis.url"
                .into(),
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
    fn budgets_are_amount_strings_or_whole_dollars() {
        use serde_json::json;
        assert_eq!(budget_nanos(&json!("250.50")).unwrap(), 250_500_000_000);
        assert_eq!(budget_nanos(&json!(250)).unwrap(), 250_000_000_000);
        assert_eq!(budget_nanos(&json!(250.0)).unwrap(), 250_000_000_000);
        for bad in [
            json!(""),
            json!(" 5"),
            json!(2.5),
            json!(-1),
            json!("1e3"),
            json!(null),
        ] {
            assert_eq!(code(budget_nanos(&bad).unwrap_err()).0, 400, "{bad}");
        }
    }

    #[test]
    fn months_are_checked() {
        use crate::params::parse_month;
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
