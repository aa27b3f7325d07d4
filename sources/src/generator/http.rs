//! Posting generated traffic to `POST /v1/events` as NDJSON batches, paced to
//! a rate, with retries on 503/429/connection errors (a retried batch that had
//! landed is dropped again by dedup, so retries never double-count). The
//! options and pacing are shared with the Kafka producer.

use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::{Deserialize, Serialize};
use tracing::warn;

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

#[derive(Deserialize)]
struct IngestAnswer {
    accepted: u64,
    #[serde(default)]
    rejected: Vec<serde_json::Value>,
}

const MAX_ATTEMPTS: u32 = 30;

async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Bytes,
) -> Result<(IngestAnswer, u32), ProduceError> {
    let mut backoff = Duration::from_millis(100);
    let mut last = String::new();
    for attempt in 1..=MAX_ATTEMPTS {
        let sent = client
            .post(url)
            .header("content-type", "application/x-ndjson")
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(resp) => {
                let status = resp.status();
                if status.is_server_error() || status.as_u16() == 429 {
                    last = format!("HTTP {status}");
                } else {
                    let text = resp.text().await.unwrap_or_default();
                    return match serde_json::from_str::<IngestAnswer>(&text) {
                        Ok(answer) => Ok((answer, attempt - 1)),
                        Err(_) => Err(ProduceError::Refused {
                            url: url.to_string(),
                            status: status.as_u16(),
                            body: text,
                        }),
                    };
                }
            }
            Err(e) => last = e.to_string(),
        }
        warn!(attempt, error = %last, "ingest request failed; retrying");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
    Err(ProduceError::GaveUp {
        url: url.to_string(),
        attempts: MAX_ATTEMPTS,
        reason: last,
    })
}

/// Generates and posts to the server at `url` until `count` events or
/// `duration` is reached, calling `progress` after each answered request.
pub async fn produce_http(
    generator: &mut Generator,
    url: &str,
    opts: &ProduceOptions,
    mut progress: impl FnMut(&ProduceReport),
) -> Result<ProduceReport, ProduceError> {
    let client = reqwest::Client::new();
    let url = format!("{}/v1/events", url.trim_end_matches('/'));
    let mut pacer = Pacer::new(opts);
    let mut report = ProduceReport::default();
    let mut in_flight = FuturesUnordered::new();
    let mut exhausted = false;
    loop {
        if !exhausted && in_flight.len() < opts.concurrency.max(1) {
            match pacer.next_batch(generator).await {
                Some(batch) => {
                    let mut body = BytesMut::new();
                    for g in batch {
                        body.put_slice(&g.bytes);
                        body.put_u8(b'\n');
                    }
                    let client = client.clone();
                    let url = url.clone();
                    in_flight.push(async move { post(&client, &url, body.freeze()).await });
                    continue;
                }
                None => exhausted = true,
            }
        }
        let Some(answered) = in_flight.next().await else {
            break;
        };
        let (answer, retries) = answered?;
        report.accepted += answer.accepted;
        report.rejected += answer.rejected.len() as u64;
        report.requests += 1;
        report.retries += u64::from(retries);
        report.refresh(&pacer, generator);
        progress(&report);
    }
    report.refresh(&pacer, generator);
    Ok(report)
}
