//! `somaflow bench-kafka`: Kafka → decode → dedup → Parquet with a real
//! broker and a real worker process.
//!
//! * throughput: preload the topics with N generated events, then start a
//!   worker and time it until every row is committed to the lake;
//! * latency: with a caught-up worker, produce at a fixed rate and measure,
//!   per row, event produced (the Kafka timestamp, kept as `ingest_time`) →
//!   visible to SQL (the Parquet file's modification time: it is written at
//!   the checkpoint barrier and renamed into the lake right after the
//!   manifest, milliseconds later), beside a plain rdkafka consumer's
//!   produced → received on the same topics in the same run
//!   ([`super::plain_consumer`]).
//!
//! `scripts/bench-kafka.sh` starts a broker for each phase and runs both.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::TimestampMicrosecondType;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::schema::DEAD_LETTERS_TABLE;
use somaflow_sources::kafka::create_topics;

use super::plain_consumer::PlainConsumer;
use crate::config::Config;
use crate::generator::{Generator, GeneratorConfig, ProduceOptions, produce_kafka};

pub struct BenchKafkaArgs {
    pub config_path: PathBuf,
    /// Events to preload for the throughput phase (0 = skip it).
    pub events: u64,
    /// Events per second of the latency phase (none = skip it).
    pub latency_rate: Option<f64>,
    pub latency_duration: Duration,
    pub checkpoint_interval: Duration,
    pub dir: PathBuf,
}

/// A `somaflow run` worker on its own topics, data folder and port.
struct Worker {
    child: Child,
    url: String,
}

impl Worker {
    fn start(args: &BenchKafkaArgs, config: &Config, data: &Path) -> anyhow::Result<Worker> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let log = std::fs::File::create(data.join("worker.log"))?;
        let child = Command::new(std::env::current_exe()?)
            .args(["run", "--config"])
            .arg(&args.config_path)
            .env("SOMAFLOW_DATA_DIR", data)
            .env("SOMAFLOW_SERVER__LISTEN", format!("127.0.0.1:{port}"))
            .env("SOMAFLOW_KAFKA__TOPIC_PREFIX", &config.kafka.topic_prefix)
            .env("SOMAFLOW_KAFKA__BROKERS", &config.kafka.brokers)
            .env("SOMAFLOW_CLUSTER__WORKER_ID", "bench")
            .env(
                "SOMAFLOW_CLUSTER__GROUP_ID",
                format!("{}bench", config.kafka.topic_prefix),
            )
            .env(
                "SOMAFLOW_CHECKPOINT__INTERVAL_MS",
                args.checkpoint_interval.as_millis().to_string(),
            )
            // A fresh ClickHouse database per phase when the graph writes ClickHouse.
            .env(
                "SOMAFLOW_CLICKHOUSE__DATABASE",
                format!(
                    "bench_{}",
                    config.kafka.topic_prefix.replace(['-', '.'], "_")
                ),
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting the worker")?;
        Ok(Worker {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    /// Rows the lake sink has committed (events and dead letters).
    async fn committed(&self) -> u64 {
        let Ok(resp) = reqwest::get(format!("{}/metrics", self.url)).await else {
            return 0;
        };
        let text = resp.text().await.unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.starts_with("somaflow_sink_rows_committed_total{") && l.contains("node=\"lake\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum()
    }

    /// Waits until `rows` are committed, or until nothing more is
    /// committed for `stall`; returns when and how many.
    async fn wait_committed(&self, rows: u64, stall: Duration) -> (Instant, u64) {
        let (mut last, mut since) = (0, Instant::now());
        loop {
            let done = self.committed().await;
            if done >= rows {
                return (Instant::now(), done);
            }
            if done > last {
                (last, since) = (done, Instant::now());
            } else if since.elapsed() >= stall {
                return (since, done);
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn cpu_secs(&self) -> f64 {
        cpu_secs(self.child.id())
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

/// CPU time (user + system) a process has used, from `/proc`; 0 if unknown.
pub(crate) fn cpu_secs(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12]
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / 100.0
}

/// CPU seconds used so far by every `clickhouse-server` process.
pub(crate) fn clickhouse_cpu() -> f64 {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0.0;
    };
    entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.windows(17).any(|w| w == b"clickhouse-server"))
        })
        .map(cpu_secs)
        .sum()
}

/// The broker started by `scripts/services.sh` (its pid file), if any.
fn broker_pid() -> Option<u32> {
    let dir = std::env::var("SOMAFLOW_SERVICES_DIR").ok()?;
    std::fs::read_to_string(Path::new(&dir).join("kafka/broker.pid"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn bench_config(args: &BenchKafkaArgs, phase: &str) -> anyhow::Result<Config> {
    let mut config = Config::load(Some(&args.config_path), std::env::vars())?;
    config.kafka.topic_prefix = format!("bench{}-{phase}.", chrono::Utc::now().format("%H%M%S"));
    Ok(config)
}

async fn produce(
    config: &Config,
    count: Option<u64>,
    rate: Option<f64>,
    duration: Option<Duration>,
    seed: u64,
) -> anyhow::Result<(u64, u64, f64)> {
    let mut generator = Generator::new(GeneratorConfig {
        seed,
        ..Default::default()
    });
    let opts = ProduceOptions {
        batch: 5000,
        rate,
        count,
        duration,
        concurrency: 4,
        history_days: None,
        token: None,
    };
    let report = produce_kafka(&mut generator, &config.kafka, &opts, |_| {}).await?;
    let rows = report.stats.valid + report.stats.malformed;
    Ok((report.accepted, rows, report.elapsed_secs))
}

async fn throughput(args: &BenchKafkaArgs) -> anyhow::Result<()> {
    let config = bench_config(args, "tp")?;
    create_topics(&config.kafka, &config.dispatch_topics()).await?;
    eprintln!(
        "preloading {} events into {}* …",
        args.events, config.kafka.topic_prefix
    );
    let (sent, rows, secs) = produce(&config, Some(args.events), None, None, 42).await?;
    println!(
        "| preload: `somaflow produce --to kafka` (idempotent, acks=all) | {:.0} events/s | {secs:.1} s |",
        sent as f64 / secs
    );
    let data = args.dir.join(format!("{}data", config.kafka.topic_prefix));
    std::fs::create_dir_all(&data)?;
    let broker_cpu = broker_pid().map(cpu_secs);
    let clickhouse_before = clickhouse_cpu();
    let started = Instant::now();
    let worker = Worker::start(args, &config, &data)?;
    let (done, committed) = worker.wait_committed(rows, Duration::from_secs(60)).await;
    let worker_cpu = worker.cpu_secs();
    let clickhouse_used = clickhouse_cpu() - clickhouse_before;
    let broker_cpu = broker_pid()
        .map(cpu_secs)
        .zip(broker_cpu)
        .map(|(b, a)| b - a);
    worker.stop();
    anyhow::ensure!(
        committed == rows,
        "the worker committed {committed} rows, the producer reported {rows}; see {}",
        data.join("worker.log").display()
    );
    let elapsed = done.duration_since(started);
    let sinks = if config.writes_clickhouse() {
        "Parquet + ClickHouse"
    } else {
        "Parquet"
    };
    println!(
        "| Kafka → decode → dedup → {sinks}, {} preloaded events, checkpoint every {:?}, worker start to last commit | {:.0} events/s | {:.1} s |",
        sent,
        args.checkpoint_interval,
        sent as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!(
        "| CPU used while reading: worker {worker_cpu:.1} s, broker {}, ClickHouse {clickhouse_used:.1} s | {:.2} cores busy of {} | |",
        broker_cpu.map_or("unknown".to_string(), |b| format!("{b:.1} s")),
        (worker_cpu + broker_cpu.unwrap_or(0.0) + clickhouse_used) / elapsed.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    std::fs::remove_dir_all(&data).ok();
    Ok(())
}

async fn latency(args: &BenchKafkaArgs, rate: f64) -> anyhow::Result<()> {
    let config = bench_config(args, "lat")?;
    create_topics(&config.kafka, &config.dispatch_topics()).await?;
    let data = args.dir.join(format!("{}data", config.kafka.topic_prefix));
    std::fs::create_dir_all(&data)?;
    let worker = Worker::start(args, &config, &data)?;
    // The topics the worker reads: events, not the dead letters it writes.
    let event_topics: Vec<String> = EventKind::ALL
        .iter()
        .map(|kind| config.kafka.topic(*kind))
        .collect();
    let plain = PlainConsumer::start(&config.kafka, &event_topics)?;
    // Let the worker join and take its partitions before the clock starts.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let (sent, rows, secs) =
        produce(&config, None, Some(rate), Some(args.latency_duration), 7).await?;
    let (_, committed) = worker
        .wait_committed(rows, args.checkpoint_interval * 3 + Duration::from_secs(10))
        .await;
    worker.stop();
    let mut baseline = plain.finish(rows, Duration::from_secs(10)).await?;
    // tansu's memory:// engine sometimes serves a fetch without records a
    // concurrent produce is still writing (docs/decisions/0034-what-tansu-taught-us.md): say so
    // rather than hide it.
    let unserved = rows.saturating_sub(committed);
    let mut latencies = file_latencies(&data.join("lake"))?;
    std::fs::remove_dir_all(&data).ok();
    anyhow::ensure!(!latencies.is_empty(), "no rows in the lake");
    anyhow::ensure!(!baseline.is_empty(), "the plain consumer received nothing");
    latencies.sort_unstable();
    baseline.sort_unstable();
    let pct = |sorted: &[i64], p: f64| {
        sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)] as f64 / 1e6
    };
    println!(
        "| produce at {:.0} events/s for {secs:.0} s, checkpoint every {:?}: produced → visible to SQL | {} rows ({unserved} not served by the broker) | p50 {:.2} s, p99 {:.2} s, max {:.2} s |",
        sent as f64 / secs,
        args.checkpoint_interval,
        latencies.len(),
        pct(&latencies, 0.5),
        pct(&latencies, 0.99),
        pct(&latencies, 1.0)
    );
    println!(
        "| the same run, a plain rdkafka consumer on the same topics: produced → received | {} records | p50 {:.2} s, p99 {:.2} s, max {:.2} s; worker p99 ÷ consumer p99 = {:.1} |",
        baseline.len(),
        pct(&baseline, 0.5),
        pct(&baseline, 0.99),
        pct(&baseline, 1.0),
        pct(&latencies, 0.99) / pct(&baseline, 0.99).max(1e-3)
    );
    Ok(())
}

/// Per row of every event table: file modification time − `ingest_time`, µs.
fn file_latencies(lake: &Path) -> anyhow::Result<Vec<i64>> {
    let mut out = Vec::new();
    let mut stack = vec![lake.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
        {
            let path = entry?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if path.is_dir() {
                if !name.starts_with("_staging") && name != DEAD_LETTERS_TABLE {
                    stack.push(path);
                }
                continue;
            }
            if !name.ends_with(".parquet") {
                continue;
            }
            let visible_us = std::fs::metadata(&path)?
                .modified()?
                .duration_since(SystemTime::UNIX_EPOCH)?
                .as_micros() as i64;
            let file = std::fs::File::open(&path)?;
            let builder = ParquetRecordBatchReaderBuilder::try_new(file)?;
            let index = builder
                .schema()
                .index_of("ingest_time")
                .context("lake file without ingest_time")?;
            let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
            for batch in builder.with_projection(mask).build()? {
                let batch = batch?;
                let times = batch.column(0).as_primitive::<TimestampMicrosecondType>();
                out.extend(times.values().iter().map(|t| visible_us - t));
            }
        }
    }
    Ok(out)
}

pub async fn run(args: BenchKafkaArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("creating {}", args.dir.display()))?;
    if args.events > 0 {
        throughput(&args).await?;
    }
    if let Some(rate) = args.latency_rate {
        latency(&args, rate).await?;
    }
    Ok(())
}
