//! librdkafka client settings from the `[kafka]` section.

use rdkafka::ClientConfig;
use rdkafka::config::FromClientConfig;
use rdkafka::producer::FutureProducer;

use super::config::KafkaConfig;
use super::error::KafkaError;

/// Base settings: brokers plus any `kafka.client` pass-through keys.
pub fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers);
    for (k, v) in &config.client {
        c.set(k, v);
    }
    c
}

/// A client of any kind (admin, consumer, producer) from the base settings.
pub fn create_client<T: FromClientConfig>(config: &KafkaConfig) -> Result<T, KafkaError> {
    client_config(config)
        .create()
        .map_err(|source| KafkaError::Client {
            brokers: config.brokers.clone(),
            source,
        })
}

/// Settings of a producer that never duplicates or reorders on retry; callers
/// may add their own (latency, delivery timeout) before creating it.
pub fn idempotent_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = client_config(config);
    c.set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("compression.type", "lz4");
    c
}

/// A producer that never duplicates or reorders on retry (`enable.idempotence`,
/// `acks=all`): a send resolves only once the broker holds the record.
pub fn idempotent_producer(config: &KafkaConfig) -> Result<FutureProducer, KafkaError> {
    idempotent_config(config)
        .create()
        .map_err(|source| KafkaError::Client {
            brokers: config.brokers.clone(),
            source,
        })
}
