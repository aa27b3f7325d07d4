//! The checkpoint store: manifests and state blobs in a directory or object
//! storage. A manifest is written with one atomic put, so a reader sees a
//! whole checkpoint or none.
//!
//! A single embedded node keeps its checkpoints at the root of the store.
//! Workers of a cluster share one store, each under `workers/<id>/`, and read
//! each other's newest manifests when partitions move between them. State
//! keys are relative to the root, so a manifest may refer to blobs another
//! worker wrote.

use std::collections::HashSet;

use bytes::Bytes;
use datafusion::object_store::{ObjectStoreExt, PutPayload};
use futures::TryStreamExt;

use super::manifest::Manifest;
use crate::storage::{StorageError, StorageLocation};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("checkpoint store: {0}")]
    ObjectStore(#[from] datafusion::object_store::Error),
    #[error("checkpoint manifest {key} is unreadable: {reason}")]
    Corrupt { key: String, reason: String },
    #[error("worker id {0:?} must be non-empty and use only letters, digits, `-`, `_` or `.`")]
    BadWorkerId(String),
}

const WORKERS: &str = "workers";

#[derive(Clone, Debug)]
pub struct CheckpointStore {
    location: StorageLocation,
    /// `""` for an embedded node, `workers/<id>/` for a cluster worker.
    namespace: String,
    worker: String,
}

/// Letters, digits, `-`, `_` or `.`: a worker id names a folder in the
/// shared checkpoint store (and the worker's staging folder in the lake).
pub fn is_valid_worker_id(id: &str) -> bool {
    !id.is_empty()
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl CheckpointStore {
    /// The store of a single embedded node.
    pub fn open(location: &str) -> Result<Self, CheckpointError> {
        Ok(Self {
            location: StorageLocation::parse(location)?,
            namespace: String::new(),
            worker: String::new(),
        })
    }

    /// One worker's view of a store shared by a cluster.
    pub fn open_worker(location: &str, worker: &str) -> Result<Self, CheckpointError> {
        if !is_valid_worker_id(worker) {
            return Err(CheckpointError::BadWorkerId(worker.to_string()));
        }
        Ok(Self {
            location: StorageLocation::parse(location)?,
            namespace: format!("{WORKERS}/{worker}/"),
            worker: worker.to_string(),
        })
    }

    pub fn worker(&self) -> &str {
        &self.worker
    }

    pub(super) fn location(&self) -> &StorageLocation {
        &self.location
    }

    fn manifest_key(&self, epoch: u64) -> String {
        format!("{}manifests/{epoch:020}.json", self.namespace)
    }

    async fn epochs_in(&self, namespace: &str) -> Result<Vec<u64>, CheckpointError> {
        let prefix = self.location.path(&format!("{namespace}manifests"));
        let metas: Vec<_> = self
            .location
            .store
            .list(Some(&prefix))
            .try_collect()
            .await?;
        let mut epochs: Vec<u64> = metas
            .iter()
            .filter_map(|m| m.location.filename()?.strip_suffix(".json")?.parse().ok())
            .collect();
        epochs.sort_unstable();
        Ok(epochs)
    }

    async fn read_manifest(&self, key: String) -> Result<Option<Manifest>, CheckpointError> {
        let got = match self.location.store.get(&self.location.path(&key)).await {
            Ok(got) => got,
            // Pruned between listing and reading: a newer one exists.
            Err(datafusion::object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let bytes = got.bytes().await?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CheckpointError::Corrupt {
                key,
                reason: e.to_string(),
            })
    }

    async fn latest_in(&self, namespace: &str) -> Result<Option<Manifest>, CheckpointError> {
        // A concurrent prune can remove the listed newest only after a newer
        // one exists, so listing again finds it.
        for _ in 0..5 {
            let Some(epoch) = self.epochs_in(namespace).await?.pop() else {
                return Ok(None);
            };
            let key = format!("{namespace}manifests/{epoch:020}.json");
            if let Some(m) = self.read_manifest(key).await? {
                return Ok(Some(m));
            }
        }
        Err(CheckpointError::Corrupt {
            key: format!("{namespace}manifests"),
            reason: "the newest manifest kept disappearing while being read".into(),
        })
    }

    /// The newest complete checkpoint of this node or worker, if any.
    pub async fn latest(&self) -> Result<Option<Manifest>, CheckpointError> {
        self.latest_in(&self.namespace).await
    }

    /// The newest complete checkpoint of every other worker sharing the store.
    pub async fn peers_latest(&self) -> Result<Vec<Manifest>, CheckpointError> {
        let root = self.location.path(WORKERS);
        let listed = self.location.store.list_with_delimiter(Some(&root)).await?;
        let mut peers = Vec::new();
        for dir in listed.common_prefixes {
            let Some(name) = dir.filename() else { continue };
            if name == self.worker {
                continue;
            }
            if let Some(m) = self.latest_in(&format!("{WORKERS}/{name}/")).await? {
                peers.push(m);
            }
        }
        Ok(peers)
    }

    /// Stores one shard of an operator's state; returns its key.
    pub async fn write_state(
        &self,
        epoch: u64,
        node: &str,
        shard: &str,
        state: Vec<u8>,
    ) -> Result<String, CheckpointError> {
        let key = format!("{}state/{epoch:020}/{node}/{shard}.bin", self.namespace);
        self.location
            .store
            .put(&self.location.path(&key), PutPayload::from(state))
            .await?;
        Ok(key)
    }

    pub async fn read_state(&self, key: &str) -> Result<Bytes, CheckpointError> {
        Ok(self
            .location
            .store
            .get(&self.location.path(key))
            .await?
            .bytes()
            .await?)
    }

    /// Makes the checkpoint complete; returns the manifest's size in bytes.
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<usize, CheckpointError> {
        let key = self.manifest_key(manifest.epoch);
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| CheckpointError::Corrupt {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let bytes = json.len();
        self.location
            .store
            .put(&self.location.path(&key), PutPayload::from(json))
            .await?;
        Ok(bytes)
    }

    /// Deletes all but the newest `keep` manifests, then the state blobs no
    /// kept manifest refers to. A state blob written at an old epoch lives on
    /// while a newer manifest still refers to it (a shard whose state did not
    /// change, or one this worker carries for a partition it gave away).
    pub async fn prune(&self, keep: usize) -> Result<(), CheckpointError> {
        let epochs = self.epochs_in(&self.namespace).await?;
        let Some(oldest_kept) = epochs.len().checked_sub(keep).map(|i| epochs[i]) else {
            return Ok(());
        };
        let store = &self.location.store;
        for epoch in epochs.iter().filter(|e| **e < oldest_kept) {
            store
                .delete(&self.location.path(&self.manifest_key(*epoch)))
                .await?;
        }
        let mut referenced = HashSet::new();
        for epoch in epochs.iter().filter(|e| **e >= oldest_kept) {
            if let Some(m) = self.read_manifest(self.manifest_key(*epoch)).await? {
                referenced.extend(m.state_keys().map(str::to_string));
            }
        }
        let state_root = format!("{}state", self.namespace);
        let state_prefix = self.location.path(&state_root);
        let depth = state_prefix.parts().count();
        let states: Vec<_> = store.list(Some(&state_prefix)).try_collect().await?;
        for meta in states {
            let epoch = meta
                .location
                .parts()
                .nth(depth)
                .and_then(|p| p.as_ref().parse::<u64>().ok());
            if epoch.is_none_or(|e| e >= oldest_kept) {
                continue;
            }
            let key: Vec<String> = meta
                .location
                .parts()
                .skip(depth)
                .map(|p| p.as_ref().to_string())
                .collect();
            let key = format!("{state_root}/{}", key.join("/"));
            if !referenced.contains(&key) {
                store.delete(&meta.location).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::NodeCheckpoint;
    use crate::checkpoint::StateChain;

    fn manifest(epoch: u64, state: Option<String>) -> Manifest {
        let mut nodes = std::collections::BTreeMap::new();
        nodes.insert(
            "log".to_string(),
            NodeCheckpoint {
                positions: [("log@0".to_string(), epoch as i64 * 10)].into(),
                ..Default::default()
            },
        );
        nodes.insert(
            "dedup".to_string(),
            NodeCheckpoint {
                state: state
                    .map(|k| ("log@0".to_string(), StateChain::whole(k)))
                    .into_iter()
                    .collect(),
                ..Default::default()
            },
        );
        Manifest {
            epoch,
            created_at: "now".into(),
            worker: String::new(),
            nodes,
        }
    }

    #[tokio::test]
    async fn newest_manifest_wins_and_prune_keeps_what_kept_manifests_use() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path().to_str().unwrap()).unwrap();
        assert!(store.latest().await.unwrap().is_none());
        let first = store
            .write_state(1, "dedup", "log@0", vec![1])
            .await
            .unwrap();
        for epoch in 1..=5 {
            // Epochs 1–4 reuse the blob of epoch 1 (state unchanged); 5 writes its own.
            let key = if epoch == 5 {
                store
                    .write_state(5, "dedup", "log@0", vec![5])
                    .await
                    .unwrap()
            } else {
                if epoch > 1 {
                    store
                        .write_state(epoch, "dedup", "x@0", vec![0])
                        .await
                        .unwrap();
                }
                first.clone()
            };
            store
                .write_manifest(&manifest(epoch, Some(key)))
                .await
                .unwrap();
        }
        assert_eq!(store.latest().await.unwrap().unwrap().epoch, 5);
        store.prune(2).await.unwrap();
        assert_eq!(store.epochs_in("").await.unwrap(), vec![4, 5]);
        // Manifest 4 still refers to the blob of epoch 1; the unreferenced
        // blob of epoch 2 is gone.
        assert_eq!(&store.read_state(&first).await.unwrap()[..], &[1]);
        assert!(
            store
                .read_state("state/00000000000000000002/dedup/x@0.bin")
                .await
                .is_err()
        );
        store.write_manifest(&manifest(6, None)).await.unwrap();
        store.prune(1).await.unwrap();
        assert!(store.read_state(&first).await.is_err());
    }

    #[tokio::test]
    async fn workers_see_each_others_newest_manifest() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let a = CheckpointStore::open_worker(root, "a").unwrap();
        let b = CheckpointStore::open_worker(root, "b").unwrap();
        for epoch in 1..=3 {
            a.write_manifest(&manifest(epoch, None)).await.unwrap();
        }
        b.write_manifest(&manifest(9, None)).await.unwrap();
        let seen_by_b: Vec<u64> = b
            .peers_latest()
            .await
            .unwrap()
            .iter()
            .map(|m| m.epoch)
            .collect();
        assert_eq!(seen_by_b, [3]);
        assert_eq!(b.latest().await.unwrap().unwrap().epoch, 9);
        assert!(CheckpointStore::open_worker(root, "../x").is_err());
    }
}
