//! What the HTTP and Kafka producers share: options, the report, errors,
//! and the pacer that sizes batches and holds the rate.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::stats::GeneratorStats;
use super::traffic::Generator;

#[derive(Debug, Clone)]
pub struct ProduceOptions {
    pub batch: usize,
    /// Events per second; `None` = as fast as the server takes them.
    pub rate: Option<f64>,
    pub count: Option<u64>,
    pub duration: Option<Duration>,
    pub concurrency: usize,
    /// Spread event times over the last N days (seasonal) instead of now.
    pub history_days: Option<u32>,
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
    Kafka(#[from] crate::kafka::KafkaError),
    #[error("Kafka did not take a record for {topic}: {reason}")]
    Delivery { topic: String, reason: String },
}

/// Decides batch sizes and waits to hold the rate.
pub(crate) struct Pacer<'a> {
    opts: &'a ProduceOptions,
    started: Instant,
    generated: u64,
    now: chrono::DateTime<chrono::Utc>,
}

impl<'a> Pacer<'a> {
    pub(crate) fn new(opts: &'a ProduceOptions) -> Self {
        Self {
            opts,
            started: Instant::now(),
            generated: 0,
            now: chrono::Utc::now(),
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
        let batch = (0..n)
            .map(|_| match from {
                Some(from) => generator.next_between(from, self.now),
                None => generator.next_live(),
            })
            .collect();
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
