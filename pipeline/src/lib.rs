//! somaflow's core: the event model, the dataflow runtime and checkpoints,
//! the embedded durable log, object storage, metrics, and the machinery of
//! configuration. Every other crate builds on these types; this one knows
//! no outside system (Kafka, ClickHouse and Redis live in their connector
//! folders, see docs/architecture.md).

pub mod checkpoint;
pub mod config;
pub mod events;
pub mod exposition;
pub mod log;
pub mod metrics;
pub mod publications;
pub mod runtime;
pub mod storage;
