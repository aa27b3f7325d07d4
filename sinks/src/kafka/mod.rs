//! Kafka sinks: dead letters to the dead-letter topic. The connection
//! (`[kafka]`, client settings, broker health) is the Kafka connector's in
//! `sources/src/kafka/`; the node assembly hands this sink a producer.

mod dead_letters;

pub use dead_letters::{DeadLetterSinkError, DeadLetterTopicSink};
