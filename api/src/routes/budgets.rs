//! `GET /v1/budgets/{tenant}[?month=YYYY-MM]`: a tenant's month-to-date
//! spend against its monthly budget (default: the current UTC month).
//!
//! Everything comes from the budget ledger in Redis, the state the `budget`
//! operator pushes to and dispatch checks (`budget:{tenant}:{YYYY-MM}`, see
//! `somaflow_operators::budget`): spend, and the crossings it recorded. The
//! status is those crossings, so it always agrees with `budget_events` and
//! with what dispatch refuses. The budget is the ledger's (set once a
//! conversation of the tenant was processed), else the tenant metadata's
//! `monthly_budget_usd` (`tenant:{id}`); zero or absent = no budget, as for
//! the operator. Money is exact: decimal strings with 9 places.
//!
//! Answers: 400 for a bad month or tenant id, 404 for a tenant with neither
//! metadata nor spend that month, 501 when the node has no `[redis]` url
//! (the ledger then lives inside the pipeline process only), 503 while
//! Redis does not answer.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use somaflow_operators::budget::{BudgetView, LedgerError, LedgerState, RedisLedger};
use somaflow_operators::enrich::read_tenant;
use somaflow_operators::redis_link::{RedisLink, RedisLinkError};
use somaflow_pipeline::Config;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::money::usd;
use crate::state::AppState;

/// Label of the API's Redis commands in `somaflow_redis_errors`.
const NODE: &str = "api";
/// Longest tenant id accepted (the ids themselves are not checked further).
const MAX_TENANT_LEN: usize = 256;

/// How the API reads budgets: its own link to the Redis the pipeline
/// shares, and the same ledger reader the pipeline uses. Cheap to clone.
#[derive(Clone)]
pub struct Budgets {
    link: RedisLink,
    view: BudgetView,
}

impl Budgets {
    /// `None` when the config has no `[redis]` url.
    pub fn from_config(config: &Config) -> Result<Option<Budgets>, RedisLinkError> {
        let Some(url) = &config.redis.url else {
            return Ok(None);
        };
        let link = RedisLink::new(
            url,
            std::time::Duration::from_millis(config.redis.timeout_ms),
        )?;
        let view = BudgetView::new(
            std::sync::Arc::new(RedisLedger::new(NODE, link.clone())),
            config.budget.soft_percent,
            std::time::Duration::from_millis(config.budget.status_refresh_ms),
        );
        Ok(Some(Budgets { link, view }))
    }

    /// Sets `tenant`'s monthly budget: in its metadata (what enrich hands
    /// the budget operator from now on) and in the current month's ledger
    /// (what GET and the next crossing check use at once). 0 removes it.
    pub(crate) async fn set_monthly(
        &self,
        tenant: &str,
        month: &str,
        nanos: i128,
        text: &str,
    ) -> Result<(), ApiError> {
        let meta_key = format!("{}{tenant}", somaflow_operators::enrich::TENANT_KEY_PREFIX);
        let ledger_key = somaflow_operators::budget::ledger_key(tenant, month);
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset(&meta_key, "monthly_budget_usd", text)
            .ignore();
        if nanos > 0 {
            pipe.hset(&ledger_key, "budget", nanos.to_string()).ignore();
        } else {
            pipe.hdel(&ledger_key, "budget").ignore();
        }
        self.link
            .run(NODE, move |mut c| async move {
                pipe.query_async::<()>(&mut c).await
            })
            .await
            .map_err(redis_error)
    }

    /// The tenant-month's ledger state and the tenant's metadata budget
    /// (`None` = no metadata hash; `Some(None)` = a hash without a budget).
    async fn read(
        &self,
        tenant: &str,
        month: &str,
    ) -> Result<(LedgerState, Option<Option<i128>>), ApiError> {
        let (ledger, meta) = tokio::join!(
            self.view.read(tenant, month),
            read_tenant(&self.link, NODE, tenant)
        );
        let ledger = ledger.map_err(|e| match e {
            LedgerError::Redis(e) => redis_error(e),
            e @ LedgerError::Answer(_) => ApiError::Internal(e.to_string()),
        })?;
        let meta = meta.map_err(redis_error)?;
        Ok((ledger, meta.map(|m| m.monthly_budget_usd)))
    }
}

/// The message names neither the URL (it may hold a password) nor more
/// than the reason; the log has the whole error.
fn redis_error(e: RedisLinkError) -> ApiError {
    match e {
        RedisLinkError::Unavailable { reason, .. } => ApiError::Unavailable {
            message: format!(
                "budgets are kept in Redis, which does not answer right now ({reason}); retry shortly"
            ),
            retry_after_secs: 1,
        },
        e @ RedisLinkError::BadUrl { .. } => ApiError::Internal(e.to_string()),
    }
}

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct BudgetQuery {
    /// `YYYY-MM` (UTC); default the current month.
    pub month: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BudgetStatus {
    /// Under the soft threshold.
    Ok,
    /// Past the soft threshold (`soft_percent` of the budget).
    SoftExceeded,
    /// Past the budget: dispatch refuses the tenant's queued steps.
    HardExceeded,
    /// No monthly budget known, so no threshold applies.
    NoBudget,
}

#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BudgetAnswer {
    pub tenant: String,
    pub month: String,
    pub budget_usd: Option<String>,
    pub spend_usd: String,
    /// Budget − spend; negative once overspent.
    pub remaining_usd: Option<String>,
    /// Spend / budget × 100, rounded to 2 places.
    pub percent_used: Option<f64>,
    pub status: BudgetStatus,
    pub soft_percent: u32,
    /// Month-to-date spend when the ledger recorded each crossing.
    pub soft_crossed_at_spend_usd: Option<String>,
    pub hard_crossed_at_spend_usd: Option<String>,
}

#[utoipa::path(get, path = "/v1/budgets/{tenant}", tag = "billing",
    params(("tenant" = String, Path), BudgetQuery),
    responses((status = 200, description = "Budget, month-to-date spend and status", body = BudgetAnswer),
        (status = 404, description = "Unknown tenant", body = crate::openapi::ErrorBody),
        (status = 501, description = "No [redis] url on this node", body = crate::openapi::ErrorBody), (status = 400, description = "A bad parameter: the error names it", body = crate::openapi::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token lacks the scope or the tenant", body = crate::openapi::ErrorBody),
        (status = 429, description = "The token's rate limit; see Retry-After", body = crate::openapi::ErrorBody)),
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
pub(crate) async fn answer(
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
    let (ledger, meta_budget) = budgets.read(tenant, &month).await?;
    build_answer(
        tenant,
        &month,
        &ledger,
        meta_budget,
        budgets.view.soft_percent(),
    )
}

/// Whether `tenant` is a well-formed id (the caller's right to it is
/// checked before, from its token).
pub(crate) fn visible_tenant(tenant: &str) -> Result<(), ApiError> {
    if tenant.is_empty()
        || tenant.len() > MAX_TENANT_LEN
        || tenant.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::bad_request(
            "invalid_tenant",
            format!("tenant id {tenant:?} must be 1 to {MAX_TENANT_LEN} bytes without whitespace"),
        ));
    }
    Ok(())
}

/// `YYYY-MM`, a real month.
pub(crate) fn parse_month(text: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_month",
            format!("month {text:?} is not a month; use YYYY-MM, e.g. 2026-12"),
        )
    };
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 7 || b[4] != b'-' || !digits(0..4) || !digits(5..7) {
        return Err(bad());
    }
    let year: i32 = text[..4].parse().map_err(|_| bad())?;
    let month: u32 = text[5..].parse().map_err(|_| bad())?;
    NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad)?;
    Ok(text.to_string())
}

/// The answer from what Redis holds. `meta_budget`: `None` when the tenant
/// has no metadata hash, else its `monthly_budget_usd` if usable.
fn build_answer(
    tenant: &str,
    month: &str,
    ledger: &LedgerState,
    meta_budget: Option<Option<i128>>,
    soft_percent: u32,
) -> Result<BudgetAnswer, ApiError> {
    if meta_budget.is_none() && *ledger == LedgerState::default() {
        return Err(ApiError::NotFound {
            code: "unknown_tenant",
            message: format!(
                "tenant {tenant:?} has no metadata (Redis hash tenant:{tenant}) and no spend in \
                 {month}; load tenants with `somaflow tenants import`"
            ),
        });
    }
    let budget = ledger
        .budget_nanos
        .or(meta_budget.flatten())
        .filter(|b| *b > 0);
    let spend = ledger.total_nanos;
    // The ledger's crossings decide, as they decide budget_events and dispatch.
    let status = match (&ledger.hard, &ledger.soft, budget) {
        (Some(_), _, _) => BudgetStatus::HardExceeded,
        (None, Some(_), _) => BudgetStatus::SoftExceeded,
        (None, None, Some(_)) => BudgetStatus::Ok,
        (None, None, None) => BudgetStatus::NoBudget,
    };
    Ok(BudgetAnswer {
        tenant: tenant.to_string(),
        month: month.to_string(),
        budget_usd: budget.map(usd),
        spend_usd: usd(spend),
        remaining_usd: budget.map(|b| usd(b.saturating_sub(spend))),
        percent_used: budget.map(|b| percent(spend, b)),
        status,
        soft_percent,
        soft_crossed_at_spend_usd: ledger.soft.as_ref().map(|c| usd(c.total_nanos)),
        hard_crossed_at_spend_usd: ledger.hard.as_ref().map(|c| usd(c.total_nanos)),
    })
}

/// `part / whole × 100` rounded half up to 2 places (`whole` > 0); only
/// the final value is a float.
fn percent(part: i128, whole: i128) -> f64 {
    match part.checked_mul(20_000) {
        Some(p) => ((p / whole + part.signum()) / 2) as f64 / 100.0,
        // Beyond any real spend: a float is close enough.
        None => part as f64 / whole as f64 * 100.0,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use somaflow_operators::budget::Crossing;

    use super::*;

    const USD: i128 = crate::money::NANOS_PER_USD;

    fn crossing(total_nanos: i128) -> Option<Crossing> {
        Some(Crossing {
            shard: "conversations@0".into(),
            total_nanos,
        })
    }

    /// The status and message the client gets.
    fn code(e: ApiError) -> (u16, String) {
        use axum::response::IntoResponse;
        let message = e.to_string();
        (e.into_response().status().as_u16(), message)
    }

    #[test]
    fn a_hard_crossing_answers_exact_money_and_the_ledger_status() {
        let ledger = LedgerState {
            total_nanos: 3_410_000_001,
            budget_nanos: Some(3 * USD),
            soft: crossing(2_400_000_000),
            hard: crossing(3_000_000_007),
        };
        // The ledger's budget wins over the metadata's.
        let a = build_answer("t", "2026-12", &ledger, Some(Some(20_000 * USD)), 80).unwrap();
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({
                "tenant": "t",
                "month": "2026-12",
                "budget_usd": "3.000000000",
                "spend_usd": "3.410000001",
                "remaining_usd": "-0.410000001",
                "percent_used": 113.67,
                "status": "hard_exceeded",
                "soft_percent": 80,
                "soft_crossed_at_spend_usd": "2.400000000",
                "hard_crossed_at_spend_usd": "3.000000007",
            })
        );
    }

    #[test]
    fn status_follows_the_recorded_crossings() {
        let mut ledger = LedgerState {
            total_nanos: 85 * USD,
            budget_nanos: Some(100 * USD),
            soft: crossing(81 * USD),
            hard: None,
        };
        let status = |l: &LedgerState| build_answer("t", "2026-12", l, None, 80).unwrap().status;
        assert_eq!(status(&ledger), BudgetStatus::SoftExceeded);
        // Spend past the soft share but no crossing recorded yet: what
        // budget_events and dispatch know, i.e. ok.
        ledger.soft = None;
        assert_eq!(status(&ledger), BudgetStatus::Ok);
        // A crossing stays even if the budget later reads as zero.
        ledger.hard = crossing(100 * USD);
        ledger.budget_nanos = None;
        assert_eq!(status(&ledger), BudgetStatus::HardExceeded);
    }

    #[test]
    fn without_ledger_budget_the_metadata_budget_is_shown() {
        let a = build_answer(
            "t",
            "2026-12",
            &LedgerState::default(),
            Some(Some(5 * USD)),
            80,
        )
        .unwrap();
        assert_eq!(a.status, BudgetStatus::Ok);
        assert_eq!(a.budget_usd.as_deref(), Some("5.000000000"));
        assert_eq!(a.spend_usd, "0.000000000");
        assert_eq!(a.remaining_usd.as_deref(), Some("5.000000000"));
        assert_eq!(a.percent_used, Some(0.0));
        assert_eq!(a.soft_crossed_at_spend_usd, None);
    }

    #[test]
    fn no_budget_anywhere_is_no_budget_with_nulls() {
        for meta in [Some(None), Some(Some(0))] {
            let a = build_answer("t", "2026-12", &LedgerState::default(), meta, 80).unwrap();
            let v = serde_json::to_value(&a).unwrap();
            assert_eq!(v["status"], "no_budget");
            assert_eq!(v["budget_usd"], serde_json::Value::Null);
            assert_eq!(v["remaining_usd"], serde_json::Value::Null);
            assert_eq!(v["percent_used"], serde_json::Value::Null);
        }
        // Spend but no budget (and no metadata): known, no budget.
        let ledger = LedgerState {
            total_nanos: 7,
            ..LedgerState::default()
        };
        let a = build_answer("t", "2026-12", &ledger, None, 80).unwrap();
        assert_eq!(
            (a.status, a.spend_usd.as_str()),
            (BudgetStatus::NoBudget, "0.000000007")
        );
    }

    #[test]
    fn a_tenant_without_metadata_or_spend_is_unknown() {
        let e = build_answer("ghost", "2026-12", &LedgerState::default(), None, 80).unwrap_err();
        let (status, message) = code(e);
        assert_eq!(status, 404);
        assert!(message.contains("tenant:ghost"), "{message}");
    }

    #[test]
    fn money_is_exact_and_percent_rounds_half_up() {
        assert_eq!(usd(0), "0.000000000");
        assert_eq!(usd(1), "0.000000001");
        assert_eq!(usd(-1_500_000_000), "-1.500000000");
        assert_eq!(usd(i128::from(u64::MAX)), "18446744073.709551615");
        assert_eq!(percent(1, 3), 33.33);
        assert_eq!(percent(2, 3), 66.67);
        assert_eq!(percent(1_136_000, 1_000_000), 113.6);
        assert_eq!(percent(0, 3), 0.0);
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
        let mut config = Config::default();
        config.redis.url = Some(format!("redis://:secret@127.0.0.1:{port}"));
        config.redis.timeout_ms = 300;
        let budgets = Budgets::from_config(&config).unwrap().unwrap();
        let e = answer(Some(&budgets), "t", Some("2026-12"))
            .await
            .unwrap_err();
        let (status, message) = code(e);
        assert_eq!(status, 503);
        assert!(!message.contains("secret"), "no password in {message}");
    }
}
