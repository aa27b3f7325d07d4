//! Kafka plumbing shared by the cluster mode: client settings from config
//! and topic administration. The Kafka source itself comes with issue 3.

mod client;
mod topics;

pub use client::{KafkaError, client_config, create_client, idempotent_producer};
pub use topics::{TopicOutcome, create_topics, missing_topics};
