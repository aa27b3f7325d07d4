//! The task loop of each role: sources read and answer barrier requests,
//! operators process and snapshot, sinks write and pre-commit.

use std::collections::HashMap;

use tokio::sync::mpsc;
use tracing::{Instrument, debug_span, info};

use super::channel::RowSender;
use super::error::PipelineError;
use super::inputs::{InputEvent, Inputs};
use super::message::{Batch, Message};
use super::traits::{Emitter, Operator, Sink, Source, SourcePoll};
use crate::checkpoint::{Ack, SourceControl};
use crate::metrics::{NodeLabels, NodeTableLabels, metrics};

/// A node's outgoing edges by output name.
pub struct Outputs {
    pub node: String,
    pub edges: HashMap<&'static str, Vec<RowSender>>,
}

impl Outputs {
    async fn send(&self, output: &'static str, batch: Batch) -> Result<(), PipelineError> {
        metrics()
            .events_out
            .get_or_create(&NodeTableLabels {
                node: self.node.clone(),
                table: batch.table.to_string(),
            })
            .inc_by(batch.num_rows() as u64);
        let senders = self
            .edges
            .get(output)
            .map(Vec::as_slice)
            .unwrap_or_default();
        for tx in senders {
            tx.send(Message::Batch(batch.clone()))
                .await
                .map_err(|_| PipelineError::Disconnected(self.node.clone()))?;
        }
        Ok(())
    }

    async fn broadcast(&self, message: Message) -> Result<(), PipelineError> {
        for tx in self.edges.values().flatten() {
            tx.send(message.clone())
                .await
                .map_err(|_| PipelineError::Disconnected(self.node.clone()))?;
        }
        Ok(())
    }

    async fn flush(&self, emitter: &mut Emitter) -> Result<(), PipelineError> {
        let pending = emitter.take();
        for (output, batch) in pending {
            self.send(output, batch).await?;
        }
        if let Some(w) = emitter.take_watermark() {
            self.broadcast(Message::Watermark(w)).await?;
        }
        Ok(())
    }
}

/// Metrics and spans of what a task receives.
struct InputMeter {
    labels: NodeLabels,
}

impl InputMeter {
    fn new(node: &str) -> Self {
        Self {
            labels: NodeLabels {
                node: node.to_string(),
            },
        }
    }

    fn queue(&self, inputs: &Inputs) {
        metrics()
            .channel_queued_rows
            .get_or_create(&self.labels)
            .set(inputs.queued_rows() as i64);
    }

    /// Counts a received batch and opens its span.
    fn batch(&self, batch: &Batch) -> tracing::Span {
        metrics()
            .events_in
            .get_or_create(&self.labels)
            .inc_by(batch.num_rows() as u64);
        debug_span!("batch", node = %self.labels.node, table = batch.table, rows = batch.num_rows())
    }
}

fn node_error(node: &str) -> impl Fn(super::traits::NodeError) -> PipelineError + '_ {
    move |source| PipelineError::Node {
        node: node.to_string(),
        source,
    }
}

fn ack(acks: &mpsc::UnboundedSender<Ack>, a: Ack) -> Result<(), PipelineError> {
    acks.send(a)
        .map_err(|_| PipelineError::Checkpoint("the checkpoint coordinator has stopped".into()))
}

pub async fn run_source(
    index: usize,
    mut source: Box<dyn Source>,
    outputs: Outputs,
    mut control: mpsc::UnboundedReceiver<SourceControl>,
    acks: mpsc::UnboundedSender<Ack>,
) -> Result<(), PipelineError> {
    let id = outputs.node.clone();
    let err = node_error(&id);
    loop {
        tokio::select! {
            biased;
            c = control.recv() => {
                let Some(c) = c else { break };
                let (SourceControl::Barrier(epoch) | SourceControl::Drain(epoch)) = c;
                if matches!(c, SourceControl::Drain(_)) {
                    while !source.caught_up() {
                        if let SourcePoll::Batch(batch) = source.poll().await.map_err(&err)? {
                            outputs.send(super::traits::OUT, batch).await?;
                        }
                    }
                }
                ack(&acks, Ack::Source { node: index, epoch, positions: source.position() })?;
                outputs.broadcast(Message::Barrier(epoch)).await?;
                if matches!(c, SourceControl::Drain(_)) {
                    break;
                }
            }
            polled = source.poll() => {
                if let SourcePoll::Batch(batch) = polled.map_err(&err)? {
                    outputs.send(super::traits::OUT, batch).await?;
                }
            }
        }
    }
    info!(node = %id, "source stopped");
    outputs.broadcast(Message::Stop).await
}

pub async fn run_operator(
    index: usize,
    mut operator: Box<dyn Operator>,
    mut inputs: Inputs,
    outputs: Outputs,
    acks: mpsc::UnboundedSender<Ack>,
) -> Result<(), PipelineError> {
    let id = outputs.node.clone();
    let err = node_error(&id);
    let meter = InputMeter::new(&id);
    let mut emitter = Emitter::default();
    loop {
        meter.queue(&inputs);
        match inputs.next().await {
            InputEvent::Batch(batch) => {
                let span = meter.batch(&batch);
                operator
                    .process(batch, &mut emitter)
                    .instrument(span)
                    .await
                    .map_err(&err)?;
                outputs.flush(&mut emitter).await?;
            }
            InputEvent::Watermark(w) => {
                let forward = operator.on_watermark(w, &mut emitter).await.map_err(&err)?;
                outputs.flush(&mut emitter).await?;
                if let Some(w) = forward {
                    outputs.broadcast(Message::Watermark(w)).await?;
                }
            }
            InputEvent::Barrier(epoch) => {
                let changed = operator.snapshot().map_err(&err)?;
                ack(
                    &acks,
                    Ack::Operator {
                        node: index,
                        epoch,
                        changed,
                    },
                )?;
                outputs.broadcast(Message::Barrier(epoch)).await?;
            }
            InputEvent::Stop => break,
        }
    }
    outputs.broadcast(Message::Stop).await
}

pub async fn run_sink(
    index: usize,
    id: String,
    mut sink: Box<dyn Sink>,
    mut inputs: Inputs,
    acks: mpsc::UnboundedSender<Ack>,
) -> Result<(), PipelineError> {
    let err = node_error(&id);
    let meter = InputMeter::new(&id);
    loop {
        meter.queue(&inputs);
        match inputs.next().await {
            InputEvent::Batch(batch) => {
                let span = meter.batch(&batch);
                sink.write(batch).instrument(span).await.map_err(&err)?;
            }
            InputEvent::Watermark(w) => sink.on_watermark(w).await.map_err(&err)?,
            InputEvent::Barrier(epoch) => {
                let started = std::time::Instant::now();
                let pre_commit = sink.pre_commit(epoch).await.map_err(&err)?;
                metrics()
                    .sink_flush_duration
                    .get_or_create(&meter.labels)
                    .observe(started.elapsed().as_secs_f64());
                ack(
                    &acks,
                    Ack::Sink {
                        node: index,
                        epoch,
                        pre_commit,
                    },
                )?;
            }
            InputEvent::Stop => break,
        }
    }
    sink.close().await.map_err(&err)
}
