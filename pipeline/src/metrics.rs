//! Prometheus metrics of the whole process, in one registry.
//!
//! One process runs one pipeline, so the registry is global (as a
//! `metrics` recorder would be); every stage records into it and
//! `GET /metrics` encodes it.

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeLabels {
    pub node: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NodeTableLabels {
    pub node: String,
    pub table: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeadLetterLabels {
    pub node: String,
    pub stage: String,
}

/// What became of a row (or lookup) at a platform operator.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabels {
    pub node: String,
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PolicyLabels {
    pub node: String,
    pub rule: String,
    pub decision: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct HttpLabels {
    pub route: String,
    pub method: String,
    pub status: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// The label set of a series without labels.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct NoLabels {}

/// A gauge exported only once set: a component this process does not run
/// (no Redis configured, say) shows no series, rather than a 0 that reads
/// as "down" on a dashboard or an alert.
#[derive(Clone, Debug, Default)]
pub struct LazyGauge(Family<NoLabels, Gauge>);

impl LazyGauge {
    pub fn set(&self, value: i64) {
        self.0.get_or_create(&NoLabels {}).set(value);
    }

    /// The value, 0 before the first `set` (which this does not count as one).
    pub fn get(&self) -> i64 {
        self.0.get(&NoLabels {}).map_or(0, |g| g.get())
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs .. ~50 s
    Histogram::new(exponential_buckets(0.0001, 2.0, 20))
}

fn batch_rows_histogram() -> Histogram {
    // 1 .. 1M rows
    Histogram::new(exponential_buckets(1.0, 4.0, 11))
}

fn event_latency_histogram() -> Histogram {
    // 50 ms .. ~1.8 h: event time to sink commit, checkpoints included
    Histogram::new(exponential_buckets(0.05, 2.0, 18))
}

/// Every metric somaflow exports.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabels {
    pub topic: String,
    pub partition: i32,
}

pub struct Metrics {
    pub events_in: Family<NodeLabels, Counter>,
    pub events_out: Family<NodeTableLabels, Counter>,
    pub dead_letters: Family<DeadLetterLabels, Counter>,
    pub duplicates_dropped: Family<NodeLabels, Counter>,
    /// Idle ticks of the embedded log a node read: log records, so counted
    /// in `events_in` too, but never events (`events_in - idle_ticks`).
    pub idle_ticks: Family<NodeLabels, Counter>,
    pub channel_queued_rows: Family<NodeLabels, Gauge>,
    pub channel_capacity_rows: Family<NodeLabels, Gauge>,
    pub batch_rows: HistogramFamily<NodeLabels>,
    pub event_latency: HistogramFamily<NodeTableLabels>,
    pub checkpoint_duration: Histogram,
    pub checkpoints_completed: Counter,
    pub checkpoint_failures: Counter,
    pub last_checkpoint_epoch: Gauge,
    pub checkpoint_bytes: Gauge,
    pub sink_flush_duration: HistogramFamily<NodeLabels>,
    pub sink_rows_committed: Family<NodeTableLabels, Counter>,
    /// Merges the lake's compactor published, files they replaced, and
    /// replaced files deleted after the grace period, per table.
    pub lake_compactions: Family<NodeTableLabels, Counter>,
    pub lake_files_merged: Family<NodeTableLabels, Counter>,
    pub lake_files_deleted: Family<NodeTableLabels, Counter>,
    pub log_append_duration: Histogram,
    pub log_end_offset: Gauge,
    pub log_read_offset: Gauge,
    pub ingest_accepted: Counter,
    pub ingest_rejected: Counter,
    pub http_requests: Family<HttpLabels, Counter>,
    pub http_duration: HistogramFamily<HttpLabels>,
    pub kafka_lag: Family<PartitionLabels, Gauge>,
    pub kafka_read_offset: Family<PartitionLabels, Gauge>,
    pub kafka_broker_up: LazyGauge,
    pub kafka_rebalances: Counter,
    pub kafka_offset_gaps: Counter,
    pub clickhouse_rows_inserted: Family<NodeTableLabels, Counter>,
    pub clickhouse_insert_duration: HistogramFamily<NodeTableLabels>,
    pub clickhouse_insert_retries: Family<NodeTableLabels, Counter>,
    pub clickhouse_rows_rejected: Family<NodeTableLabels, Counter>,
    pub clickhouse_up: LazyGauge,
    pub enrich_lookups: Family<OutcomeLabels, Counter>,
    pub redis_up: LazyGauge,
    pub redis_errors: Family<NodeLabels, Counter>,
    pub policy_decisions: Family<PolicyLabels, Counter>,
    pub pii_redacted: Family<NodeLabels, Counter>,
    pub rows_rated: Family<OutcomeLabels, Counter>,
    /// USD rated by accounting (live spend; a replay after a crash counts
    /// again, the ledgers do not).
    pub rated_cost_usd: Family<NodeLabels, Counter<f64, AtomicU64>>,
    pub usage_rows: Family<OutcomeLabels, Counter>,
    pub late_rows: Family<NodeLabels, Counter>,
    pub budget_events: Family<OutcomeLabels, Counter>,
    pub budget_unsynced_tenants: Family<NodeLabels, Gauge>,
    pub dispatch: Family<OutcomeLabels, Counter>,
    registry: Mutex<Registry>,
}

impl Metrics {
    fn new() -> Self {
        let m = Metrics {
            events_in: Family::default(),
            events_out: Family::default(),
            dead_letters: Family::default(),
            duplicates_dropped: Family::default(),
            idle_ticks: Family::default(),
            channel_queued_rows: Family::default(),
            channel_capacity_rows: Family::default(),
            batch_rows: Family::new_with_constructor(batch_rows_histogram),
            event_latency: Family::new_with_constructor(event_latency_histogram),
            checkpoint_duration: latency_histogram(),
            checkpoints_completed: Counter::default(),
            checkpoint_failures: Counter::default(),
            last_checkpoint_epoch: Gauge::default(),
            checkpoint_bytes: Gauge::default(),
            sink_flush_duration: Family::new_with_constructor(latency_histogram),
            sink_rows_committed: Family::default(),
            lake_compactions: Family::default(),
            lake_files_merged: Family::default(),
            lake_files_deleted: Family::default(),
            log_append_duration: latency_histogram(),
            log_end_offset: Gauge::default(),
            log_read_offset: Gauge::default(),
            ingest_accepted: Counter::default(),
            ingest_rejected: Counter::default(),
            http_requests: Family::default(),
            http_duration: Family::new_with_constructor(latency_histogram),
            kafka_lag: Family::default(),
            kafka_read_offset: Family::default(),
            kafka_broker_up: LazyGauge::default(),
            kafka_rebalances: Counter::default(),
            kafka_offset_gaps: Counter::default(),
            clickhouse_rows_inserted: Family::default(),
            clickhouse_insert_duration: Family::new_with_constructor(latency_histogram),
            clickhouse_insert_retries: Family::default(),
            clickhouse_rows_rejected: Family::default(),
            clickhouse_up: LazyGauge::default(),
            enrich_lookups: Family::default(),
            redis_up: LazyGauge::default(),
            redis_errors: Family::default(),
            policy_decisions: Family::default(),
            pii_redacted: Family::default(),
            rows_rated: Family::default(),
            rated_cost_usd: Family::default(),
            usage_rows: Family::default(),
            late_rows: Family::default(),
            budget_events: Family::default(),
            budget_unsynced_tenants: Family::default(),
            dispatch: Family::default(),
            registry: Mutex::new(Registry::with_prefix("somaflow")),
        };
        {
            let mut r = m.registry.lock().unwrap_or_else(|p| p.into_inner());
            r.register("events_in", "Rows received per node", m.events_in.clone());
            r.register(
                "events_out",
                "Rows emitted per node and table",
                m.events_out.clone(),
            );
            r.register(
                "dead_letters",
                "Records sent to dead letters, per node and stage",
                m.dead_letters.clone(),
            );
            r.register(
                "duplicates_dropped",
                "Repeated events dropped by dedup",
                m.duplicates_dropped.clone(),
            );
            r.register(
                "idle_ticks",
                "Idle ticks of the embedded log read (records counted in events_in that are not events)",
                m.idle_ticks.clone(),
            );
            r.register(
                "channel_queued_rows",
                "Rows waiting on a node's inputs (backpressure)",
                m.channel_queued_rows.clone(),
            );
            r.register(
                "channel_capacity_rows",
                "Rows a node's inputs hold before upstream waits (fill = queued / capacity)",
                m.channel_capacity_rows.clone(),
            );
            r.register(
                "batch_rows",
                "Rows per batch a node receives",
                m.batch_rows.clone(),
            );
            r.register(
                "event_latency_seconds",
                "Event time to the commit of the checkpoint that published the row, per sink and table",
                m.event_latency.clone(),
            );
            r.register(
                "checkpoint_duration_seconds",
                "Barrier injection to commit",
                m.checkpoint_duration.clone(),
            );
            r.register(
                "checkpoints_completed",
                "Checkpoints made durable and committed",
                m.checkpoints_completed.clone(),
            );
            r.register(
                "checkpoint_failures",
                "Checkpoints that failed",
                m.checkpoint_failures.clone(),
            );
            r.register(
                "last_checkpoint_epoch",
                "Epoch of the newest complete checkpoint",
                m.last_checkpoint_epoch.clone(),
            );
            r.register(
                "checkpoint_bytes",
                "Bytes the newest checkpoint wrote (manifest and changed operator state)",
                m.checkpoint_bytes.clone(),
            );
            r.register(
                "sink_flush_duration_seconds",
                "Time a sink took to flush and stage at a barrier",
                m.sink_flush_duration.clone(),
            );
            r.register(
                "sink_rows_committed",
                "Rows published by a sink's commit",
                m.sink_rows_committed.clone(),
            );
            r.register(
                "lake_compactions",
                "Merges of small lake files the compactor published",
                m.lake_compactions.clone(),
            );
            r.register(
                "lake_files_merged",
                "Lake files replaced by a merge",
                m.lake_files_merged.clone(),
            );
            r.register(
                "lake_files_deleted",
                "Replaced lake files deleted after the grace period",
                m.lake_files_deleted.clone(),
            );
            r.register(
                "log_append_duration_seconds",
                "Durable append (write + fsync) of the embedded log",
                m.log_append_duration.clone(),
            );
            r.register(
                "log_end_offset",
                "Next offset the embedded log will assign",
                m.log_end_offset.clone(),
            );
            r.register(
                "log_read_offset",
                "Next offset the pipeline will read from the embedded log",
                m.log_read_offset.clone(),
            );
            r.register(
                "ingest_accepted",
                "Events accepted by POST /v1/events",
                m.ingest_accepted.clone(),
            );
            r.register(
                "ingest_rejected",
                "Events rejected by POST /v1/events",
                m.ingest_rejected.clone(),
            );
            r.register(
                "http_requests",
                "HTTP requests by route, method and status",
                m.http_requests.clone(),
            );
            r.register(
                "http_request_duration_seconds",
                "HTTP request latency by route, method and status",
                m.http_duration.clone(),
            );
            r.register(
                "kafka_consumer_lag",
                "Records in a partition the pipeline has not read yet (high watermark - position)",
                m.kafka_lag.clone(),
            );
            r.register(
                "kafka_read_offset",
                "Next offset the pipeline reads in a partition",
                m.kafka_read_offset.clone(),
            );
            r.register(
                "kafka_broker_up",
                "1 while the Kafka brokers answer metadata requests",
                m.kafka_broker_up.0.clone(),
            );
            r.register(
                "kafka_rebalances",
                "Partition assignments this worker received",
                m.kafka_rebalances.clone(),
            );
            r.register(
                "kafka_offset_gaps",
                "Jumps in a partition's offsets still there on a second fetch (accepted)",
                m.kafka_offset_gaps.clone(),
            );
            r.register(
                "clickhouse_rows_inserted",
                "Rows ClickHouse acknowledged, per sink node and table",
                m.clickhouse_rows_inserted.clone(),
            );
            r.register(
                "clickhouse_insert_duration_seconds",
                "Time of one successful insert (send and answer), per table",
                m.clickhouse_insert_duration.clone(),
            );
            r.register(
                "clickhouse_insert_retries",
                "Inserts retried after a transient failure, per table",
                m.clickhouse_insert_retries.clone(),
            );
            r.register(
                "clickhouse_rows_rejected",
                "Rows ClickHouse refused permanently (sent to dead_letters), per table",
                m.clickhouse_rows_rejected.clone(),
            );
            r.register(
                "clickhouse_up",
                "1 while the ClickHouse server answers",
                m.clickhouse_up.0.clone(),
            );
            r.register(
                "enrich_lookups",
                "Metadata lookups of enrich by outcome (hit, fetched, absent, stale, unavailable)",
                m.enrich_lookups.clone(),
            );
            r.register("redis_up", "1 while Redis answers", m.redis_up.0.clone());
            r.register(
                "redis_errors",
                "Redis commands that failed or timed out, per node",
                m.redis_errors.clone(),
            );
            r.register(
                "policy_decisions",
                "Rules that fired, per rule and decision",
                m.policy_decisions.clone(),
            );
            r.register(
                "pii_redacted",
                "Personal data found and masked in message text",
                m.pii_redacted.clone(),
            );
            r.register(
                "rows_rated",
                "Conversation rows by rating outcome (rated, producer_cost, unpriced)",
                m.rows_rated.clone(),
            );
            r.register(
                "rated_cost_usd",
                "USD of the conversations rated, as accounting priced them",
                m.rated_cost_usd.clone(),
            );
            r.register(
                "usage_rows",
                "usage_1m rows emitted (window: a window at its close; partial: open windows at a checkpoint; correction: late rows)",
                m.usage_rows.clone(),
            );
            r.register(
                "late_rows",
                "Rows that arrived after their window closed (counted as corrections)",
                m.late_rows.clone(),
            );
            r.register(
                "budget_events",
                "Budget threshold crossings emitted (soft, hard)",
                m.budget_events.clone(),
            );
            r.register(
                "budget_unsynced_tenants",
                "Tenants whose spend is not yet in Redis (it is pushed when Redis answers)",
                m.budget_unsynced_tenants.clone(),
            );
            r.register(
                "dispatch",
                "Queued workflow steps by outcome (dispatched, budget_exceeded, rate_limited)",
                m.dispatch.clone(),
            );
        }
        m
    }

    /// Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        let r = self.registry.lock().unwrap_or_else(|p| p.into_inner());
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &r);
        out
    }
}

/// The process-wide metrics.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

pub fn node_table(node: &str, table: &str) -> NodeTableLabels {
    NodeTableLabels {
        node: node.to_string(),
        table: table.to_string(),
    }
}

pub fn outcome(node: &str, outcome: &str) -> OutcomeLabels {
    OutcomeLabels {
        node: node.to_string(),
        outcome: outcome.to_string(),
    }
}

pub fn node(node: &str) -> NodeLabels {
    NodeLabels {
        node: node.to_string(),
    }
}
