//! `somaflow topics create`: the configured Kafka topics, with their
//! partition counts; somaflow never relies on a broker creating them.

use anyhow::Context;
use somaflow_sources::kafka::KafkaConfig;
use somaflow_sources::kafka::{TopicOutcome, create_topics};

/// Creates the event topics, dead letters and `extra` (agent pools).
pub async fn create(kafka: &KafkaConfig, extra: &[String]) -> anyhow::Result<()> {
    let outcomes = create_topics(kafka, extra)
        .await
        .with_context(|| format!("creating topics on {}", kafka.brokers))?;
    for (topic, outcome) in outcomes {
        let what = match outcome {
            TopicOutcome::Created => format!("created ({} partitions)", kafka.partitions),
            TopicOutcome::AlreadyExists => "already exists".to_string(),
        };
        println!("{topic:<40} {what}");
    }
    Ok(())
}
