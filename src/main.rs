//! The `somaflow` command line: parses arguments and calls the command
//! (`somaflow::commands`, `somaflow::bench`).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use somaflow::config::Config;
use somaflow::{bench, commands, telemetry};

// glibc's per-thread arenas kept freed batch memory resident and RSS crept up
// with every row processed; mimalloc returns it (see tests/it/backpressure.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "somaflow",
    version,
    about = "Streaming dataflow engine for AI-agent platform events"
)]
struct Cli {
    /// Config file (TOML). Default: config/local.toml when it exists, else built-in defaults.
    #[arg(long, short, global = true, env = "SOMAFLOW_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node: the embedded one (HTTP → durable log → pipeline → lake), or
    /// a cluster worker when the config's pipeline reads Kafka (config/cluster.toml).
    Run,
    /// Run the embedded node with generated platform traffic and live progress.
    Demo {
        /// Events per second to generate.
        #[arg(long, default_value_t = 2000.0)]
        rate: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 300)]
        tenants: usize,
        /// Stop after this long (e.g. 30s, 5m); default: until Ctrl-C.
        #[arg(long, value_parser = commands::produce::parse_duration)]
        duration: Option<Duration>,
        /// Checkpoint (commit) interval, shorter than `run`'s so rows visibly land.
        #[arg(long, default_value = "2s", value_parser = commands::produce::parse_duration)]
        checkpoint_interval: Duration,
        /// Events of history loaded before the live traffic (0: none), so
        /// forecasts and budgets have a past.
        #[arg(long, default_value_t = 100_000)]
        history_events: u64,
        /// Days the history spans, ending now.
        #[arg(long, default_value_t = 7)]
        history_days: u32,
    },
    /// Query the lake with SQL and print the result.
    Sql {
        query: String,
        /// table, csv or json
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Post generated platform traffic to a somaflow server, or produce it to Kafka.
    Produce {
        #[command(flatten)]
        args: commands::produce::ProduceArgs,
        /// Print the final report as JSON on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Manage the configured Kafka topics.
    Topics {
        #[command(subcommand)]
        action: TopicsAction,
    },
    /// Tenant and capsule metadata in Redis (what `enrich` adds to rows).
    Tenants {
        #[command(subcommand)]
        action: TenantsAction,
    },
    /// The price table (`[accounting] prices`).
    Prices {
        #[command(subcommand)]
        action: PricesAction,
    },
    /// Mint a bearer token signed with `[auth] secret` (SOMAFLOW_AUTH__SECRET).
    Token {
        /// The tenant the token sees; omit for every tenant (needs `admin`).
        #[arg(long)]
        tenant: Option<String>,
        /// events:write, usage:read, billing:read, billing:admin, sql:read, admin
        #[arg(long, value_delimiter = ',', default_value = "usage:read,billing:read")]
        scopes: Vec<String>,
        /// The token's `sub` claim.
        #[arg(long, default_value = "somaflow-cli")]
        subject: String,
        /// How long the token is valid (e.g. 30m, 24h, 720h).
        #[arg(long, default_value = "24h", value_parser = commands::produce::parse_duration)]
        ttl: Duration,
    },
    /// Apply the ClickHouse migrations of sql/clickhouse/ to `[clickhouse]`
    /// (also done at startup when `clickhouse.migrate = true`).
    Migrate,
    /// Measure pipeline and HTTP ingest throughput on this machine.
    Bench {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        #[arg(long, default_value_t = 500_000)]
        http_events: usize,
        #[arg(long, default_value_t = 500)]
        http_batch: usize,
        #[arg(long, default_value_t = 8)]
        http_concurrency: usize,
        /// Scratch folder (removed afterwards).
        #[arg(long, default_value = "./data")]
        dir: PathBuf,
    },
    /// Measure the platform operator chain (decode → dedup → enrich → policy →
    /// accounting → window → budget → dispatch) in one thread without I/O:
    /// events/s and each operator's cost, on generated data.
    BenchChain {
        /// Events measured.
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Events run through the chain first, not measured.
        #[arg(long, default_value_t = 100_000)]
        warmup: usize,
        /// Events per second of event time (how densely windows fill).
        #[arg(long, default_value_t = 5_000.0)]
        event_rate: f64,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Tenant metadata enrich answers from (no Redis).
        #[arg(long, default_value = "config/tenants.csv")]
        tenants: PathBuf,
        /// Capsule metadata enrich answers from.
        #[arg(long, default_value = "config/capsules.csv")]
        capsules: PathBuf,
    },
    /// Measure the ClickHouse sink against the configured server: rows/s per
    /// table and overall at several insert batch sizes, with CPU shares.
    BenchClickhouse {
        #[arg(long, default_value_t = 1_000_000)]
        events: usize,
        /// Insert batch sizes to compare.
        #[arg(long, value_delimiter = ',', default_value = "10000,50000,200000")]
        batch_rows: Vec<usize>,
    },
    /// The embedded node end to end: events/s from HTTP to committed lake
    /// rows and ingest latency at half that rate, for the configured graph
    /// (config/local.toml: the whole platform chain) beside the built-in
    /// decode → dedup → lake graph.
    BenchEmbedded {
        #[arg(long, default_value_t = 500_000)]
        events: usize,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Seconds of posting at half the measured rate.
        #[arg(long, default_value_t = 20)]
        latency_secs: u64,
        /// Scratch folder (removed afterwards).
        #[arg(long, default_value = "./data")]
        dir: PathBuf,
    },
    /// How soon an accepted event is read back: the maximum rate of the
    /// configured graph, then at fractions of it the time from a probe
    /// event's 202 until POST /v1/sql returns it and /v1/usage counts it.
    BenchFreshness {
        #[arg(long, default_value_t = 300_000)]
        events: usize,
        #[arg(long, default_value_t = 500)]
        batch: usize,
        #[arg(long, default_value_t = 8)]
        clients: usize,
        /// Seconds of traffic at each fraction.
        #[arg(long, default_value_t = 30)]
        secs: u64,
        /// Fractions of the maximum rate.
        #[arg(long, value_delimiter = ',', default_value = "0.1,0.5,0.9")]
        fractions: Vec<f64>,
        /// Scratch folder (removed afterwards).
        #[arg(long, default_value = "./data")]
        dir: PathBuf,
    },
    /// Measure the forecasts and the anomaly scan on generated seasonal
    /// traffic: MAPE at 24 h per tenant, precision and recall on planted anomalies.
    BenchForecast {
        /// Seeds of the generated traffic, one table row each.
        #[arg(long, value_delimiter = ',', default_values_t = bench::forecast::SEEDS)]
        seeds: Vec<u64>,
        /// Instead: a real hourly series (one value per line), forecast 24 h
        /// ahead from `--origins` daily origins; JSON on stdout
        /// (scripts/bench-forecast-real.sh sets statsmodels beside it).
        #[arg(long)]
        series: Option<PathBuf>,
        /// Hours of history each forecast sees (with `--series`).
        #[arg(long, default_value_t = 672)]
        window: usize,
        /// Daily origins, the last 24 h before the end (with `--series`).
        #[arg(long, default_value_t = 28)]
        origins: usize,
    },
    /// Measure Kafka → decode → dedup → Parquet with the configured broker and
    /// a worker process: throughput over preloaded topics, produced → visible
    /// latency at a fixed rate (scripts/bench-kafka.sh runs the whole set).
    BenchKafka {
        /// Events to preload and read back (0 = skip the throughput phase).
        #[arg(long, default_value_t = 10_000_000)]
        events: u64,
        /// Events per second of the latency phase (omit to skip it).
        #[arg(long)]
        latency_rate: Option<f64>,
        #[arg(long, default_value = "60s", value_parser = commands::produce::parse_duration)]
        latency_duration: Duration,
        #[arg(long, default_value = "10s", value_parser = commands::produce::parse_duration)]
        checkpoint_interval: Duration,
        /// Scratch folder (phase folders are removed afterwards).
        #[arg(long, default_value = "./data/bench-kafka")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum TopicsAction {
    /// Create every configured topic (one per event kind, plus dead letters).
    Create,
}

#[derive(Subcommand)]
enum TenantsAction {
    /// Load tenants (and capsules) from CSV into `[redis]` as `tenant:{id}` /
    /// `capsule:{id}` hashes; nothing is written if any line is invalid.
    Import {
        /// CSV with the header `tenant_id,plan,region,monthly_budget_usd`.
        file: PathBuf,
        /// CSV with the header `capsule_id,author_id,price_usd`.
        #[arg(long)]
        capsules: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum PricesAction {
    /// Add the LiteLLM price map's prices (the JSON file inside the `litellm`
    /// PyPI package, `litellm/model_prices_and_context_window_backup.json`)
    /// to a price file as new effective-dated entries; nothing there is
    /// changed, and models whose newest price is unchanged get nothing.
    Import {
        /// The price map (JSON).
        file: PathBuf,
        /// The price file to add to (created when absent).
        #[arg(long, default_value = "config/prices.toml")]
        into: PathBuf,
        /// The day the added prices apply from (YYYY-MM-DD; default today, UTC).
        #[arg(long)]
        effective_from: Option<chrono::NaiveDate>,
        /// Rename a LiteLLM provider, FROM=TO (e.g. gemini=google); repeatable.
        #[arg(long)]
        provider_alias: Vec<String>,
        /// Print what would be added without writing.
        #[arg(long)]
        dry_run: bool,
    },
}

fn load_config(path: Option<PathBuf>) -> anyhow::Result<Config> {
    let path = path.or_else(|| {
        let default = PathBuf::from("config/local.toml");
        default.exists().then_some(default)
    });
    Config::load(path.as_deref(), std::env::vars()).context("invalid configuration")
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // `{:#}` prints the whole cause chain on one line, without a backtrace.
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    // A node logs at info and may export traces; every other command only
    // says what went wrong.
    if !matches!(cli.command, Command::Run) {
        telemetry::init("warn");
    }
    match cli.command {
        Command::Run => commands::run::run(&load_config(cli.config)?).await,
        Command::Demo {
            rate,
            seed,
            tenants,
            duration,
            checkpoint_interval,
            history_events,
            history_days,
        } => {
            let config = load_config(cli.config)?;
            commands::demo::run(
                &config,
                commands::demo::DemoArgs {
                    rate,
                    seed,
                    tenants,
                    duration,
                    checkpoint_interval,
                    history_events,
                    history_days,
                },
            )
            .await
        }
        Command::Sql { query, format } => {
            commands::sql::run(&load_config(cli.config)?, &query, &format).await
        }
        Command::Produce { args, json } => {
            let config = load_config(cli.config)?;
            commands::produce::run_and_report(args, &config.kafka, json).await
        }
        Command::Topics {
            action: TopicsAction::Create,
        } => {
            let config = load_config(cli.config)?;
            commands::topics::create(&config.kafka, &config.dispatch_topics()).await
        }
        Command::Tenants {
            action: TenantsAction::Import { file, capsules },
        } => {
            let config = load_config(cli.config)?;
            let report = commands::tenants::import(&config, &file, capsules.as_deref()).await?;
            println!("{report}");
            Ok(())
        }
        Command::Prices {
            action:
                PricesAction::Import {
                    file,
                    into,
                    effective_from,
                    provider_alias,
                    dry_run,
                },
        } => {
            let report =
                commands::prices::import(&file, &into, effective_from, &provider_alias, dry_run)?;
            print!("{}", commands::prices::describe(&report, &into, dry_run));
            Ok(())
        }
        Command::Token {
            tenant,
            scopes,
            subject,
            ttl,
        } => {
            let config = load_config(cli.config)?;
            commands::token::run(&config, tenant.as_deref(), &scopes, &subject, ttl)
        }
        Command::Migrate => commands::migrate::run(&load_config(cli.config)?.clickhouse).await,
        Command::Bench {
            events,
            http_events,
            http_batch,
            http_concurrency,
            dir,
        } => {
            bench::pipeline::run(bench::pipeline::BenchArgs {
                events,
                http_events,
                http_batch,
                http_concurrency,
                dir,
            })
            .await
        }
        Command::BenchChain {
            events,
            warmup,
            event_rate,
            seed,
            tenants,
            capsules,
        } => {
            let config = load_config(cli.config)?;
            bench::chain::run(
                &config,
                bench::chain::BenchChainArgs {
                    events,
                    warmup,
                    event_rate,
                    seed,
                    tenants,
                    capsules,
                },
            )
            .await
        }
        Command::BenchClickhouse { events, batch_rows } => {
            let config = load_config(cli.config)?;
            bench::clickhouse::run(
                &config,
                bench::clickhouse::BenchClickHouseArgs { events, batch_rows },
            )
            .await
        }
        Command::BenchForecast {
            series: Some(series),
            window,
            origins,
            ..
        } => bench::forecast_series::run(&series, window, origins),
        Command::BenchForecast { seeds, .. } => bench::forecast::run(&seeds),
        Command::BenchEmbedded {
            events,
            batch,
            clients,
            latency_secs,
            dir,
        } => {
            let config = load_config(cli.config)?;
            bench::embedded::run(
                &config,
                bench::embedded::BenchEmbeddedArgs {
                    events,
                    batch,
                    clients,
                    latency_secs,
                    dir,
                },
            )
            .await
        }
        Command::BenchFreshness {
            events,
            batch,
            clients,
            secs,
            fractions,
            dir,
        } => {
            let config = load_config(cli.config)?;
            bench::freshness::run(
                &config,
                bench::freshness::BenchFreshnessArgs {
                    events,
                    batch,
                    clients,
                    secs,
                    fractions,
                    dir,
                },
            )
            .await
        }
        Command::BenchKafka {
            events,
            latency_rate,
            latency_duration,
            checkpoint_interval,
            dir,
        } => {
            let config_path = cli
                .config
                .unwrap_or_else(|| PathBuf::from("config/cluster.toml"));
            bench::kafka::run(bench::kafka::BenchKafkaArgs {
                config_path,
                events,
                latency_rate,
                latency_duration,
                checkpoint_interval,
                dir,
            })
            .await
        }
    }
}
