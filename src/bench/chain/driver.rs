//! Driving the chain as the runtime's operator tasks drive it: each main
//! output feeds the next operator, a watermark follows the batches it came
//! after and only when it advances; side outputs are counted, and each
//! operator's time is measured.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::array::Array;
use somaflow_operators::dispatch::{AgentQueue, DispatchError, StepMessage};
use somaflow_pipeline::runtime::{Batch, Emitter, OUT, Operator, Watermark};

/// Dispatch's agent queue for the benchmark: counts the steps it is handed
/// and drops them. No I/O by design: the issue measures the chain without
/// I/O (sending to Kafka is `bench-kafka`'s business).
#[derive(Default)]
pub struct CountingQueue {
    messages: AtomicU64,
}

impl CountingQueue {
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl AgentQueue for CountingQueue {
    async fn send(&self, messages: Vec<StepMessage>) -> Result<(), DispatchError> {
        self.messages
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// One operator of the chain and what it cost.
pub(super) struct Stage {
    pub(super) name: &'static str,
    pub(super) op: Box<dyn Operator>,
    pub(super) process: Duration,
    pub(super) on_watermark: Duration,
    pub(super) rows_in: u64,
    /// The last watermark it was given (it is given only later ones).
    pub(super) watermark: Option<Watermark>,
}

impl Stage {
    pub(super) fn new(name: &'static str, op: Box<dyn Operator>) -> Self {
        Self {
            name,
            op,
            process: Duration::ZERO,
            on_watermark: Duration::ZERO,
            rows_in: 0,
            watermark: None,
        }
    }
}

/// What came out of the chain: rows per (operator, side output), and the
/// checks that the operators did their work.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) side: BTreeMap<(&'static str, &'static str), u64>,
    /// Rows leaving the last operator.
    pub(super) out: u64,
    /// Rows leaving enrich with a tenant plan.
    pub(super) enriched: u64,
    /// Conversations leaving accounting with our rated cost.
    pub(super) rated: u64,
}

impl Tally {
    pub(super) fn side(&self, stage: &str, output: &str) -> u64 {
        self.side
            .iter()
            .filter(|((s, o), _)| *s == stage && *o == output)
            .map(|(_, n)| n)
            .sum()
    }
}

pub(super) struct Chain {
    pub(super) stages: Vec<Stage>,
    pub(super) tally: Tally,
    pub(super) emitter: Emitter,
}

impl Chain {
    /// One raw batch through every operator, then the watermark it raised.
    pub(super) async fn run(&mut self, raw: Batch) -> anyhow::Result<()> {
        let mut carry = vec![raw];
        let mut watermark: Option<Watermark> = None;
        let last = self.stages.len() - 1;
        for k in 0..self.stages.len() {
            let stage = &mut self.stages[k];
            let mut next = Vec::new();
            for batch in carry.drain(..) {
                stage.rows_in += batch.num_rows() as u64;
                let started = Instant::now();
                stage
                    .op
                    .process(batch, &mut self.emitter)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}: {e}", stage.name))?;
                stage.process += started.elapsed();
                route(stage.name, &mut self.emitter, &mut next, &mut self.tally);
            }
            let mut forwarded = self.emitter.take_watermark();
            // As the runtime's inputs do: only a watermark that advances.
            if let Some(w) = watermark.filter(|w| stage.watermark.is_none_or(|s| *w > s)) {
                stage.watermark = Some(w);
                let started = Instant::now();
                let forward = stage
                    .op
                    .on_watermark(w, &mut self.emitter)
                    .await
                    .map_err(|e| anyhow::anyhow!("{} (watermark): {e}", stage.name))?;
                stage.on_watermark += started.elapsed();
                route(stage.name, &mut self.emitter, &mut next, &mut self.tally);
                forwarded = forwarded.max(forward).max(self.emitter.take_watermark());
            }
            watermark = forwarded;
            if k == last {
                self.tally.out += next.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            }
            carry = next;
        }
        Ok(())
    }

    /// Forgets the costs and counts of the warm-up (state stays).
    pub(super) fn reset(&mut self) {
        for s in &mut self.stages {
            s.process = Duration::ZERO;
            s.on_watermark = Duration::ZERO;
            s.rows_in = 0;
        }
        self.tally = Tally::default();
    }
}

/// Main outputs go to the next operator; side outputs are counted.
pub(super) fn route(
    stage: &'static str,
    emitter: &mut Emitter,
    next: &mut Vec<Batch>,
    tally: &mut Tally,
) {
    for (output, batch) in emitter.take() {
        if output != OUT {
            *tally.side.entry((stage, output)).or_default() += batch.num_rows() as u64;
            continue;
        }
        // Null counts are precomputed: these checks cost nothing measurable.
        let set = |column: &str| {
            batch
                .rows
                .column_by_name(column)
                .map_or(0, |c| (c.len() - c.null_count()) as u64)
        };
        match stage {
            "enrich" => tally.enriched += set("tenant_plan"),
            "accounting" => tally.rated += set("rated_cost_usd"),
            _ => {}
        }
        next.push(batch);
    }
}
