//! `somaflow migrate`: applies the ClickHouse migrations of
//! `sql/clickhouse/` to `[clickhouse]` and says what it did (a node with
//! `clickhouse.migrate = true` does the same at startup).

use anyhow::Context;
use somaflow_sinks::clickhouse::{ClickHouseConfig, MigrationReport, migrate};

/// `somaflow migrate`: applies the migrations and says what it did.
pub async fn run(config: &ClickHouseConfig) -> anyhow::Result<()> {
    config.validate().context("invalid configuration")?;
    let report = migrate(config).await.with_context(|| {
        format!(
            "migrating ClickHouse at {} (start a local server with `scripts/services.sh start clickhouse`)",
            config.url
        )
    })?;
    print_report(config, &report);
    Ok(())
}

fn print_report(config: &ClickHouseConfig, report: &MigrationReport) {
    let variant = if report.server.is_current() {
        "current"
    } else {
        "18.16"
    };
    println!(
        "ClickHouse {}.{} at {} (DDL variant: {variant}), database {}",
        report.server.major, report.server.minor, config.url, config.database
    );
    for name in &report.applied {
        println!("  applied  {name}");
    }
    println!(
        "  {} applied now, {} already applied",
        report.applied.len(),
        report.already
    );
}
