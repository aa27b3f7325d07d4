//! The HTTP face of a node (embedded or cluster worker), put together from
//! the config: the lake for SQL, the stores the read endpoints use, budget
//! reads, prices, auth, and how events are ingested; then served by
//! `somaflow_api`'s server on `server.listen`.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use somaflow_api::access::Access;
use somaflow_api::ingest::Ingest;
use somaflow_api::{AppState, HttpServer};
use somaflow_operators::accounting::PriceTable;
use somaflow_operators::enrich::MetadataStore;
use somaflow_operators::redis::RedisLink;
use somaflow_pipeline::runtime::PipelineStatus;
use somaflow_sinks::clickhouse::ClickHouseHealth;
use somaflow_sql::LakeSql;
use somaflow_sql::budgets::Budgets;
use somaflow_sql::store::Stores;
use somaflow_sql::store::cache::AnswerCache;

use super::io::SharedParts;
use crate::config::Config;

/// Starts serving the API of a node whose events go to `ingest` and whose
/// pipeline reports to `pipeline`. `parts`: what the node's pipeline
/// shares with it (an embedded node); without them (a cluster worker) the
/// API reaches metadata and budgets through Redis, when configured.
pub async fn start_http(
    config: &Config,
    ingest: Ingest,
    pipeline: Arc<PipelineStatus>,
    parts: Option<&SharedParts>,
) -> anyhow::Result<HttpServer> {
    let lake_url = config.lake_url();
    let sql = Arc::new(
        LakeSql::open(&lake_url)
            .await
            .with_context(|| format!("opening the lake at {lake_url}"))?,
    );
    let writes_clickhouse = config.writes_clickhouse();
    let (budgets, metadata) = match parts {
        Some(p) => (
            Some(Budgets::new(p.metadata.clone(), p.budgets.clone())),
            Some(p.metadata.clone()),
        ),
        None => {
            let budgets =
                Budgets::connect(&config.redis, &config.budget).context("the [redis] url")?;
            let metadata = match &config.redis.url {
                Some(url) => Some(MetadataStore::Redis(
                    RedisLink::new(url, Duration::from_millis(config.redis.timeout_ms))
                        .context("redis.url")?,
                )),
                None => None,
            };
            (budgets, metadata)
        }
    };
    let stores = Stores::new(
        sql.clone(),
        config.sql.limits(),
        writes_clickhouse.then(|| somaflow_sinks::clickhouse::connect(&config.clickhouse, None)),
        Arc::new(AnswerCache::new(config.sql.cache_rows)),
        config.sql.rollups,
    );
    let state = AppState {
        ingest,
        sql,
        sql_limits: config.sql.limits(),
        stores,
        pipeline,
        time_bounds: config.time_bounds(),
        body_limit: config.server.body_limit_bytes,
        clickhouse: writes_clickhouse.then(|| ClickHouseHealth::spawn(&config.clickhouse)),
        budgets,
        metadata,
        queues: parts.and_then(|p| p.queues.clone()),
        alerts: parts.and_then(|p| p.alerts.clone()),
        prices: load_prices(config)?,
        access: Access::from_config(&config.auth),
    };
    HttpServer::start(state, &config.server, config.auth.enabled())
        .await
        .context("starting the HTTP server")
}

/// The price table for ledgers: `None` when the file does not exist (a
/// node without accounting), an error when it exists but is wrong.
fn load_prices(config: &Config) -> anyhow::Result<Option<Arc<PriceTable>>> {
    let path = &config.accounting.prices;
    if !path.exists() {
        tracing::info!(path = %path.display(), "no price file: ledger endpoints answer 501");
        return Ok(None);
    }
    let table = PriceTable::load(path)
        .with_context(|| format!("accounting.prices ({})", path.display()))?;
    Ok(Some(Arc::new(table)))
}
