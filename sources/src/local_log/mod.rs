//! The embedded log as a pipeline source (`type = "local_log"`).

mod source;

pub use source::{LOG_TOPIC, LocalLogSource};
