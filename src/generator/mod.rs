//! Realistic, seeded platform traffic for the demo, tests and load, and the
//! producers behind `somaflow produce` (HTTP and Kafka).

mod catalog;
mod http;
mod kafka;
mod produce;
mod series;
mod stats;
mod traffic;
mod wire;

pub use catalog::{MODELS, Model};
pub use http::produce_http;
pub use kafka::produce_kafka;
pub use produce::{ProduceError, ProduceOptions, ProduceReport};
pub use series::{HourlySeries, PlantedAnomaly, SeriesConfig, hourly_conversations};
pub use stats::{GeneratorStats, KindStats};
pub use traffic::{
    Generated, Generator, GeneratorConfig, RecordClass, conversation_share, seasonality,
    tenant_weight,
};
