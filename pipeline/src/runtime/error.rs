//! Errors of the runtime: graph wiring, tasks, checkpoints.

use super::traits::NodeError;
use crate::checkpoint::CheckpointError;
use crate::config::ConfigError;

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("node `{node}` failed: {source}")]
    Node { node: String, source: NodeError },
    #[error("checkpoint failed: {0}")]
    Checkpoint(String),
    #[error(transparent)]
    Store(#[from] CheckpointError),
    #[error("node `{0}`: a downstream task stopped unexpectedly")]
    Disconnected(String),
    #[error("a pipeline task panicked or was cancelled: {0}")]
    Join(String),
}
