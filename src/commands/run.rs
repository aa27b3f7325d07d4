//! `somaflow run`: a node until Ctrl-C or SIGTERM. The embedded node
//! (HTTP → durable log → pipeline → lake), or a cluster worker when the
//! config's graph reads Kafka (`config/cluster.toml`).

use crate::config::Config;
use crate::node::{EmbeddedNode, cluster};
use crate::telemetry;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let traces = telemetry::init_with(&config.otel, &config.cluster.worker_id(), "info")?;
    let result = if config.reads_kafka() {
        cluster::run(config).await
    } else {
        match EmbeddedNode::start(config).await {
            Ok(node) => node.run_until_signal().await,
            Err(e) => Err(e),
        }
    };
    traces.shutdown().await;
    result
}
