//! The `somaflow bench*` commands: measurements on this machine, apart from
//! the server code and built from the same node types
//! (`crate::node::registry`). Figures and how to reproduce them:
//! docs/benchmarks.md.
//!
//! * [`pipeline`]: `bench`: log → decode → dedup → lake, and HTTP ingest.
//! * [`embedded`]: `bench-embedded`: the embedded node from HTTP to
//!   committed lake rows, the configured graph beside the built-in one.
//! * [`freshness`]: `bench-freshness`: from an event's 202 until SQL and
//!   usage answers include it, at fractions of the maximum rate.
//! * [`chain`]: `bench-chain`: the platform operator chain on one core.
//! * [`clickhouse`]: `bench-clickhouse`: the ClickHouse sink's insert rate.
//! * [`kafka`]: `bench-kafka`: Kafka → lake throughput and latency, beside
//!   a plain consumer ([`plain_consumer`]).
//! * [`forecast`]: `bench-forecast`: forecast error and anomaly precision
//!   and recall on generated seasonal traffic.

pub mod chain;
pub mod clickhouse;
pub mod embedded;
pub mod forecast;
pub mod forecast_series;
pub mod freshness;
pub mod kafka;
pub mod pipeline;
mod plain_consumer;

/// Posts one NDJSON body to an ingest URL; anything but 202 is an error
/// (a benchmark that silently counted refusals would flatter itself).
pub(crate) async fn post_ndjson(
    client: &reqwest::Client,
    url: &str,
    body: bytes::Bytes,
) -> anyhow::Result<()> {
    let response = client
        .post(url)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(
        response.status().as_u16() == 202,
        "ingest answered {}",
        response.status()
    );
    Ok(())
}
