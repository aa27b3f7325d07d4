//! Whether the ClickHouse server answers: `SELECT 1` every second; down
//! after two failures in a row, up again at the first answer. `/ready`
//! reports it when a `clickhouse` sink is configured.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use somaflow_pipeline::metrics::metrics;
use tracing::{info, warn};

use super::client::connect;
use super::config::ClickHouseConfig;

const PROBE_EVERY: Duration = Duration::from_secs(1);
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
const FAILURES_BEFORE_DOWN: u32 = 2;

#[derive(Clone)]
pub struct ClickHouseHealth {
    up: Arc<AtomicBool>,
    url: String,
}

impl ClickHouseHealth {
    /// Starts probing in the background (stops when the last handle is dropped).
    pub fn spawn(config: &ClickHouseConfig) -> ClickHouseHealth {
        let health = ClickHouseHealth {
            up: Arc::new(AtomicBool::new(true)),
            url: config.url.clone(),
        };
        let up = Arc::downgrade(&health.up);
        let client = connect(config, Some("system"));
        let url = config.url.clone();
        tokio::spawn(async move {
            let mut failures = 0;
            let mut ticks = tokio::time::interval(PROBE_EVERY);
            // A slow answer (up to the timeout) must not be followed by a burst.
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticks.tick().await;
                let Some(up) = up.upgrade() else { return };
                let answered = matches!(
                    tokio::time::timeout(PROBE_TIMEOUT, client.query("SELECT 1").fetch_one::<u8>())
                        .await,
                    Ok(Ok(_))
                );
                failures = if answered { 0 } else { failures + 1 };
                let now_up = failures < FAILURES_BEFORE_DOWN;
                if up.swap(now_up, Ordering::Relaxed) != now_up {
                    if now_up {
                        info!(%url, "ClickHouse answers again");
                    } else {
                        warn!(%url, "ClickHouse does not answer");
                    }
                }
                metrics().clickhouse_up.set(i64::from(now_up));
            }
        });
        health
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    pub fn url(&self) -> &str {
        &self.url
    }
}
