//! `somaflow bench-clickhouse`: how fast the ClickHouse sink gets rows into
//! a real server, and who spends the CPU. Generated events are decoded up
//! front (that cost is not the sink's); then, per insert batch size, every
//! table alone and all tables together go through the real sink (write,
//! then a barrier that waits for every acknowledgement) into a fresh
//! database. Beside the rates: the RowBinary encoding rate alone (the
//! sink's own CPU ceiling) and the CPU seconds of somaflow and of the
//! ClickHouse server during each run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use datafusion::arrow::array::AsArray;
use somaflow_pipeline::config::NodeConfig;
use somaflow_pipeline::events::schema::DEAD_LETTERS_TABLE;
use somaflow_pipeline::runtime::{Batch, Emitter, Node};
use somaflow_sinks::clickhouse::{TableLayout, clickhouse_table, connect, encode, migrate};

use super::kafka::{clickhouse_cpu, cpu_secs};
use super::pipeline::{generate, raw_batches};
use crate::config::Config;
use crate::node::io::PlatformIo;
use crate::node::registry::common;

pub struct BenchClickHouseArgs {
    pub events: usize,
    pub batch_rows: Vec<usize>,
}

/// The node of type `kind`, built by the node registry from `config`.
fn node(config: &Config, kind: &str) -> anyhow::Result<Node> {
    common(PlatformIo::configured())
        .build(&NodeConfig::new(kind, kind, &[]), config)
        .map_err(|e| anyhow::anyhow!("building `{kind}`: {e}"))
}

/// Decoded rows by table, in the pipeline's batch size.
async fn decoded(
    config: &Config,
    events: usize,
) -> anyhow::Result<BTreeMap<&'static str, Vec<Batch>>> {
    let records = generate(events);
    let Node::Operator(mut decode) = node(config, "decode")? else {
        anyhow::bail!("`decode` is not an operator");
    };
    let mut tables: BTreeMap<&'static str, Vec<Batch>> = BTreeMap::new();
    for batch in raw_batches(&records, 8192, chrono::Utc::now().timestamp_micros())? {
        let mut out = Emitter::default();
        decode
            .process(batch, &mut out)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        for (_, b) in out.take() {
            tables.entry(b.table).or_default().push(b);
        }
    }
    Ok(tables)
}

/// Rows ClickHouse keeps after collapsing copies: one per event id (the
/// generator repeats 1% of events, and no dedup operator runs here), every
/// dead letter.
fn distinct_rows(tables: &BTreeMap<&'static str, Vec<Batch>>) -> usize {
    tables
        .values()
        .map(|batches| {
            let mut ids = std::collections::HashSet::new();
            let mut rows = 0;
            for b in batches {
                match b
                    .rows
                    .column_by_name("event_id")
                    .map(|c| c.as_string::<i32>())
                {
                    Some(col) if b.table != DEAD_LETTERS_TABLE => {
                        ids.extend(col.iter().flatten().map(str::to_string))
                    }
                    _ => rows += b.num_rows(),
                }
            }
            rows + ids.len()
        })
        .sum()
}

struct Run {
    rows: usize,
    secs: f64,
    somaflow_cpu: f64,
    clickhouse_cpu: f64,
}

/// Sends `batches` through a fresh `clickhouse` sink and waits for the barrier.
async fn insert(config: &Config, batches: &[&Batch]) -> anyhow::Result<Run> {
    let Node::Sink(mut sink) = node(config, "clickhouse")? else {
        anyhow::bail!("`clickhouse` is not a sink");
    };
    let rows = batches.iter().map(|b| b.num_rows()).sum();
    let (own, server) = (cpu_secs(std::process::id()), clickhouse_cpu());
    let started = Instant::now();
    for b in batches {
        sink.write((*b).clone())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    sink.pre_commit(1)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let secs = started.elapsed().as_secs_f64();
    sink.close().await.map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Run {
        rows,
        secs,
        somaflow_cpu: cpu_secs(std::process::id()) - own,
        clickhouse_cpu: clickhouse_cpu() - server,
    })
}

fn row(batch_rows: usize, what: &str, run: &Run) {
    println!(
        "| {batch_rows} | {what} | {} | {:.2} s | {:.0} rows/s | {:.1} s | {:.1} s |",
        run.rows,
        run.secs,
        run.rows as f64 / run.secs,
        run.somaflow_cpu,
        run.clickhouse_cpu
    );
}

pub async fn run(config: &Config, args: BenchClickHouseArgs) -> anyhow::Result<()> {
    let base = &config.clickhouse;
    base.validate().context("invalid configuration")?;
    eprintln!("generating and decoding {} events …", args.events);
    let tables = decoded(config, args.events).await?;
    let total: usize = tables.values().flatten().map(Batch::num_rows).sum();
    let distinct = distinct_rows(&tables);

    // The sink's own ceiling: RowBinary encoding alone, on the server's layouts.
    let mut setup = base.clone();
    setup.database = "bench_layouts".into();
    migrate(&setup)
        .await
        .context("creating the bench database")?;
    let client = connect(&setup, None);
    let started = Instant::now();
    let mut bytes = 0;
    for (table, batches) in &tables {
        let layout = TableLayout::load(&client, &setup, clickhouse_table(table)).await?;
        let rows: Vec<_> = batches.iter().map(|b| b.rows.clone()).collect();
        bytes += encode(&rows, &layout)?.body.len();
    }
    let encode_secs = started.elapsed().as_secs_f64();
    connect(&setup, Some("system"))
        .query("DROP DATABASE IF EXISTS bench_layouts")
        .execute()
        .await?;
    println!(
        "| encoding alone (RowBinary, one core) | {total} rows, {} MiB | {:.0} rows/s |",
        bytes >> 20,
        total as f64 / encode_secs
    );
    println!();
    println!("| batch rows | tables | rows | time | rows/s | somaflow CPU | ClickHouse CPU |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for &batch_rows in &args.batch_rows {
        let mut node_config = config.clone();
        let config = &mut node_config.clickhouse;
        config.batch_rows = batch_rows;
        config.flush_interval_ms = 60_000; // sizes, not the clock, cut the blocks here
        config.database = format!("bench_{batch_rows}");
        let client = connect(config, Some("system"));
        client
            .query(&format!("DROP DATABASE IF EXISTS {}", config.database))
            .execute()
            .await?;
        migrate(config).await?;
        for (table, batches) in &tables {
            let run = insert(&node_config, &batches.iter().collect::<Vec<_>>()).await?;
            row(batch_rows, clickhouse_table(table), &run);
        }
        // All tables at once, into a second fresh database.
        node_config.clickhouse.database = format!("bench_{batch_rows}_all");
        let config = &node_config.clickhouse;
        client
            .query(&format!("DROP DATABASE IF EXISTS {}", config.database))
            .execute()
            .await?;
        migrate(config).await?;
        // Tables interleaved batch by batch, as a real stream arrives.
        let longest = tables.values().map(Vec::len).max().unwrap_or(0);
        let all: Vec<&Batch> = (0..longest)
            .flat_map(|i| tables.values().filter_map(move |t| t.get(i)))
            .collect();
        let run = insert(&node_config, &all).await?;
        row(batch_rows, "all tables together", &run);
        let stored: u64 = {
            let mut n = 0;
            for table in tables.keys() {
                n += connect(&node_config.clickhouse, None)
                    .query(&format!(
                        "SELECT count() FROM {} FINAL",
                        clickhouse_table(table)
                    ))
                    .fetch_one::<u64>()
                    .await?;
            }
            n
        };
        anyhow::ensure!(
            stored as usize == distinct,
            "ClickHouse holds {stored} distinct rows, {distinct} were sent"
        );
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    Ok(())
}
