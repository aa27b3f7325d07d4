//! `somaflow bench`: throughput of decode → dedup → Parquet (operators alone
//! and through the real runtime from the durable log) and of HTTP ingest,
//! measured in one run so the figures compare on the same machine.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use bytes::Bytes;
use somaflow_pipeline::config::NodeConfig;
use somaflow_pipeline::events::raw_rows;
use somaflow_pipeline::events::schema::RAW_TABLE;
use somaflow_pipeline::log::DurableLog;
use somaflow_pipeline::runtime::{Batch, Emitter, Node};

use super::post_ndjson;
use crate::config::Config;
use crate::generator::{Generator, GeneratorConfig};
use crate::node::EmbeddedNode;
use crate::node::io::PlatformIo;
use crate::node::registry::common;

pub struct BenchArgs {
    pub events: usize,
    pub http_events: usize,
    pub http_batch: usize,
    pub http_concurrency: usize,
    pub dir: std::path::PathBuf,
}

pub(crate) fn generate(n: usize) -> Vec<Bytes> {
    let mut g = Generator::new(GeneratorConfig::default());
    let now = chrono::Utc::now();
    (0..n).map(|_| g.next_at(now).bytes).collect()
}

pub(crate) fn raw_batches(
    records: &[Bytes],
    batch_rows: usize,
    ingest_us: i64,
) -> anyhow::Result<Vec<Batch>> {
    records
        .chunks(batch_rows)
        .enumerate()
        .map(|(c, chunk)| raw_batch(chunk, (c * batch_rows) as i64, ingest_us))
        .collect()
}

/// One raw batch as the embedded log source reads it: partition 0 of
/// `log`, offsets from `first_offset`.
pub(crate) fn raw_batch(
    records: &[Bytes],
    first_offset: i64,
    ingest_us: i64,
) -> anyhow::Result<Batch> {
    let rows = raw_rows("log", 0, records, first_offset, ingest_us)?;
    Ok(Batch::new(RAW_TABLE, rows))
}

fn rate(n: usize, d: Duration) -> String {
    format!("{:.0}", n as f64 / d.as_secs_f64().max(1e-9))
}

/// Operators and sink called in one task: the CPU cost of each stage. The
/// nodes come from the node registry, as a pipeline's do.
async fn operators_alone(records: &[Bytes], dir: &Path) -> anyhow::Result<()> {
    let batches = raw_batches(records, 8192, chrono::Utc::now().timestamp_micros())?;
    let config = bench_config(&dir.join("operators"))?;
    let types = common(PlatformIo::configured());
    let build = |kind: &str| {
        types
            .build(&NodeConfig::new(kind, kind, &[]), &config)
            .map_err(|e| anyhow::anyhow!("building `{kind}`: {e}"))
    };
    let (Node::Operator(mut decode), Node::Operator(mut dedup), Node::Sink(mut sink)) =
        (build("decode")?, build("dedup")?, build("parquet")?)
    else {
        anyhow::bail!("decode and dedup must be operators, parquet a sink");
    };
    let (mut t_decode, mut t_dedup, mut t_sink) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let total = Instant::now();
    for batch in batches {
        let mut decoded = Emitter::default();
        let t = Instant::now();
        decode
            .process(batch, &mut decoded)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        t_decode += t.elapsed();
        for (output, b) in decoded.take() {
            if output == "dead_letters" {
                let t = Instant::now();
                sink.write(b).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                t_sink += t.elapsed();
                continue;
            }
            let mut deduped = Emitter::default();
            let t = Instant::now();
            dedup
                .process(b, &mut deduped)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            t_dedup += t.elapsed();
            for (_, b) in deduped.take() {
                let t = Instant::now();
                sink.write(b).await.map_err(|e| anyhow::anyhow!("{e}"))?;
                t_sink += t.elapsed();
            }
        }
    }
    let t = Instant::now();
    let pre = sink
        .pre_commit(1)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let cp = somaflow_pipeline::checkpoint::NodeCheckpoint {
        pre_commit: Some(pre),
        ..Default::default()
    };
    sink.committer()
        .commit(1, &cp)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    t_sink += t.elapsed();
    let elapsed = total.elapsed();
    let n = records.len();
    println!(
        "| decode → dedup → Parquet, one task (operators alone) | {} events/s | {:.2} s |",
        rate(n, elapsed),
        elapsed.as_secs_f64()
    );
    println!(
        "|   decode | {} events/s | {:.2} s |",
        rate(n, t_decode),
        t_decode.as_secs_f64()
    );
    println!(
        "|   dedup | {} events/s | {:.2} s |",
        rate(n, t_dedup),
        t_dedup.as_secs_f64()
    );
    println!(
        "|   Parquet sink (partition, sort, encode, stage, commit) | {} events/s | {:.2} s |",
        rate(n, t_sink),
        t_sink.as_secs_f64()
    );
    Ok(())
}

fn bench_config(dir: &Path) -> anyhow::Result<Config> {
    let mut config = Config {
        data_dir: dir.to_path_buf(),
        ..Config::default()
    };
    config.checkpoint.interval_ms = 2_000;
    config.server.listen = "127.0.0.1:0".into();
    config.validate()?;
    Ok(config)
}

/// The real runtime (tasks, channels, checkpoints) reading a pre-filled log.
async fn pipeline_from_log(records: &[Bytes], dir: &Path) -> anyhow::Result<()> {
    let config = bench_config(&dir.join("pipeline"))?;
    let log = DurableLog::open(&config.log_dir(), config.log.segment_bytes)?;
    let now = chrono::Utc::now().timestamp_micros();
    let t = Instant::now();
    for chunk in records.chunks(10_000) {
        log.append(now, chunk.to_vec()).await?;
    }
    let append = t.elapsed();
    let end = log.end_offset() as i64;
    let t = Instant::now();
    let types = crate::node::registry(log.clone(), PlatformIo::configured());
    let pipeline = somaflow_pipeline::runtime::start(&config, &types).await?;
    let m = somaflow_pipeline::metrics::metrics();
    while m.log_read_offset.get() < end {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    pipeline.stop().await?;
    let elapsed = t.elapsed();
    println!(
        "| durable log append (10k-record groups, fsync each) | {} events/s | {:.2} s |",
        rate(records.len(), append),
        append.as_secs_f64()
    );
    println!(
        "| log → decode → dedup → Parquet through the runtime, committed | {} events/s | {:.2} s |",
        rate(records.len(), elapsed),
        elapsed.as_secs_f64()
    );
    Ok(())
}

/// HTTP ingest into a running embedded node (pipeline included).
async fn http_ingest(args: &BenchArgs, dir: &Path) -> anyhow::Result<()> {
    let config = bench_config(&dir.join("http"))?;
    let node = EmbeddedNode::start(&config).await?;
    let url = format!("http://{}/v1/events", node.addr);
    let records = generate(args.http_events);
    let bodies: Vec<Bytes> = records
        .chunks(args.http_batch)
        .map(|c| {
            let mut b = Vec::new();
            for r in c {
                b.extend_from_slice(r);
                b.push(b'\n');
            }
            Bytes::from(b)
        })
        .collect();
    let bodies = Arc::new(bodies);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let client = reqwest::Client::new();
    let t = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.http_concurrency {
        let (bodies, next, client, url) =
            (bodies.clone(), next.clone(), client.clone(), url.clone());
        workers.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(body) = bodies.get(i) else { break };
                let t = Instant::now();
                post_ndjson(&client, &url, body.clone()).await?;
                latencies.push(t.elapsed());
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for w in workers {
        latencies.extend(w.await??);
    }
    let elapsed = t.elapsed();
    latencies.sort();
    let pct = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    println!(
        "| HTTP ingest, NDJSON batches of {}, {} clients (202 after fsync) | {} events/s | p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms |",
        args.http_batch,
        args.http_concurrency,
        rate(records.len(), elapsed),
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.95).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3
    );
    node.shutdown().await?;
    Ok(())
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let dir = args.dir.join(format!(
        "bench-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    eprintln!("generating {} events…", args.events);
    let t = Instant::now();
    let records = generate(args.events);
    let gen_time = t.elapsed();
    let bytes: usize = records.iter().map(|r| r.len()).sum();
    println!(
        "somaflow bench: {} events ({:.0} bytes/event on average), {} cores\n",
        records.len(),
        bytes as f64 / records.len() as f64,
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| stage | throughput | time / latency |\n| --- | --- | --- |");
    println!(
        "| generator (JSON events) | {} events/s | {:.2} s |",
        rate(records.len(), gen_time),
        gen_time.as_secs_f64()
    );
    operators_alone(&records, &dir).await?;
    pipeline_from_log(&records, &dir).await?;
    http_ingest(&args, &dir).await?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
