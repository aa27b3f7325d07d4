//! Why a dead letter could not be sent to its topic.

#[derive(Debug, thiserror::Error)]
pub enum DeadLetterSinkError {
    #[error(
        "`{node}` takes only dead letters, got rows of `{table}`; wire it to a `.dead_letters` output"
    )]
    WrongTable { node: String, table: &'static str },
    #[error("dead-letter rows lack column `{0}`")]
    Column(&'static str),
    #[error("dead letter not delivered to {topic}: {reason}")]
    Delivery { topic: String, reason: String },
}
