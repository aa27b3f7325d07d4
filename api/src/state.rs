//! What request handlers share.

use std::sync::Arc;

use somaflow_pipeline::events::TimeBounds;
use somaflow_pipeline::runtime::PipelineStatus;
use somaflow_sources::log::DurableLog;
use somaflow_sql::LakeSql;

#[derive(Clone)]
pub struct AppState {
    pub log: DurableLog,
    pub sql: Arc<LakeSql>,
    pub pipeline: Arc<PipelineStatus>,
    pub time_bounds: TimeBounds,
    pub body_limit: usize,
}
