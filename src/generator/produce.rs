//! What the HTTP and Kafka producers share: options, the report, errors,
//! and the pacer that sizes batches and holds the rate.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::stats::GeneratorStats;
use super::traffic::{Generator, seasonality};

#[derive(Debug, Clone)]
pub struct ProduceOptions {
    pub batch: usize,
    /// Events per second; `None` = as fast as the server takes them.
    pub rate: Option<f64>,
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub concurrency: usize,
    /// Spread event times over the last N days (seasonal) instead of now;
    /// with a `count`, in time order (see [`Pacer::next_batch`]).
    pub history_days: Option<u32>,
    /// Bearer token for a server with auth on (`events:write`).
    pub token: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProduceReport {
    pub stats: GeneratorStats,
    pub accepted: u64,
    pub rejected: u64,
    pub requests: u64,
    pub retries: u64,
    pub elapsed_secs: f64,
}

impl ProduceReport {
    /// Brings time and generator counts up to date.
    pub(crate) fn refresh(&mut self, pacer: &Pacer<'_>, generator: &Generator) {
        self.elapsed_secs = pacer.elapsed().as_secs_f64();
        self.stats = generator.stats().clone();
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProduceError {
    #[error("POST {url} failed after {attempts} attempts: {reason}")]
    GaveUp {
        url: String,
        attempts: u32,
        reason: String,
    },
    #[error("POST {url} answered {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error(transparent)]
    Kafka(#[from] somaflow_sources::kafka::KafkaError),
    #[error("Kafka did not take a record for {topic}: {reason}")]
    Delivery { topic: String, reason: String },
}

/// Decides batch sizes and waits to hold the rate.
pub(crate) struct Pacer<'a> {
    opts: &'a ProduceOptions,
    started: Instant,
    generated: u64,
    now: DateTime<Utc>,
    /// Ordered history: where the next batch starts, and the seasonal
    /// activity (seconds × seasonality) of the whole history.
    cursor: Option<DateTime<Utc>>,
    history_activity: f64,
}

impl<'a> Pacer<'a> {
    pub(crate) fn new(opts: &'a ProduceOptions) -> Self {
        let now = Utc::now();
        let history_activity = opts.history_days.map_or(0.0, |d| {
            activity(now - chrono::Duration::days(i64::from(d)), now)
        });
        Self {
            opts,
            started: Instant::now(),
            generated: 0,
            now,
            cursor: None,
            history_activity,
        }
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The next batch, paced to the rate; `None` once count or duration is reached.
    pub(crate) async fn next_batch(
        &mut self,
        generator: &mut Generator,
    ) -> Option<Vec<super::traffic::Generated>> {
        let opts = self.opts;
        let done = opts.count.is_some_and(|c| self.generated >= c)
            || opts.duration.is_some_and(|d| self.elapsed() >= d);
        if done {
            return None;
        }
        let n = opts.count.map_or(opts.batch as u64, |c| {
            (c - self.generated).min(opts.batch as u64)
        });
        let from = opts
            .history_days
            .map(|d| self.now - chrono::Duration::days(i64::from(d)));
        let batch = match (from, opts.count) {
            // A known count over a history goes out in time order: each batch
            // covers the next slice of the history, as long as the seasonal
            // activity there takes to produce its share of the count, sorted
            // within. Consumers then see history the way it happened (a
            // window closes once, instead of every event arriving "late").
            (Some(from), Some(count)) => {
                let start = self.cursor.unwrap_or(from);
                let share = n as f64 / count.max(1) as f64;
                let secs = share * self.history_activity / seasonality(start).max(0.05);
                let end = (start + chrono::Duration::milliseconds((secs * 1000.0) as i64 + 1))
                    .min(self.now);
                self.cursor = Some(end);
                let mut batch: Vec<_> = (0..n)
                    .map(|_| generator.next_between(start.min(end), end))
                    .collect();
                batch.sort_by_key(|g| g.at);
                batch
            }
            (Some(from), None) => (0..n)
                .map(|_| generator.next_between(from, self.now))
                .collect(),
            (None, _) => (0..n).map(|_| generator.next_live()).collect(),
        };
        self.generated += n;
        if let Some(rate) = opts.rate {
            let due = Duration::from_secs_f64(self.generated as f64 / rate.max(0.001));
            if let Some(wait) = due.checked_sub(self.elapsed()) {
                tokio::time::sleep(wait).await;
            }
        }
        Some(batch)
    }
}

/// ∫ seasonality dt over `[from, to)`, in seconds, in 10-minute steps.
fn activity(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    let step = chrono::Duration::minutes(10);
    let mut t = from;
    let mut sum = 0.0;
    while t < to {
        sum += seasonality(t + chrono::Duration::minutes(5)) * 600.0;
        t += step;
    }
    sum
}
