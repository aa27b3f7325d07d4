//! `somaflow bench-embedded`: the embedded node end to end, HTTP in and
//! committed lake rows out, for the configured graph (the whole platform
//! chain of `config/local.toml`) beside the built-in decode → dedup → lake
//! graph, in one run: events/s until every row is committed, then the
//! ingest latency at half that rate.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use somaflow_pipeline::metrics::metrics;

use super::post_ndjson;
use crate::config::Config;
use crate::generator::{Generator, GeneratorConfig};
use crate::node::EmbeddedNode;

pub struct BenchEmbeddedArgs {
    /// Events posted for the throughput.
    pub events: usize,
    /// Events per request (NDJSON).
    pub batch: usize,
    /// Concurrent HTTP clients.
    pub clients: usize,
    /// How long the half-rate latency phase posts.
    pub latency_secs: u64,
    /// Scratch folder (removed afterwards).
    pub dir: PathBuf,
}

/// Checkpoint interval of both graphs here: rows count once committed.
const CHECKPOINT_MS: u64 = 2_000;

pub(super) fn bodies(seed: u64, events: usize, batch: usize) -> Vec<Bytes> {
    let mut generator = Generator::new(GeneratorConfig {
        seed,
        ..GeneratorConfig::default()
    });
    let now = chrono::Utc::now();
    (0..events)
        .collect::<Vec<_>>()
        .chunks(batch)
        .map(|chunk| {
            let mut body = Vec::new();
            for _ in chunk {
                body.extend_from_slice(&generator.next_at(now).bytes);
                body.push(b'\n');
            }
            Bytes::from(body)
        })
        .collect()
}

/// Posts every body with `clients` at once; returns when all are answered.
pub(super) async fn post_all(url: &str, bodies: Vec<Bytes>, clients: usize) -> anyhow::Result<()> {
    let bodies = Arc::new(bodies);
    let next = Arc::new(AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let mut workers = Vec::new();
    for _ in 0..clients {
        let (bodies, next, client, url) = (
            bodies.clone(),
            next.clone(),
            client.clone(),
            url.to_string(),
        );
        workers.push(tokio::spawn(async move {
            while let Some(body) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                post_ndjson(&client, &url, body.clone()).await?;
            }
            anyhow::Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    Ok(())
}

/// Posts `bodies` paced to `rate` events/s; returns each request's latency.
pub(super) async fn post_paced(
    url: &str,
    bodies: Vec<Bytes>,
    events_per_body: usize,
    rate: f64,
) -> anyhow::Result<Vec<Duration>> {
    let client = reqwest::Client::new();
    let every = Duration::from_secs_f64(events_per_body as f64 / rate.max(1.0));
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = Vec::new();
    for body in bodies {
        ticker.tick().await;
        let (client, url) = (client.clone(), url.to_string());
        requests.push(tokio::spawn(async move {
            let t = Instant::now();
            post_ndjson(&client, &url, body).await.map(|()| t.elapsed())
        }));
    }
    let mut latencies = Vec::new();
    for r in requests {
        latencies.push(r.await??);
    }
    latencies.sort();
    Ok(latencies)
}

pub(super) fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).map_or(0.0, |d| d.as_secs_f64() * 1e3)
}

/// One graph: throughput to committed rows, then latency at half of it.
async fn measure(
    label: &str,
    mut config: Config,
    args: &BenchEmbeddedArgs,
    dir: &Path,
) -> anyhow::Result<()> {
    config.data_dir = dir.to_path_buf();
    config.lake = Default::default();
    config.log = Default::default();
    config.checkpoint.interval_ms = CHECKPOINT_MS;
    config.server.listen = "127.0.0.1:0".into();
    config.validate()?;
    // The read-offset gauge is process-wide; the previous graph's node left
    // its own offset there.
    metrics().log_read_offset.set(0);
    let node = EmbeddedNode::start(&config).await?;
    let url = format!("http://{}/v1/events", node.addr);

    let throughput_bodies = bodies(1, args.events, args.batch);
    let m = metrics();
    eprintln!("{label}: posting {} events…", args.events);
    let t = Instant::now();
    post_all(&url, throughput_bodies, args.clients).await?;
    let accepted = t.elapsed();
    let end = node.log.end_offset() as i64;
    while m.log_read_offset.get() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // A checkpoint that began after the last event was read commits it.
    let after = node.status.checkpoints() + 1;
    while node.status.checkpoints() <= after {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let committed = t.elapsed();
    let rate = args.events as f64 / committed.as_secs_f64();

    let half = rate / 2.0;
    let events = (half * args.latency_secs as f64) as usize;
    let latencies = post_paced(&url, bodies(2, events, args.batch), args.batch, half).await?;
    println!(
        "| {label} | {:.0} events/s | {:.0} events/s | {:.0} events/s | p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms |",
        args.events as f64 / accepted.as_secs_f64(),
        rate,
        half,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.95),
        percentile(&latencies, 0.99),
    );
    node.shutdown().await
}

pub async fn run(config: &Config, args: BenchEmbeddedArgs) -> anyhow::Result<()> {
    let dir = args.dir.join(format!(
        "bench-embedded-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let graph = config
        .nodes()
        .iter()
        .map(|n| n.id.clone())
        .collect::<Vec<_>>()
        .join(" → ");
    println!(
        "somaflow bench-embedded: {} events over HTTP, NDJSON batches of {}, {} clients; checkpoints every {} ms; {} cores",
        args.events,
        args.batch,
        args.clients,
        CHECKPOINT_MS,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("configured graph: {graph}\n");
    println!(
        "| graph | HTTP accepted | HTTP → committed lake rows | half rate, {} s | ingest latency at half rate |\n| --- | --- | --- | --- | --- |",
        args.latency_secs
    );
    measure(
        "decode → dedup → lake (built-in default)",
        Config::default(),
        &args,
        &dir.join("default"),
    )
    .await?;
    measure(
        "the configured graph",
        config.clone(),
        &args,
        &dir.join("configured"),
    )
    .await?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
