//! The `window` operator: event-time tumbling windows (default 1 min) of
//! tokens, cost, requests, capsule runs and workflow steps per tenant ×
//! model × capsule, emitted as `usage_1m` rows on the `usage` output at
//! every checkpoint (what the open windows summed since the last one) and
//! when the watermark passes a window's end (the rest). Readers sum a
//! window's rows. Events pass through on `out`.
//!
//! The same rows feed the hourly and daily usage rollups (`rollup_1h`,
//! `rollup_1d`, see [`rollup`]), and capsule runs, marketplace transactions
//! and billing events the activity rollups (`activity_1h`, `activity_1d`,
//! see [`activity`]), all sent on `usage` at every checkpoint.
//!
//! Late rows are never dropped: a row for a window already emitted is
//! aggregated again and emitted at the next watermark advance as a further,
//! additive row of the same window (readers sum). State is kept per source
//! shard (a Kafka partition), so it moves with the partition on a rebalance
//! and is checkpointed at barriers; what was emitted after the last
//! checkpoint is recomputed on replay, never counted twice, because sinks
//! publish only checkpointed output.

mod activity;
mod config;
mod rollup;
mod state;
mod sums;

use std::collections::HashMap;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, RecordBatch};
use somaflow_pipeline::checkpoint::shard;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::schema::{
    ACTIVITY_DAY_TABLE, ACTIVITY_HOUR_TABLE, ROLLUP_DAY_TABLE, ROLLUP_HOUR_TABLE, USAGE_TABLE,
};
use somaflow_pipeline::metrics::{metrics, node, outcome};
use somaflow_pipeline::runtime::{Batch, Emitter, NodeError, OUT, Operator, StateBlob, Watermark};

use self::activity::activity_of;
use self::rollup::{RollupKey, RollupParts, RollupRows, RollupSums};
use self::state::FamilyRows;
use crate::accounting::billed_cost;
use crate::columns::{Columns, count_or_zero, opt_str};

pub use config::WindowConfig;
pub use rollup::{COST_FROM_PRODUCER, COST_FROM_RATED};
pub use state::{GroupKey, ShardWindows, UsageRows};
pub use sums::{Usage, WindowError};

/// The output usage rows go to.
pub const USAGE: &str = "usage";

pub struct UsageWindow {
    node: String,
    size_us: i64,
    shards: HashMap<String, ShardWindows>,
    watermark: Option<Watermark>,
}

impl UsageWindow {
    pub fn new(node: &str, size_secs: u64) -> Self {
        // Series exist from the start (0, not absent).
        let m = metrics();
        let _ = m.late_rows.get_or_create(&self::node(node));
        for o in ["window", "correction", "partial"] {
            let _ = m.usage_rows.get_or_create(&outcome(node, o));
        }
        Self {
            node: node.to_string(),
            size_us: (size_secs as i64).saturating_mul(1_000_000),
            shards: HashMap::new(),
            watermark: None,
        }
    }

    /// Adds a batch of one kind to the windows of its shards; how many of
    /// its rows fell in windows the watermark already passed.
    fn absorb(&mut self, table: &'static str, rows: &RecordBatch) -> Result<u64, NodeError> {
        let Some(kind) = EventKind::from_table(table) else {
            return Ok(0);
        };
        let c = Columns::new(table, rows);
        let (topic, partition) = (c.str("source_topic")?, c.i32("source_partition")?);
        let tenant = c.str("tenant_id")?;
        let time = c.micros("event_time")?;
        let mut late = 0u64;
        let n = rows.num_rows();
        let usage = contributions(kind, &c)?;
        let activity = activity_of(kind, &c)?;
        if usage.is_none() && activity.is_none() {
            return Ok(0);
        }
        let (size_us, watermark) = (self.size_us, self.watermark);
        let mut i = 0;
        // Source batches hold runs of one shard.
        while i < n {
            let (t, p) = (topic.value(i), partition.value(i));
            let windows = self.shards.entry(shard(t, p)).or_default();
            while i < n && partition.value(i) == p && topic.value(i) == t {
                let tenant = tenant.value(i);
                if let Some(activity) = &activity {
                    let (parts, sums) = activity(i);
                    windows.add_to_activity(time.value(i), tenant, &parts, &sums);
                }
                let Some(contribution) = &usage else {
                    i += 1;
                    continue;
                };
                let start = window_start(time.value(i), size_us);
                if watermark.is_some_and(|w| start.saturating_add(size_us) <= w) {
                    late += 1;
                }
                let (parts, usage) = contribution(i);
                windows.add(
                    start,
                    tenant,
                    parts.model,
                    parts.provider,
                    parts.capsule,
                    &usage,
                );
                let rollup = RollupParts {
                    model: parts.model,
                    provider: parts.provider,
                    price_id: parts.price_id,
                    cost_from: parts.cost_from,
                    price_tier: parts.price_tier,
                };
                windows.add_to_rollups(time.value(i), tenant, rollup, &usage);
                i += 1;
            }
        }
        if late > 0 {
            metrics()
                .late_rows
                .get_or_create(&node(&self.node))
                .inc_by(late);
        }
        Ok(late)
    }

    /// Emits every window that ends at or before `watermark` as usage rows.
    fn close(&mut self, watermark: Watermark, out: &mut Emitter) -> Result<(), NodeError> {
        let size_us = self.size_us;
        self.emit(out, |name, windows, rows| {
            windows.close_until(name, watermark, size_us, rows);
        })
    }

    /// Collects rows from every shard (in a stable order, which keeps
    /// emitted batches comparable between runs) and emits them.
    fn emit(
        &mut self,
        out: &mut Emitter,
        mut collect: impl FnMut(&str, &mut ShardWindows, &mut UsageRows),
    ) -> Result<(), NodeError> {
        let mut rows = UsageRows::default();
        let mut shards: Vec<_> = self.shards.iter_mut().collect();
        shards.sort_by(|a, b| a.0.cmp(b.0));
        for (name, windows) in shards {
            collect(name, windows, &mut rows);
        }
        if !rows.is_empty() {
            let m = metrics();
            for (o, n) in [
                ("window", rows.first_emissions),
                ("correction", rows.corrections),
                ("partial", rows.partial),
            ] {
                m.usage_rows
                    .get_or_create(&outcome(&self.node, o))
                    .inc_by(n);
            }
            out.emit(USAGE, Batch::new(USAGE_TABLE, rows.finish()?));
        }
        Ok(())
    }
}

type Contribution<'a> = Box<dyn Fn(usize) -> (GroupKeyParts<'a>, Usage) + 'a>;

/// What a row of `kind` adds to its group, or None for kinds not counted.
fn contributions<'a>(
    kind: EventKind,
    c: &Columns<'a>,
) -> Result<Option<Contribution<'a>>, crate::columns::ColumnError> {
    Ok(Some(match kind {
        EventKind::Conversation => {
            let (model, provider) = (c.str("model")?, c.str("provider")?);
            let capsule = c.str("capsule_id")?;
            let (input, output) = (c.i64("input_tokens")?, c.i64("output_tokens")?);
            let cached = c.i64("cached_input_tokens")?;
            let reasoning = c.i64("reasoning_tokens")?;
            let (producer, rated) = (c.decimal("cost_usd")?, c.decimal("rated_cost_usd")?);
            let (price_id, price_tier) = (c.str("price_id")?, c.str("price_tier")?);
            let written = c.i64("cache_creation_input_tokens")?;
            let written_1h = c.i64("cache_creation_1h_input_tokens")?;
            Box::new(move |i| {
                (
                    GroupKeyParts {
                        model: model.value(i),
                        provider: provider.value(i),
                        capsule: opt_str(capsule, i).unwrap_or(""),
                        price_id: opt_str(price_id, i).unwrap_or(""),
                        price_tier: opt_str(price_tier, i).unwrap_or(""),
                        cost_from: if producer.is_valid(i) {
                            COST_FROM_PRODUCER
                        } else {
                            COST_FROM_RATED
                        },
                    },
                    Usage {
                        input_tokens: input.value(i),
                        output_tokens: output.value(i),
                        cached_input_tokens: cached.value(i),
                        reasoning_tokens: reasoning.value(i),
                        cache_creation_input_tokens: count_or_zero(written, i),
                        cache_creation_1h_input_tokens: count_or_zero(written_1h, i),
                        cost_nanos: billed_cost(producer, rated, i).unwrap_or(0),
                        requests: 1,
                        ..Usage::default()
                    },
                )
            })
        }
        EventKind::CapsuleRun => {
            let capsule = c.str("capsule_id")?;
            Box::new(move |i| {
                (
                    GroupKeyParts {
                        capsule: capsule.value(i),
                        ..GroupKeyParts::default()
                    },
                    Usage {
                        capsule_runs: 1,
                        ..Usage::default()
                    },
                )
            })
        }
        EventKind::WorkflowStep => Box::new(|_| {
            (
                GroupKeyParts::default(),
                Usage {
                    workflow_steps: 1,
                    ..Usage::default()
                },
            )
        }),
        _ => return Ok(None),
    }))
}

/// Sends a rollup's rows on `usage`, if it has any.
fn emit_rollup<K: RollupKey, S: RollupSums>(
    out: &mut Emitter,
    table: &'static str,
    rows: RollupRows<K, S>,
) -> Result<(), NodeError> {
    if !rows.is_empty() {
        out.emit(USAGE, Batch::new(table, rows.finish()?));
    }
    Ok(())
}

/// Start of the tumbling window holding `event_time_us`.
pub fn window_start(event_time_us: i64, size_us: i64) -> i64 {
    event_time_us - event_time_us.rem_euclid(size_us)
}

/// The parts of a group key (and of its rollups') borrowed from one row.
#[derive(Default)]
struct GroupKeyParts<'a> {
    model: &'a str,
    provider: &'a str,
    capsule: &'a str,
    price_id: &'a str,
    cost_from: &'a str,
    price_tier: &'a str,
}

#[async_trait]
impl Operator for UsageWindow {
    fn outputs(&self) -> &'static [&'static str] {
        &[OUT, USAGE]
    }

    async fn process(&mut self, batch: Batch, out: &mut Emitter) -> Result<(), NodeError> {
        let late = self.absorb(batch.table, &batch.rows)?;
        out.emit(OUT, batch);
        // A late row's correction goes out now, not at the next watermark
        // advance: after the stream's newest event nothing may advance it
        // again (a replayed backlog read after a newer partition is all late).
        if late > 0
            && let Some(watermark) = self.watermark
        {
            self.close(watermark, out)?;
        }
        Ok(())
    }

    async fn on_watermark(
        &mut self,
        watermark: Watermark,
        out: &mut Emitter,
    ) -> Result<Option<Watermark>, NodeError> {
        self.watermark = Some(self.watermark.map_or(watermark, |w| w.max(watermark)));
        self.close(watermark, out)?;
        Ok(Some(watermark))
    }

    async fn on_barrier(&mut self, out: &mut Emitter) -> Result<(), NodeError> {
        // Usage is readable at every commit, not a window and a checkpoint
        // later; what the window sums after this goes out as further rows.
        self.emit(out, |name, windows, rows| windows.flush_open(name, rows))?;
        let (mut usage, mut activity) = (FamilyRows::default(), FamilyRows::default());
        let mut shards: Vec<_> = self.shards.iter_mut().collect();
        shards.sort_by(|a, b| a.0.cmp(b.0));
        for (name, windows) in shards {
            windows.flush_rollups(name, &mut usage, &mut activity);
        }
        emit_rollup(out, ROLLUP_HOUR_TABLE, usage.hours)?;
        emit_rollup(out, ROLLUP_DAY_TABLE, usage.days)?;
        emit_rollup(out, ACTIVITY_HOUR_TABLE, activity.hours)?;
        emit_rollup(out, ACTIVITY_DAY_TABLE, activity.days)?;
        Ok(())
    }

    fn snapshot(&mut self) -> Result<Vec<(String, StateBlob)>, NodeError> {
        let mut changed = Vec::new();
        for (name, windows) in &mut self.shards {
            if windows.take_dirty() {
                changed.push((name.clone(), StateBlob::Whole(windows.encode()?)));
            }
        }
        Ok(changed)
    }

    fn restore(&mut self, shard: &str, state: &[u8]) -> Result<(), NodeError> {
        self.shards
            .insert(shard.to_string(), ShardWindows::decode(state)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests;
