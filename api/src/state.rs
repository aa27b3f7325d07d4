//! What request handlers share.

use std::sync::Arc;

use axum::extract::FromRef;
use somaflow_operators::accounting::PriceTable;
use somaflow_operators::enrich::MetadataStore;
use somaflow_pipeline::events::TimeBounds;
use somaflow_pipeline::log::Queues;
use somaflow_pipeline::runtime::PipelineStatus;
use somaflow_sinks::alerts::AlertsHub;
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
    /// Budget reads and changes (`/v1/budgets/{tenant}`): the node's own
    /// ledger, or Redis's.
    pub budgets: Option<Budgets>,
    /// Tenant and capsule metadata (`PUT /v1/tenants/{id}`,
    /// `PUT /v1/capsules/{id}`): the metadata files, or Redis.
    pub metadata: Option<MetadataStore>,
    /// The agent pools' queues (`/v1/dispatch/{pool}`) on a node without a
    /// broker.
    pub queues: Option<Arc<Queues>>,
    /// The price table ledgers show unit prices from (`accounting.prices`).
    pub prices: Option<Arc<PriceTable>>,
    /// The alerts this node delivers (`GET /v1/alerts`), when it has an
    /// `alerts` node.
    pub alerts: Option<Arc<AlertsHub>>,
    /// Token checks and per-token rate limits of every `/v1` route.
    pub access: Arc<Access>,
}

/// What the [`crate::access::Caller`] extractor checks a request against.
impl FromRef<AppState> for Arc<Access> {
    fn from_ref(state: &AppState) -> Self {
        state.access.clone()
    }
}
