//! `somaflow bench-chain`: events/s through the whole platform operator
//! chain — decode → dedup → enrich → policy → accounting → window → budget →
//! dispatch — on generated data, in one thread, with the cost of each
//! operator (issue 5, "Benchmark": ≥ 500,000 events/s on one core without
//! I/O, policy < 20 % of the chain with 10 rules).
//!
//! The operators are the production ones, built by the node registry
//! (`src/node/registry.rs`) from the config, and driven through the [`Operator`] trait the
//! way the runtime's operator tasks drive them: each main output feeds the
//! next operator, a watermark follows the batches it came after and only
//! when it advances. There is no I/O, by design (the issue measures the
//! chain without it):
//! * enrich answers from `config/tenants.csv` and `config/capsules.csv`
//!   ([`Enrich::preloaded`]): the same cache lookups and column building as
//!   with Redis and a warm cache, without the round trips for new ids;
//! * budgets are counted in a [`LocalLedger`] (the Redis ledger's rules, in
//!   process);
//! * dispatch hands its steps to a [`CountingQueue`] instead of Kafka;
//! * side outputs (dead letters, policy decisions, usage rows, budget
//!   events, refusals) are counted and dropped: sinks are measured by
//!   `somaflow bench`, `bench-clickhouse` and `bench-kafka`.
//!
//! The chain runs on a dedicated thread with a current-thread runtime, so
//! the figures are those of one core; the thread's own CPU time is
//! reported beside the wall time, which shows whether it was descheduled.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::Array;
use somaflow_operators::dispatch::{AgentQueue, DispatchError, StepMessage};
use somaflow_operators::policy::PolicyRules;
use somaflow_operators::window::window_start;
use somaflow_pipeline::config::NodeConfig;
use somaflow_pipeline::runtime::{Batch, Emitter, Node, OUT, Operator, Watermark};

use super::pipeline::raw_batch;
use crate::commands::tenants::read_metadata;
use crate::config::Config;
use crate::generator::{Generator, GeneratorConfig};
use crate::node::platform::PlatformIo;
use crate::node::registry::common;

/// The issue's targets.
const TARGET_EVENTS_PER_SEC: f64 = 500_000.0;
const TARGET_POLICY_SHARE: f64 = 0.20;
const TARGET_RULES: usize = 10;

/// Rules the benchmark adds to the shipped ones so the chain is measured
/// with the issue's 10. All four are on conversations, the most frequent
/// kind, so each is evaluated on most rows (the costly case).
const EXTRA_RULES: &str = r#"
[[rules]]
id = "bench-failed-slow-call"
table = "conversations"
when = "status = 'error' AND latency_ms > 20000"
decision = "flag"
reason = "the call failed after more than 20 s: a provider timeout or a stuck tool"

[[rules]]
id = "bench-free-plan-long-answer"
table = "conversations"
when = "tenant_plan = 'free' AND output_tokens > 1500"
decision = "flag"
reason = "free-plan answer over 1,500 output tokens, the free plan's answer cap"

[[rules]]
id = "bench-unknown-tenant"
table = "conversations"
when = "tenant_plan IS NULL"
decision = "flag"
reason = "no tenant metadata (not imported): plan, region and budget rules cannot apply"

[[rules]]
id = "bench-premium-capsule-on-free-plan"
table = "conversations"
when = "tenant_plan = 'free' AND capsule_price_usd >= 20"
decision = "flag"
reason = "free-plan tenant running a capsule listed at $20 or more"
"#;

/// One event in this many is dated minutes late, as the generator's live
/// traffic is (1 %), so windows also emit correction rows.
const LATE_EVERY: usize = 100;

pub struct BenchChainArgs {
    /// Events measured.
    pub events: usize,
    /// Events run through the chain before measuring (the stream's start).
    pub warmup: usize,
    /// Events per second of event time: how densely the stream fills windows.
    pub event_rate: f64,
    pub seed: u64,
    /// Tenant and capsule metadata enrich answers from.
    pub tenants: PathBuf,
    pub capsules: PathBuf,
}

/// Dispatch's agent queue for the benchmark: counts the steps it is handed
/// and drops them. No I/O by design: the issue measures the chain without
/// I/O (sending to Kafka is `bench-kafka`'s business).
#[derive(Default)]
pub struct CountingQueue {
    messages: AtomicU64,
}

impl CountingQueue {
    pub fn messages(&self) -> u64 {
        self.messages.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl AgentQueue for CountingQueue {
    async fn send(&self, messages: Vec<StepMessage>) -> Result<(), DispatchError> {
        self.messages
            .fetch_add(messages.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// One operator of the chain and what it cost.
struct Stage {
    name: &'static str,
    op: Box<dyn Operator>,
    process: Duration,
    on_watermark: Duration,
    rows_in: u64,
    /// The last watermark it was given (it is given only later ones).
    watermark: Option<Watermark>,
}

impl Stage {
    fn new(name: &'static str, op: Box<dyn Operator>) -> Self {
        Self {
            name,
            op,
            process: Duration::ZERO,
            on_watermark: Duration::ZERO,
            rows_in: 0,
            watermark: None,
        }
    }
}

/// What came out of the chain: rows per (operator, side output), and the
/// checks that the operators did their work.
#[derive(Default)]
struct Tally {
    side: BTreeMap<(&'static str, &'static str), u64>,
    /// Rows leaving the last operator.
    out: u64,
    /// Rows leaving enrich with a tenant plan.
    enriched: u64,
    /// Conversations leaving accounting with our rated cost.
    rated: u64,
}

impl Tally {
    fn side(&self, stage: &str, output: &str) -> u64 {
        self.side
            .iter()
            .filter(|((s, o), _)| *s == stage && *o == output)
            .map(|(_, n)| n)
            .sum()
    }
}

struct Chain {
    stages: Vec<Stage>,
    tally: Tally,
    emitter: Emitter,
}

impl Chain {
    /// One raw batch through every operator, then the watermark it raised.
    async fn run(&mut self, raw: Batch) -> anyhow::Result<()> {
        let mut carry = vec![raw];
        let mut watermark: Option<Watermark> = None;
        let last = self.stages.len() - 1;
        for k in 0..self.stages.len() {
            let stage = &mut self.stages[k];
            let mut next = Vec::new();
            for batch in carry.drain(..) {
                stage.rows_in += batch.num_rows() as u64;
                let started = Instant::now();
                stage
                    .op
                    .process(batch, &mut self.emitter)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}: {e}", stage.name))?;
                stage.process += started.elapsed();
                route(stage.name, &mut self.emitter, &mut next, &mut self.tally);
            }
            let mut forwarded = self.emitter.take_watermark();
            // As the runtime's inputs do: only a watermark that advances.
            if let Some(w) = watermark.filter(|w| stage.watermark.is_none_or(|s| *w > s)) {
                stage.watermark = Some(w);
                let started = Instant::now();
                let forward = stage
                    .op
                    .on_watermark(w, &mut self.emitter)
                    .await
                    .map_err(|e| anyhow::anyhow!("{} (watermark): {e}", stage.name))?;
                stage.on_watermark += started.elapsed();
                route(stage.name, &mut self.emitter, &mut next, &mut self.tally);
                forwarded = forwarded.max(forward).max(self.emitter.take_watermark());
            }
            watermark = forwarded;
            if k == last {
                self.tally.out += next.iter().map(|b| b.num_rows() as u64).sum::<u64>();
            }
            carry = next;
        }
        Ok(())
    }

    /// Forgets the costs and counts of the warm-up (state stays).
    fn reset(&mut self) {
        for s in &mut self.stages {
            s.process = Duration::ZERO;
            s.on_watermark = Duration::ZERO;
            s.rows_in = 0;
        }
        self.tally = Tally::default();
    }
}

/// Main outputs go to the next operator; side outputs are counted.
fn route(stage: &'static str, emitter: &mut Emitter, next: &mut Vec<Batch>, tally: &mut Tally) {
    for (output, batch) in emitter.take() {
        if output != OUT {
            *tally.side.entry((stage, output)).or_default() += batch.num_rows() as u64;
            continue;
        }
        // Null counts are precomputed: these checks cost nothing measurable.
        let set = |column: &str| {
            batch
                .rows
                .column_by_name(column)
                .map_or(0, |c| (c.len() - c.null_count()) as u64)
        };
        match stage {
            "enrich" => tally.enriched += set("tenant_plan"),
            "accounting" => tally.rated += set("rated_cost_usd"),
            _ => {}
        }
        next.push(batch);
    }
}

/// The rule set: the configured file plus [`EXTRA_RULES`], and its text.
fn bench_rules(config: &Config) -> anyhow::Result<(PolicyRules, String)> {
    let path = &config.policy.rules;
    let shipped = std::fs::read_to_string(path)
        .with_context(|| format!("reading the policy rules {}", path.display()))?;
    let text = format!("{shipped}\n{EXTRA_RULES}");
    let rules = PolicyRules::parse(&text).with_context(|| {
        format!(
            "compiling {} plus the benchmark's extra rules",
            path.display()
        )
    })?;
    Ok((rules, text))
}

/// The node types of the chain, in order; each node is named as its type.
const CHAIN: [&str; 8] = [
    "decode",
    "dedup",
    "enrich",
    "policy",
    "accounting",
    "window",
    "budget",
    "dispatch",
];

/// The chain, built by the node registry from `config` with the platform
/// operators' outside parts in process (see the module doc).
fn build_chain(
    config: &Config,
    args: &BenchChainArgs,
    queue: Arc<CountingQueue>,
) -> anyhow::Result<Chain> {
    let (tenants, capsules) = read_metadata(&args.tenants, &args.capsules)?;
    let types = common(PlatformIo::InProcess {
        tenants,
        capsules,
        queue,
    });
    let mut stages = Vec::with_capacity(CHAIN.len());
    for kind in CHAIN {
        let node = types
            .build(&NodeConfig::new(kind, kind, &[]), config)
            .map_err(|e| anyhow::anyhow!("building `{kind}`: {e}"))?;
        let Node::Operator(op) = node else {
            anyhow::bail!("`{kind}` is not an operator");
        };
        stages.push(Stage::new(kind, op));
    }
    Ok(Chain {
        stages,
        tally: Tally::default(),
        emitter: Emitter::default(),
    })
}

/// When the `i`th event of the stream happened: evenly spaced at `rate`
/// per second from `start`, every [`LATE_EVERY`]th one 30 s to ~10 min late.
fn event_time(start: DateTime<Utc>, i: usize, rate: f64) -> DateTime<Utc> {
    let at = start + chrono::Duration::microseconds((i as f64 * 1e6 / rate) as i64);
    if i > 0 && i.is_multiple_of(LATE_EVERY) {
        at - chrono::Duration::seconds(30 + (i / LATE_EVERY % 570) as i64)
    } else {
        at
    }
}

/// The stream as raw batches of the configured size, its last event a
/// little before now (decode checks event time against ingest time). It
/// starts on a window boundary so every run closes the same windows.
fn raw_stream(
    args: &BenchChainArgs,
    batch_rows: usize,
    window_us: i64,
) -> anyhow::Result<Vec<Batch>> {
    let n = args.warmup + args.events;
    let mut generator = Generator::new(GeneratorConfig {
        seed: args.seed,
        ..GeneratorConfig::default()
    });
    let now = Utc::now();
    let span_us = (n as f64 * 1e6 / args.event_rate) as i64;
    let start_us = window_start(now.timestamp_micros() - span_us, window_us.max(1));
    let start = DateTime::from_timestamp_micros(start_us).unwrap_or(now);
    let ingest_us = now.timestamp_micros();
    let mut batches = Vec::with_capacity(n.div_ceil(batch_rows));
    let mut chunk: Vec<Bytes> = Vec::with_capacity(batch_rows);
    for i in 0..n {
        chunk.push(
            generator
                .next_at(event_time(start, i, args.event_rate))
                .bytes,
        );
        // The warm-up ends on a batch boundary so no batch mixes the two.
        if chunk.len() == batch_rows || i + 1 == n || i + 1 == args.warmup {
            let first = (i + 1 - chunk.len()) as i64;
            batches.push(raw_batch(&chunk, first, ingest_us)?);
            chunk.clear();
        }
    }
    Ok(batches)
}

/// CPU time this thread has run (Linux; None elsewhere).
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}

/// What one measured run gives the report.
struct Measured {
    chain: Chain,
    events: usize,
    wall: Duration,
    cpu: Option<Duration>,
    dispatched: u64,
    rules: usize,
    conversation_rules: usize,
}

/// Builds, warms up and measures the chain on the calling thread.
async fn measure(mut config: Config, args: BenchChainArgs) -> anyhow::Result<Measured> {
    anyhow::ensure!(
        args.event_rate.is_finite() && args.event_rate > 0.0,
        "--event-rate must be a positive number of events per second"
    );
    anyhow::ensure!(args.events > 0, "--events must be at least 1");
    let (rules, rules_text) = bench_rules(&config)?;
    let (rule_count, conversation_rules) = (
        rules.len(),
        rules
            .for_table("conversations")
            .map_or(0, |t| t.rules.len()),
    );
    // The policy node reads its rules from `policy.rules`, as in a pipeline.
    let rules_file = tempfile::NamedTempFile::new().context("a file for the benchmark's rules")?;
    std::fs::write(rules_file.path(), rules_text).context("writing the benchmark's rules")?;
    config.policy.rules = rules_file.path().to_path_buf();
    let queue = Arc::new(CountingQueue::default());
    let mut chain = build_chain(&config, &args, queue.clone())?;
    eprintln!(
        "generating {} + {} warm-up events…",
        args.events, args.warmup
    );
    let window_us = (config.window.size_secs as i64).saturating_mul(1_000_000);
    let mut batches = raw_stream(&args, config.pipeline.batch_rows.max(1), window_us)?.into_iter();
    let mut warmed = 0;
    while warmed < args.warmup {
        let Some(batch) = batches.next() else { break };
        warmed += batch.num_rows();
        chain.run(batch).await?;
    }
    chain.reset();
    let dispatched_before = queue.messages();
    eprintln!("measuring {} events…", args.events);
    let cpu_before = thread_cpu();
    let started = Instant::now();
    for batch in batches {
        chain.run(batch).await?;
    }
    let wall = started.elapsed();
    let cpu = thread_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    Ok(Measured {
        chain,
        events: args.events,
        wall,
        cpu,
        dispatched: queue.messages() - dispatched_before,
        rules: rule_count,
        conversation_rules,
    })
}

fn ns_per_event(d: Duration, events: usize) -> f64 {
    d.as_nanos() as f64 / events as f64
}

fn met(ok: bool) -> &'static str {
    if ok { "met" } else { "missed" }
}

/// Prints the markdown report; fails when a check shows a no-op.
fn report(m: &Measured) -> anyhow::Result<()> {
    let n = m.events;
    let wall = m.wall.as_secs_f64();
    let rate = n as f64 / wall.max(1e-9);
    println!(
        "somaflow bench-chain: {n} events, {} on {} ({} cores visible), one thread\n",
        m.chain
            .stages
            .iter()
            .map(|s| s.name)
            .collect::<Vec<_>>()
            .join(" → "),
        cpu_model(),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    match m.cpu {
        Some(cpu) => println!(
            "chain: {rate:.0} events/s ({wall:.3} s wall, {:.3} s on CPU: {:.0} % of the wall time on a core)\n",
            cpu.as_secs_f64(),
            cpu.as_secs_f64() / wall.max(1e-9) * 100.0
        ),
        None => println!("chain: {rate:.0} events/s ({wall:.3} s wall)\n"),
    }
    println!(
        "| operator | rows in | batches ns/event | watermarks ns/event | total ns/event | share of chain |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut staged = Duration::ZERO;
    for s in &m.chain.stages {
        let total = s.process + s.on_watermark;
        staged += total;
        println!(
            "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} % |",
            s.name,
            s.rows_in,
            ns_per_event(s.process, n),
            ns_per_event(s.on_watermark, n),
            ns_per_event(total, n),
            total.as_secs_f64() / wall.max(1e-9) * 100.0
        );
    }
    let driver = m.wall.saturating_sub(staged);
    println!(
        "| (driver: routing between operators) | | | | {:.1} | {:.1} % |",
        ns_per_event(driver, n),
        driver.as_secs_f64() / wall.max(1e-9) * 100.0
    );
    println!(
        "| **chain** | {n} | | | {:.1} | 100 % |\n",
        ns_per_event(m.wall, n)
    );
    let t = &m.chain.tally;
    let checks = [
        ("rows decoded", m.chain.stages[1].rows_in),
        ("dead letters", t.side("decode", "dead_letters")),
        (
            "duplicates dropped",
            m.chain.stages[1].rows_in - m.chain.stages[2].rows_in,
        ),
        ("rows enriched with a tenant plan", t.enriched),
        ("policy decisions", t.side("policy", "decisions")),
        ("conversations rated", t.rated),
        ("usage_1m rows", t.side("window", "usage")),
        ("budget events", t.side("budget", "budget_events")),
        ("steps dispatched (counted)", m.dispatched),
        ("dispatch refusals", t.side("dispatch", "decisions")),
        ("rows out of the chain", t.out),
    ];
    println!(
        "work done: {}",
        checks
            .iter()
            .map(|(what, n)| format!("{what} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    for (what, n) in [
        ("rows enriched", t.enriched),
        ("policy decisions", t.side("policy", "decisions")),
        ("conversations rated", t.rated),
        ("usage_1m rows", t.side("window", "usage")),
        ("steps dispatched", m.dispatched),
    ] {
        anyhow::ensure!(
            n > 0,
            "no {what}: the chain did not do its work, the figures are not valid"
        );
    }
    let policy = m
        .chain
        .stages
        .iter()
        .find(|s| s.name == "policy")
        .map_or(Duration::ZERO, |s| s.process + s.on_watermark);
    let share = policy.as_secs_f64() / wall.max(1e-9);
    println!(
        "targets: ≥ {TARGET_EVENTS_PER_SEC:.0} events/s on one core: {} ({rate:.0}); policy < {:.0} % of the chain with {TARGET_RULES} rules: {} ({:.1} % with {} rules, {} on conversations)",
        met(rate >= TARGET_EVENTS_PER_SEC),
        TARGET_POLICY_SHARE * 100.0,
        met(share < TARGET_POLICY_SHARE && m.rules >= TARGET_RULES),
        share * 100.0,
        m.rules,
        m.conversation_rules
    );
    Ok(())
}

/// Runs the benchmark on its own thread (one core) and prints the report.
pub async fn run(config: &Config, args: BenchChainArgs) -> anyhow::Result<()> {
    let config = config.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-chain".into())
        .spawn(move || {
            let result = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("starting the benchmark's runtime")
                .and_then(|rt| rt.block_on(measure(config, args)));
            // The receiver only goes away if the command was interrupted.
            let _ = tx.send(result);
        })
        .context("starting the benchmark thread")?;
    let measured = rx
        .await
        .context("the benchmark thread stopped without a result")??;
    report(&measured)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bench_rules_are_the_shipped_six_plus_four() {
        let mut config = Config::default();
        config.policy.rules =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("config/policies.toml");
        let (rules, _) = bench_rules(&config).unwrap();
        assert_eq!(rules.len(), TARGET_RULES);
    }

    #[test]
    fn event_times_advance_at_the_rate_with_some_late() {
        let start = Utc::now();
        assert_eq!(event_time(start, 0, 1000.0), start);
        assert_eq!(
            event_time(start, 1, 1000.0),
            start + chrono::Duration::milliseconds(1)
        );
        assert!(event_time(start, LATE_EVERY, 1000.0) < start);
    }

    #[tokio::test]
    async fn a_small_run_does_every_operators_work() {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut config = Config::default();
        config.policy.rules = root.join("config/policies.toml");
        config.accounting.prices = root.join("config/prices.toml");
        let args = BenchChainArgs {
            events: 20_000,
            warmup: 2_000,
            event_rate: 200.0,
            seed: 7,
            tenants: root.join("config/tenants.csv"),
            capsules: root.join("config/capsules.csv"),
        };
        let m = measure(config, args).await.unwrap();
        assert_eq!(m.chain.stages[0].rows_in, 20_000);
        report(&m).unwrap();
    }
}
