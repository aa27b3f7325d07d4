//! What a starting pipeline restores: for each shard, the position and state
//! of the newest checkpoint that holds it, wherever that checkpoint lives.
//!
//! A shard's offsets only grow while it is read, so among the manifests of
//! all workers the one with the highest position for a shard is the newest
//! record of it. A worker's manifests also *carry* the shards it does not
//! own (unchanged, by reference), so a shard's record survives its old
//! owner pruning and its new owner crashing before a first checkpoint.

use std::collections::BTreeMap;

use super::manifest::{Manifest, NodeCheckpoint};
use super::store::{CheckpointError, CheckpointStore};

#[derive(Debug, Default, Clone)]
pub struct RestorePlan {
    /// The epoch numbering continues from (this worker's newest manifest).
    pub epoch: u64,
    /// This worker's newest manifest: its sinks roll it forward and discard
    /// staging no manifest mentions.
    pub own: Option<Manifest>,
    /// Per node, the positions and state of the shards this instance owns.
    pub nodes: BTreeMap<String, NodeCheckpoint>,
    /// Per node, the shards others own, copied into every manifest unchanged.
    pub carried: BTreeMap<String, NodeCheckpoint>,
    /// Other workers' newest manifests, whose commits this worker finishes
    /// (idempotently) before reading their shards, in case they crashed
    /// between writing the manifest and publishing.
    pub peers: Vec<Manifest>,
}

impl RestorePlan {
    /// One node that owns every shard: everything comes from its own manifest.
    pub fn single(own: Option<Manifest>) -> Self {
        Self {
            epoch: own.as_ref().map_or(0, |m| m.epoch),
            nodes: own.as_ref().map(|m| m.nodes.clone()).unwrap_or_default(),
            own,
            ..Default::default()
        }
    }

    /// A worker sharing the store: each shard from the manifest with its
    /// highest position; `owns` says which shards this instance reads.
    pub fn shared(
        own: Option<Manifest>,
        peers: Vec<Manifest>,
        owns: impl Fn(&str) -> bool,
    ) -> Self {
        let mut plan = Self {
            epoch: own.as_ref().map_or(0, |m| m.epoch),
            ..Default::default()
        };
        let all: Vec<&Manifest> = own.iter().chain(peers.iter()).collect();
        let mut newest: BTreeMap<&str, (i64, &Manifest)> = BTreeMap::new();
        for m in &all {
            for node in m.nodes.values() {
                for (shard, offset) in &node.positions {
                    let entry = newest.entry(shard.as_str()).or_insert((*offset, m));
                    if *offset > entry.0 {
                        *entry = (*offset, m);
                    }
                }
            }
        }
        for (shard, (_, m)) in newest {
            let target = if owns(shard) {
                &mut plan.nodes
            } else {
                &mut plan.carried
            };
            for (id, node) in &m.nodes {
                let entry = target.entry(id.clone()).or_default();
                if let Some(p) = node.positions.get(shard) {
                    entry.positions.insert(shard.to_string(), *p);
                }
                if let Some(k) = node.state.get(shard) {
                    entry.state.insert(shard.to_string(), k.clone());
                }
            }
        }
        plan.own = own;
        plan.peers = peers;
        plan
    }

    /// Loads the plan of a worker (shared store) or of a single node.
    pub async fn load(
        store: &CheckpointStore,
        owns: Option<&(dyn Fn(&str) -> bool + Sync)>,
    ) -> Result<Self, CheckpointError> {
        let own = store.latest().await?;
        match owns {
            None => Ok(Self::single(own)),
            Some(owns) => Ok(Self::shared(own, store.peers_latest().await?, owns)),
        }
    }

    /// Where each owned shard starts reading.
    pub fn owned_positions(&self) -> BTreeMap<String, i64> {
        self.nodes
            .values()
            .flat_map(|n| n.positions.iter().map(|(s, p)| (s.clone(), *p)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::StateChain;

    fn manifest(worker: &str, epoch: u64, shards: &[(&str, i64)]) -> Manifest {
        let mut src = NodeCheckpoint::default();
        let mut op = NodeCheckpoint::default();
        for (s, p) in shards {
            src.positions.insert(s.to_string(), *p);
            op.state.insert(
                s.to_string(),
                StateChain::whole(format!("{worker}/{epoch}/{s}")),
            );
        }
        Manifest {
            epoch,
            created_at: String::new(),
            worker: worker.into(),
            nodes: [("kafka".to_string(), src), ("dedup".to_string(), op)].into(),
        }
    }

    #[test]
    fn each_shard_comes_from_the_manifest_that_read_it_furthest() {
        // a read t@0 to 100 then lost it to b, which read on to 250; b still
        // carries a stale t@1 that a has advanced.
        let a = manifest("a", 7, &[("t@0", 100), ("t@1", 900)]);
        let b = manifest("b", 3, &[("t@0", 250), ("t@1", 40)]);
        let plan = RestorePlan::shared(Some(a), vec![b], |s| s == "t@0");
        assert_eq!(plan.epoch, 7);
        assert_eq!(plan.owned_positions(), [("t@0".to_string(), 250)].into());
        assert_eq!(
            plan.nodes["dedup"].state["t@0"],
            StateChain::whole("b/3/t@0".into())
        );
        assert_eq!(plan.carried["kafka"].positions["t@1"], 900);
        assert_eq!(
            plan.carried["dedup"].state["t@1"],
            StateChain::whole("a/7/t@1".into())
        );
        assert!(!plan.nodes["kafka"].positions.contains_key("t@1"));
    }
}
