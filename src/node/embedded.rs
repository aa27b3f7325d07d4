//! An embedded somaflow node: durable log, pipeline and HTTP server in one
//! process, with the parts both use (metadata, budget ledger, agent pools'
//! queues, see `super::io`), started and stopped in the right order.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use somaflow_api::HttpServer;
use somaflow_api::ingest::Ingest;
use somaflow_pipeline::log::DurableLog;
use somaflow_pipeline::runtime::{PipelineStatus, RunningPipeline, start};
use tokio::task::JoinHandle;
use tracing::info;

use super::http::start_http;
use super::io::SharedParts;
use super::registry::registry;
use crate::config::Config;

pub struct EmbeddedNode {
    pub addr: SocketAddr,
    pub log: DurableLog,
    pub status: Arc<PipelineStatus>,
    pub parts: Arc<SharedParts>,
    pipeline: RunningPipeline,
    server: HttpServer,
    /// Idle ticks of the log (`pipeline.idle_timeout_ms`).
    ticks: Option<JoinHandle<()>>,
}

impl EmbeddedNode {
    pub async fn start(config: &Config) -> anyhow::Result<EmbeddedNode> {
        let log_dir = config.log_dir();
        let log = DurableLog::open(&log_dir, config.log.segment_bytes)
            .with_context(|| format!("opening the embedded log in {}", log_dir.display()))?;
        super::clickhouse::prepare(config).await?;
        let parts = Arc::new(SharedParts::embedded(config)?);
        let pipeline = start(config, &registry(log.clone(), parts.platform_io()))
            .await
            .context("starting the pipeline")?;
        let server = start_http(
            config,
            Ingest::Log(log.clone()),
            pipeline.status.clone(),
            Some(&parts),
        )
        .await?;
        let ticks = (config.pipeline.idle_timeout_ms > 0)
            .then(|| log.spawn_idle_ticks(Duration::from_millis(config.pipeline.idle_timeout_ms)));
        let addr = server.addr;
        info!(%addr, console = %format_args!("http://{addr}/"), "somaflow is listening");
        Ok(EmbeddedNode {
            addr,
            log,
            status: pipeline.status.clone(),
            parts,
            pipeline,
            server,
            ticks,
        })
    }

    /// Stops taking requests (in-flight ones finish and are durable), then
    /// stops the pipeline with a final checkpoint so every accepted event is
    /// in the lake.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        self.server
            .stop()
            .await
            .context("stopping the HTTP server")?;
        if let Some(ticks) = &self.ticks {
            ticks.abort();
        }
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
                self.server.abort();
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
