//! The `dispatch` operator: workflow steps with status `queued` are sent to
//! the Kafka topic of their agent pool (`dispatch.topic_prefix` + pool),
//! keyed by run so a run's steps stay in order, carrying the event id so
//! agents can drop a step they already took (a replay after a crash may
//! send it again: at-least-once, deduplicated by the receiver). A step is
//! refused, with a `policy_decisions` row saying why, when its tenant is
//! over its hard budget (`budget_exceeded`) or over its dispatch rate
//! (`rate_limited`, governor, per tenant). Events pass through on `out`.

mod queue;
mod refusals;

use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::metrics::{metrics, outcome};
use somaflow_pipeline::runtime::{Batch, Emitter, NodeError, OUT, Operator};

use crate::budget::{BudgetView, MonthOf};
use crate::columns::Columns;
pub use queue::{AgentQueue, DispatchError, KafkaAgentQueue, StepMessage};
use refusals::Refusals;

/// The output refusals go to (rows of `policy_decisions`).
pub const REFUSALS: &str = "decisions";

pub struct Dispatch {
    node: String,
    queue: Arc<dyn AgentQueue>,
    budgets: BudgetView,
    limiter: DefaultKeyedRateLimiter<String>,
}

impl Dispatch {
    pub fn new(
        node: &str,
        queue: Arc<dyn AgentQueue>,
        budgets: BudgetView,
        per_tenant_per_sec: u32,
        burst: u32,
    ) -> Self {
        let rate = NonZeroU32::new(per_tenant_per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            node: node.to_string(),
            queue,
            budgets,
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
        }
    }

    async fn dispatch(&mut self, batch: &Batch, out: &mut Emitter) -> Result<(), NodeError> {
        let rows = &batch.rows;
        let c = Columns::new(batch.table, rows);
        let status = c.str("status")?;
        let queued: Vec<usize> = (0..rows.num_rows())
            .filter(|&i| status.value(i) == "queued")
            .collect();
        if queued.is_empty() {
            return Ok(());
        }
        let tenant = c.str("tenant_id")?;
        let time = c.micros("event_time")?;
        let mut months = MonthOf::default();
        let keys: Vec<(String, String)> = queued
            .iter()
            .map(|&i| {
                (
                    tenant.value(i).to_string(),
                    months.month(time.value(i)).to_string(),
                )
            })
            .collect();
        let over = self.budgets.over_hard_budget(&keys).await;
        let mut messages = Vec::new();
        let mut refusals = Refusals::default();
        for (&i, over_budget) in queued.iter().zip(over) {
            if over_budget {
                refusals.push(i, "budget_exceeded");
            } else if self
                .limiter
                .check_key(&tenant.value(i).to_string())
                .is_err()
            {
                refusals.push(i, "rate_limited");
            } else {
                messages.push(StepMessage::from_row(&c, i)?);
            }
        }
        let m = metrics();
        m.dispatch
            .get_or_create(&outcome(&self.node, "dispatched"))
            .inc_by(messages.len() as u64);
        for (reason, n) in refusals.counts() {
            m.dispatch
                .get_or_create(&outcome(&self.node, reason))
                .inc_by(n);
        }
        // Delivered before the batch moves on: a checkpoint after it never
        // covers a step that was not handed to Kafka.
        self.queue.send(messages).await?;
        if let Some(rows) = refusals.finish(&c)? {
            out.emit(
                REFUSALS,
                Batch::new(EventKind::PolicyDecision.table(), rows),
            );
        }
        Ok(())
    }
}

#[async_trait]
impl Operator for Dispatch {
    fn outputs(&self) -> &'static [&'static str] {
        &[OUT, REFUSALS]
    }

    async fn process(&mut self, batch: Batch, out: &mut Emitter) -> Result<(), NodeError> {
        if batch.table == EventKind::WorkflowStep.table() {
            let _span =
                tracing::debug_span!("dispatch", node = %self.node, rows = batch.num_rows());
            self.dispatch(&batch, out).await?;
        }
        out.emit(OUT, batch);
        Ok(())
    }
}
