//! Node types the embedded pipeline can be built from.

use std::sync::atomic::{AtomicBool, Ordering};

use somaflow_operators::{Decode, Dedup};
use somaflow_pipeline::runtime::{Node, Registry};
use somaflow_sinks::parquet::{ParquetSink, ParquetSinkConfig};
use somaflow_sources::local_log::LocalLogSource;
use somaflow_sources::log::DurableLog;

/// `local_log`, `decode`, `dedup`, `parquet`.
pub fn registry(log: DurableLog) -> Registry {
    let mut r = Registry::default();
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
    r
}
