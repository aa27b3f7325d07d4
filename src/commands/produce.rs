//! `somaflow produce`: generated traffic to a somaflow server or to Kafka.

use std::time::Duration;

use anyhow::Context;
use somaflow_sources::kafka::KafkaConfig;

use crate::generator::{
    Generator, GeneratorConfig, ProduceOptions, ProduceReport, produce_http, produce_kafka,
};

/// The flags of `somaflow produce`.
#[derive(Debug, clap::Args)]
pub struct ProduceArgs {
    /// Base URL of the server, or `kafka` for the topics of the `[kafka]` section.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub to: String,
    /// Events per second (default: as fast as accepted).
    #[arg(long)]
    pub rate: Option<f64>,
    #[arg(long)]
    pub count: Option<u64>,
    /// How long to produce: 30s, 5m, 2h, 1500ms.
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long, default_value_t = 300)]
    pub tenants: usize,
    /// Percent of live events dated 30 s to 10 min in the past (late).
    #[arg(long, default_value_t = 1.0)]
    pub late_percent: f64,
    /// Date events over the last N days with daily/weekly seasonality.
    #[arg(long)]
    pub history_days: Option<u32>,
    /// Bearer token for a server with auth on (mint one with `somaflow token --scopes events:write`).
    #[arg(long, env = "SOMAFLOW_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// `30s`, `5m`, `2h`, `1500ms` or plain seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit() && c != '.')
            .unwrap_or(text.len()),
    );
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 30s or 5m"))?;
    let secs = match unit {
        "" | "s" => value,
        "ms" => value / 1000.0,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        _ => {
            return Err(format!(
                "{text:?}: unknown unit {unit:?}; use ms, s, m or h"
            ));
        }
    };
    Ok(Duration::from_secs_f64(secs))
}

/// Posts to a server (`--to http://…`) or produces to the kind topics of
/// `kafka` (`--to kafka`).
pub async fn run(args: ProduceArgs, kafka: &KafkaConfig) -> anyhow::Result<ProduceReport> {
    let to_kafka = args.to == "kafka";
    if !to_kafka && !args.to.starts_with("http://") && !args.to.starts_with("https://") {
        anyhow::bail!(
            "--to {:?}: give `kafka` or the base URL of a somaflow server, e.g. http://127.0.0.1:8080",
            args.to
        );
    }
    if args.count.is_none() && args.duration.is_none() {
        anyhow::bail!("give --count N or --duration 30s so the producer knows when to stop");
    }
    let mut generator = Generator::new(GeneratorConfig {
        seed: args.seed,
        tenants: args.tenants,
        late_ratio: (args.late_percent / 100.0).clamp(0.0, 1.0),
        ..GeneratorConfig::default()
    });
    let opts = ProduceOptions {
        batch: args.batch.max(1),
        rate: args.rate,
        count: args.count,
        duration: args.duration,
        concurrency: args.concurrency.max(1),
        history_days: args.history_days,
        token: args.token.clone(),
    };
    let mut last_print = std::time::Instant::now();
    let show = |r: &ProduceReport| {
        if last_print.elapsed() >= Duration::from_secs(1) {
            last_print = std::time::Instant::now();
            eprintln!(
                "produced {} events ({} accepted, {} rejected) in {:.1}s: {:.0} events/s",
                r.stats.emitted,
                r.accepted,
                r.rejected,
                r.elapsed_secs,
                r.stats.emitted as f64 / r.elapsed_secs.max(0.001)
            );
        }
    };
    let report = if to_kafka {
        produce_kafka(&mut generator, kafka, &opts, show)
            .await
            .with_context(|| format!("producing to Kafka at {}", kafka.brokers))?
    } else {
        produce_http(&mut generator, &args.to, &opts, show)
            .await
            .with_context(|| format!("producing to {}", args.to))?
    };
    Ok(report)
}

/// [`run`], then the final report: JSON on stdout (`--json`), else one line
/// on stderr.
pub async fn run_and_report(
    args: ProduceArgs,
    kafka: &KafkaConfig,
    json: bool,
) -> anyhow::Result<()> {
    let report = run(args, kafka).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        eprintln!(
            "done: {} records ({} valid, {} duplicates, {} malformed); {} accepted, {} rejected in {:.1}s",
            report.stats.emitted,
            report.stats.valid,
            report.stats.duplicates,
            report.stats.malformed,
            report.accepted,
            report.rejected,
            report.elapsed_secs
        );
    }
    Ok(())
}
