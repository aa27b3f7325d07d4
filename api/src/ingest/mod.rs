//! Ingest: where accepted events are stored ([`store`]: the embedded log,
//! or Kafka on a cluster worker) and how a request's events are checked
//! and answered ([`accept`]).

mod accept;
mod store;

pub use accept::{IngestAnswer, Rejection, ingest_body};
pub use store::{Checked, Ingest, IngestError, KafkaIngest};
