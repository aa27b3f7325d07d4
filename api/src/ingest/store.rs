//! Where `POST /v1/events` puts accepted events: the embedded durable log
//! (one node), or each kind's Kafka topic (cluster). Either way the answer
//! is a 202 only once every event of the request is durable.

use std::time::Duration;

use bytes::Bytes;
use futures::future::join_all;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::log::{DurableLog, LogError};
use somaflow_sources::kafka::KafkaConfig;
use somaflow_sources::kafka::{BrokerHealth, KafkaError as ClientError, idempotent_config};

#[derive(Clone)]
pub enum Ingest {
    Log(DurableLog),
    Kafka(KafkaIngest),
}

/// One record of a request, checked.
pub struct Checked {
    pub raw: Bytes,
    /// The kind and tenant of a valid event, or why it was refused.
    pub verdict: Result<(EventKind, String), String>,
}

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The request as a whole can never be stored (e.g. an event too large).
    #[error("{0}")]
    Refused(String),
    /// Not stored now; the client should retry.
    #[error("{0}")]
    Unavailable(String),
}

impl Ingest {
    pub async fn store(
        &self,
        ingest_time_us: i64,
        records: Vec<Checked>,
    ) -> Result<(), IngestError> {
        match self {
            // Refused events go to the log too: decode refuses them again and
            // files them as dead letters, so the answer and the dead letters agree.
            Ingest::Log(log) => log
                .append(ingest_time_us, records.into_iter().map(|r| r.raw).collect())
                .await
                .map(|_| ())
                .map_err(|e| match e {
                    LogError::RecordTooLarge { .. } => IngestError::Refused(e.to_string()),
                    e => IngestError::Unavailable(format!("events were not stored: {e}")),
                }),
            Ingest::Kafka(k) => k.produce(ingest_time_us, records).await,
        }
    }

    /// Why the node cannot take events right now, if it cannot.
    pub fn problem(&self) -> Option<String> {
        match self {
            Ingest::Log(log) => (!log.is_healthy())
                .then(|| "the embedded log stopped after a write error".to_string()),
            Ingest::Kafka(k) => (!k.health.is_up())
                .then(|| format!("Kafka brokers {} do not answer", k.health.brokers())),
        }
    }
}

/// Produces events to their kind's topic, key = tenant.
#[derive(Clone)]
pub struct KafkaIngest {
    producer: FutureProducer,
    topics: Vec<String>,
    pub health: BrokerHealth,
}

/// The topic (by kind) and key of an event that failed validation: its
/// declared `type` and `tenantid` when they can be read.
fn refused_route(raw: &[u8]) -> (EventKind, Option<&str>) {
    #[derive(serde::Deserialize)]
    struct Peek<'a> {
        #[serde(rename = "type", borrow, default)]
        kind: Option<&'a str>,
        #[serde(borrow, default)]
        tenantid: Option<&'a str>,
    }
    match serde_json::from_slice::<Peek<'_>>(raw) {
        Ok(p) => (
            p.kind
                .and_then(EventKind::from_type_name)
                .unwrap_or(EventKind::ALL[0]),
            p.tenantid,
        ),
        Err(_) => (EventKind::ALL[0], None),
    }
}

/// How long a request waits for the broker before answering 503.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(10);

impl KafkaIngest {
    pub fn new(kafka: &KafkaConfig, health: BrokerHealth) -> Result<Self, ClientError> {
        let producer = idempotent_config(kafka)
            .set("linger.ms", "2")
            .set(
                "message.timeout.ms",
                DELIVERY_TIMEOUT.as_millis().to_string(),
            )
            .create()
            .map_err(|source| ClientError::Client {
                brokers: kafka.brokers.clone(),
                source,
            })?;
        Ok(Self {
            producer,
            topics: EventKind::ALL.iter().map(|k| kafka.topic(*k)).collect(),
            health,
        })
    }

    async fn produce(&self, ingest_time_us: i64, records: Vec<Checked>) -> Result<(), IngestError> {
        if !self.health.is_up() {
            return Err(IngestError::Unavailable(format!(
                "Kafka brokers {} do not answer; events were not stored",
                self.health.brokers()
            )));
        }
        let timestamp_ms = ingest_time_us / 1000;
        let mut sends = Vec::with_capacity(records.len());
        for r in &records {
            let record = match &r.verdict {
                Ok((kind, tenant)) => FutureRecord::to(&self.topics[*kind as usize])
                    .key(tenant.as_bytes())
                    .payload(r.raw.as_ref()),
                // A refused event goes where its type says (or to the first
                // kind's topic): decode refuses it again and files it as a
                // dead letter, in the lake and the dead-letter topic, so the
                // answer and the dead letters agree as in the embedded mode.
                Err(_) => {
                    let (kind, tenant) = refused_route(&r.raw);
                    let record = FutureRecord::<[u8], [u8]>::to(&self.topics[kind as usize])
                        .payload(r.raw.as_ref());
                    match tenant {
                        Some(t) => record.key(t.as_bytes()),
                        None => record,
                    }
                }
            }
            .timestamp(timestamp_ms);
            sends.push(self.producer.send(record, DELIVERY_TIMEOUT));
        }
        for result in join_all(sends).await {
            match result {
                Ok(_) => {}
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), _)) => {
                    return Err(IngestError::Refused(
                        "an event is larger than the broker accepts (message.max.bytes); split or shrink it".into(),
                    ));
                }
                Err((e, _)) => {
                    return Err(IngestError::Unavailable(format!(
                        "the broker did not acknowledge every event ({e}); retry the request (repeats are dropped by dedup)"
                    )));
                }
            }
        }
        Ok(())
    }
}
