//! Checkpoints (docs/architecture.md, "The checkpoint protocol"):
//! manifests, their store, restore plans, and the coordinator that drives
//! barriers through the graph and commits completed epochs.

mod coordinator;
mod manifest;
mod members;
mod restore;
mod store;

pub use coordinator::{Ack, Coordinator, SourceControl};
pub use manifest::{Manifest, NodeCheckpoint, Positions, parse_shard, shard};
pub use members::MemberLease;
pub use restore::RestorePlan;
pub use store::{CheckpointError, CheckpointStore, is_valid_worker_id};
