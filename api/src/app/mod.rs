//! The commands of the `somaflow` binary: wiring crates into a running node
//! (`run`, `demo`), the generator (`produce`), queries (`sql`) and the benchmarks.

pub mod bench;
pub mod bench_chain;
pub mod bench_clickhouse;
pub mod bench_kafka;
pub mod clickhouse;
pub mod cluster;
pub mod demo;
pub mod http;
pub mod node;
pub mod platform;
pub mod produce;
pub mod registry;
pub mod sql;
pub mod telemetry;
pub mod tenants;
pub mod token;
pub mod topics;

pub use node::EmbeddedNode;
