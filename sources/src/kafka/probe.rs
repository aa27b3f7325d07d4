//! Broker reachability: a metadata request every second on its own thread.
//! `/ready` reports not ready while it fails, and HTTP ingest in cluster mode
//! answers 503 at once instead of waiting for a delivery timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use somaflow_pipeline::config::KafkaConfig;
use somaflow_pipeline::metrics::metrics;
use tracing::{info, warn};

use super::client::{KafkaError, create_client};

/// Whether the brokers answered the latest metadata request.
#[derive(Clone)]
pub struct BrokerHealth {
    up: Arc<AtomicBool>,
    brokers: String,
}

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
        };
        let probe = health.clone();
        probe.check(&client);
        std::thread::Builder::new()
            .name("kafka-probe".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(Duration::from_secs(1));
                    probe.check(&client);
                }
            })
            .map_err(|e| KafkaError::Thread(e.to_string()))?;
        Ok(health)
    }

    fn check(&self, client: &BaseConsumer) {
        let up = match client.fetch_metadata(None, Duration::from_secs(2)) {
            Ok(_) => true,
            Err(e) => {
                if self.is_up() {
                    warn!(brokers = %self.brokers, error = %e, "Kafka brokers unreachable");
                }
                false
            }
        };
        if up && !self.up.load(Ordering::SeqCst) {
            info!(brokers = %self.brokers, "Kafka brokers reachable");
        }
        self.up.store(up, Ordering::SeqCst);
        metrics().kafka_broker_up.set(i64::from(up));
    }
}
