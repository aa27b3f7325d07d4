//! `kafka_dead_letters`: every dead letter to the dead-letter topic, raw
//! bytes as the payload, where it came from and why in headers, the tenant
//! (when known) as the key so a tenant's dead letters stay in order.
//!
//! Sends start as rows arrive; a checkpoint completes only once the broker
//! acknowledged all of them (idempotent producer, `acks=all`), so no dead
//! letter is lost. After a crash the records since the last checkpoint are
//! sent again: consumers tell repeats apart by the `source_*` headers, which
//! name the record's one origin.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{Int32Type, Int64Type};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use somaflow_pipeline::events::schema::DEAD_LETTERS_TABLE;
use somaflow_pipeline::runtime::{Batch, Committer, NodeError, Sink};
use tracing::debug;

use super::error::DeadLetterSinkError;

pub struct DeadLetterTopicSink {
    node: String,
    topic: String,
    producer: FutureProducer,
    in_flight: Vec<DeliveryFuture>,
}

impl DeadLetterTopicSink {
    /// Sends to `topic` through `producer`, which must be idempotent with
    /// `acks=all` (the Kafka connector's `idempotent_producer`): a
    /// checkpoint counts a dead letter once the broker holds it.
    pub fn new(node: &str, producer: FutureProducer, topic: String) -> Self {
        Self {
            node: node.to_string(),
            topic,
            producer,
            in_flight: Vec::new(),
        }
    }
}

#[async_trait]
impl Sink for DeadLetterTopicSink {
    async fn write(&mut self, batch: Batch) -> Result<(), NodeError> {
        if batch.table != DEAD_LETTERS_TABLE {
            return Err(DeadLetterSinkError::WrongTable {
                node: self.node.clone(),
                table: batch.table,
            }
            .into());
        }
        let rows = &batch.rows;
        let col = |name: &'static str| {
            rows.column_by_name(name)
                .ok_or(DeadLetterSinkError::Column(name))
        };
        let tenant = col("tenant_id")?.as_string::<i32>();
        let event_id = col("event_id")?.as_string::<i32>();
        let stage = col("stage")?.as_string::<i32>();
        let reason = col("reason")?.as_string::<i32>();
        let raw = col("raw")?.as_binary::<i32>();
        let topic = col("source_topic")?.as_string::<i32>();
        let partition = col("source_partition")?.as_primitive::<Int32Type>();
        let offset = col("source_offset")?.as_primitive::<Int64Type>();
        for i in 0..rows.num_rows() {
            let opt = |a: &datafusion::arrow::array::StringArray| {
                a.is_valid(i).then(|| a.value(i).to_string())
            };
            let (t, e) = (opt(tenant), opt(event_id));
            let partition = partition.value(i).to_string();
            let offset = offset.value(i).to_string();
            let headers = [
                ("source_topic", Some(topic.value(i))),
                ("source_partition", Some(partition.as_str())),
                ("source_offset", Some(offset.as_str())),
                ("stage", Some(stage.value(i))),
                ("reason", Some(reason.value(i))),
                ("event_id", e.as_deref()),
            ]
            .into_iter()
            .fold(OwnedHeaders::new(), |h, (key, value)| {
                h.insert(Header {
                    key,
                    value: value.map(str::as_bytes),
                })
            });
            let mut record = FutureRecord::to(&self.topic)
                .payload(raw.value(i))
                .headers(headers);
            if let Some(t) = &t {
                record = record.key(t.as_bytes());
            }
            let future = self.producer.send_result(record).map_err(|(e, _)| {
                DeadLetterSinkError::Delivery {
                    topic: self.topic.clone(),
                    reason: e.to_string(),
                }
            })?;
            self.in_flight.push(future);
        }
        Ok(())
    }

    async fn pre_commit(&mut self, epoch: u64) -> Result<serde_json::Value, NodeError> {
        let sent = self.in_flight.len();
        for future in self.in_flight.drain(..) {
            let delivered = future.await.map_err(|_| DeadLetterSinkError::Delivery {
                topic: self.topic.clone(),
                reason: "the producer was dropped".into(),
            })?;
            delivered.map_err(|(e, _)| DeadLetterSinkError::Delivery {
                topic: self.topic.clone(),
                reason: e.to_string(),
            })?;
        }
        debug!(epoch, sent, topic = %self.topic, "dead letters acknowledged");
        Ok(serde_json::json!({ "sent": sent }))
    }

    fn committer(&self) -> Arc<dyn Committer> {
        Arc::new(crate::NothingToPublish)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use rdkafka::ClientConfig;

    use super::*;

    /// A producer that never has to reach a broker: these tests fail before
    /// anything is sent.
    fn sink() -> DeadLetterTopicSink {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", "127.0.0.1:1")
            .create()
            .unwrap();
        DeadLetterTopicSink::new("dlq", producer, "soma.dead_letters".into())
    }

    fn rows(table: &'static str) -> Batch {
        let schema = Schema::new(vec![Field::new("tenant_id", DataType::Utf8, true)]);
        let rows = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(StringArray::from(vec![Some("t1")]))],
        )
        .unwrap();
        Batch::new(table, rows)
    }

    #[tokio::test]
    async fn only_dead_letters_are_taken_and_their_columns_are_checked() {
        let mut sink = sink();
        let e = sink.write(rows("conversations")).await.unwrap_err();
        assert!(
            e.to_string().contains("takes only dead letters") && e.to_string().contains("`dlq`"),
            "{e}"
        );
        let e = sink.write(rows(DEAD_LETTERS_TABLE)).await.unwrap_err();
        assert!(e.to_string().contains("lack column `event_id`"), "{e}");
        // Nothing was handed to the producer, so the barrier has nothing to wait for.
        assert_eq!(sink.pre_commit(1).await.unwrap()["sent"], 0);
    }
}
