//! Kafka sinks: dead letters to the dead-letter topic.

mod dead_letters;

pub use dead_letters::DeadLetterTopicSink;
