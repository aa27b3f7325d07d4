//! Checkpoints (docs/architecture.md, "The checkpoint protocol"): what
//! they hold (manifests), where they are kept (the store, shared by a
//! cluster's workers), and how a restart reads them back (restore plans).
//! The coordinator that drives barriers through a running graph is the
//! runtime's (`runtime::coordinator`).

mod manifest;
mod members;
mod restore;
mod store;

pub use manifest::{Manifest, NodeCheckpoint, Positions, StateChain, parse_shard, shard};
pub use members::MemberLease;
pub use restore::RestorePlan;
pub use store::{CheckpointError, CheckpointStore, is_valid_worker_id};
