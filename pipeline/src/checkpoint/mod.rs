//! Checkpoints (DESIGN §4): manifests, their store, and the coordinator that
//! drives barriers through the graph and commits completed epochs.

mod coordinator;
mod manifest;
mod store;

pub use coordinator::{Ack, Coordinator, SourceControl};
pub use manifest::{Manifest, NodeCheckpoint};
pub use store::{CheckpointError, CheckpointStore};
