//! The checkpoint manifest: what every node recorded for one epoch.
//!
//! Positions and operator state are kept per *shard*: one partition of one
//! source topic (`topic@partition`). A shard is the unit that moves between
//! workers when a consumer group rebalances, so its position and its state
//! travel together.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Shard → next record to read.
pub type Positions = BTreeMap<String, i64>;

/// The shard name of a topic partition.
pub fn shard(topic: &str, partition: i32) -> String {
    format!("{topic}@{partition}")
}

/// Splits a shard name back into topic and partition.
pub fn parse_shard(shard: &str) -> Option<(&str, i32)> {
    let (topic, partition) = shard.rsplit_once('@')?;
    Some((topic, partition.parse().ok()?))
}

/// One node's part of a checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeCheckpoint {
    /// A source's read positions by shard.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub positions: Positions,
    /// Keys of an operator's state blobs in the checkpoint store, by shard.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state: BTreeMap<String, String>,
    /// What a sink staged and its committer will publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_commit: Option<serde_json::Value>,
}

impl NodeCheckpoint {
    /// Adds `other`'s shards that this one does not have.
    pub fn fill_from(&mut self, other: &NodeCheckpoint) {
        for (s, p) in &other.positions {
            self.positions.entry(s.clone()).or_insert(*p);
        }
        for (s, k) in &other.state {
            self.state.entry(s.clone()).or_insert_with(|| k.clone());
        }
    }
}

/// A complete checkpoint. It exists only once every node has acknowledged
/// its barrier; writing it is the commit point of the epoch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub epoch: u64,
    pub created_at: String,
    /// The worker that wrote it (empty for a single embedded node).
    #[serde(default)]
    pub worker: String,
    pub nodes: BTreeMap<String, NodeCheckpoint>,
}

impl Manifest {
    /// The position recorded for `shard` by any source node.
    pub fn position_of(&self, shard: &str) -> Option<i64> {
        self.nodes
            .values()
            .filter_map(|n| n.positions.get(shard).copied())
            .max()
    }

    /// Every state key the manifest refers to.
    pub fn state_keys(&self) -> impl Iterator<Item = &str> {
        self.nodes
            .values()
            .flat_map(|n| n.state.values().map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_names_round_trip_even_with_at_signs_in_topics() {
        assert_eq!(parse_shard(&shard("soma.a@b", 7)), Some(("soma.a@b", 7)));
        assert_eq!(parse_shard("nope"), None);
    }
}
