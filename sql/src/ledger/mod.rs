//! A tenant's billing ledger for a month: what it owes, line by line, with
//! exact decimal amounts. [`queries`] states the sums it needs (either
//! store answers them); [`build`] turns the sums and the price table into
//! lines and totals. How each amount is computed, and why, is in
//! docs/decisions/ (0077–0081, "Ledgers").

pub mod build;
pub mod queries;

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use somaflow_operators::accounting::PriceTable;

use crate::error::StoreError;
use crate::store::{Store, SumQuery};
use build::{LedgerSums, build_all};

/// One line of a ledger. Amounts are USD decimal strings with 9 places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LedgerLine {
    pub tenant: String,
    /// `llm` (rated by somaflow), `llm_reported` (cost sent by the
    /// producer), `capsule_runs`, `marketplace`.
    pub category: &'static str,
    /// The model, or the capsule.
    pub item: String,
    pub provider: Option<String>,
    pub price_id: Option<String>,
    /// The rate card of the price the line is billed at: `standard`,
    /// `batch`, `flex`, `priority`, or one of those above a prompt length
    /// (`standard_above_200k`); LLM lines only.
    pub price_tier: Option<String>,
    /// The rate dimension: `input_tokens` (not read from or written to the
    /// cache), `cached_input_tokens`, `cache_creation_input_tokens` (5-minute
    /// writes), `cache_creation_1h_input_tokens`, `output_tokens` (not
    /// reasoning), `reasoning_tokens`; or `requests`, `runs`, `purchase`,
    /// `install`, `refund`.
    pub meter: String,
    pub quantity: String,
    pub unit: &'static str,
    pub unit_price_usd: Option<String>,
    pub amount_usd: String,
    #[serde(skip)]
    pub amount_nanos: i128,
}

/// A payout to a capsule author recorded in the tenant's events; paid by
/// the platform, so not part of what the tenant owes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Payout {
    pub author_id: String,
    pub capsule_id: String,
    pub payouts: i64,
    pub amount_usd: String,
}

/// Usage the tenant reported directly (`soma.billing.v1`), by meter; it has
/// no price in somaflow's price table, so it is listed, not charged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ReportedUsage {
    pub meter: String,
    pub unit: String,
    pub quantity: String,
    pub events: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Totals {
    pub llm_usd: String,
    pub capsule_runs_usd: String,
    pub marketplace_purchases_usd: String,
    pub marketplace_refunds_usd: String,
    /// What the tenant owes: LLM + capsule runs + purchases − refunds.
    pub total_usd: String,
    pub payouts_usd: String,
    #[serde(skip)]
    pub total_nanos: i128,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Ledger {
    pub tenant: String,
    pub period: String,
    pub currency: &'static str,
    pub lines: Vec<LedgerLine>,
    pub payouts: Vec<Payout>,
    pub reported_usage: Vec<ReportedUsage>,
    pub totals: Totals,
    /// Conversations of a model no price covers (rated cost absent).
    pub unpriced_requests: i64,
    /// Marketplace transactions in a currency other than USD: counted here,
    /// not in the lines.
    pub excluded_non_usd_transactions: i64,
    #[serde(skip)]
    pub payout_nanos: i128,
}

/// Every ledger of the month `[from, to)` (`period` is its `YYYY-MM`) that
/// `tenant` may see (`None`: every tenant), by tenant, priced with `prices`.
pub async fn month_ledgers(
    store: &Store<'_>,
    prices: &PriceTable,
    period: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tenant: Option<&str>,
) -> Result<BTreeMap<String, Ledger>, StoreError> {
    let run = |q: SumQuery| async move { store.sums(&q, tenant).await };
    let (rated, reported, capsule_runs, marketplace, billing) = tokio::try_join!(
        run(queries::rated(from, to)),
        run(queries::reported(from, to)),
        run(queries::capsule_runs(from, to)),
        run(queries::marketplace(from, to)),
        run(queries::billing(from, to)),
    )?;
    let sums = LedgerSums {
        rated,
        reported,
        capsule_runs,
        marketplace,
        billing,
    };
    Ok(build_all(period, &sums, prices))
}
