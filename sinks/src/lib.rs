//! Sinks: where the pipeline's rows leave it. This crate has the Parquet
//! lake sink; ClickHouse, Kafka and Redis come next.

pub mod parquet;
