//! The `somaflow bench*` commands: measurements on this machine, apart from
//! the server code and built from the same node types
//! (`crate::node::registry`). Figures and how to reproduce them:
//! docs/benchmarks.md.
//!
//! * [`pipeline`]: `bench`: log → decode → dedup → lake, and HTTP ingest.
//! * [`chain`]: `bench-chain`: the platform operator chain on one core.
//! * [`clickhouse`]: `bench-clickhouse`: the ClickHouse sink's insert rate.
//! * [`kafka`]: `bench-kafka`: Kafka → lake throughput and latency.
//! * [`forecast`]: `bench-forecast`: forecast error and anomaly precision
//!   and recall on generated seasonal traffic.

pub mod chain;
pub mod clickhouse;
pub mod forecast;
pub mod kafka;
pub mod pipeline;
