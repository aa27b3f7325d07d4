//! The checkpoint store: manifests and state blobs in a directory or object
//! storage. A manifest is written with one atomic put, so a reader sees a
//! whole checkpoint or none.

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
}

#[derive(Clone, Debug)]
pub struct CheckpointStore {
    location: StorageLocation,
}

fn manifest_key(epoch: u64) -> String {
    format!("manifests/{epoch:020}.json")
}

impl CheckpointStore {
    pub fn open(location: &str) -> Result<Self, CheckpointError> {
        Ok(Self {
            location: StorageLocation::parse(location)?,
        })
    }

    async fn epochs(&self) -> Result<Vec<u64>, CheckpointError> {
        let prefix = self.location.path("manifests");
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

    /// The newest complete checkpoint, if any.
    pub async fn latest(&self) -> Result<Option<Manifest>, CheckpointError> {
        let Some(epoch) = self.epochs().await?.pop() else {
            return Ok(None);
        };
        let key = manifest_key(epoch);
        let bytes = self
            .location
            .store
            .get(&self.location.path(&key))
            .await?
            .bytes()
            .await?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| CheckpointError::Corrupt {
                key,
                reason: e.to_string(),
            })
    }

    pub async fn write_state(
        &self,
        epoch: u64,
        node: &str,
        state: Vec<u8>,
    ) -> Result<String, CheckpointError> {
        let key = format!("state/{epoch:020}/{node}.bin");
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

    /// Makes the checkpoint complete.
    pub async fn write_manifest(&self, manifest: &Manifest) -> Result<(), CheckpointError> {
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| CheckpointError::Corrupt {
            key: manifest_key(manifest.epoch),
            reason: e.to_string(),
        })?;
        self.location
            .store
            .put(
                &self.location.path(&manifest_key(manifest.epoch)),
                PutPayload::from(json),
            )
            .await?;
        Ok(())
    }

    /// Deletes all but the newest `keep` checkpoints, manifests first so a
    /// listed manifest always has its state.
    pub async fn prune(&self, keep: usize) -> Result<(), CheckpointError> {
        let epochs = self.epochs().await?;
        let Some(oldest_kept) = epochs.len().checked_sub(keep).map(|i| epochs[i]) else {
            return Ok(());
        };
        let store = &self.location.store;
        for epoch in epochs.iter().filter(|e| **e < oldest_kept) {
            store
                .delete(&self.location.path(&manifest_key(*epoch)))
                .await?;
        }
        let state_prefix = self.location.path("state");
        let states: Vec<_> = store.list(Some(&state_prefix)).try_collect().await?;
        for meta in states {
            let epoch = meta
                .location
                .parts()
                .nth(state_prefix.parts().count())
                .and_then(|p| p.as_ref().parse::<u64>().ok());
            if epoch.is_some_and(|e| e < oldest_kept) {
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

    fn manifest(epoch: u64) -> Manifest {
        let mut nodes = std::collections::BTreeMap::new();
        nodes.insert(
            "log".to_string(),
            NodeCheckpoint {
                position: Some(serde_json::json!({"offset": epoch * 10})),
                ..Default::default()
            },
        );
        Manifest {
            epoch,
            created_at: "now".into(),
            nodes,
        }
    }

    #[tokio::test]
    async fn newest_manifest_wins_and_prune_keeps_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let store = CheckpointStore::open(dir.path().to_str().unwrap()).unwrap();
        assert!(store.latest().await.unwrap().is_none());
        for epoch in 1..=5 {
            store
                .write_state(epoch, "dedup", vec![epoch as u8])
                .await
                .unwrap();
            store.write_manifest(&manifest(epoch)).await.unwrap();
        }
        assert_eq!(store.latest().await.unwrap().unwrap(), manifest(5));
        store.prune(2).await.unwrap();
        assert_eq!(store.epochs().await.unwrap(), vec![4, 5]);
        assert!(
            store
                .read_state(&format!("state/{:020}/dedup.bin", 3))
                .await
                .is_err()
        );
        assert_eq!(
            &store
                .read_state(&format!("state/{:020}/dedup.bin", 5))
                .await
                .unwrap()[..],
            &[5]
        );
    }
}
