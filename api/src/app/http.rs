//! The HTTP server of a node (embedded or cluster worker): lake SQL, ingest,
//! health, budgets; started on `server.listen`, stopped gracefully.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use somaflow_pipeline::Config;
use somaflow_pipeline::runtime::PipelineStatus;
use somaflow_sinks::clickhouse::ClickHouseHealth;
use somaflow_sql::LakeSql;
use tokio::sync::oneshot;

use crate::ingest::Ingest;
use crate::routes::budgets::Budgets;
use crate::server::{bind, router};
use crate::state::AppState;

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
            pipeline,
            time_bounds: config.time_bounds(),
            body_limit: config.server.body_limit_bytes,
            clickhouse: config
                .writes_clickhouse()
                .then(|| ClickHouseHealth::spawn(&config.clickhouse)),
            budgets,
        };
        let (listener, addr) = bind(&config.server.listen).await?;
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
