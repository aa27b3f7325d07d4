//! Creating the configured topics, and finding the ones that are missing:
//! somaflow never relies on a broker creating topics by itself.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;
use somaflow_pipeline::config::KafkaConfig;

use super::client::{KafkaError, create_client};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    Created,
    AlreadyExists,
}

/// Creates every configured topic with `kafka.partitions` partitions.
pub async fn create_topics(
    config: &KafkaConfig,
) -> Result<Vec<(String, TopicOutcome)>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = create_client(config)?;
    let names = config.all_topics();
    let new: Vec<NewTopic> = names
        .iter()
        .map(|t| NewTopic::new(t, config.partitions, TopicReplication::Fixed(1)))
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    let results = admin
        .create_topics(&new, &options)
        .await
        .map_err(|source| KafkaError::Unreachable {
            brokers: config.brokers.clone(),
            source,
        })?;
    results
        .into_iter()
        .map(|r| match r {
            Ok(topic) => Ok((topic, TopicOutcome::Created)),
            Err((topic, RDKafkaErrorCode::TopicAlreadyExists)) => {
                Ok((topic, TopicOutcome::AlreadyExists))
            }
            Err((topic, code)) => Err(KafkaError::CreateTopic {
                topic,
                reason: code.to_string(),
            }),
        })
        .collect()
}

/// Configured topics the broker does not have.
pub fn missing_topics(config: &KafkaConfig) -> Result<Vec<String>, KafkaError> {
    let consumer: BaseConsumer = create_client(config)?;
    let metadata = consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|source| KafkaError::Unreachable {
            brokers: config.brokers.clone(),
            source,
        })?;
    let present: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
    Ok(config
        .all_topics()
        .into_iter()
        .filter(|t| !present.contains(&t.as_str()))
        .collect())
}

/// Every partition of `topics`, as the broker reports them.
pub fn partitions_of<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    config: &KafkaConfig,
    topics: &[String],
) -> Result<Vec<(String, i32)>, KafkaError> {
    // One metadata request for all topics: a round trip each is slow on a
    // loaded broker, and startup waits for it.
    let metadata = client
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|source| KafkaError::Unreachable {
            brokers: config.brokers.clone(),
            source,
        })?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| topics.iter().any(|name| name == t.name()))
        .flat_map(|t| {
            t.partitions()
                .iter()
                .map(|p| (t.name().to_string(), p.id()))
        })
        .collect())
}
