//! Realistic, seeded platform traffic for the demo, tests and load, and the
//! HTTP producer behind `somaflow produce`.

mod catalog;
mod http;
mod stats;
mod traffic;

pub use catalog::{MODELS, Model};
pub use http::{ProduceOptions, ProduceReport, produce_http};
pub use stats::{GeneratorStats, KindStats};
pub use traffic::{Generated, Generator, GeneratorConfig, RecordClass, seasonality};
