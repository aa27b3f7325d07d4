//! A cluster worker: HTTP ingest into Kafka, and a pipeline instance per
//! partition assignment, restored from the checkpoint store all workers share.
//!
//! The supervisor answers the consumer thread's rebalances: on revoke it
//! stops the current instance with a final checkpoint (so the partitions'
//! positions and state are durable before another worker takes them), on
//! assign it builds the restore plan of the new partitions from every
//! worker's newest manifest, answers their start offsets, and starts a new
//! instance. A pipeline failure ends the process (restart resumes from the
//! checkpoints); SIGTERM stops the instance cleanly and leaves the group.
//!
//! Every worker also renews a lease (with its partitions) in the shared
//! store. When some partition has had no live reader for a session timeout
//! (tansu's coordinator keeps a dead member's assignment, see
//! docs/decisions/0034-what-tansu-taught-us.md), the first live worker leaves and rejoins the group,
//! which makes the coordinator assign over the live workers again.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use rdkafka::consumer::BaseConsumer;
use somaflow_api::ingest::{Ingest, KafkaIngest};
use somaflow_pipeline::checkpoint::{CheckpointStore, MemberLease, RestorePlan, shard};
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::runtime::{PipelineStatus, RunningPipeline, start_with};
use somaflow_sources::kafka::ClusterMode;
use somaflow_sources::kafka::{
    BrokerHealth, FeedConsumer, FeedEvent, Generation, KafkaFeed, SESSION_TIMEOUT_MS,
    create_client, missing_topics, partitions_of,
};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::embedded::shutdown_signal;
use super::http::start_http;
use super::registry::cluster_registry;
use crate::config::Config;

/// Batches the consumer thread may queue ahead of the pipeline.
const INBOX_BATCHES: usize = 8;

/// A lease not renewed for this long belongs to a dead worker.
const LEASE_TTL_MS: i64 = 10_000;
/// How often leases are renewed and coverage is checked.
const WATCH_EVERY: Duration = Duration::from_secs(2);
/// Longest final checkpoint at a revoke: well inside the default
/// `max.poll.interval.ms` (30 s), after which the group moves on without us.
const RELEASE_DEADLINE: Duration = Duration::from_secs(20);

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let kafka = &config.kafka;
    let missing = tokio::task::block_in_place(|| missing_topics(kafka))
        .context("checking the configured topics")?;
    if !missing.is_empty() {
        anyhow::bail!(
            "configured Kafka topics missing on {}: {}; create them with `somaflow topics create --config <this config>`",
            kafka.brokers,
            missing.join(", ")
        );
    }
    super::clickhouse::prepare(config).await?;
    let worker = config.cluster.worker_id();
    let store = CheckpointStore::open_worker(&config.checkpoint_store(), &worker)
        .context("opening the checkpoint store")?;
    let health = tokio::task::block_in_place(|| BrokerHealth::spawn(kafka))?;
    let topics: Vec<String> = EventKind::ALL.iter().map(|k| kafka.topic(*k)).collect();
    let all_shards: BTreeSet<String> = tokio::task::block_in_place(|| {
        let client: BaseConsumer = create_client(kafka)?;
        partitions_of(&client, kafka, &topics)
    })
    .context("reading the topics' partitions")?
    .into_iter()
    .map(|(t, p)| shard(&t, p))
    .collect();
    let start_feed = || {
        KafkaFeed::start(kafka, &config.cluster, &topics, config.pipeline.batch_rows)
            .context("starting the Kafka consumer")
    };
    let (mut feed, mut events) = start_feed()?;

    let status = Arc::new(PipelineStatus::default());
    let ingest = Ingest::Kafka(KafkaIngest::new(kafka, health)?);
    let server = start_http(config, ingest, status.clone(), None).await?;
    let addr = server.addr;
    info!(%addr, %worker, mode = ?config.cluster.mode, console = %format_args!("http://{addr}/"), "somaflow cluster worker is listening");

    let mut supervisor = Supervisor {
        config,
        store,
        consumer: feed.consumer(),
        status: status.clone(),
        pipeline: None,
        owned: BTreeSet::new(),
        uncovered_since: None,
    };
    let grace = session_timeout(config);
    let mut watch = tokio::time::interval(WATCH_EVERY);
    let signal = shutdown_signal();
    tokio::pin!(signal);
    let outcome = loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { break Ok(()) };
                if let Err(e) = supervisor.handle(event).await {
                    break Err(e);
                }
            }
            _ = watch.tick() => {
                if let Some(reason) = status.failure() {
                    break Err(anyhow::anyhow!("the pipeline failed: {reason}; restart the worker to resume from the last checkpoint"));
                }
                if !supervisor.watch(&all_shards, grace).await {
                    continue;
                }
                // Leave and rejoin: a new member makes the coordinator
                // compute a fresh assignment over the live workers.
                if let Err(e) = supervisor.stop().await {
                    break Err(e);
                }
                drop(events);
                tokio::task::spawn_blocking(move || feed.close())
                    .await
                    .context("closing the consumer")?;
                (feed, events) = start_feed()?;
                supervisor.consumer = feed.consumer();
            }
            signal = &mut signal => {
                signal?;
                info!("signal received: final checkpoint, then leaving the group");
                break supervisor.stop().await;
            }
        }
    };
    // Unanswered rebalance requests (and any later ones) must not block the
    // consumer thread while it leaves the group.
    drop(events);
    if outcome.is_err() {
        server.abort();
        return outcome;
    }
    server.stop().await.context("stopping the HTTP server")?;
    tokio::task::spawn_blocking(move || feed.close())
        .await
        .context("closing the consumer")?;
    info!("stopped cleanly");
    Ok(())
}

/// The group's session timeout: how long the coordinator may take to drop a
/// dead member, so the watchdog waits that long before acting itself.
fn session_timeout(config: &Config) -> Duration {
    let ms = config
        .kafka
        .client
        .get("session.timeout.ms")
        .map(String::as_str)
        .unwrap_or(SESSION_TIMEOUT_MS)
        .parse()
        .unwrap_or(30_000);
    Duration::from_millis(ms)
}

struct Supervisor<'a> {
    config: &'a Config,
    store: CheckpointStore,
    consumer: Arc<FeedConsumer>,
    status: Arc<PipelineStatus>,
    pipeline: Option<RunningPipeline>,
    /// Shards the current pipeline instance reads.
    owned: BTreeSet<String>,
    /// Since when some partition has had no live reader.
    uncovered_since: Option<Instant>,
}

impl Supervisor<'_> {
    async fn handle(&mut self, event: FeedEvent) -> anyhow::Result<()> {
        match event {
            FeedEvent::Revoke { lost, done } => {
                self.uncovered_since = None;
                let stopped = self.release(lost).await;
                let _ = done.send(());
                stopped
            }
            FeedEvent::Assign { shards, reply } => {
                self.uncovered_since = None;
                // A revoke always comes first, but be safe with a direct re-assign.
                self.stop().await?;
                let owned: BTreeSet<String> = shards.into_iter().collect();
                // Published in the lease at once: a long restore is not a dead reader.
                self.owned = owned.clone();
                let owns = |s: &str| owned.contains(s);
                let plan = RestorePlan::load(&self.store, Some(&owns))
                    .await
                    .context("reading the shared checkpoint store")?;
                let positions = plan.owned_positions();
                info!(
                    partitions = owned.len(),
                    restored = positions.len(),
                    peers = plan.peers.len(),
                    "starting a pipeline for the new assignment"
                );
                let (inbox_tx, inbox) = mpsc::channel(INBOX_BATCHES);
                let registry = cluster_registry(inbox, self.consumer.clone(), owned.clone());
                // The consumer seeks as soon as it has the answer; the
                // pipeline reads the inbox once started.
                if reply
                    .send(Generation {
                        positions,
                        inbox: inbox_tx,
                    })
                    .is_err()
                {
                    warn!("the consumer went away during an assignment");
                }
                let pipeline = start_with(
                    self.config,
                    &registry,
                    self.store.clone(),
                    plan,
                    self.status.clone(),
                )
                .await
                .context("starting the pipeline")?;
                self.pipeline = Some(pipeline);
                Ok(())
            }
        }
    }

    /// Gives the partitions back at a revoke. The final checkpoint must end
    /// before the group's rebalance timeout, or another worker may already
    /// read from the previous one: past [`RELEASE_DEADLINE`], or when the
    /// assignment is already lost, the instance stops without it.
    async fn release(&mut self, lost: bool) -> anyhow::Result<()> {
        self.owned.clear();
        let Some(p) = self.pipeline.take() else {
            return Ok(());
        };
        if lost {
            warn!("the assignment was lost before the revoke: stopping without a final checkpoint");
            p.abort();
            return Ok(());
        }
        let checkpointed = p
            .stop_within(RELEASE_DEADLINE)
            .await
            .context("stopping the pipeline at a rebalance")?;
        if !checkpointed {
            warn!(
                deadline_secs = RELEASE_DEADLINE.as_secs(),
                "the final checkpoint took too long: stopped without it; the partitions resume from the previous checkpoint"
            );
        }
        Ok(())
    }

    /// Final checkpoint of the current instance, if one runs.
    async fn stop(&mut self) -> anyhow::Result<()> {
        self.owned.clear();
        if let Some(p) = self.pipeline.take() {
            p.stop()
                .await
                .context("stopping the pipeline at a rebalance")?;
        }
        Ok(())
    }

    /// Renews this worker's lease and says whether it should rejoin the
    /// group: some partition has had no live reader for `grace`, and this
    /// is the first live worker by id (so only one rejoins at a time).
    async fn watch(&mut self, all: &BTreeSet<String>, grace: Duration) -> bool {
        let group = &self.config.cluster.group_id;
        let now = chrono::Utc::now().timestamp_millis();
        let me = self.store.worker().to_string();
        let lease = MemberLease {
            worker: me.clone(),
            renewed_at_ms: now,
            shards: self.owned.iter().cloned().collect(),
        };
        let leases = match self.store.renew_lease(group, &lease).await {
            Ok(()) => self.store.leases(group).await,
            Err(e) => Err(e),
        };
        let leases = match leases {
            Ok(l) => l,
            Err(e) => {
                warn!(error = %e, "renewing the worker lease failed");
                return false;
            }
        };
        if self.config.cluster.mode != ClusterMode::Group {
            return false;
        }
        let live: Vec<&MemberLease> = leases
            .iter()
            .filter(|l| now - l.renewed_at_ms <= LEASE_TTL_MS)
            .collect();
        let covered: BTreeSet<&str> = live
            .iter()
            .flat_map(|l| l.shards.iter().map(String::as_str))
            .collect();
        let uncovered = all.iter().filter(|s| !covered.contains(s.as_str())).count();
        if uncovered == 0 {
            self.uncovered_since = None;
            return false;
        }
        let since = *self.uncovered_since.get_or_insert_with(Instant::now);
        let first = live.iter().map(|l| l.worker.as_str()).min() == Some(me.as_str());
        if since.elapsed() < grace || !first {
            return false;
        }
        warn!(
            uncovered,
            for_secs = since.elapsed().as_secs(),
            "partitions without a live reader: leaving and rejoining the consumer group"
        );
        self.uncovered_since = None;
        true
    }
}
