//! The broker baseline of `bench-kafka`'s latency phase: a plain rdkafka
//! consumer (its own group, default fetch settings, no processing, no
//! commits) reading the same topics in the same run as the worker, and
//! timing each record from produced (its Kafka timestamp, which the worker
//! keeps as `ingest_time`) to received. A worker cannot show rows sooner
//! than the broker hands them to any consumer, so this is what its produced
//! → visible latency is judged against.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use rdkafka::Message;
use rdkafka::consumer::{Consumer, StreamConsumer};
use somaflow_sources::kafka::{KafkaConfig, client_config};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A consumer running in the background, collecting latencies.
pub struct PlainConsumer {
    stop: watch::Sender<bool>,
    received: Arc<AtomicU64>,
    task: JoinHandle<Vec<i64>>,
}

impl PlainConsumer {
    /// Subscribes a fresh group to `topics`, reading from their start.
    pub fn start(kafka: &KafkaConfig, topics: &[String]) -> anyhow::Result<PlainConsumer> {
        let consumer: StreamConsumer = client_config(kafka)
            .set("group.id", format!("{}plain-consumer", kafka.topic_prefix))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .create()
            .context("creating the plain consumer")?;
        let names: Vec<&str> = topics.iter().map(String::as_str).collect();
        consumer
            .subscribe(&names)
            .context("subscribing the plain consumer")?;
        let (stop, mut stopped) = watch::channel(false);
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        let task = tokio::spawn(async move {
            let mut latencies_us = Vec::new();
            loop {
                tokio::select! {
                    _ = stopped.changed() => break,
                    received = consumer.recv() => {
                        let Ok(message) = received else { continue };
                        if let Some(produced_ms) = message.timestamp().to_millis() {
                            latencies_us.push(now_us() - produced_ms * 1_000);
                        }
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            latencies_us
        });
        Ok(PlainConsumer {
            stop,
            received,
            task,
        })
    }

    /// Waits until `rows` records arrived, or until `stall` passed without
    /// one more, then stops; the latencies of what arrived, µs.
    pub async fn finish(self, rows: u64, stall: Duration) -> anyhow::Result<Vec<i64>> {
        let (mut last, mut since) = (0, Instant::now());
        loop {
            let now = self.received.load(Ordering::Relaxed);
            if now >= rows || self.task.is_finished() {
                break;
            }
            if now > last {
                (last, since) = (now, Instant::now());
            } else if since.elapsed() >= stall {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let _ = self.stop.send(true);
        self.task.await.context("the plain consumer's task")
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}
