//! Creating the configured topics, and finding the ones that are missing:
//! somaflow never relies on a broker creating topics by itself.

use std::time::Duration;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::types::RDKafkaErrorCode;

use super::client::create_client;
use super::config::KafkaConfig;
use super::error::KafkaError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    Created,
    AlreadyExists,
}

/// Creates every configured topic, plus `extra` (the agent pools' dispatch
/// topics), with `kafka.partitions` partitions.
pub async fn create_topics(
    config: &KafkaConfig,
    extra: &[String],
) -> Result<Vec<(String, TopicOutcome)>, KafkaError> {
    let admin: AdminClient<DefaultClientContext> = create_client(config)?;
    let mut names = config.all_topics();
    names.extend(extra.iter().cloned());
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

/// Every topic and partition the broker has, in one metadata request.
fn broker_topics<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    config: &KafkaConfig,
) -> Result<Vec<(String, Vec<i32>)>, KafkaError> {
    let metadata = client
        .fetch_metadata(None, Duration::from_secs(10))
        .map_err(|source| KafkaError::Unreachable {
            brokers: config.brokers.clone(),
            source,
        })?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| {
            (
                t.name().to_string(),
                t.partitions().iter().map(|p| p.id()).collect(),
            )
        })
        .collect())
}

/// Configured topics the broker does not have.
pub fn missing_topics(config: &KafkaConfig) -> Result<Vec<String>, KafkaError> {
    let client: BaseConsumer = create_client(config)?;
    let present = broker_topics(&client, config)?;
    Ok(config
        .all_topics()
        .into_iter()
        .filter(|t| !present.iter().any(|(name, _)| name == t))
        .collect())
}

/// Every partition of `topics`, as the broker reports them.
pub fn partitions_of<C: ConsumerContext>(
    client: &BaseConsumer<C>,
    config: &KafkaConfig,
    topics: &[String],
) -> Result<Vec<(String, i32)>, KafkaError> {
    Ok(broker_topics(client, config)?
        .into_iter()
        .filter(|(name, _)| topics.contains(name))
        .flat_map(|(name, ps)| ps.into_iter().map(move |p| (name.clone(), p)))
        .collect())
}
