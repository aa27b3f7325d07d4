//! The three roles a node plays in a dataflow graph, and what a checkpoint
//! asks of each.

use std::sync::Arc;

use async_trait::async_trait;

use super::message::{Batch, Watermark};
use crate::checkpoint::{NodeCheckpoint, Positions};

/// Errors from node implementations; each crate keeps its own typed errors
/// and boxes them at this boundary.
pub type NodeError = Box<dyn std::error::Error + Send + Sync>;

/// What a source returned from one poll.
#[derive(Debug)]
pub enum SourcePoll {
    Batch(Batch),
    /// Nothing to read right now; poll again (the source waited a little).
    Idle,
}

/// Reads records from outside the graph and knows its read positions.
#[async_trait]
pub trait Source: Send {
    /// Seeks to positions from the newest complete checkpoint; a shard
    /// without a position starts at its beginning.
    async fn restore(&mut self, positions: &Positions) -> Result<(), NodeError>;
    /// The next batch, or [`SourcePoll::Idle`] after a short wait. Must be
    /// cancel-safe: the task may drop the future to handle a barrier.
    async fn poll(&mut self) -> Result<SourcePoll, NodeError>;
    /// Positions after the last record returned (the next record to read),
    /// by shard.
    fn position(&self) -> Positions;
    /// Whether everything available has been read. A draining stop (clean
    /// shutdown) reads until this holds, so every accepted event is
    /// committed before the process exits.
    fn caught_up(&self) -> bool {
        true
    }
    /// Acts on completed checkpoints (drop log segments, commit Kafka offsets).
    fn committer(&self) -> Option<Arc<dyn Committer>> {
        None
    }
}

/// Collects the batches an operator emits, by output name.
#[derive(Default)]
pub struct Emitter {
    pending: Vec<(&'static str, Batch)>,
    watermark: Option<Watermark>,
}

impl Emitter {
    pub fn emit(&mut self, output: &'static str, batch: Batch) {
        if batch.num_rows() > 0 {
            self.pending.push((output, batch));
        }
    }

    /// Sends a watermark downstream after the batches emitted so far (for
    /// the operator that first knows event time, such as decode).
    pub fn watermark(&mut self, watermark: Watermark) {
        self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
    }

    /// The batches emitted so far, not yet taken.
    pub fn pending(&self) -> impl Iterator<Item = &(&'static str, Batch)> {
        self.pending.iter()
    }

    /// Takes the batches emitted so far (the task sends them; tests read them).
    pub fn take(&mut self) -> Vec<(&'static str, Batch)> {
        std::mem::take(&mut self.pending)
    }

    /// Takes the watermark emitted so far (the task broadcasts it after the
    /// batches; a driver of operators outside the runtime, such as
    /// `somaflow bench-chain`, forwards it the same way).
    pub fn take_watermark(&mut self) -> Option<Watermark> {
        self.watermark.take()
    }
}

/// One shard's state at a barrier.
#[derive(Debug, Clone, PartialEq)]
pub enum StateBlob {
    /// The whole state: replaces what the checkpoint held for the shard.
    Whole(Vec<u8>),
    /// What changed since the shard's previous blob: appended to its
    /// chain, so a checkpoint of large state writes only the change.
    Delta(Vec<u8>),
}

impl StateBlob {
    pub fn len(&self) -> usize {
        match self {
            StateBlob::Whole(b) | StateBlob::Delta(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The default output of every node.
pub const OUT: &str = "out";

/// Transforms batches; may hold state that checkpoints snapshot.
#[async_trait]
pub trait Operator: Send {
    /// Named outputs, the first being the main one. Each must be wired.
    fn outputs(&self) -> &'static [&'static str] {
        &[OUT]
    }
    async fn process(&mut self, batch: Batch, out: &mut Emitter) -> Result<(), NodeError>;
    /// Called when the input watermark advances; returns the watermark to
    /// forward (an operator may hold it back while it keeps windows open).
    async fn on_watermark(
        &mut self,
        watermark: Watermark,
        _out: &mut Emitter,
    ) -> Result<Option<Watermark>, NodeError> {
        Ok(Some(watermark))
    }
    /// Called at a barrier before [`Operator::snapshot`]: rows emitted here
    /// belong to the checkpoint (the window operator sends the open
    /// windows' sums so far, making usage fresh at every commit).
    async fn on_barrier(&mut self, _out: &mut Emitter) -> Result<(), NodeError> {
        Ok(())
    }
    /// State at a barrier, by shard (see [`crate::checkpoint::shard`]):
    /// only the shards that changed since the previous snapshot; the others
    /// keep their earlier blobs. Stateless operators return nothing.
    fn snapshot(&mut self) -> Result<Vec<(String, StateBlob)>, NodeError> {
        Ok(Vec::new())
    }
    /// Restores one shard's state from its whole blob (called once per
    /// shard before any batch).
    fn restore(&mut self, _shard: &str, _state: &[u8]) -> Result<(), NodeError> {
        Ok(())
    }
    /// Applies one delta written after the whole blob, in the order they
    /// were written. Only operators that write deltas receive them.
    fn restore_delta(&mut self, shard: &str, _delta: &[u8]) -> Result<(), NodeError> {
        Err(format!(
            "shard {shard}: this operator writes no state deltas, yet the checkpoint has one"
        )
        .into())
    }
}

/// Writes batches outside the graph, two-phase: staged at a barrier,
/// published by its [`Committer`] once the checkpoint is durable.
#[async_trait]
pub trait Sink: Send {
    async fn write(&mut self, batch: Batch) -> Result<(), NodeError>;
    async fn on_watermark(&mut self, _watermark: Watermark) -> Result<(), NodeError> {
        Ok(())
    }
    /// Flushes and stages everything received before the barrier of `epoch`;
    /// returns what the committer needs to publish it (kept in the manifest).
    async fn pre_commit(&mut self, epoch: u64) -> Result<serde_json::Value, NodeError>;
    /// Input ended. Unstaged rows are dropped: they will be replayed.
    async fn close(&mut self) -> Result<(), NodeError> {
        Ok(())
    }
    fn committer(&self) -> Arc<dyn Committer>;
}

/// Publishes what a node staged for a checkpoint. Lives apart from its task
/// so the coordinator can commit after the task has finished, and at restart.
#[async_trait]
pub trait Committer: Send + Sync {
    /// Publishes the node's part of a durable checkpoint. Must be idempotent.
    async fn commit(&self, epoch: u64, checkpoint: &NodeCheckpoint) -> Result<(), NodeError>;
    /// At startup: finishes the commit of the newest complete checkpoint and
    /// discards work staged for later checkpoints that never completed.
    async fn recover(&self, checkpoint: Option<&NodeCheckpoint>) -> Result<(), NodeError>;
}

/// A node as built from config.
pub enum Node {
    Source(Box<dyn Source>),
    Operator(Box<dyn Operator>),
    Sink(Box<dyn Sink>),
}
