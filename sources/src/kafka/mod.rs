//! The Kafka connector: its sections (`[kafka]`, `[cluster]`), client
//! settings, errors, the broker health probe, topic administration, and the
//! source: the consumer thread with its rebalance hand-off, the CloudEvents
//! Kafka binding (structured and binary mode), and the pipeline source
//! reading what it delivers.
//!
//! Sinks and operators that write to Kafka (dead letters, dispatch) are
//! handed a producer built here ([`idempotent_producer`]) by the node
//! assembly, so they do not import this crate; the HTTP ingest of a cluster
//! worker (`somaflow-api`, above this crate) uses the connector directly.

mod binding;
mod client;
mod config;
mod error;
mod feed;
mod health;
mod order;
mod source;
mod topics;

pub use client::{client_config, create_client, idempotent_config, idempotent_producer};
pub use config::{ClusterConfig, ClusterMode, KafkaConfig};
pub use error::KafkaError;
pub use feed::{
    FeedConsumer, FeedEvent, Generation, KafkaFeed, PartitionBatch, SESSION_TIMEOUT_MS,
};
pub use health::BrokerHealth;
pub use source::{KafkaSource, OffsetCommitter};
pub use topics::{TopicOutcome, create_topics, missing_topics, partitions_of};
