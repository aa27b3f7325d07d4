//! An embedded somaflow node: durable log, pipeline and HTTP server in one
//! process, started and stopped in the right order.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use somaflow_pipeline::Config;
use somaflow_pipeline::runtime::{PipelineStatus, RunningPipeline, start};
use somaflow_sources::log::DurableLog;
use somaflow_sql::LakeSql;
use tokio::sync::oneshot;
use tracing::info;

use super::registry::registry;
use crate::server::{bind, router};
use crate::state::AppState;

pub struct EmbeddedNode {
    pub addr: SocketAddr,
    pub log: DurableLog,
    pub status: Arc<PipelineStatus>,
    pipeline: RunningPipeline,
    server_stop: oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl EmbeddedNode {
    pub async fn start(config: &Config) -> anyhow::Result<EmbeddedNode> {
        let log_dir = config.log_dir();
        let log = DurableLog::open(&log_dir, config.log.segment_bytes)
            .with_context(|| format!("opening the embedded log in {}", log_dir.display()))?;
        let pipeline = start(config, &registry(log.clone()))
            .await
            .context("starting the pipeline")?;
        let sql = LakeSql::open(&config.lake_url())
            .await
            .with_context(|| format!("opening the lake at {}", config.lake_url()))?;
        let state = AppState {
            log: log.clone(),
            sql: Arc::new(sql),
            pipeline: pipeline.status.clone(),
            time_bounds: config.time_bounds(),
            body_limit: config.server.body_limit_bytes,
        };
        let (listener, addr) = bind(&config.server.listen).await?;
        let (server_stop, stopped) = oneshot::channel::<()>();
        let app = router(state);
        let server = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        info!(%addr, "somaflow is listening");
        Ok(EmbeddedNode {
            addr,
            log,
            status: pipeline.status.clone(),
            pipeline,
            server_stop,
            server,
        })
    }

    /// Stops taking requests (in-flight ones finish and are durable), then
    /// stops the pipeline with a final checkpoint so every accepted event is
    /// in the lake.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let _ = self.server_stop.send(());
        self.server
            .await
            .context("HTTP server task")?
            .context("HTTP server")?;
        self.pipeline
            .stop()
            .await
            .context("stopping the pipeline")?;
        info!("stopped cleanly");
        Ok(())
    }

    /// Waits for Ctrl-C / SIGTERM, or for the pipeline to fail.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        let status = self.status.clone();
        let failed = async {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                if let Some(reason) = status.failure() {
                    return reason;
                }
            }
        };
        tokio::select! {
            signal = shutdown_signal() => {
                signal?;
                info!("signal received: finishing in-flight work");
                self.shutdown().await
            }
            reason = failed => {
                let _ = self.server_stop.send(());
                anyhow::bail!("the pipeline failed: {reason}; restart somaflow to resume from the last checkpoint")
            }
        }
    }
}

/// Ctrl-C or SIGTERM.
pub async fn shutdown_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .context("installing the SIGTERM handler")?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r.context("waiting for Ctrl-C")?,
            _ = term.recv() => {}
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")
    }
}
