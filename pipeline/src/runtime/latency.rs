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
use std::sync::{Mutex, OnceLock};

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

/// Sketches handed over at barriers, waiting for their epoch to commit.
#[derive(Default)]
struct Pending {
    by_epoch: BTreeMap<u64, Vec<(String, EventTimeSketch)>>,
}

fn pending() -> &'static Mutex<Pending> {
    static PENDING: OnceLock<Mutex<Pending>> = OnceLock::new();
    PENDING.get_or_init(Mutex::default)
}

/// A sink task's sketch for `epoch`, handed over at its barrier.
pub(crate) fn stage(epoch: u64, node: &str, sketch: EventTimeSketch) {
    if sketch.is_empty() {
        return;
    }
    let mut p = pending().lock().unwrap_or_else(|e| e.into_inner());
    p.by_epoch
        .entry(epoch)
        .or_default()
        .push((node.to_string(), sketch));
}

/// Every checkpoint up to `epoch` is committed: its rows are visible now.
pub(crate) fn committed(epoch: u64) {
    let done = {
        let mut p = pending().lock().unwrap_or_else(|e| e.into_inner());
        let later = p.by_epoch.split_off(&(epoch + 1));
        std::mem::replace(&mut p.by_epoch, later)
    };
    if done.is_empty() {
        return;
    }
    let now = chrono::Utc::now().timestamp_micros();
    let m = metrics();
    for (node, sketch) in done.into_values().flatten() {
        for (table, counts) in sketch.tables {
            let histogram = m.event_latency.get_or_create(&node_table(&node, table));
            for (t, n) in counts {
                let seconds = (now - t).max(0) as f64 / 1e6;
                for _ in 0..n {
                    histogram.observe(seconds);
                }
            }
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
}
