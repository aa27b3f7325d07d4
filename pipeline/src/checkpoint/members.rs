//! Member leases of a worker group, kept beside the checkpoints in the
//! shared store: each worker renews its lease every few seconds with the
//! partitions it reads. A watchdog compares the live leases with the
//! topics' partitions, to notice partitions nobody reads (a broker whose
//! group coordinator kept a dead member's assignment).

use datafusion::object_store::{ObjectStoreExt, PutPayload};
use futures::TryStreamExt;
use serde::{Deserialize, Serialize};

use super::store::{CheckpointError, CheckpointStore};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemberLease {
    pub worker: String,
    /// Milliseconds since the Unix epoch.
    pub renewed_at_ms: i64,
    /// Shards (partitions) the worker reads now.
    pub shards: Vec<String>,
}

fn group_prefix(group: &str) -> String {
    format!("groups/{group}/members")
}

impl CheckpointStore {
    pub async fn renew_lease(
        &self,
        group: &str,
        lease: &MemberLease,
    ) -> Result<(), CheckpointError> {
        let key = format!("{}/{}.json", group_prefix(group), lease.worker);
        let json = serde_json::to_vec(lease).map_err(|e| CheckpointError::Corrupt {
            key: key.clone(),
            reason: e.to_string(),
        })?;
        let location = self.location();
        location
            .store
            .put(&location.path(&key), PutPayload::from(json))
            .await?;
        Ok(())
    }

    /// Every lease of the group, live or not.
    pub async fn leases(&self, group: &str) -> Result<Vec<MemberLease>, CheckpointError> {
        let location = self.location();
        let prefix = location.path(&group_prefix(group));
        let metas: Vec<_> = location.store.list(Some(&prefix)).try_collect().await?;
        let mut leases = Vec::new();
        for meta in metas {
            let bytes = match location.store.get(&meta.location).await {
                Ok(got) => got.bytes().await?,
                Err(datafusion::object_store::Error::NotFound { .. }) => continue,
                Err(e) => return Err(e.into()),
            };
            // A lease half-written by a crashed worker is as good as expired.
            if let Ok(lease) = serde_json::from_slice(&bytes) {
                leases.push(lease);
            }
        }
        Ok(leases)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn leases_are_renewed_in_place_and_listed_per_group() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_str().unwrap();
        let a = CheckpointStore::open_worker(root, "a").unwrap();
        let b = CheckpointStore::open_worker(root, "b").unwrap();
        let lease = |worker: &str, at, shards: &[&str]| MemberLease {
            worker: worker.into(),
            renewed_at_ms: at,
            shards: shards.iter().map(|s| s.to_string()).collect(),
        };
        a.renew_lease("g", &lease("a", 1, &["t@0"])).await.unwrap();
        a.renew_lease("g", &lease("a", 2, &["t@0", "t@1"]))
            .await
            .unwrap();
        b.renew_lease("g", &lease("b", 3, &[])).await.unwrap();
        b.renew_lease("other", &lease("b", 4, &[])).await.unwrap();
        let mut seen = a.leases("g").await.unwrap();
        seen.sort_by(|x, y| x.worker.cmp(&y.worker));
        assert_eq!(seen, [lease("a", 2, &["t@0", "t@1"]), lease("b", 3, &[])]);
    }
}
