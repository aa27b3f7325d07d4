//! Sinks: where the pipeline's rows leave it. The Parquet lake, ClickHouse,
//! and the Kafka dead-letter topic.

use async_trait::async_trait;
use somaflow_pipeline::checkpoint::NodeCheckpoint;
use somaflow_pipeline::runtime::{Committer, NodeError};

pub mod alerts;
pub mod clickhouse;
pub mod kafka;
pub mod parquet;

/// The committer of a sink whose writes are already visible when its
/// pre-commit returns (acknowledged by the broker or the server): nothing
/// is staged, so there is nothing to publish or roll forward.
pub struct NothingToPublish;

#[async_trait]
impl Committer for NothingToPublish {
    async fn commit(&self, _: u64, _: &NodeCheckpoint) -> Result<(), NodeError> {
        Ok(())
    }
    async fn recover(&self, _: Option<&NodeCheckpoint>) -> Result<(), NodeError> {
        Ok(())
    }
}
