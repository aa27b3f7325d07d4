//! What request handlers share.

use std::sync::Arc;

use somaflow_pipeline::events::TimeBounds;
use somaflow_pipeline::runtime::PipelineStatus;
use somaflow_sinks::clickhouse::ClickHouseHealth;
use somaflow_sql::{LakeSql, QueryLimits};

use crate::auth::Access;
use crate::ingest::Ingest;
use crate::routes::budgets::Budgets;
use crate::store::cache::AnswerCache;

#[derive(Clone)]
pub struct AppState {
    pub ingest: Ingest,
    pub sql: Arc<LakeSql>,
    pub sql_limits: QueryLimits,
    pub pipeline: Arc<PipelineStatus>,
    pub time_bounds: TimeBounds,
    pub body_limit: usize,
    /// Probed when a `clickhouse` sink is configured.
    pub clickhouse: Option<ClickHouseHealth>,
    /// Budget reads (`GET /v1/budgets/{tenant}`) when `[redis]` has a url.
    pub budgets: Option<Budgets>,
    /// Where `/v1/usage` reads by default, when the node writes ClickHouse.
    pub usage_clickhouse: Option<clickhouse::Client>,
    /// The price table ledgers show unit prices from (`accounting.prices`).
    pub prices: Option<Arc<somaflow_operators::accounting::PriceTable>>,
    /// Token checks and per-token rate limits of every `/v1` route.
    pub access: Arc<Access>,
    /// Read endpoints' answers, kept until their table changes.
    pub answers: Arc<AnswerCache>,
}
