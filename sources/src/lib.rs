//! Sources: where rows enter a pipeline. `kafka/` is the Kafka connector
//! (a cluster worker's source, and the connection other parts are handed);
//! `local_log/` reads the embedded durable log (`somaflow_pipeline::log`).

pub mod kafka;
pub mod local_log;
