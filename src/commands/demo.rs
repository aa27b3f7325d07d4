//! `somaflow demo`: the embedded node plus the generator posting to it, a
//! live progress line, and example queries run on what it wrote.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::metrics::{NodeLabels, NodeTableLabels, metrics};
use somaflow_sql::LakeSql;

use crate::config::Config;
use crate::generator::{Generator, GeneratorConfig, ProduceOptions, ProduceReport, produce_http};
use crate::node::{EmbeddedNode, shutdown_signal};

pub struct DemoArgs {
    pub rate: f64,
    pub seed: u64,
    pub tenants: usize,
    pub duration: Option<Duration>,
    /// Checkpoint interval for the demo: short, so rows visibly land.
    pub checkpoint_interval: Duration,
}

/// Queries printed (and run) at the end of the demo.
pub const EXAMPLE_QUERIES: [(&str, &str); 3] = [
    (
        "Tokens and requests per model",
        "SELECT model, count(*) AS requests, sum(input_tokens) AS input_tokens, sum(cached_input_tokens) AS cached, sum(output_tokens) AS output_tokens, sum(reasoning_tokens) AS reasoning FROM conversations GROUP BY model ORDER BY input_tokens DESC",
    ),
    (
        "Busiest tenants by event count across kinds",
        "SELECT tenant_id, count(*) AS events FROM (SELECT tenant_id FROM conversations UNION ALL SELECT tenant_id FROM capsule_executions UNION ALL SELECT tenant_id FROM workflow_executions) GROUP BY tenant_id ORDER BY events DESC LIMIT 5",
    ),
    (
        "Why events were dead-lettered",
        "SELECT split_part(reason, ':', 1) AS field, count(*) AS records FROM dead_letters GROUP BY 1 ORDER BY records DESC",
    ),
];

fn committed_rows(sinks: &[String]) -> Vec<(&'static str, u64)> {
    EventKind::ALL
        .iter()
        .map(|k| {
            let rows = sinks
                .iter()
                .map(|node| {
                    metrics()
                        .sink_rows_committed
                        .get_or_create(&NodeTableLabels {
                            node: node.clone(),
                            table: k.table().to_string(),
                        })
                        .get()
                })
                .sum();
            (k.table(), rows)
        })
        .collect()
}

pub async fn run(config: &Config, args: DemoArgs) -> anyhow::Result<()> {
    let mut config = config.clone();
    config.checkpoint.interval_ms = args.checkpoint_interval.as_millis().max(1) as u64;
    let config = &config;
    let node = EmbeddedNode::start(config).await?;
    let url = format!("http://{}", node.addr);
    println!(
        "somaflow demo: embedded pipeline on {url}, lake in {}",
        config.lake_url()
    );
    println!(
        "generating ~{:.0} events/s from {} tenants (seed {}); Ctrl-C to stop\n",
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
            token: None,
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
    let mut last_accepted = 0u64;
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
        let m = metrics();
        let accepted = m.ingest_accepted.get();
        let lag = m.log_end_offset.get() - m.log_read_offset.get();
        let rows: u64 = committed_rows(&sinks).iter().map(|r| r.1).sum();
        let line = format!(
            "{:>5.0}s  ingest {:>6} ev/s  accepted {:>8}  lag {:>6}  in lake {:>8}  checkpoints {:>3}",
            started.elapsed().as_secs_f64(),
            accepted - last_accepted,
            accepted,
            lag.max(0),
            rows,
            node.status.checkpoints(),
        );
        last_accepted = accepted;
        if tty {
            print!("\r{line}");
            let _ = std::io::stdout().flush();
        } else if started.elapsed().as_secs().is_multiple_of(5) {
            println!("{line}");
        }
    }
    producer.abort();
    println!("\n\nstopping: final checkpoint so everything accepted is in the lake…");
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
        "\naccepted {} events over HTTP ({} refused, now in dead_letters); {in_lake} rows in the lake, {repeats} repeats dropped by dedup",
        report.accepted, report.rejected,
    );
    for (table, rows) in rows {
        println!("  {table:<26} {rows:>9} rows");
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
