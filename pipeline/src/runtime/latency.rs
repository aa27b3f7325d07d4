//! End-to-end latency: from an event's `event_time` to the commit of the
//! checkpoint that published its row (`somaflow_event_latency_seconds`).
//!
//! A sink task only knows when it wrote a row; the row is visible once the
//! coordinator has committed the checkpoint that covers it. So each sink
//! task sketches the event times it wrote, hands the sketch over at a
//! barrier, and the coordinator observes the latencies once that epoch has
//! committed. The sketch rounds an event time to a precision relative to its
//! age (1/64 to 1/32 of it, at least 10 ms), so a day-old backlog costs a
//! handful of entries instead of one per second of history, while a live
//! event keeps 10 ms precision.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use datafusion::arrow::array::{Array, TimestampMicrosecondArray};

use super::message::Batch;
use crate::metrics::{metrics, node_table};

/// Finest precision kept, in µs.
const MIN_PRECISION_US: i64 = 10_000;

/// Event times one sink wrote since its last barrier, per table: rounded
/// event time (µs) → rows.
#[derive(Default)]
pub(crate) struct EventTimeSketch {
    tables: HashMap<&'static str, HashMap<i64, u64>>,
}

impl EventTimeSketch {
    /// Adds a batch's event times, if its table has an `event_time` column.
    pub(crate) fn add(&mut self, batch: &Batch) {
        let Some(times) = batch
            .rows
            .column_by_name("event_time")
            .and_then(|c| c.as_any().downcast_ref::<TimestampMicrosecondArray>())
        else {
            return;
        };
        let now = chrono::Utc::now().timestamp_micros();
        let counts = self.tables.entry(batch.table).or_default();
        // Runs of equal rounded times (sorted or bursty input) cost one
        // map update.
        let mut run: Option<(i64, u64)> = None;
        for i in 0..times.len() {
            if times.is_null(i) {
                continue;
            }
            let key = round_by_age(times.value(i), now);
            match &mut run {
                Some((k, n)) if *k == key => *n += 1,
                _ => {
                    if let Some((k, n)) = run.replace((key, 1)) {
                        *counts.entry(k).or_default() += n;
                    }
                }
            }
        }
        if let Some((k, n)) = run {
            *counts.entry(k).or_default() += n;
        }
    }

    fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }
}

/// `t` rounded down to the smallest power-of-two multiple of 10 ms that is
/// at least 1/64 of its age at `now` (so at most 1/32 of it).
fn round_by_age(t: i64, now: i64) -> i64 {
    let age = now.saturating_sub(t).max(0);
    let mut precision = MIN_PRECISION_US;
    while precision.saturating_mul(64) < age {
        precision = precision.saturating_mul(2);
    }
    t - t.rem_euclid(precision)
}

/// The sketches of one epoch, by sink node.
type Staged = Vec<(String, EventTimeSketch)>;

/// Sketches handed over at barriers, waiting for their epoch to commit. One
/// per pipeline instance (a cluster worker starts a new instance at every
/// rebalance), so what an aborted instance staged is dropped with it.
#[derive(Clone, Default)]
pub(crate) struct PendingLatency {
    by_epoch: Arc<Mutex<BTreeMap<u64, Staged>>>,
}

impl PendingLatency {
    /// A sink task's sketch for `epoch`, handed over at its barrier.
    pub(crate) fn stage(&self, epoch: u64, node: &str, sketch: EventTimeSketch) {
        if sketch.is_empty() {
            return;
        }
        let mut pending = self.by_epoch.lock().unwrap_or_else(|e| e.into_inner());
        pending
            .entry(epoch)
            .or_default()
            .push((node.to_string(), sketch));
    }

    /// Every checkpoint up to `epoch` is committed: its rows are visible
    /// now. The histogram takes one observation per row, so a large epoch
    /// (a replayed backlog) is observed off the async workers.
    pub(crate) fn committed(&self, epoch: u64) {
        let done = {
            let mut pending = self.by_epoch.lock().unwrap_or_else(|e| e.into_inner());
            let later = pending.split_off(&(epoch + 1));
            std::mem::replace(&mut *pending, later)
        };
        if done.is_empty() {
            return;
        }
        let now = chrono::Utc::now().timestamp_micros();
        let observe = move || {
            let m = metrics();
            for (node, sketch) in done.into_values().flatten() {
                for (table, counts) in sketch.tables {
                    let histogram = m.event_latency.get_or_create(&node_table(&node, table));
                    for (t, n) in counts {
                        let seconds = now.saturating_sub(t).max(0) as f64 / 1e6;
                        for _ in 0..n {
                            histogram.observe(seconds);
                        }
                    }
                }
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn_blocking(observe)),
            Err(_) => observe(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_times_keep_ten_milliseconds_and_old_ones_coarsen() {
        let now = 1_000_000_000_000_000;
        let t = now - 123_456;
        assert_eq!(round_by_age(t, now), t - t.rem_euclid(MIN_PRECISION_US));
        let day = 86_400_000_000;
        let old = now - day;
        let rounded = round_by_age(old, now);
        assert!(old - rounded < day / 32, "{}", old - rounded);
        assert!(old - rounded >= 0);
        // A future time (clock skew) is kept at the finest precision.
        assert_eq!(round_by_age(now + 5, now) % MIN_PRECISION_US, 0);
    }

    #[test]
    fn a_day_of_history_costs_few_entries() {
        let now = chrono::Utc::now().timestamp_micros();
        let day = 86_400_000_000i64;
        let times: Vec<i64> = (0..100_000)
            .map(|i| now - day + i * (day / 100_000))
            .collect();
        let rows = datafusion::arrow::array::RecordBatch::try_from_iter([(
            "event_time",
            std::sync::Arc::new(TimestampMicrosecondArray::from(times)) as _,
        )])
        .unwrap();
        let mut sketch = EventTimeSketch::default();
        sketch.add(&Batch::new("conversations", rows));
        let counts = &sketch.tables["conversations"];
        assert_eq!(counts.values().sum::<u64>(), 100_000);
        assert!(counts.len() < 2_000, "{} entries", counts.len());
    }

    fn sketch_of(times: Vec<i64>) -> EventTimeSketch {
        let rows = datafusion::arrow::array::RecordBatch::try_from_iter([(
            "event_time",
            std::sync::Arc::new(TimestampMicrosecondArray::from(times)) as _,
        )])
        .unwrap();
        let mut sketch = EventTimeSketch::default();
        sketch.add(&Batch::new("conversations", rows));
        sketch
    }

    #[test]
    fn an_epoch_is_observed_once_when_it_commits_and_later_ones_wait() {
        let node = "latency-test-sink";
        let histogram = || {
            metrics()
                .event_latency
                .get_or_create(&node_table(node, "conversations"))
                .clone()
        };
        let count = || {
            let mut text = String::new();
            let mut registry = prometheus_client::registry::Registry::default();
            registry.register("h", "h", histogram());
            prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
            text.lines()
                .find_map(|l| l.strip_prefix("h_count "))
                .and_then(|v| v.parse::<u64>().ok())
                .unwrap()
        };
        let now = chrono::Utc::now().timestamp_micros();
        let pending = PendingLatency::default();
        pending.stage(1, node, sketch_of(vec![now - 2_000_000, now - 1_000_000]));
        pending.stage(2, node, sketch_of(vec![now - 500_000]));
        pending.stage(3, node, EventTimeSketch::default());
        pending.committed(1);
        assert_eq!(count(), 2, "epoch 1's two rows, not epoch 2's");
        pending.committed(1);
        assert_eq!(count(), 2, "nothing is observed twice");
        pending.committed(5);
        assert_eq!(count(), 3);
        assert!(pending.by_epoch.lock().unwrap().is_empty());
        // Another instance's staging is its own.
        let other = PendingLatency::default();
        other.stage(9, node, sketch_of(vec![now]));
        pending.committed(9);
        assert_eq!(count(), 3);
    }
}
