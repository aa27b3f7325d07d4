//! Sinks: where the pipeline's rows leave it. The Parquet lake sink and the
//! Kafka dead-letter sink; ClickHouse and Redis come next.

pub mod kafka;
pub mod parquet;
