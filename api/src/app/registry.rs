//! Node types pipelines are built from: the operators and sinks every node
//! has, plus its source (the embedded log, or Kafka in a cluster worker).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use somaflow_operators::{Decode, Dedup};
use somaflow_pipeline::runtime::{Node, Registry};
use somaflow_sinks::clickhouse::ClickHouseSink;
use somaflow_sinks::kafka::DeadLetterTopicSink;
use somaflow_sinks::parquet::{ParquetSink, ParquetSinkConfig};
use somaflow_sources::kafka::{FeedConsumer, KafkaSource, PartitionBatch};
use somaflow_sources::local_log::LocalLogSource;
use somaflow_sources::log::DurableLog;
use tokio::sync::mpsc;

/// `decode`, `dedup`, `parquet`, `clickhouse`, `kafka_dead_letters`, and the
/// platform operators.
fn common() -> Registry {
    let mut r = Registry::default();
    r.register("decode", |spec, config| {
        let out_of_orderness_us = (config.pipeline.out_of_orderness_ms as i64).saturating_mul(1000);
        Ok(Node::Operator(Box::new(Decode::new(
            &spec.id,
            config.time_bounds(),
            out_of_orderness_us,
        ))))
    });
    r.register("dedup", |spec, config| {
        Ok(Node::Operator(Box::new(Dedup::new(
            &spec.id,
            config.dedup.ttl_secs,
        ))))
    });
    r.register("parquet", |spec, config| {
        Ok(Node::Sink(Box::new(ParquetSink::new(
            &spec.id,
            &ParquetSinkConfig::from_config(config),
        )?)))
    });
    r.register("clickhouse", |spec, config| {
        Ok(Node::Sink(Box::new(ClickHouseSink::new(
            &spec.id,
            &config.clickhouse,
        ))))
    });
    r.register("kafka_dead_letters", |spec, config| {
        Ok(Node::Sink(Box::new(DeadLetterTopicSink::new(
            &spec.id,
            &config.kafka,
        )?)))
    });
    super::platform::register(&mut r);
    r
}

/// An embedded node's types: `local_log` plus the common ones.
pub fn registry(log: DurableLog) -> Registry {
    let mut r = common();
    // Log retention follows the one reader's checkpoints; a second reader
    // would see segments deleted under it.
    let taken = AtomicBool::new(false);
    r.register("local_log", move |_, config| {
        if taken.swap(true, Ordering::SeqCst) {
            return Err("only one `local_log` node may read the embedded log".into());
        }
        Ok(Node::Source(Box::new(LocalLogSource::new(
            log.clone(),
            config.pipeline.batch_rows,
        ))))
    });
    r.register("kafka", |_, _| {
        Err("a `kafka` source needs the cluster mode; this config also has a `local_log`".into())
    });
    r
}

/// One assignment of a cluster worker: `kafka` reads the inbox of the
/// partitions the worker was just given.
pub fn cluster_registry(
    inbox: mpsc::Receiver<PartitionBatch>,
    consumer: Arc<FeedConsumer>,
    owned: BTreeSet<String>,
) -> Registry {
    let mut r = common();
    let inbox = Mutex::new(Some(inbox));
    r.register("kafka", move |_, _| {
        let inbox = inbox
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or("only one `kafka` source node per pipeline: it reads every kind's topic")?;
        Ok(Node::Source(Box::new(KafkaSource::new(
            inbox,
            consumer.clone(),
            owned.clone(),
        ))))
    });
    r.register("local_log", |_, _| {
        Err("a cluster worker reads Kafka; remove the `local_log` node".into())
    });
    r
}
