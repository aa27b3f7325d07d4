//! `somaflow demo`: the embedded node running the whole platform chain
//! (`config/local.toml`), fed a week of history and then live traffic by
//! the generator over HTTP. Live lines show ingest, spend, budget
//! crossings, policy verdicts and dispatched steps; at the end the node's
//! own API answers month-to-date spend, a ledger, a budget and a forecast,
//! and example SQL runs on the lake it wrote.

mod live;
mod summary;

use std::io::IsTerminal;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use somaflow_api::auth::{Scopes, mint};
use somaflow_pipeline::events::{EventKind, schema};
use somaflow_pipeline::metrics::{NodeLabels, NodeTableLabels, metrics};
use somaflow_sql::LakeSql;

use crate::config::Config;
use crate::generator::{Generator, GeneratorConfig, ProduceOptions, ProduceReport, produce_http};
use crate::node::{EmbeddedNode, shutdown_signal};
use live::{Snapshot, thousands};
use summary::Api;

/// The tenant whose budget the demo sets just above its spend, to show a
/// crossing (the generator's second most active tenant).
const BUDGET_TENANT: &str = "tenant-0001";

pub struct DemoArgs {
    pub rate: f64,
    pub seed: u64,
    pub tenants: usize,
    pub duration: Option<Duration>,
    /// Checkpoint interval for the demo: short, so rows visibly land.
    pub checkpoint_interval: Duration,
    /// Events of history loaded first (0: none), over `history_days`.
    pub history_events: u64,
    pub history_days: u32,
}

/// Queries printed (and run) at the end of the demo.
pub const EXAMPLE_QUERIES: [(&str, &str); 4] = [
    (
        "Tokens and cost per model (rated_cost_usd: priced by somaflow from config/prices.toml)",
        "SELECT model, count(*) AS requests, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens, sum(rated_cost_usd) AS cost_usd FROM conversations GROUP BY model ORDER BY cost_usd DESC",
    ),
    (
        "The newest minutes of usage_1m (closed windows, idle ones too)",
        "SELECT window_start, sum(requests) AS requests, sum(input_tokens + output_tokens) AS tokens, sum(cost_usd) AS cost_usd FROM usage_1m GROUP BY window_start ORDER BY window_start DESC LIMIT 5",
    ),
    (
        "Policy verdicts and budget crossings",
        "SELECT 'policy ' || decision AS what, count(*) AS n FROM policy_decisions GROUP BY decision UNION ALL SELECT 'budget ' || level || ' ' || tenant_id, count(*) FROM budget_events GROUP BY level, tenant_id ORDER BY what",
    ),
    (
        "Why events were dead-lettered",
        "SELECT split_part(reason, ':', 1) AS field, count(*) AS records FROM dead_letters GROUP BY 1 ORDER BY records DESC",
    ),
];

/// The demo's own copy of the metadata files, so `PUT /v1/budgets` in the
/// demo changes `./data`, never the repository's `config/`.
fn own_metadata(config: &mut Config) -> anyhow::Result<()> {
    if config.redis.url.is_some() {
        return Ok(());
    }
    let folder = config.data_dir.join("metadata");
    std::fs::create_dir_all(&folder).with_context(|| format!("creating {}", folder.display()))?;
    for file in [&mut config.enrich.tenants, &mut config.enrich.capsules] {
        let Some(name) = file.file_name() else {
            continue;
        };
        let copy = folder.join(name);
        if !copy.exists() && file.exists() {
            std::fs::copy(&*file, &copy)
                .with_context(|| format!("copying {} to {}", file.display(), copy.display()))?;
        }
        *file = copy;
    }
    Ok(())
}

/// With auth on, an admin token of the demo's own, signed with the
/// configured secret (the demo is the node's operator).
fn own_token(config: &Config) -> anyhow::Result<Option<String>> {
    if config.auth.secret.is_empty() {
        anyhow::ensure!(
            config.auth.jwks_url.is_empty(),
            "the demo signs its own token with [auth] secret; with only a jwks_url set it cannot: run it with auth off, or set SOMAFLOW_AUTH__SECRET"
        );
        return Ok(None);
    }
    let scopes = Scopes::parse(["admin"]).context("the admin scope")?;
    let token = mint(
        config.auth.secret.as_bytes(),
        "somaflow-demo",
        None,
        scopes,
        Duration::from_secs(24 * 3600),
    )?;
    Ok(Some(token))
}

/// Waits until the pipeline has read everything in the log.
async fn caught_up(within: Duration) {
    let started = Instant::now();
    while started.elapsed() < within {
        let m = metrics();
        if m.log_read_offset.get() >= m.log_end_offset.get() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Loads `args.history_events` events spread over the last days, in time
/// order, showing progress.
async fn load_history(
    url: &str,
    args: &DemoArgs,
    token: Option<&str>,
) -> anyhow::Result<ProduceReport> {
    println!(
        "loading {} days of history: {} events, in time order…",
        args.history_days,
        thousands(args.history_events as f64)
    );
    let opts = ProduceOptions {
        batch: 500,
        rate: None,
        count: Some(args.history_events),
        duration: None,
        concurrency: 2,
        history_days: Some(args.history_days),
        token: token.map(str::to_string),
    };
    let mut generator = Generator::new(GeneratorConfig {
        seed: args.seed.wrapping_add(1),
        tenants: args.tenants,
        ..GeneratorConfig::default()
    });
    let started = Instant::now();
    let mut shown = Instant::now();
    let report = produce_http(&mut generator, url, &opts, |r| {
        if shown.elapsed() >= Duration::from_secs(1) {
            shown = Instant::now();
            println!("  {} accepted", thousands(r.accepted as f64));
        }
    })
    .await
    .context("loading the history")?;
    println!(
        "  {} events accepted in {:.1} s ({} refused, dead-lettered)",
        thousands(report.accepted as f64),
        started.elapsed().as_secs_f64(),
        report.rejected
    );
    caught_up(Duration::from_secs(120)).await;
    Ok(report)
}

/// Sets [`BUDGET_TENANT`]'s budget 20% above its spend so far (at least
/// $1): the soft level (80%) is crossed by its next conversation, the hard
/// one a little later.
async fn tight_budget(api: &Api) -> anyhow::Result<()> {
    let spend = api.spend(BUDGET_TENANT).await?;
    let budget = (spend * 1.2).max(1.0);
    api.put_budget(BUDGET_TENANT, &format!("{budget:.2}"))
        .await?;
    println!(
        "PUT /v1/budgets/{BUDGET_TENANT}: ${budget:.2} a month, 20% above its ${spend:.2} so far, to watch it cross\n"
    );
    Ok(())
}

/// How long after the last event its minute is in the lake: the minute
/// ends, the watermark passes it by the allowed out-of-orderness, an idle
/// tick (every `idle_timeout_ms`) closes it, a checkpoint commits it.
fn settle_time(config: &Config, checkpoint: Duration) -> Duration {
    let now = chrono::Utc::now();
    let into_minute = Duration::from_millis(
        u64::try_from(now.timestamp_millis().rem_euclid(60_000)).unwrap_or(0),
    );
    let to_minute_end = Duration::from_secs(60).saturating_sub(into_minute);
    to_minute_end
        + Duration::from_millis(config.pipeline.out_of_orderness_ms)
        + Duration::from_millis(config.pipeline.idle_timeout_ms)
        + 2 * checkpoint
}

/// Rows each lake table received from this run, committed: the event kinds,
/// then what the operators derived and the dead letters.
fn committed_rows(sinks: &[String]) -> Vec<(&'static str, u64)> {
    let derived = [
        schema::USAGE_TABLE,
        schema::BUDGET_EVENTS_TABLE,
        schema::DEAD_LETTERS_TABLE,
    ];
    EventKind::ALL
        .iter()
        .map(|k| k.table())
        .chain(derived)
        .map(|table| {
            let rows = sinks
                .iter()
                .map(|node| {
                    metrics()
                        .sink_rows_committed
                        .get_or_create(&NodeTableLabels {
                            node: node.clone(),
                            table: table.to_string(),
                        })
                        .get()
                })
                .sum();
            (table.trim_start_matches('_'), rows)
        })
        .collect()
}

pub async fn run(config: &Config, args: DemoArgs) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.checkpoint.interval_ms = args.checkpoint_interval.as_millis().max(1) as u64;
    own_metadata(&mut config)?;
    let config = &config;
    let node = EmbeddedNode::start(config).await?;
    let url = format!("http://{}", node.addr);
    let token = own_token(config)?;
    let api = Api::new(&url, token.clone());
    println!(
        "somaflow demo: the whole platform in one process, API on {url}, lake in {}",
        config.lake_url()
    );
    println!(
        "console: {url}/ in a browser (live pipeline, spend, budgets, forecasts, workflows, SQL)"
    );
    println!(
        "graph: {}\n",
        config
            .nodes()
            .iter()
            .map(|n| n.id.as_str())
            .collect::<Vec<_>>()
            .join(" → ")
    );
    let history = if args.history_events > 0 {
        load_history(&url, &args, token.as_deref()).await?
    } else {
        ProduceReport::default()
    };
    tight_budget(&api).await?;
    println!(
        "live: ~{:.0} events/s from {} tenants (seed {}); Ctrl-C to stop\n",
        args.rate, args.tenants, args.seed
    );

    let report = Arc::new(Mutex::new(ProduceReport::default()));
    let producer = {
        let report = report.clone();
        let url = url.clone();
        let opts = ProduceOptions {
            batch: ((args.rate / 10.0) as usize).clamp(1, 500),
            rate: Some(args.rate),
            count: None,
            duration: args.duration,
            concurrency: 2,
            history_days: None,
            token: token.clone(),
        };
        let mut generator = Generator::new(GeneratorConfig {
            seed: args.seed,
            tenants: args.tenants,
            ..GeneratorConfig::default()
        });
        tokio::spawn(async move {
            produce_http(&mut generator, &url, &opts, |r| {
                *report.lock().unwrap_or_else(|p| p.into_inner()) = r.clone();
            })
            .await
        })
    };

    let sinks: Vec<String> = config
        .nodes()
        .into_iter()
        .filter(|n| n.kind == "parquet")
        .map(|n| n.id)
        .collect();
    let tty = std::io::stdout().is_terminal();
    let started = Instant::now();
    let mut last = Snapshot::now();
    let mut printed = false;
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => break,
            _ = ticker.tick() => {}
        }
        if args.duration.is_some_and(|d| started.elapsed() >= d) || producer.is_finished() {
            break;
        }
        let now = Snapshot::now();
        let lines = live::lines(
            started.elapsed().as_secs_f64(),
            &now,
            &last,
            node.status.checkpoints(),
        );
        last = now;
        if tty {
            live::show(&lines, true, printed);
            printed = true;
        } else if started.elapsed().as_secs().is_multiple_of(5) {
            live::show(&lines, false, false);
        }
    }
    producer.abort();
    let settle = settle_time(config, args.checkpoint_interval);
    println!(
        "\ntraffic stopped; the idle stream closes its newest minute in {:.0} s (the minute's end, \
         plus pipeline.out_of_orderness_ms, at the next idle tick), then a checkpoint…",
        settle.as_secs_f64()
    );
    caught_up(Duration::from_secs(60)).await;
    tokio::time::sleep(settle).await;
    if let Err(e) = summary::print(&api, BUDGET_TENANT).await {
        println!("\n(the API answers could not be read: {e:#})");
    }
    println!("\nstopping: final checkpoint so everything accepted is in the lake…");
    node.shutdown().await?;

    // Counts of acknowledged requests only: batches still in flight when the
    // producer stopped were never answered, so they are not claimed here.
    let report = report.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let rows = committed_rows(&sinks);
    let in_lake: u64 = rows.iter().map(|r| r.1).sum();
    let repeats: u64 = config
        .nodes()
        .iter()
        .filter(|n| n.kind == "dedup")
        .map(|n| {
            metrics()
                .duplicates_dropped
                .get_or_create(&NodeLabels { node: n.id.clone() })
                .get()
        })
        .sum();
    println!(
        "\naccepted {} live events over HTTP after the {} of history ({} refused, now in dead_letters); \
         {} rows in the lake, {} repeats dropped by dedup",
        thousands(report.accepted as f64),
        thousands(history.accepted as f64),
        thousands((report.rejected + history.rejected) as f64),
        thousands(in_lake as f64),
        thousands(repeats as f64),
    );
    for (table, rows) in rows {
        println!("  {table:<26} {:>11} rows", thousands(rows as f64));
    }

    let sql = LakeSql::open(&config.lake_url())
        .await
        .context("opening the lake")?;
    println!("\nTry these on what the demo wrote:\n");
    for (title, query) in EXAMPLE_QUERIES {
        println!("-- {title}\nsomaflow sql \"{query}\"\n");
        match sql.query(query).await {
            Ok(result) => println!("{}\n", result.to_table()?),
            Err(e) => println!("(query failed: {e})\n"),
        }
    }
    Ok(())
}
