//! Node types pipelines are built from, each with the one function that
//! builds it from config: the operators and sinks every node has, the
//! platform operators ([`super::platform`]), and the node's source (the
//! embedded log, or Kafka in a cluster worker). Benchmarks build their
//! nodes through the same registry.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use somaflow_operators::{Decode, Dedup};
use somaflow_pipeline::log::DurableLog;
use somaflow_pipeline::runtime::{Node, Registry};
use somaflow_sinks::alerts::AlertsSink;
use somaflow_sinks::clickhouse::ClickHouseSink;
use somaflow_sinks::kafka::DeadLetterTopicSink;
use somaflow_sinks::parquet::ParquetSink;
use somaflow_sources::kafka::{FeedConsumer, KafkaSource, PartitionBatch, idempotent_producer};
use somaflow_sources::local_log::LocalLogSource;
use tokio::sync::mpsc;

use super::io::PlatformIo;
use super::platform;
use crate::config::Config;

/// The node types of a pipeline's configuration.
pub type NodeTypes = Registry<Config>;

/// `decode`, `dedup`, `parquet`, `clickhouse`, `kafka_dead_letters`, and
/// the platform operators with their outside parts taken from `io`.
pub fn common(io: PlatformIo) -> NodeTypes {
    let mut r = NodeTypes::default();
    r.register("decode", |spec, config| {
        Ok(Node::Operator(Box::new(Decode::new(
            &spec.id,
            config.time_bounds(),
            config.pipeline.out_of_orderness_us(),
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
            &config.parquet_sink(),
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
            idempotent_producer(&config.kafka)?,
            config.kafka.dead_letter_topic(),
        ))))
    });
    let alerts = io.alerts.clone();
    r.register("alerts", move |spec, _| match &alerts {
        Some(hub) => Ok(Node::Sink(Box::new(AlertsSink::new(&spec.id, hub.clone())))),
        None => Err("an `alerts` node delivers from an embedded node (`somaflow run`); a cluster worker does not deliver alerts yet (docs/alerts.md)".into()),
    });
    platform::register(&mut r, io);
    r
}

/// An embedded node's types: `local_log` plus the common ones, the
/// platform operators' outside parts from `io`.
pub fn registry(log: DurableLog, io: PlatformIo) -> NodeTypes {
    let mut r = common(io);
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
) -> NodeTypes {
    let mut r = common(PlatformIo::configured());
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
