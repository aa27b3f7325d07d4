//! somaflow's core: the event model, the dataflow runtime and checkpoints,
//! the embedded durable log, object storage, metrics, and the machinery of
//! configuration. Every other crate builds on these types. It holds no
//! client, configuration or error of an outside system: Kafka, ClickHouse
//! and Redis live in their connector folders (docs/architecture.md, "The
//! connector shape"); only their metric families are declared here, with
//! every other, so `/metrics` has one registry.

pub mod checkpoint;
pub mod compaction;
pub mod config;
pub mod events;
pub mod exposition;
pub mod log;
pub mod metrics;
pub mod publications;
pub mod rules;
pub mod runtime;
pub mod storage;
