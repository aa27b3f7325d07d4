//! A tenant's budget for a month, read from (and set in) the budget
//! ledger: the state the `budget` operator pushes to and dispatch checks
//! (see `somaflow_operators::budget`): spend, and the crossings it
//! recorded. The ledger is Redis's (`budget:{tenant}:{YYYY-MM}`) when
//! `[redis]` has a url, else the one the node's own pipeline keeps in
//! process. The status is those crossings, so it always agrees with
//! `budget_events` and with what dispatch refuses. The budget is the
//! ledger's (set once a conversation of the tenant was processed), else
//! the tenant metadata's `monthly_budget_usd`; zero or absent = no budget,
//! as for the operator. Money is exact: decimal strings with 9 places.

use serde::Serialize;
use somaflow_operators::budget::{BudgetConfig, BudgetView, LedgerError, LedgerState, RedisLedger};
use somaflow_operators::enrich::{CatalogError, MetadataError, MetadataStore};
use somaflow_operators::redis::{RedisConfig, RedisLink, RedisLinkError};

use crate::error::QueryError;
use crate::money::usd;

/// Label of the query side's Redis commands in `somaflow_redis_errors`.
const NODE: &str = "api";

/// How budgets are read and set: where the tenant metadata is, and the
/// same ledger reader the pipeline uses. Cheap to clone.
#[derive(Clone)]
pub struct Budgets {
    metadata: MetadataStore,
    view: BudgetView,
}

impl Budgets {
    /// Budgets of a node whose ledger and metadata are in Redis: a link of
    /// its own to the Redis the pipeline shares. `None` when `[redis]` has
    /// no url.
    pub fn connect(
        redis: &RedisConfig,
        budget: &BudgetConfig,
    ) -> Result<Option<Budgets>, RedisLinkError> {
        let Some(url) = &redis.url else {
            return Ok(None);
        };
        let link = RedisLink::new(url, std::time::Duration::from_millis(redis.timeout_ms))?;
        let view = BudgetView::new(
            std::sync::Arc::new(RedisLedger::new(NODE, link.clone())),
            budget.soft_percent,
            std::time::Duration::from_millis(budget.status_refresh_ms),
        );
        Ok(Some(Budgets {
            metadata: MetadataStore::Redis(link),
            view,
        }))
    }

    /// Budgets read from `view` (the pipeline's own, on a node without
    /// Redis) with metadata from `metadata`.
    pub fn new(metadata: MetadataStore, view: BudgetView) -> Budgets {
        Budgets { metadata, view }
    }

    /// Sets `tenant`'s monthly budget: in its metadata (what enrich hands
    /// the budget operator from now on) and in the current month's ledger
    /// (what GET and the next crossing check use at once). 0 removes it.
    pub async fn set_monthly(
        &self,
        tenant: &str,
        month: &str,
        nanos: i128,
        text: &str,
    ) -> Result<(), QueryError> {
        self.metadata
            .set_monthly_budget(NODE, tenant, text)
            .await
            .map_err(metadata_error)?;
        self.view
            .set_budget(tenant, month, Some(nanos))
            .await
            .map_err(ledger_error)
    }

    /// The tenant's budget, spend and status in `month` (`YYYY-MM`).
    pub async fn status(&self, tenant: &str, month: &str) -> Result<BudgetAnswer, QueryError> {
        let (ledger, meta_budget) = self.read(tenant, month).await?;
        build_answer(
            tenant,
            month,
            &ledger,
            meta_budget,
            self.view.soft_percent(),
        )
    }

    /// The tenant-month's ledger state and the tenant's metadata budget
    /// (`None` = no metadata; `Some(None)` = metadata without a budget).
    async fn read(
        &self,
        tenant: &str,
        month: &str,
    ) -> Result<(LedgerState, Option<Option<i128>>), QueryError> {
        let (ledger, meta) = tokio::join!(
            self.view.read(tenant, month),
            self.metadata.tenant(NODE, tenant)
        );
        let ledger = ledger.map_err(ledger_error)?;
        let meta = meta.map_err(metadata_error)?;
        Ok((ledger, meta.map(|m| m.monthly_budget_usd)))
    }
}

fn ledger_error(e: LedgerError) -> QueryError {
    match e {
        LedgerError::Redis(e) => redis_error(e),
        e @ LedgerError::Answer(_) => QueryError::Internal(e.to_string()),
    }
}

fn metadata_error(e: MetadataError) -> QueryError {
    match e {
        MetadataError::Redis(e) => redis_error(e),
        MetadataError::Catalog(CatalogError::Invalid(reason)) => {
            QueryError::bad_param("invalid_metadata", reason)
        }
        e @ MetadataError::UnknownTenant(_) => QueryError::NotFound {
            code: "unknown_tenant",
            message: e.to_string(),
        },
        e @ MetadataError::Catalog(_) => QueryError::Internal(e.to_string()),
    }
}

/// The message names neither the URL (it may hold a password) nor more
/// than the reason; the log has the whole error.
fn redis_error(e: RedisLinkError) -> QueryError {
    match e {
        RedisLinkError::Unavailable { reason, .. } => QueryError::Unavailable {
            message: format!(
                "budgets are kept in Redis, which does not answer right now ({reason}); retry shortly"
            ),
            retry_after_secs: 1,
        },
        e @ RedisLinkError::BadUrl { .. } => QueryError::Internal(e.to_string()),
    }
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

/// The answer from what Redis holds. `meta_budget`: `None` when the tenant
/// has no metadata hash, else its `monthly_budget_usd` if usable.
pub fn build_answer(
    tenant: &str,
    month: &str,
    ledger: &LedgerState,
    meta_budget: Option<Option<i128>>,
    soft_percent: u32,
) -> Result<BudgetAnswer, QueryError> {
    if meta_budget.is_none() && *ledger == LedgerState::default() {
        return Err(QueryError::NotFound {
            code: "unknown_tenant",
            message: format!(
                "tenant {tenant:?} has no metadata (Redis hash tenant:{tenant}, or a row of the \
                 tenants file) and no spend in {month}; add it with PUT /v1/tenants/{tenant} \
                 or `somaflow tenants import`"
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
}
