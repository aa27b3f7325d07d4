//! Sources: the embedded durable log (and its pipeline source), the
//! generator of realistic platform traffic, and Kafka plumbing.

pub mod generator;
pub mod kafka;
pub mod local_log;
pub mod log;
