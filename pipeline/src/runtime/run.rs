//! Starting a pipeline: plan the graph, load the newest checkpoint, restore
//! every node, finish the interrupted commit, wire the channels and spawn the
//! tasks plus the checkpoint coordinator.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tracing::{error, info};

use super::channel::{RowReceiver, RowSender, row_channel};
use super::coordinator::Coordinator;
use super::error::PipelineError;
use super::graph::{Registry, plan as plan_graph};
use super::inputs::Inputs;
use super::latency::PendingLatency;
use super::status::PipelineStatus;
use super::tasks::{Outputs, run_operator, run_sink, run_source};
use super::traits::{Committer, Node};
use crate::checkpoint::{CheckpointStore, NodeCheckpoint, RestorePlan};
use crate::config::EngineConfig;

/// A running pipeline.
pub struct RunningPipeline {
    shutdown: watch::Sender<bool>,
    done: tokio::task::JoinHandle<Result<(), PipelineError>>,
    pub status: Arc<PipelineStatus>,
}

impl RunningPipeline {
    /// Asks for a final checkpoint and a clean stop.
    pub fn request_stop(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Waits for the pipeline to end (after `request_stop`, or on failure).
    pub async fn wait(self) -> Result<(), PipelineError> {
        self.done
            .await
            .map_err(|e| PipelineError::Join(e.to_string()))?
    }

    pub async fn stop(self) -> Result<(), PipelineError> {
        self.request_stop();
        self.wait().await
    }

    /// Stops at once, without a final checkpoint: what was not committed is
    /// read again, from the last checkpoint, by the next owner.
    pub fn abort(self) {
        self.done.abort();
    }

    /// As [`Self::stop`], but aborts when the final checkpoint takes longer
    /// than `deadline`; says whether it was taken.
    pub async fn stop_within(mut self, deadline: Duration) -> Result<bool, PipelineError> {
        self.request_stop();
        match tokio::time::timeout(deadline, &mut self.done).await {
            Ok(joined) => joined
                .map_err(|e| PipelineError::Join(e.to_string()))?
                .map(|()| true),
            Err(_) => {
                self.done.abort();
                Ok(false)
            }
        }
    }
}

fn node_err(id: &str) -> impl Fn(super::traits::NodeError) -> PipelineError + '_ {
    move |source| PipelineError::Node {
        node: id.to_string(),
        source,
    }
}

/// Starts a single node's pipeline from its own newest checkpoint.
pub async fn start<C: EngineConfig>(
    config: &C,
    registry: &Registry<C>,
) -> Result<RunningPipeline, PipelineError> {
    let store = CheckpointStore::open(&config.checkpoint_store())?;
    let plan = RestorePlan::load(&store, None).await?;
    start_with(config, registry, store, plan, Arc::default()).await
}

/// Starts a pipeline that restores what `plan` says: a cluster worker's
/// instance for its current partitions. `status` may outlive the instance.
pub async fn start_with<C: EngineConfig>(
    config: &C,
    registry: &Registry<C>,
    store: CheckpointStore,
    plan: RestorePlan,
    status: Arc<PipelineStatus>,
) -> Result<RunningPipeline, PipelineError> {
    let mut planned = plan_graph(config, registry)?;
    match &plan.own {
        Some(m) => info!(epoch = m.epoch, created_at = %m.created_at, "restoring from checkpoint"),
        None => info!("no checkpoint of this node yet"),
    }

    let mut committers: Vec<(usize, Arc<dyn Committer>)> = Vec::new();
    let mut state_keys = BTreeMap::new();
    let empty = NodeCheckpoint::default();
    for (i, p) in planned.iter_mut().enumerate() {
        let restore = plan.nodes.get(&p.id).unwrap_or(&empty);
        let err = node_err(&p.id);
        let committer = match &mut p.node {
            Node::Source(s) => {
                s.restore(&restore.positions).await.map_err(&err)?;
                s.committer()
            }
            Node::Operator(op) => {
                for (shard, chain) in &restore.state {
                    for (i, key) in chain.keys().enumerate() {
                        let state = store.read_state(key).await?;
                        if i == 0 {
                            op.restore(shard, &state).map_err(&err)?;
                        } else {
                            op.restore_delta(shard, &state).map_err(&err)?;
                        }
                    }
                }
                state_keys.insert(p.id.clone(), restore.state.clone());
                None
            }
            Node::Sink(s) => Some(s.committer()),
        };
        if let Some(c) = committer {
            let own = plan.own.as_ref().and_then(|m| m.nodes.get(&p.id));
            c.recover(own).await.map_err(&err)?;
            for peer in &plan.peers {
                if let Some(cp) = peer.nodes.get(&p.id).filter(|cp| cp.pre_commit.is_some()) {
                    c.commit(peer.epoch, cp).await.map_err(&err)?;
                }
            }
            committers.push((i, c));
        }
    }

    // Edges: one row-counted channel per (upstream output → downstream input).
    let n = planned.len();
    let mut senders: Vec<HashMap<&'static str, Vec<RowSender>>> = vec![HashMap::new(); n];
    let mut receivers: Vec<Vec<RowReceiver>> = (0..n).map(|_| Vec::new()).collect();
    for (d, p) in planned.iter().enumerate() {
        for (u, output) in &p.inputs {
            let (tx, rx) = row_channel(config.pipeline().channel_rows);
            senders[*u].entry(output).or_default().push(tx);
            receivers[d].push(rx);
        }
    }

    let (ack_tx, ack_rx) = mpsc::unbounded_channel();
    let mut source_controls = Vec::new();
    let mut tasks: JoinSet<Result<(), PipelineError>> = JoinSet::new();
    let latency = PendingLatency::default();
    let node_ids: Vec<String> = planned.iter().map(|p| p.id.clone()).collect();
    for (i, (p, (edges, rxs))) in planned
        .into_iter()
        .zip(senders.into_iter().zip(receivers))
        .enumerate()
    {
        let outputs = Outputs {
            node: p.id.clone(),
            edges,
        };
        let acks = ack_tx.clone();
        match p.node {
            Node::Source(s) => {
                let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
                source_controls.push(ctl_tx);
                tasks.spawn(run_source(i, s, outputs, ctl_rx, acks));
            }
            Node::Operator(op) => {
                tasks.spawn(run_operator(i, op, Inputs::new(rxs), outputs, acks));
            }
            Node::Sink(s) => {
                tasks.spawn(run_sink(
                    i,
                    p.id,
                    s,
                    Inputs::new(rxs),
                    acks,
                    latency.clone(),
                ));
            }
        }
    }
    drop(ack_tx);

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let coordinator = Coordinator {
        store,
        node_ids,
        sources: source_controls,
        committers,
        acks: ack_rx,
        epoch: plan.epoch,
        interval: Duration::from_millis(config.checkpoint().interval_ms),
        keep: config.checkpoint().keep,
        status: status.clone(),
        latency,
        carried: plan.carried,
        state_keys,
    };
    status.set_running(true);
    let supervisor_status = status.clone();
    let done = tokio::spawn(async move {
        let result = supervise(coordinator, shutdown_rx, tasks).await;
        match &result {
            Ok(()) => supervisor_status.set_running(false),
            Err(e) => {
                error!(error = %e, "pipeline failed");
                supervisor_status.fail(e.to_string());
            }
        }
        result
    });
    Ok(RunningPipeline {
        shutdown: shutdown_tx,
        done,
        status,
    })
}

/// Runs the coordinator beside the tasks; the first failure stops everything.
async fn supervise(
    coordinator: Coordinator,
    shutdown: watch::Receiver<bool>,
    mut tasks: JoinSet<Result<(), PipelineError>>,
) -> Result<(), PipelineError> {
    let coordinator = coordinator.run(shutdown);
    tokio::pin!(coordinator);
    let mut coordinator_done = false;
    loop {
        tokio::select! {
            result = &mut coordinator, if !coordinator_done => {
                coordinator_done = true;
                if let Err(e) = result {
                    tasks.abort_all();
                    return Err(e);
                }
            }
            joined = tasks.join_next() => match joined {
                None => {
                    // Tasks end after acknowledging the final barrier; the
                    // coordinator may still be committing it. If a task ended
                    // without acknowledging, the closed ack channel fails it.
                    if !coordinator_done {
                        coordinator.await?;
                    }
                    return Ok(());
                }
                Some(Ok(Ok(()))) => {}
                Some(Ok(Err(e))) => {
                    tasks.abort_all();
                    return Err(e);
                }
                Some(Err(e)) => {
                    tasks.abort_all();
                    return Err(PipelineError::Join(e.to_string()));
                }
            }
        }
    }
}
