//! Ingest: where accepted events are stored ([`store`]: the embedded log,
//! or Kafka on a cluster worker), how a request's events are checked and
//! answered ([`accept`]), the binary content mode ([`binary`]) and the
//! newest accepted events ([`recent`]).

mod accept;
pub mod binary;
mod recent;
mod store;

pub use accept::{IngestAnswer, Rejection, ingest_body};
pub use recent::{RECENT_CAPACITY, RecentEvent, recent_events};
pub use store::{Checked, Ingest, IngestError, KafkaIngest};
