//! Ingest: where accepted events are stored ([`store`]: the embedded log,
//! or Kafka on a cluster worker), how a request's events are checked and
//! answered ([`accept`]), and the binary content mode ([`binary`]).

mod accept;
pub mod binary;
mod store;

pub use accept::{IngestAnswer, Rejection, ingest_body};
pub use store::{Checked, Ingest, IngestError, KafkaIngest};
