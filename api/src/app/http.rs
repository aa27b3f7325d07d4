//! The HTTP server of a node (embedded or cluster worker): lake SQL, ingest,
//! health, budgets; started on `server.listen`, stopped gracefully.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use somaflow_pipeline::Config;
use somaflow_pipeline::runtime::PipelineStatus;
use somaflow_sinks::clickhouse::ClickHouseHealth;
use somaflow_sql::{LakeSql, QueryLimits};
use tokio::sync::oneshot;

use crate::auth::Access;
use crate::ingest::Ingest;
use crate::routes::budgets::Budgets;
use crate::server::{bind, router};
use crate::state::AppState;
use crate::store::cache::AnswerCache;

pub struct HttpServer {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    pub async fn start(
        config: &Config,
        ingest: Ingest,
        pipeline: Arc<PipelineStatus>,
    ) -> anyhow::Result<HttpServer> {
        let sql = LakeSql::open(&config.lake_url())
            .await
            .with_context(|| format!("opening the lake at {}", config.lake_url()))?;
        let budgets = Budgets::from_config(config).context("the [redis] url")?;
        let state = AppState {
            ingest,
            sql: Arc::new(sql),
            sql_limits: QueryLimits {
                timeout: std::time::Duration::from_millis(config.sql.timeout_ms),
                max_rows: config.sql.max_rows,
            },
            pipeline,
            time_bounds: config.time_bounds(),
            body_limit: config.server.body_limit_bytes,
            clickhouse: config
                .writes_clickhouse()
                .then(|| ClickHouseHealth::spawn(&config.clickhouse)),
            budgets,
            usage_clickhouse: config
                .writes_clickhouse()
                .then(|| somaflow_sinks::clickhouse::connect(&config.clickhouse, None)),
            prices: load_prices(config)?,
            access: Access::from_config(&config.auth),
            answers: Arc::new(AnswerCache::new(config.sql.cache_rows)),
        };
        let listen = listen_address(config);
        let (listener, addr) = bind(&listen).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(HttpServer { addr, stop, task })
    }

    /// Stops taking requests; in-flight ones finish first.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.task
            .await
            .context("HTTP server task")?
            .context("HTTP server")
    }

    /// Stops taking requests without waiting (the process is failing).
    pub fn abort(self) {
        let _ = self.stop.send(());
    }
}

/// The price table for ledgers: `None` when the file does not exist (a
/// node without accounting), an error when it exists but is wrong.
fn load_prices(
    config: &Config,
) -> anyhow::Result<Option<Arc<somaflow_operators::accounting::PriceTable>>> {
    let path = &config.accounting.prices;
    if !path.exists() {
        tracing::info!(path = %path.display(), "no price file: ledger endpoints answer 501");
        return Ok(None);
    }
    let table = somaflow_operators::accounting::PriceTable::load(path)
        .with_context(|| format!("accounting.prices ({})", path.display()))?;
    Ok(Some(Arc::new(table)))
}

/// `server.listen`, or, with auth off, the same port on localhost: an
/// unauthenticated API must not be reachable from other hosts.
fn listen_address(config: &Config) -> String {
    if config.auth.enabled() {
        return config.server.listen.clone();
    }
    let requested: Option<SocketAddr> = config.server.listen.parse().ok();
    let local = match requested {
        Some(addr) if addr.ip().is_loopback() => addr,
        Some(addr) => {
            let local = SocketAddr::from(([127, 0, 0, 1], addr.port()));
            tracing::warn!(
                requested = %addr, listening = %local,
                "auth is off, so the API listens on localhost only, not on server.listen"
            );
            local
        }
        None => return config.server.listen.clone(),
    };
    tracing::warn!(
        "AUTH IS OFF: every request to http://{local} is an anonymous admin. \
         Set `[auth] secret` (or SOMAFLOW_AUTH__SECRET, at least 32 bytes) before \
         serving anyone but yourself; `somaflow token` then mints tokens"
    );
    eprintln!(
        "warning: auth is off; the API answers anyone on {local} as admin. Set [auth] secret to turn it on."
    );
    local.to_string()
}
