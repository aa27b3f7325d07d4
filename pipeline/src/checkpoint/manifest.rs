//! The checkpoint manifest: what every node recorded for one epoch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// One node's part of a checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeCheckpoint {
    /// A source's read positions (the next record to read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<serde_json::Value>,
    /// Key of an operator's state blob in the checkpoint store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// What a sink staged and its committer will publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_commit: Option<serde_json::Value>,
}

/// A complete checkpoint. It exists only once every node has acknowledged
/// its barrier; writing it is the commit point of the epoch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub epoch: u64,
    pub created_at: String,
    pub nodes: BTreeMap<String, NodeCheckpoint>,
}
