//! Kafka: client settings from config, topic administration, the consumer
//! thread with its rebalance hand-off, the pipeline source, and the broker
//! health probe.

mod client;
mod feed;
mod order;
mod probe;
mod source;
mod topics;

pub use client::{
    KafkaError, client_config, create_client, idempotent_config, idempotent_producer,
};
pub use feed::{
    FeedConsumer, FeedEvent, Generation, KafkaFeed, PartitionBatch, SESSION_TIMEOUT_MS,
};
pub use probe::BrokerHealth;
pub use source::{KafkaSource, OffsetCommitter};
pub use topics::{TopicOutcome, create_topics, missing_topics, partitions_of};
