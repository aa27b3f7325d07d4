//! The platform operators as node types (`enrich`, `policy`, `accounting`,
//! `window`, `budget`, `dispatch`), built from config. One pipeline's nodes
//! share one Redis link and one budget view, made when the first node
//! needs them. Their outside parts (metadata, the budget ledger, the agent
//! pools) come from [`PlatformIo`] (`super::io`), so an embedded node and
//! `somaflow bench-chain` build the very same operators.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use somaflow_operators::accounting::{PriceTable, TokenAccounting};
use somaflow_operators::budget::{Budget, BudgetView, LocalLedger, RedisLedger, SpendLedger};
use somaflow_operators::dispatch::{AgentQueue, Dispatch, KafkaAgentQueue};
use somaflow_operators::enrich::Enrich;
use somaflow_operators::policy::{Policy, PolicyRules};
use somaflow_operators::redis::RedisLink;
use somaflow_operators::window::UsageWindow;
use somaflow_pipeline::runtime::{Node, NodeError, Registry};
use somaflow_sources::kafka::idempotent_producer;

use super::io::{EnrichSource, PlatformIo};
use crate::config::Config;

/// What the platform nodes of one pipeline share.
struct Shared {
    io: PlatformIo,
    redis: OnceLock<Option<RedisLink>>,
    budgets: OnceLock<BudgetView>,
}

impl Shared {
    fn redis(&self, config: &Config) -> Result<Option<RedisLink>, NodeError> {
        if let Some(link) = self.redis.get() {
            return Ok(link.clone());
        }
        let link = match &config.redis.url {
            Some(url) => Some(RedisLink::new(
                url,
                Duration::from_millis(config.redis.timeout_ms),
            )?),
            None => None,
        };
        Ok(self.redis.get_or_init(|| link).clone())
    }

    fn budgets(&self, node: &str, config: &Config) -> Result<BudgetView, NodeError> {
        if let Some(view) = self.budgets.get() {
            return Ok(view.clone());
        }
        if let Some(view) = &self.io.budgets {
            return Ok(self.budgets.get_or_init(|| view.clone()).clone());
        }
        let ledger: Arc<dyn SpendLedger> = match self.redis(config)? {
            Some(link) => Arc::new(RedisLedger::new(node, link)),
            None => {
                tracing::warn!(
                    "no [redis] url: budgets are counted in this process only, not shared across workers"
                );
                Arc::new(LocalLedger::default())
            }
        };
        let view = BudgetView::new(
            ledger,
            config.budget.soft_percent,
            Duration::from_millis(config.budget.status_refresh_ms),
        );
        Ok(self.budgets.get_or_init(|| view).clone())
    }

    fn enrich(&self, node: &str, config: &Config) -> Result<Enrich, NodeError> {
        Ok(match &self.io.enrich {
            EnrichSource::Preloaded { tenants, capsules } => {
                Enrich::preloaded(node, tenants, capsules)
            }
            EnrichSource::Catalog(catalog) => Enrich::from_catalog(node, catalog.clone()),
            EnrichSource::Configured => Enrich::new(
                node,
                self.redis(config)?,
                Duration::from_secs(config.enrich.ttl_secs),
            ),
        })
    }

    fn agent_queue(&self, config: &Config) -> Result<Arc<dyn AgentQueue>, NodeError> {
        Ok(match &self.io.agent_queue {
            Some(queue) => queue.clone(),
            None => Arc::new(KafkaAgentQueue::new(
                idempotent_producer(&config.kafka)?,
                &config.dispatch.topic_prefix,
            )),
        })
    }
}

/// Adds the platform node types to `r`.
pub fn register(r: &mut Registry<Config>, io: PlatformIo) {
    let shared = Arc::new(Shared {
        io,
        redis: OnceLock::new(),
        budgets: OnceLock::new(),
    });
    let s = shared.clone();
    r.register("enrich", move |spec, config| {
        Ok(Node::Operator(Box::new(s.enrich(&spec.id, config)?)))
    });
    r.register("policy", |spec, config| {
        let rules = PolicyRules::load(&config.policy.rules)?;
        Ok(Node::Operator(Box::new(Policy::new(&spec.id, rules))))
    });
    r.register("accounting", |spec, config| {
        let prices = PriceTable::load(&config.accounting.prices)?;
        Ok(Node::Operator(Box::new(TokenAccounting::new(
            &spec.id, prices,
        ))))
    });
    r.register("window", |spec, config| {
        Ok(Node::Operator(Box::new(UsageWindow::new(
            &spec.id,
            config.window.size_secs,
        ))))
    });
    let s = shared.clone();
    r.register("budget", move |spec, config| {
        Ok(Node::Operator(Box::new(Budget::new(
            &spec.id,
            s.budgets(&spec.id, config)?,
        ))))
    });
    r.register("dispatch", move |spec, config| {
        Ok(Node::Operator(Box::new(
            Dispatch::new(
                &spec.id,
                shared.agent_queue(config)?,
                shared.budgets(&spec.id, config)?,
                config.dispatch.per_tenant_per_sec,
                config.dispatch.burst,
            )
            .with_pools(&config.dispatch.pools),
        )))
    });
}
