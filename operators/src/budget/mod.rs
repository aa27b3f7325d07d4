//! The `budget` operator: month-to-date spend per tenant (the billed cost
//! of its conversations, by event-time month) against its monthly budget.
//! Spend is shared across workers through the ledger (Redis), pushed as
//! per-shard cumulative values so a replay never double counts. Crossing
//! the soft (default 80 %) and hard (100 %) thresholds emits one
//! `budget_events` row per tenant, month and level: the ledger names the
//! shard that crossed first, and only that shard's owner emits, once (the
//! emission is part of the shard's checkpointed state, and its event id
//! is deterministic). Events pass through on `out`.
//!
//! When the ledger does not answer (Redis down) events keep flowing; spend
//! stays in the shard state and is pushed when it answers again.

mod config;
mod ledger;
mod month;
mod view;

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use serde::{Deserialize, Serialize};
use somaflow_pipeline::checkpoint::shard;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::schema::{BUDGET_EVENTS_TABLE, budget_events_schema};
use somaflow_pipeline::metrics::{metrics, node, outcome};
use somaflow_pipeline::runtime::{Batch, Emitter, NodeError, OUT, Operator, StateBlob, Watermark};

use crate::accounting::billed_cost;
use crate::columns::{Columns, decimal_array};

pub use config::BudgetConfig;
pub use ledger::{
    Crossing, LedgerError, LedgerState, LocalLedger, RedisLedger, SpendLedger, SpendUpdate,
    ledger_key,
};
pub use month::MonthOf;
pub use view::BudgetView;

/// The output budget threshold crossings go to.
pub const BUDGET_EVENTS: &str = "budget_events";

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("budget state snapshot is corrupt: {0}")]
    CorruptState(String),
}

/// One shard's spend per (tenant, month) and the crossings it emitted.
#[derive(Debug, Default, Serialize, Deserialize)]
struct ShardSpend {
    spend: HashMap<String, MonthSpend>,
    emitted: BTreeSet<String>,
    #[serde(skip)]
    dirty: bool,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct MonthSpend {
    tenant: String,
    month: String,
    cumulative_nanos: i128,
    last_event_us: i64,
    /// Not yet in the ledger (not checkpointed: a restored shard pushes all).
    #[serde(skip)]
    unsynced: bool,
}

pub struct Budget {
    node: String,
    view: BudgetView,
    shards: HashMap<String, ShardSpend>,
    /// Monthly budgets seen on rows (enrich), nano-USD.
    budgets: HashMap<String, i128>,
    /// The last push failed: said once, and again when pushes work again.
    push_failing: bool,
}

fn spend_key(tenant: &str, month: &str) -> String {
    let mut key = String::new();
    spend_key_into(&mut key, tenant, month);
    key
}

/// [`spend_key`] written into a reused buffer.
fn spend_key_into(key: &mut String, tenant: &str, month: &str) {
    key.clear();
    key.push_str(tenant);
    key.push('\u{1f}');
    key.push_str(month);
}

fn crossing_id(tenant: &str, month: &str, level: &str) -> String {
    format!("budget:{tenant}:{month}:{level}")
}

impl Budget {
    pub fn new(node: &str, view: BudgetView) -> Self {
        // Both levels' series exist from the start (0, not absent).
        for level in ["soft", "hard"] {
            let _ = metrics().budget_events.get_or_create(&outcome(node, level));
        }
        Self {
            node: node.to_string(),
            view,
            shards: HashMap::new(),
            budgets: HashMap::new(),
            push_failing: false,
        }
    }

    fn absorb(&mut self, rows: &RecordBatch) -> Result<(), NodeError> {
        let c = Columns::new(EventKind::Conversation.table(), rows);
        let (topic, partition) = (c.str("source_topic")?, c.i32("source_partition")?);
        let tenant = c.str("tenant_id")?;
        let time = c.micros("event_time")?;
        let (producer, rated) = (c.decimal("cost_usd")?, c.decimal("rated_cost_usd")?);
        let budget = c.decimal("tenant_monthly_budget_usd")?;
        let n = rows.num_rows();
        let mut months = MonthOf::default();
        let mut key = String::new();
        let mut start = 0;
        // Rows come in runs of one shard (a source batch is one partition):
        // its state is looked up once per run, and a row's tenant-month key
        // is built in a reused buffer, so a row whose entry exists allocates
        // nothing.
        while start < n {
            let (tp, pp) = (topic.value(start), partition.value(start));
            let mut end = start + 1;
            while end < n && partition.value(end) == pp && topic.value(end) == tp {
                end += 1;
            }
            // Made on the run's first row with a cost, as before per row.
            let mut state: Option<&mut ShardSpend> = None;
            for i in start..end {
                let t = tenant.value(i);
                if budget.is_valid(i) && self.budgets.get(t) != Some(&budget.value(i)) {
                    self.budgets.insert(t.to_string(), budget.value(i));
                }
                let Some(cost) = billed_cost(producer, rated, i) else {
                    continue;
                };
                let at = time.value(i);
                let month = months.month(at);
                if state.is_none() {
                    state = Some(self.shards.entry(shard(tp, pp)).or_default());
                }
                let Some(state) = state.as_deref_mut() else {
                    continue;
                };
                state.dirty = true;
                spend_key_into(&mut key, t, month);
                if !state.spend.contains_key(&key) {
                    state.spend.insert(
                        key.clone(),
                        MonthSpend {
                            tenant: t.to_string(),
                            month: month.to_string(),
                            ..MonthSpend::default()
                        },
                    );
                }
                if let Some(entry) = state.spend.get_mut(&key) {
                    entry.cumulative_nanos += cost;
                    entry.last_event_us = entry.last_event_us.max(at);
                    entry.unsynced = true;
                }
            }
            start = end;
        }
        Ok(())
    }

    /// Pushes unsynced spend; emits the crossings this worker owns.
    async fn sync(&mut self, out: &mut Emitter) {
        let mut updates = Vec::new();
        for (name, state) in &self.shards {
            for m in state.spend.values().filter(|m| m.unsynced) {
                updates.push(SpendUpdate {
                    tenant: m.tenant.clone(),
                    month: m.month.clone(),
                    shard: name.clone(),
                    cumulative_nanos: m.cumulative_nanos,
                    budget_nanos: self.budgets.get(&m.tenant).copied(),
                });
            }
        }
        let unsynced = |n: usize| {
            metrics()
                .budget_unsynced_tenants
                .get_or_create(&node(&self.node))
                .set(n as i64);
        };
        if updates.is_empty() {
            unsynced(0);
            return;
        }
        let states = match self.view.push(&updates).await {
            Ok(states) => states,
            Err(e) => {
                unsynced(updates.len());
                if !std::mem::replace(&mut self.push_failing, true) {
                    tracing::warn!(node = %self.node, error = %e,
                        "budget spend cannot be pushed to the ledger; kept and pushed again when it answers");
                }
                return;
            }
        };
        if std::mem::take(&mut self.push_failing) {
            tracing::info!(node = %self.node, "budget ledger answers again; spend is in sync");
        }
        unsynced(0);
        let mut crossings = CrossingRows::default();
        for (u, s) in updates.iter().zip(states) {
            let key = spend_key(&u.tenant, &u.month);
            let Some(state) = self.shards.get_mut(&u.shard) else {
                continue;
            };
            if let Some(m) = state.spend.get_mut(&key)
                && m.cumulative_nanos == u.cumulative_nanos
            {
                m.unsynced = false;
            }
            let last_event_us = state.spend.get(&key).map_or(0, |m| m.last_event_us);
            let Some(budget) = s.budget_nanos else {
                continue;
            };
            for (level, crossing) in [("soft", &s.soft), ("hard", &s.hard)] {
                let Some(c) = crossing else { continue };
                let id = crossing_id(&u.tenant, &u.month, level);
                // Only the shard that crossed emits, and only once.
                if c.shard != u.shard || state.emitted.contains(&id) {
                    continue;
                }
                let threshold = if level == "soft" {
                    budget * i128::from(self.view.soft_percent()) / 100
                } else {
                    budget
                };
                crossings.push(
                    id.clone(),
                    u,
                    level,
                    threshold,
                    budget,
                    c.total_nanos,
                    last_event_us,
                );
                state.emitted.insert(id);
                state.dirty = true;
                metrics()
                    .budget_events
                    .get_or_create(&outcome(&self.node, level))
                    .inc();
            }
        }
        if let Some(rows) = crossings.finish() {
            match rows {
                Ok(rows) => out.emit(BUDGET_EVENTS, Batch::new(BUDGET_EVENTS_TABLE, rows)),
                Err(e) => tracing::error!(node = %self.node, error = %e, "budget event rows"),
            }
        }
    }
}

/// `budget_events` rows being collected.
#[derive(Default)]
struct CrossingRows {
    id: Vec<String>,
    tenant: Vec<String>,
    month: Vec<String>,
    level: Vec<&'static str>,
    threshold: Vec<Option<i128>>,
    budget: Vec<Option<i128>>,
    spend: Vec<Option<i128>>,
    event_time: Vec<i64>,
}

impl CrossingRows {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        id: String,
        u: &SpendUpdate,
        level: &'static str,
        threshold: i128,
        budget: i128,
        spend: i128,
        event_time: i64,
    ) {
        self.id.push(id);
        self.tenant.push(u.tenant.clone());
        self.month.push(u.month.clone());
        self.level.push(level);
        self.threshold.push(Some(threshold));
        self.budget.push(Some(budget));
        self.spend.push(Some(spend));
        self.event_time.push(event_time);
    }

    fn finish(self) -> Option<Result<RecordBatch, datafusion::arrow::error::ArrowError>> {
        if self.id.is_empty() {
            return None;
        }
        let now = chrono::Utc::now().timestamp_micros();
        let n = self.id.len();
        let build = || -> Result<RecordBatch, datafusion::arrow::error::ArrowError> {
            let columns: Vec<ArrayRef> = vec![
                Arc::new(StringArray::from(self.id)),
                Arc::new(StringArray::from(self.tenant)),
                Arc::new(StringArray::from(self.month)),
                Arc::new(StringArray::from(self.level)),
                decimal_array(self.threshold)?,
                decimal_array(self.budget)?,
                decimal_array(self.spend)?,
                Arc::new(TimestampMicrosecondArray::from(self.event_time).with_timezone("UTC")),
                Arc::new(TimestampMicrosecondArray::from(vec![now; n]).with_timezone("UTC")),
            ];
            RecordBatch::try_new(budget_events_schema(), columns)
        };
        Some(build())
    }
}

#[async_trait]
impl Operator for Budget {
    fn outputs(&self) -> &'static [&'static str] {
        &[OUT, BUDGET_EVENTS]
    }

    async fn process(&mut self, batch: Batch, out: &mut Emitter) -> Result<(), NodeError> {
        if batch.table == EventKind::Conversation.table() {
            self.absorb(&batch.rows)?;
        }
        out.emit(OUT, batch);
        self.sync(out).await;
        Ok(())
    }

    async fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Emitter,
    ) -> Result<Option<Watermark>, NodeError> {
        // Catch up after an outage even when no new conversations arrive.
        self.sync(out).await;
        Ok(Some(watermark))
    }

    fn snapshot(&mut self) -> Result<Vec<(String, StateBlob)>, NodeError> {
        let mut changed = Vec::new();
        for (name, state) in &mut self.shards {
            if std::mem::take(&mut state.dirty) {
                let bytes = serde_json::to_vec(&*state)
                    .map_err(|e| BudgetError::CorruptState(e.to_string()))?;
                changed.push((name.clone(), StateBlob::Whole(bytes)));
            }
        }
        Ok(changed)
    }

    fn restore(&mut self, shard: &str, state: &[u8]) -> Result<(), NodeError> {
        let mut restored: ShardSpend =
            serde_json::from_slice(state).map_err(|e| BudgetError::CorruptState(e.to_string()))?;
        // The ledger may have missed the last pushes before the restart.
        for m in restored.spend.values_mut() {
            m.unsynced = true;
        }
        self.shards.insert(shard.to_string(), restored);
        Ok(())
    }
}
