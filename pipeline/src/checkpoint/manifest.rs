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
#[serde(from = "NodeCheckpointOnDisk")]
pub struct NodeCheckpoint {
    /// A source's read positions by shard.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub positions: Positions,
    /// Keys of an operator's state blobs in the checkpoint store, by shard.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub state: BTreeMap<String, StateChain>,
    /// What a sink staged and its committer will publish.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_commit: Option<serde_json::Value>,
}

/// What manifests hold, including the single-shard form written before
/// positions and state were kept per shard (one embedded log, `log@0`).
#[derive(Deserialize)]
struct NodeCheckpointOnDisk {
    #[serde(default)]
    positions: Positions,
    /// Older form: `{"offset": N}`.
    #[serde(default)]
    position: Option<serde_json::Value>,
    #[serde(default)]
    state: Option<StateOnDisk>,
    #[serde(default)]
    pre_commit: Option<serde_json::Value>,
}

/// One shard's state: a whole blob, then the deltas written since, oldest
/// first (an operator with large state writes only what changed, see
/// [`crate::runtime::StateBlob`]). Kept as a single key while there are no
/// deltas, so such manifests read as they always did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(from = "ChainOnDisk", into = "ChainOnDisk")]
pub struct StateChain(Vec<String>);

#[derive(Serialize, Deserialize)]
#[serde(untagged)]
enum ChainOnDisk {
    Whole(String),
    Chain(Vec<String>),
}

impl From<ChainOnDisk> for StateChain {
    fn from(d: ChainOnDisk) -> Self {
        match d {
            ChainOnDisk::Whole(key) => StateChain(vec![key]),
            ChainOnDisk::Chain(keys) => StateChain(keys),
        }
    }
}

impl From<StateChain> for ChainOnDisk {
    fn from(c: StateChain) -> Self {
        match <[String; 1]>::try_from(c.0) {
            Ok([key]) => ChainOnDisk::Whole(key),
            Err(keys) => ChainOnDisk::Chain(keys),
        }
    }
}

impl StateChain {
    /// A chain of one whole blob.
    pub fn whole(key: String) -> Self {
        StateChain(vec![key])
    }

    /// Adds a delta written after the blobs already in the chain.
    pub fn push_delta(&mut self, key: String) {
        self.0.push(key);
    }

    /// Every key, the whole blob first.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StateOnDisk {
    Shards(BTreeMap<String, StateChain>),
    /// Older form: one key for the whole node.
    Single(String),
}

/// The one shard of the older single-log manifests.
const OLD_SHARD: &str = "log@0";

impl From<NodeCheckpointOnDisk> for NodeCheckpoint {
    fn from(d: NodeCheckpointOnDisk) -> Self {
        let mut positions = d.positions;
        if let Some(offset) = d.position.as_ref().and_then(|p| p.get("offset")?.as_i64()) {
            positions.entry(OLD_SHARD.to_string()).or_insert(offset);
        }
        let state = match d.state {
            Some(StateOnDisk::Shards(m)) => m,
            Some(StateOnDisk::Single(key)) => {
                [(OLD_SHARD.to_string(), StateChain::whole(key))].into()
            }
            None => BTreeMap::new(),
        };
        NodeCheckpoint {
            positions,
            state,
            pre_commit: d.pre_commit,
        }
    }
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
            .flat_map(|n| n.state.values().flat_map(StateChain::keys))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_of_the_single_log_format_still_load() {
        let old =
            r#"{"position": {"offset": 42}, "state": "state/00000000000000000007/dedup.bin"}"#;
        let cp: NodeCheckpoint = serde_json::from_str(old).unwrap();
        assert_eq!(cp.positions, [("log@0".to_string(), 42)].into());
        assert_eq!(
            cp.state["log@0"],
            StateChain::whole("state/00000000000000000007/dedup.bin".into())
        );
        let new = serde_json::to_string(&cp).unwrap();
        assert_eq!(serde_json::from_str::<NodeCheckpoint>(&new).unwrap(), cp);
    }

    #[test]
    fn a_chain_without_deltas_is_stored_as_one_key() {
        let mut chain = StateChain::whole("a".into());
        assert_eq!(serde_json::to_string(&chain).unwrap(), r#""a""#);
        chain.push_delta("b".into());
        let json = serde_json::to_string(&chain).unwrap();
        assert_eq!(json, r#"["a","b"]"#);
        assert_eq!(serde_json::from_str::<StateChain>(&json).unwrap(), chain);
        // Pruning keeps every blob of a chain a manifest refers to.
        let manifest = Manifest {
            epoch: 2,
            created_at: String::new(),
            worker: String::new(),
            nodes: [(
                "dedup".to_string(),
                NodeCheckpoint {
                    state: [("t@0".to_string(), chain)].into(),
                    ..Default::default()
                },
            )]
            .into(),
        };
        assert_eq!(manifest.state_keys().collect::<Vec<_>>(), ["a", "b"]);
    }

    #[test]
    fn shard_names_round_trip_even_with_at_signs_in_topics() {
        assert_eq!(parse_shard(&shard("soma.a@b", 7)), Some(("soma.a@b", 7)));
        assert_eq!(parse_shard("nope"), None);
    }
}
