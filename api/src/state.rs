//! What request handlers share.

use std::sync::Arc;

use axum::extract::FromRef;
use somaflow_operators::accounting::PriceTable;
use somaflow_pipeline::events::TimeBounds;
use somaflow_pipeline::runtime::PipelineStatus;
use somaflow_sinks::clickhouse::ClickHouseHealth;
use somaflow_sql::budgets::Budgets;
use somaflow_sql::store::Stores;
use somaflow_sql::{LakeSql, QueryLimits};

use crate::access::Access;
use crate::ingest::Ingest;

#[derive(Clone)]
pub struct AppState {
    pub ingest: Ingest,
    /// `POST /v1/sql`'s lake session, and its limits.
    pub sql: Arc<LakeSql>,
    pub sql_limits: QueryLimits,
    /// Where the read endpoints' sums come from (lake, ClickHouse), and
    /// the answers kept for them.
    pub stores: Stores,
    pub pipeline: Arc<PipelineStatus>,
    pub time_bounds: TimeBounds,
    pub body_limit: usize,
    /// Probed when a `clickhouse` sink is configured.
    pub clickhouse: Option<ClickHouseHealth>,
    /// Budget reads (`GET /v1/budgets/{tenant}`) when `[redis]` has a url.
    pub budgets: Option<Budgets>,
    /// The price table ledgers show unit prices from (`accounting.prices`).
    pub prices: Option<Arc<PriceTable>>,
    /// Token checks and per-token rate limits of every `/v1` route.
    pub access: Arc<Access>,
}

/// What the [`crate::access::Caller`] extractor checks a request against.
impl FromRef<AppState> for Arc<Access> {
    fn from_ref(state: &AppState) -> Self {
        state.access.clone()
    }
}
