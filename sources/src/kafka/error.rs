//! What can go wrong talking to Kafka, each with what to do next.

#[derive(Debug, thiserror::Error)]
pub enum KafkaError {
    #[error("Kafka client for {brokers}: {source}")]
    Client {
        brokers: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("creating topic {topic}: {reason}")]
    CreateTopic { topic: String, reason: String },
    #[error(
        "Kafka brokers {brokers} did not answer: {source}; is the broker running? (scripts/services.sh start kafka)"
    )]
    Unreachable {
        brokers: String,
        source: rdkafka::error::KafkaError,
    },
    #[error("starting a Kafka thread: {0}")]
    Thread(String),
}
