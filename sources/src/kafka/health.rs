//! Broker reachability: a metadata request (one topic) every second on its
//! own thread; two failures in a row mark the brokers down, so one slow
//! answer from a busy broker is not an outage. `/ready` reports not ready
//! while they are down, and HTTP ingest in cluster mode answers 503 at once
//! instead of waiting for a delivery timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use somaflow_pipeline::metrics::metrics;
use tracing::{info, warn};

use super::client::create_client;
use super::config::KafkaConfig;
use super::error::KafkaError;

/// Whether the brokers answered the latest metadata request.
#[derive(Clone)]
pub struct BrokerHealth {
    up: Arc<AtomicBool>,
    brokers: String,
    /// The topic whose metadata is asked for (small, unlike all topics).
    topic: String,
}

/// Metadata requests that must fail in a row before the brokers count as down.
const FAILURES_TO_DOWN: u32 = 2;

impl BrokerHealth {
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::SeqCst)
    }

    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// Starts probing; the first answer is awaited so startup knows at once.
    pub fn spawn(config: &KafkaConfig) -> Result<BrokerHealth, KafkaError> {
        let client: BaseConsumer = create_client(config)?;
        let health = BrokerHealth {
            up: Arc::new(AtomicBool::new(false)),
            brokers: config.brokers.clone(),
            topic: config.dead_letter_topic(),
        };
        let probe = health.clone();
        let mut failures = probe.check(&client, FAILURES_TO_DOWN);
        std::thread::Builder::new()
            .name("kafka-probe".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    failures = probe.check(&client, failures);
                }
            })
            .map_err(|e| KafkaError::Thread(e.to_string()))?;
        Ok(health)
    }

    /// One probe; returns the failures in a row so far.
    fn check(&self, client: &BaseConsumer, failures: u32) -> u32 {
        let (up, failures) = match client.fetch_metadata(Some(&self.topic), Duration::from_secs(3))
        {
            Ok(_) => (true, 0),
            Err(e) => {
                let failures = failures + 1;
                let down = failures >= FAILURES_TO_DOWN;
                if down && self.is_up() {
                    warn!(brokers = %self.brokers, error = %e, "Kafka brokers unreachable");
                }
                (!down, failures)
            }
        };
        if up && !self.up.load(Ordering::SeqCst) {
            info!(brokers = %self.brokers, "Kafka brokers reachable");
        }
        self.up.store(up, Ordering::SeqCst);
        metrics().kafka_broker_up.set(i64::from(up));
        failures
    }
}
