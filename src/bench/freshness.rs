//! `somaflow bench-freshness`: how soon an accepted event can be read, on
//! the embedded node of the configured graph (`config/local.toml`: the
//! whole platform chain) with its own checkpoint interval.
//!
//! First the node's maximum rate (HTTP → committed lake rows). Then, at
//! each fraction of it, generated traffic is posted at that rate while a
//! probe posts one conversation of its own tenant every 100 ms and two
//! readers ask, every 50 ms, how many of the probe's conversations
//! `POST /v1/sql` returns and `/v1/usage` counts. A probe event's freshness
//! is the time from its `202` until the first answer that includes it
//! (commits follow the log's order, so the count says which ones).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use somaflow_pipeline::metrics::metrics;
use tokio::sync::Mutex;

use super::embedded::{bodies, percentile, post_all, post_paced};
use super::post_ndjson;
use crate::config::Config;
use crate::node::EmbeddedNode;

pub struct BenchFreshnessArgs {
    /// Events posted to find the maximum rate.
    pub events: usize,
    pub batch: usize,
    pub clients: usize,
    /// Seconds of traffic at each fraction.
    pub secs: u64,
    /// Fractions of the maximum rate, e.g. 0.1, 0.5, 0.9.
    pub fractions: Vec<f64>,
    /// Scratch folder (removed afterwards).
    pub dir: PathBuf,
}

const PROBE_EVERY: Duration = Duration::from_millis(100);
const READ_EVERY: Duration = Duration::from_millis(50);

/// When each probe event was accepted, and when each reader first saw it.
#[derive(Default)]
struct Probes {
    accepted: Vec<Instant>,
    seen_sql: Vec<Instant>,
    seen_usage: Vec<Instant>,
}

fn probe_event(tenant: &str, n: usize) -> bytes::Bytes {
    let event = serde_json::json!({
        "specversion": "1.0", "id": format!("{tenant}-{n}"), "source": "/bench-freshness",
        "type": "soma.conversation.v1", "time": chrono::Utc::now().to_rfc3339(), "tenantid": tenant,
        "data": {"user_id": "probe", "session_id": "probe", "provider": "openai", "model": "gpt-4o-mini",
                 "input_tokens": 1, "output_tokens": 1, "cached_input_tokens": 0,
                 "reasoning_tokens": 0, "latency_ms": 1, "status": "ok"},
    });
    let mut line = event.to_string().into_bytes();
    line.push(b'\n');
    bytes::Bytes::from(line)
}

/// How many of `tenant`'s conversations the SQL endpoint returns.
async fn sql_count(client: &reqwest::Client, base: &str, tenant: &str) -> anyhow::Result<usize> {
    let answer: serde_json::Value = client
        .post(format!("{base}/v1/sql"))
        .json(&serde_json::json!({
            "sql": format!("SELECT count(*) AS n FROM conversations WHERE tenant_id = '{tenant}'")
        }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let n = &answer["rows"][0][0];
    Ok(n.as_u64()
        .or_else(|| n.as_str()?.parse().ok())
        .with_context(|| format!("unexpected SQL answer {answer}"))? as usize)
}

/// How many of `tenant`'s conversations `/v1/usage` counts today.
async fn usage_count(client: &reqwest::Client, base: &str, tenant: &str) -> anyhow::Result<usize> {
    let today = chrono::Utc::now().date_naive();
    let from = today.and_hms_opt(0, 0, 0).context("midnight")?.and_utc();
    let to = from + chrono::Duration::days(1);
    let answer: serde_json::Value = client
        .get(format!("{base}/v1/usage"))
        .query(&[
            ("meter", "requests"),
            ("window", "day"),
            ("tenant", tenant),
            (
                "from",
                &from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            ),
            ("to", &to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        ])
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let rows = answer["rows"].as_array().cloned().unwrap_or_default();
    Ok(rows.iter().filter_map(|r| r["value"].as_f64()).sum::<f64>() as usize)
}

/// Posts a probe event every [`PROBE_EVERY`] until `until`.
async fn probe(
    url: String,
    tenant: String,
    until: Instant,
    probes: Arc<Mutex<Probes>>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(PROBE_EVERY);
    let mut n = 0;
    while Instant::now() < until {
        tick.tick().await;
        post_ndjson(&client, &url, probe_event(&tenant, n)).await?;
        probes.lock().await.accepted.push(Instant::now());
        n += 1;
    }
    Ok(())
}

/// Reads the probe's count every [`READ_EVERY`] until every probe event
/// is seen by both readers (or `deadline`).
async fn read(
    base: String,
    tenant: String,
    posting_done: Instant,
    deadline: Instant,
    probes: Arc<Mutex<Probes>>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(READ_EVERY);
    loop {
        tick.tick().await;
        let (sql, usage) = tokio::try_join!(
            sql_count(&client, &base, &tenant),
            usage_count(&client, &base, &tenant)
        )?;
        let now = Instant::now();
        let mut p = probes.lock().await;
        let accepted = p.accepted.len();
        // Seen only what was accepted: a count past that is a probe whose
        // 202 is still on its way, timed when its 202 arrives.
        while p.seen_sql.len() < sql.min(accepted) {
            p.seen_sql.push(now);
        }
        while p.seen_usage.len() < usage.min(accepted) {
            p.seen_usage.push(now);
        }
        let all_seen = p.seen_sql.len() == accepted && p.seen_usage.len() == accepted;
        if (now > posting_done && all_seen) || now > deadline {
            return Ok(());
        }
    }
}

fn freshness(accepted: &[Instant], seen: &[Instant]) -> Vec<Duration> {
    let mut d: Vec<Duration> = accepted
        .iter()
        .zip(seen)
        .map(|(a, s)| s.saturating_duration_since(*a))
        .collect();
    d.sort();
    d
}

fn row(label: &str, d: &[Duration], of: usize) -> String {
    format!(
        "{label}: {} of {of} seen; p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        d.len(),
        percentile(d, 0.5),
        percentile(d, 0.95),
        percentile(d, 0.99),
        percentile(d, 1.0),
    )
}

pub async fn run(config: &Config, args: BenchFreshnessArgs) -> anyhow::Result<()> {
    let dir = args.dir.join(format!(
        "bench-freshness-{}",
        chrono::Utc::now().format("%Y%m%dT%H%M%S")
    ));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut config = config.clone();
    config.data_dir = dir.clone();
    config.lake = Default::default();
    config.log = Default::default();
    config.server.listen = "127.0.0.1:0".into();
    config.validate()?;
    println!(
        "somaflow bench-freshness: checkpoints every {} ms; {} cores; probe every {} ms, read every {} ms",
        config.checkpoint.interval_ms,
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        PROBE_EVERY.as_millis(),
        READ_EVERY.as_millis(),
    );
    let node = EmbeddedNode::start(&config).await?;
    let base = format!("http://{}", node.addr);
    let url = format!("{base}/v1/events");

    eprintln!("maximum rate: posting {} events…", args.events);
    let t = Instant::now();
    post_all(&url, bodies(1, args.events, args.batch), args.clients).await?;
    let end = node.log.end_offset() as i64;
    while metrics().log_read_offset.get() < end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let after = node.status.checkpoints() + 1;
    while node.status.checkpoints() <= after {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let max = args.events as f64 / t.elapsed().as_secs_f64();
    println!("maximum rate (HTTP → committed lake rows): {max:.0} events/s\n");

    for (i, fraction) in args.fractions.iter().enumerate() {
        let rate = max * fraction;
        eprintln!(
            "{:.0} % of the maximum: {rate:.0} events/s for {} s…",
            fraction * 100.0,
            args.secs
        );
        let tenant = format!("probe-{i}");
        let probes = Arc::new(Mutex::new(Probes::default()));
        let start = Instant::now();
        let posting_done = start + Duration::from_secs(args.secs);
        let deadline = posting_done + Duration::from_secs(120);
        let events = (rate * args.secs as f64) as usize;
        let load = post_paced(
            &url,
            bodies(10 + i as u64, events, args.batch),
            args.batch,
            rate,
        );
        let probing = probe(url.clone(), tenant.clone(), posting_done, probes.clone());
        let reading = read(base.clone(), tenant, posting_done, deadline, probes.clone());
        let (_, (), ()) = tokio::try_join!(load, probing, reading)?;
        let p = probes.lock().await;
        println!(
            "{:.0} % of the maximum ({rate:.0} events/s, {} s):",
            fraction * 100.0,
            args.secs
        );
        println!(
            "  {}",
            row(
                "POST /v1/sql",
                &freshness(&p.accepted, &p.seen_sql),
                p.accepted.len()
            )
        );
        println!(
            "  {}",
            row(
                "GET /v1/usage",
                &freshness(&p.accepted, &p.seen_usage),
                p.accepted.len()
            )
        );
    }
    node.shutdown().await?;
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
