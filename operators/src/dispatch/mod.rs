//! The `dispatch` operator: workflow steps with status `queued` are sent to
//! their agent pool: its Kafka topic (`dispatch.topic_prefix` + pool, keyed
//! by run so a run's steps stay in order), or on a node without a broker
//! its queue in the embedded log (one ordered queue per pool), each message
//! carrying the event id so
//! agents can drop a step they already took (a replay after a crash may
//! send it again: at-least-once, deduplicated by the receiver). A step is
//! refused, with a `policy_decisions` row saying why, when its tenant is
//! over its hard budget (`budget_exceeded`) or over its dispatch rate
//! (`rate_limited`, governor, per tenant). A step that policy denied is
//! refused (`policy_denied`), and so is one naming an agent pool that is not
//! configured (`unknown_agent_pool`): its topic may not exist, and a made-up
//! name must neither fail the pipeline nor create a topic. Events pass
//! through on `out`.

mod config;
mod queue;
mod refusals;

use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;

use async_trait::async_trait;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::metrics::{metrics, outcome};
use somaflow_pipeline::runtime::{Batch, Emitter, NodeError, OUT, Operator};

use crate::budget::{BudgetView, MonthOf};
use crate::columns::{Columns, opt_str};
use refusals::Refusals;

pub use config::DispatchConfig;
pub use queue::{AgentQueue, DispatchError, KafkaAgentQueue, LogAgentQueue, StepMessage, step_key};

/// The output refusals go to (rows of `policy_decisions`).
pub const REFUSALS: &str = "decisions";

pub struct Dispatch {
    node: String,
    queue: Arc<dyn AgentQueue>,
    budgets: BudgetView,
    limiter: DefaultKeyedRateLimiter<String>,
    /// The agent pools steps may go to; `None` takes any.
    pools: Option<HashSet<String>>,
}

impl Dispatch {
    pub fn new(
        node: &str,
        queue: Arc<dyn AgentQueue>,
        budgets: BudgetView,
        per_tenant_per_sec: u32,
        burst: u32,
    ) -> Self {
        // Every outcome's series exists from the start (0, not absent).
        for o in [
            "dispatched",
            "policy_denied",
            "unknown_agent_pool",
            "budget_exceeded",
            "rate_limited",
        ] {
            let _ = metrics().dispatch.get_or_create(&outcome(node, o));
        }
        let rate = NonZeroU32::new(per_tenant_per_sec).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        Self {
            node: node.to_string(),
            queue,
            budgets,
            limiter: RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst)),
            pools: None,
        }
    }

    /// Refuses steps for pools other than `pools`.
    pub fn with_pools(mut self, pools: &[String]) -> Self {
        self.pools = Some(pools.iter().cloned().collect());
        self
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
        let pool = c.str("agent_pool")?;
        let verdict = c.str("policy_verdict")?;
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
            if opt_str(verdict, i) == Some("deny") {
                refusals.push(i, "policy_denied");
            } else if self
                .pools
                .as_ref()
                .is_some_and(|pools| !pools.contains(pool.value(i)))
            {
                refusals.push(i, "unknown_agent_pool");
            } else if over_budget {
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

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use datafusion::arrow::array::{
        Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
        new_null_array,
    };
    use datafusion::arrow::datatypes::DataType;
    use somaflow_pipeline::events::schema::kind_schema;

    use super::*;
    use crate::budget::LocalLedger;

    /// Keeps what it was handed (the operator's contract is only "accepted").
    #[derive(Default)]
    struct Recorded(Mutex<Vec<StepMessage>>);

    #[async_trait]
    impl AgentQueue for Recorded {
        async fn send(&self, messages: Vec<StepMessage>) -> Result<(), DispatchError> {
            self.0.lock().unwrap().extend(messages);
            Ok(())
        }
    }

    /// Workflow steps as (event id, status, agent pool, policy verdict).
    fn steps(rows: &[(&str, &str, &str, Option<&str>)]) -> Batch {
        let schema = kind_schema(EventKind::WorkflowStep);
        let n = rows.len();
        let text = |values: Vec<Option<&str>>| -> ArrayRef { Arc::new(StringArray::from(values)) };
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                "event_id" => text(rows.iter().map(|r| Some(r.0)).collect()),
                "status" => text(rows.iter().map(|r| Some(r.1)).collect()),
                "agent_pool" => text(rows.iter().map(|r| Some(r.2)).collect()),
                "policy_verdict" => text(rows.iter().map(|r| r.3).collect()),
                "event_time" => Arc::new(
                    TimestampMicrosecondArray::from(vec![1_764_547_200_000_000; n])
                        .with_timezone("UTC"),
                ) as ArrayRef,
                _ if f.is_nullable() => new_null_array(f.data_type(), n),
                _ if f.data_type() == &DataType::Utf8 => Arc::new(StringArray::from(vec!["t1"; n])),
                _ if f.data_type() == &DataType::Int64 => Arc::new(Int64Array::from(vec![1; n])),
                // Other required columns (times, partition): zeros of their type.
                _ => datafusion::arrow::compute::cast(&Int64Array::from(vec![0; n]), f.data_type())
                    .unwrap(),
            })
            .collect();
        Batch::new(
            EventKind::WorkflowStep.table(),
            RecordBatch::try_new(schema, columns).unwrap(),
        )
    }

    #[tokio::test]
    async fn denied_and_unknown_pool_steps_are_refused_not_sent() {
        let queue = Arc::new(Recorded::default());
        let view = BudgetView::new(Arc::new(LocalLedger::default()), 80, Duration::ZERO);
        let mut op = Dispatch::new("dispatch", queue.clone(), view, 100, 100)
            .with_pools(&["general".to_string()]);
        let mut out = Emitter::default();
        op.process(
            steps(&[
                ("ok", "queued", "general", None),
                ("denied", "queued", "general", Some("deny")),
                ("made-up", "queued", "gpu pool", None),
                ("done", "succeeded", "gpu pool", None),
            ]),
            &mut out,
        )
        .await
        .unwrap();
        let sent: Vec<String> = queue
            .0
            .lock()
            .unwrap()
            .iter()
            .map(|m| m.event_id.clone())
            .collect();
        assert_eq!(sent, ["ok"]);
        let refusals: Vec<(String, String, String)> = out
            .take()
            .into_iter()
            .filter(|(o, _)| *o == REFUSALS)
            .flat_map(|(_, b)| {
                let column = |name: &str| {
                    b.rows
                        .column_by_name(name)
                        .unwrap()
                        .as_string::<i32>()
                        .clone()
                };
                let (ids, reasons, actions) =
                    (column("event_id"), column("reason"), column("action"));
                (0..ids.len())
                    .map(|i| {
                        (
                            ids.value(i).to_string(),
                            reasons.value(i).to_string(),
                            actions.value(i).to_string(),
                        )
                    })
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(refusals.len(), 2, "{refusals:?}");
        // Each refusal names the pool it was refused for.
        assert!(refusals.iter().any(|(id, r, a)| id.starts_with("denied")
            && r == "policy_denied"
            && a == "dispatch:general"));
        assert!(refusals.iter().any(|(id, r, a)| id.starts_with("made-up")
            && r == "unknown_agent_pool"
            && a == "dispatch:gpu pool"));
    }
}
