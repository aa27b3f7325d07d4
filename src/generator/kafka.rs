//! `somaflow produce --to kafka`: generated traffic into each kind's topic,
//! key = tenant id, through the idempotent producer; a batch counts once
//! every record in it is acknowledged by the broker.

use futures::future::join_all;
use rdkafka::producer::FutureRecord;
use rdkafka::util::Timeout;
use somaflow_pipeline::events::EventKind;
use somaflow_sources::kafka::KafkaConfig;
use somaflow_sources::kafka::idempotent_producer;

use super::produce::{Pacer, ProduceError, ProduceOptions, ProduceReport};
use super::traffic::Generator;

pub async fn produce_kafka(
    generator: &mut Generator,
    kafka: &KafkaConfig,
    opts: &ProduceOptions,
    mut progress: impl FnMut(&ProduceReport),
) -> Result<ProduceReport, ProduceError> {
    let producer = idempotent_producer(kafka)?;
    // Indexed by `EventKind as usize`; every generated record names a kind's table.
    let topics: Vec<String> = EventKind::ALL.iter().map(|k| kafka.topic(*k)).collect();
    let topic_of = |table: &str| -> &str {
        let kind = EventKind::from_table(table).unwrap_or(EventKind::Conversation);
        &topics[kind as usize]
    };
    let mut pacer = Pacer::new(opts);
    let mut report = ProduceReport::default();
    while let Some(batch) = pacer.next_batch(generator).await {
        let sends = batch.iter().map(|g| {
            let topic = topic_of(g.table).to_string();
            let producer = &producer;
            async move {
                let record = FutureRecord::to(&topic)
                    .key(g.tenant.as_bytes())
                    .payload(g.bytes.as_ref());
                producer
                    .send(record, Timeout::Never)
                    .await
                    .map_err(|(e, _)| ProduceError::Delivery {
                        topic: topic.clone(),
                        reason: e.to_string(),
                    })
            }
        });
        for delivered in join_all(sends).await {
            delivered?;
            report.accepted += 1;
        }
        report.requests += 1;
        report.refresh(&pacer, generator);
        progress(&report);
    }
    report.refresh(&pacer, generator);
    Ok(report)
}
