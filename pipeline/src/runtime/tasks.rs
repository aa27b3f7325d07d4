//! The task loop of each role: sources read and answer barrier requests,
//! operators process and snapshot, sinks write and pre-commit.

use std::collections::HashMap;

use tokio::sync::mpsc;
use tracing::{Instrument, info, info_span};

use super::channel::RowSender;
use super::coordinator::{Ack, SourceControl};
use super::error::PipelineError;
use super::inputs::{InputEvent, Inputs};
use super::latency::{EventTimeSketch, PendingLatency};
use super::message::{Batch, Message};
use super::trace::BatchTrace;
use super::traits::{Emitter, Operator, Sink, Source, SourcePoll};
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

    /// Sends what the operator emitted; batches without a trace of their
    /// own carry on the trace of the batch they came from.
    async fn flush(&self, emitter: &mut Emitter, trace: &BatchTrace) -> Result<(), PipelineError> {
        let pending = emitter.take();
        for (output, mut batch) in pending {
            if batch.trace.is_empty() {
                batch.trace = trace.clone();
            }
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
    fn new(node: &str, inputs: &Inputs) -> Self {
        let labels = NodeLabels {
            node: node.to_string(),
        };
        metrics()
            .channel_capacity_rows
            .get_or_create(&labels)
            .set(inputs.capacity_rows() as i64);
        Self { labels }
    }

    fn queue(&self, inputs: &Inputs) {
        metrics()
            .channel_queued_rows
            .get_or_create(&self.labels)
            .set(inputs.queued_rows() as i64);
    }

    /// Counts a received batch and opens its span.
    fn batch(&self, batch: &Batch) -> tracing::Span {
        let m = metrics();
        m.events_in
            .get_or_create(&self.labels)
            .inc_by(batch.num_rows() as u64);
        m.batch_rows
            .get_or_create(&self.labels)
            .observe(batch.num_rows() as f64);
        let span = info_span!(
            "batch",
            otel.name = %format_args!("{} {}", self.labels.node, batch.table),
            node = %self.labels.node,
            table = batch.table,
            rows = batch.num_rows(),
        );
        batch.trace.join(&span);
        span
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
    let meter = InputMeter::new(&id, &inputs);
    let mut emitter = Emitter::default();
    loop {
        meter.queue(&inputs);
        match inputs.next().await {
            InputEvent::Batch(batch) => {
                let span = meter.batch(&batch);
                let trace = batch.trace.clone();
                operator
                    .process(batch, &mut emitter)
                    .instrument(span.clone())
                    .await
                    .map_err(&err)?;
                // An operator that reads the trace contexts (decode) links
                // its own, already running, span to them too.
                if trace.is_empty()
                    && let Some((_, out)) = emitter.pending().find(|(_, b)| !b.trace.is_empty())
                {
                    out.trace.link(&span);
                }
                // The span ends with the work: time spent waiting for room
                // downstream (backpressure) is not this node's.
                drop(span);
                outputs.flush(&mut emitter, &trace).await?;
            }
            InputEvent::Watermark(w) => {
                let forward = operator.on_watermark(w, &mut emitter).await.map_err(&err)?;
                outputs.flush(&mut emitter, &BatchTrace::default()).await?;
                if let Some(w) = forward {
                    outputs.broadcast(Message::Watermark(w)).await?;
                }
            }
            InputEvent::Barrier(epoch) => {
                operator.on_barrier(&mut emitter).await.map_err(&err)?;
                outputs.flush(&mut emitter, &BatchTrace::default()).await?;
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
    latency: PendingLatency,
) -> Result<(), PipelineError> {
    let err = node_error(&id);
    let meter = InputMeter::new(&id, &inputs);
    let mut event_times = EventTimeSketch::default();
    loop {
        meter.queue(&inputs);
        match inputs.next().await {
            InputEvent::Batch(batch) => {
                let span = meter.batch(&batch);
                event_times.add(&batch);
                sink.write(batch).instrument(span).await.map_err(&err)?;
            }
            InputEvent::Watermark(w) => sink.on_watermark(w).await.map_err(&err)?,
            InputEvent::Barrier(epoch) => {
                let started = std::time::Instant::now();
                let pre_commit = sink.pre_commit(epoch).await.map_err(&err)?;
                latency.stage(epoch, &id, std::mem::take(&mut event_times));
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
