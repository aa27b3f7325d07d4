//! Kafka sinks: dead letters to the dead-letter topic. The connection
//! (`[kafka]`, client settings, broker health) is the Kafka connector's in
//! `sources/src/kafka/`; the node assembly hands this sink a producer.

mod error;
mod sink;

pub use error::DeadLetterSinkError;
pub use sink::DeadLetterTopicSink;
