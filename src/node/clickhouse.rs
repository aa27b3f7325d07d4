//! The startup step of a node with a `clickhouse` sink: wait for the
//! server (a while, with progress), apply migrations.

use std::time::{Duration, Instant};

use anyhow::Context;
use somaflow_sinks::clickhouse::{ClickHouseError, migrate};
use tracing::{info, warn};

use crate::config::Config;

/// How long startup waits for ClickHouse to answer before it gives up.
const STARTUP_WAIT: Duration = Duration::from_secs(60);

/// Before a pipeline with a `clickhouse` sink starts: migrate when
/// `clickhouse.migrate` is set, waiting up to a minute for the server.
pub async fn prepare(config: &Config) -> anyhow::Result<()> {
    if !config.writes_clickhouse() || !config.clickhouse.migrate {
        return Ok(());
    }
    let ch = &config.clickhouse;
    let started = Instant::now();
    loop {
        match migrate(ch).await {
            Ok(report) => {
                info!(url = %ch.url, database = %ch.database, applied = ?report.applied,
                    "ClickHouse schema is up to date");
                return Ok(());
            }
            Err(e @ ClickHouseError::Client { .. }) if started.elapsed() < STARTUP_WAIT => {
                warn!(url = %ch.url, error = %e, "waiting for ClickHouse");
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!(
                        "preparing ClickHouse at {} (is it running? `scripts/services.sh start clickhouse`; or set clickhouse.migrate = false)",
                        ch.url
                    )
                });
            }
        }
    }
}
