//! The checkpoint coordinator: injects barriers at the sources every
//! interval, gathers every node's acknowledgement, writes the manifest, then
//! lets committers publish. One checkpoint at a time: epoch N+1 starts only
//! after N is committed, so a restart has at most one epoch to roll forward.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tracing::{Instrument, debug, info, info_span};

use super::latency::PendingLatency;
use super::{Committer, PipelineError, PipelineStatus, StateBlob};
use crate::checkpoint::{CheckpointStore, Manifest, NodeCheckpoint, Positions, StateChain};
use crate::metrics::metrics;

/// Instructions to a source task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceControl {
    /// Record positions and forward a barrier for this epoch.
    Barrier(u64),
    /// As `Barrier`, then stop reading and send `Stop` downstream.
    Drain(u64),
}

/// What a node reports at a barrier.
#[derive(Debug)]
pub enum Ack {
    Source {
        node: usize,
        epoch: u64,
        positions: Positions,
    },
    Operator {
        node: usize,
        epoch: u64,
        /// Shards whose state changed since the last snapshot.
        changed: Vec<(String, StateBlob)>,
    },
    Sink {
        node: usize,
        epoch: u64,
        pre_commit: serde_json::Value,
    },
}

impl Ack {
    fn node_epoch(&self) -> (usize, u64) {
        match self {
            Ack::Source { node, epoch, .. }
            | Ack::Operator { node, epoch, .. }
            | Ack::Sink { node, epoch, .. } => (*node, *epoch),
        }
    }
}

pub struct Coordinator {
    pub store: CheckpointStore,
    pub node_ids: Vec<String>,
    pub sources: Vec<mpsc::UnboundedSender<SourceControl>>,
    pub committers: Vec<(usize, Arc<dyn Committer>)>,
    pub acks: mpsc::UnboundedReceiver<Ack>,
    pub epoch: u64,
    pub interval: Duration,
    pub keep: usize,
    pub status: Arc<PipelineStatus>,
    /// Event-time sketches the sinks staged, observed once their epoch commits.
    pub(crate) latency: PendingLatency,
    /// Shards this instance does not own, by node, copied into every manifest.
    pub carried: BTreeMap<String, NodeCheckpoint>,
    /// Each operator's current state keys by shard; an unchanged shard keeps
    /// pointing at the blob written when it last changed.
    pub state_keys: BTreeMap<String, BTreeMap<String, StateChain>>,
}

impl Coordinator {
    /// Checkpoints every interval until `shutdown` turns true, then takes a
    /// final checkpoint that drains the sources.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> Result<(), PipelineError> {
        let mut ticker =
            tokio::time::interval_at(tokio::time::Instant::now() + self.interval, self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = ticker.tick() => self.checkpoint(false).await?,
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        info!("shutting down: final checkpoint");
                        return self.checkpoint(true).await;
                    }
                }
            }
        }
    }

    async fn checkpoint(&mut self, drain: bool) -> Result<(), PipelineError> {
        let epoch = self.epoch + 1;
        let span = info_span!("checkpoint", epoch);
        let started = Instant::now();
        let result = self.checkpoint_epoch(epoch, drain).instrument(span).await;
        match &result {
            Ok(()) => {
                self.epoch = epoch;
                let m = metrics();
                m.checkpoint_duration
                    .observe(started.elapsed().as_secs_f64());
                m.checkpoints_completed.inc();
                m.last_checkpoint_epoch.set(epoch as i64);
                self.status.checkpoint_done(epoch);
            }
            Err(_) => {
                metrics().checkpoint_failures.inc();
            }
        }
        result
    }

    async fn checkpoint_epoch(&mut self, epoch: u64, drain: bool) -> Result<(), PipelineError> {
        let control = if drain {
            SourceControl::Drain(epoch)
        } else {
            SourceControl::Barrier(epoch)
        };
        for source in &self.sources {
            // A source that already ended has nothing more to record.
            let _ = source.send(control);
        }
        let mut nodes: BTreeMap<String, NodeCheckpoint> = BTreeMap::new();
        let mut pending = self.node_ids.len();
        let mut acked = vec![false; self.node_ids.len()];
        let mut bytes_written = 0;
        while pending > 0 {
            let ack = self.acks.recv().await.ok_or_else(|| {
                PipelineError::Checkpoint(format!(
                    "a task stopped before acknowledging checkpoint {epoch}"
                ))
            })?;
            let (node, ack_epoch) = ack.node_epoch();
            if ack_epoch != epoch || acked[node] {
                return Err(PipelineError::Checkpoint(format!(
                    "node {} acknowledged epoch {ack_epoch} while checkpoint {epoch} was in progress",
                    self.node_ids[node]
                )));
            }
            acked[node] = true;
            pending -= 1;
            let id = self.node_ids[node].clone();
            let mut entry = match ack {
                Ack::Source { positions, .. } => NodeCheckpoint {
                    positions,
                    ..Default::default()
                },
                Ack::Operator { changed, .. } => {
                    let keys = self.state_keys.entry(id.clone()).or_default();
                    for (shard, blob) in changed {
                        bytes_written += blob.len();
                        match blob {
                            StateBlob::Whole(bytes) => {
                                let key = self.store.write_state(epoch, &id, &shard, bytes).await?;
                                keys.insert(shard, StateChain::whole(key));
                            }
                            StateBlob::Delta(bytes) => {
                                let Some(chain) = keys.get_mut(&shard) else {
                                    return Err(PipelineError::Checkpoint(format!(
                                        "node {id} wrote a state delta for shard {shard}, which has no whole state yet"
                                    )));
                                };
                                let key = self.store.write_state(epoch, &id, &shard, bytes).await?;
                                chain.push_delta(key);
                            }
                        }
                    }
                    NodeCheckpoint {
                        state: keys.clone(),
                        ..Default::default()
                    }
                }
                Ack::Sink { pre_commit, .. } => NodeCheckpoint {
                    pre_commit: Some(pre_commit),
                    ..Default::default()
                },
            };
            if let Some(carried) = self.carried.get(&id) {
                entry.fill_from(carried);
            }
            nodes.insert(id, entry);
        }
        let manifest = Manifest {
            epoch,
            created_at: chrono::Utc::now().to_rfc3339(),
            worker: self.store.worker().to_string(),
            nodes,
        };
        bytes_written += self.store.write_manifest(&manifest).await?;
        debug!(epoch, bytes_written, "manifest written");
        for (node, committer) in &self.committers {
            let id = &self.node_ids[*node];
            let cp = manifest.nodes.get(id).cloned().unwrap_or_default();
            committer
                .commit(epoch, &cp)
                .await
                .map_err(|source| PipelineError::Node {
                    node: id.clone(),
                    source,
                })?;
        }
        self.latency.committed(epoch);
        metrics().checkpoint_bytes.set(bytes_written as i64);
        self.store.prune(self.keep).await?;
        Ok(())
    }
}
