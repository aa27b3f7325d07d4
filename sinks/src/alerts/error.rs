//! Errors of the alerts sink.

#[derive(Debug, thiserror::Error)]
pub enum AlertsError {
    #[error("rows the alerts sink cannot read: {0}")]
    Schema(String),
    #[error("the alerts outbox in the checkpoint cannot be read: {0}")]
    Snapshot(#[from] serde_json::Error),
    #[error("building the webhook client: {0}")]
    Client(String),
}
