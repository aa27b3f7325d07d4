//! Where the platform operators' outside parts come from ([`PlatformIo`]),
//! and the parts of a node that its pipeline and its HTTP face share
//! ([`SharedParts`]): tenant metadata, the budget ledger, the agent pools'
//! queues. With `[redis] url` set, metadata and budgets are Redis's; without
//! it, the metadata files and a ledger in this process. A graph that reads
//! Kafka dispatches to Kafka topics; one that does not, to queues in the
//! embedded log. The operators do not know which.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use somaflow_operators::budget::{BudgetView, LocalLedger, RedisLedger, SpendLedger};
use somaflow_operators::dispatch::{AgentQueue, LogAgentQueue, step_key};
use somaflow_operators::enrich::{MetadataCatalog, MetadataStore};
use somaflow_operators::redis::RedisLink;
use somaflow_pipeline::log::Queues;
use somaflow_sinks::alerts::AlertsHub;
use tokio::task::JoinHandle;

use crate::config::Config;

/// `(id, hash fields)` of tenants or capsules given in process.
pub type GivenMetadata = Vec<(String, HashMap<String, String>)>;

/// Where enrich reads tenant and capsule metadata.
pub enum EnrichSource {
    /// Redis when `[redis]` has a url, else nothing (null metadata).
    Configured,
    /// The metadata files, read on every batch.
    Catalog(Arc<MetadataCatalog>),
    /// Given once, no I/O (`somaflow bench-chain`).
    Preloaded {
        tenants: GivenMetadata,
        capsules: GivenMetadata,
    },
}

/// The platform operators' outside parts; what is `None` is made from the
/// config when the first node needs it (Redis, Kafka).
pub struct PlatformIo {
    pub enrich: EnrichSource,
    /// The budget ledger's view, shared with whoever else reads it.
    pub budgets: Option<BudgetView>,
    /// Where dispatch sends steps; `None`: the pools' Kafka topics.
    pub agent_queue: Option<Arc<dyn AgentQueue>>,
    /// Where an `alerts` node stages alerts; `None`: the node delivers none.
    pub alerts: Option<Arc<AlertsHub>>,
}

impl PlatformIo {
    /// Everything from the config: Redis and Kafka as configured.
    pub fn configured() -> Self {
        PlatformIo {
            enrich: EnrichSource::Configured,
            budgets: None,
            agent_queue: None,
            alerts: None,
        }
    }
}

/// What a node's pipeline and its HTTP face share.
pub struct SharedParts {
    pub metadata: MetadataStore,
    pub budgets: BudgetView,
    /// The agent pools' queues, on a node without a broker that dispatches.
    pub queues: Option<Arc<Queues>>,
    /// The alerts an `alerts` node stages and the delivery task sends.
    pub alerts: Option<Arc<AlertsHub>>,
    delivery: Option<JoinHandle<()>>,
    /// Re-reads the metadata files when they change.
    watch: Option<JoinHandle<()>>,
}

impl SharedParts {
    /// The parts of an embedded node.
    pub fn embedded(config: &Config) -> anyhow::Result<SharedParts> {
        let redis = match &config.redis.url {
            Some(url) => Some(
                RedisLink::new(url, Duration::from_millis(config.redis.timeout_ms))
                    .context("redis.url")?,
            ),
            None => None,
        };
        let (metadata, watch) = match &redis {
            Some(link) => (MetadataStore::Redis(link.clone()), None),
            None => {
                let (tenants, capsules) = (&config.enrich.tenants, &config.enrich.capsules);
                let catalog = MetadataCatalog::open(tenants, capsules).with_context(|| {
                    format!(
                        "loading tenant metadata (enrich.tenants = {}, enrich.capsules = {})",
                        tenants.display(),
                        capsules.display()
                    )
                })?;
                let watch = catalog.spawn_watch(Duration::from_secs(1));
                (MetadataStore::Files(catalog), Some(watch))
            }
        };
        let ledger: Arc<dyn SpendLedger> = match &redis {
            Some(link) => Arc::new(RedisLedger::new("budget", link.clone())),
            None => Arc::new(LocalLedger::default()),
        };
        let budgets = BudgetView::new(
            ledger,
            config.budget.soft_percent,
            Duration::from_millis(config.budget.status_refresh_ms),
        );
        let dispatches = config.nodes().iter().any(|n| n.kind == "dispatch");
        let queues = if dispatches && !config.reads_kafka() {
            let dir = config.data_dir.join("queues");
            let queues = Queues::open(
                &dir,
                &config.dispatch.pools,
                config.log.segment_bytes,
                Duration::from_secs(config.dispatch.queue_retention_secs),
                step_key,
            )
            .with_context(|| format!("opening the agent pools' queues in {}", dir.display()))?;
            Some(Arc::new(queues))
        } else {
            None
        };
        let (alerts, delivery) = if config.nodes().iter().any(|n| n.kind == "alerts") {
            let hub = AlertsHub::new(&config.alerts).context("alerts")?;
            let delivery = hub.spawn_delivery();
            (Some(hub), Some(delivery))
        } else {
            (None, None)
        };
        Ok(SharedParts {
            metadata,
            budgets,
            queues,
            alerts,
            delivery,
            watch,
        })
    }

    /// The operators' parts: these, shared.
    pub fn platform_io(&self) -> PlatformIo {
        PlatformIo {
            enrich: match &self.metadata {
                MetadataStore::Files(catalog) => EnrichSource::Catalog(catalog.clone()),
                MetadataStore::Redis(_) => EnrichSource::Configured,
            },
            budgets: Some(self.budgets.clone()),
            agent_queue: self
                .queues
                .as_ref()
                .map(|q| Arc::new(LogAgentQueue::new(q.clone())) as Arc<dyn AgentQueue>),
            alerts: self.alerts.clone(),
        }
    }
}

impl Drop for SharedParts {
    fn drop(&mut self) {
        if let Some(watch) = self.watch.take() {
            watch.abort();
        }
        if let Some(delivery) = self.delivery.take() {
            delivery.abort();
        }
    }
}
