//! The consumer thread: one librdkafka consumer per worker, polled on its own
//! thread, feeding batches (one partition each) to the pipeline instance of
//! the current assignment.
//!
//! Rebalances are handed to the worker's supervisor *inside* librdkafka's
//! rebalance callback, which blocks until the supervisor answers: on revoke
//! the supervisor finishes a checkpoint and stops the pipeline before the
//! partitions are released; on assign it reads the shared checkpoint store
//! and answers with the positions to start from, which are set on the
//! assignment itself. So no record is read twice into the lake or skipped.
//!
//! Backpressure: when the pipeline's inbox is full and a few polls' worth
//! of records wait for it, the thread pauses its partitions and keeps
//! polling, so the group never sees it as stuck (see [`forward`]).

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use datafusion::arrow::array::{Int64Array, RecordBatch};
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::KafkaError as RdKafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use somaflow_pipeline::checkpoint::{Positions, parse_shard, shard};
use somaflow_pipeline::events::RawBatchBuilder;
use somaflow_pipeline::metrics::{PartitionLabels, metrics};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::binding::record_payload;
use super::client::client_config;
use super::config::{ClusterConfig, ClusterMode, KafkaConfig};
use super::error::KafkaError;
use super::order::{Gap, in_order};
use super::topics::partitions_of;

/// Records of one partition, ready for the pipeline.
#[derive(Debug)]
pub struct PartitionBatch {
    pub shard: String,
    /// Offset after the last record (the next to read).
    pub next_offset: i64,
    pub rows: RecordBatch,
}

/// What the supervisor answers to an assignment.
pub struct Generation {
    /// Where each assigned shard starts; absent = the partition's beginning.
    pub positions: Positions,
    /// Inbox of the pipeline instance that reads these partitions.
    pub inbox: mpsc::Sender<PartitionBatch>,
}

/// A rebalance the supervisor must handle before the consumer goes on.
pub enum FeedEvent {
    /// Finish a checkpoint and stop the pipeline, then answer; when the
    /// assignment is already `lost`, stop without a checkpoint.
    Revoke {
        lost: bool,
        done: oneshot::Sender<()>,
    },
    /// Start from the checkpoint store: answer positions and an inbox.
    Assign {
        shards: Vec<String>,
        reply: oneshot::Sender<Generation>,
    },
}

/// The consumer's side of the current assignment.
struct Current {
    inbox: mpsc::Sender<PartitionBatch>,
    /// Next offset to forward per shard; earlier records are replays.
    next: BTreeMap<String, i64>,
    /// Per shard, the offset gap last fetched again to check it.
    gaps: BTreeMap<String, Gap>,
    pending: VecDeque<PartitionBatch>,
    paused: bool,
}

pub struct FeedContext {
    events: mpsc::UnboundedSender<FeedEvent>,
    closing: AtomicBool,
    current: Mutex<Option<Current>>,
}

impl FeedContext {
    fn current(&self) -> MutexGuard<'_, Option<Current>> {
        // Only the consumer thread takes this lock; poisoning means it panicked.
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Asks the supervisor for positions; `None` when it is gone.
    fn request_assignment(&self, shards: Vec<String>) -> Option<Generation> {
        if self.closing.load(Ordering::SeqCst) {
            return None;
        }
        let (reply, answer) = oneshot::channel();
        self.events.send(FeedEvent::Assign { shards, reply }).ok()?;
        answer.blocking_recv().ok()
    }

    fn begin(&self, tpl: &mut TopicPartitionList) {
        let shards: Vec<String> = tpl
            .elements()
            .iter()
            .map(|e| shard(e.topic(), e.partition()))
            .collect();
        metrics().kafka_rebalances.inc();
        info!(partitions = shards.len(), "partitions assigned");
        let Some(generation) = self.request_assignment(shards.clone()) else {
            *self.current() = None;
            return;
        };
        let mut next = BTreeMap::new();
        for s in &shards {
            let Some((topic, partition)) = parse_shard(s) else {
                continue;
            };
            let offset = match generation.positions.get(s) {
                Some(p) => {
                    next.insert(s.clone(), *p);
                    Offset::Offset(*p)
                }
                None => Offset::Beginning,
            };
            if let Err(e) = tpl.set_partition_offset(topic, partition, offset) {
                error!(shard = %s, error = %e, "cannot set the start offset");
            }
        }
        *self.current() = Some(Current {
            inbox: generation.inbox,
            next,
            gaps: BTreeMap::new(),
            pending: VecDeque::new(),
            paused: false,
        });
    }

    /// `lost`: the group already gave the partitions to others (this member
    /// was too slow or cut off), so no final checkpoint may be taken.
    fn end(&self, lost: bool) {
        if !self.closing.load(Ordering::SeqCst) {
            let (done, stopped) = oneshot::channel();
            if self.events.send(FeedEvent::Revoke { lost, done }).is_ok() {
                let _ = stopped.blocking_recv();
            }
        }
        // Records read but not forwarded are read again by the next owner,
        // from the checkpoint just taken.
        if let Some(current) = self.current().take() {
            for s in current.next.keys() {
                if let Some((topic, partition)) = parse_shard(s) {
                    let labels = PartitionLabels {
                        topic: topic.to_string(),
                        partition,
                    };
                    metrics().kafka_lag.remove(&labels);
                    metrics().kafka_read_offset.remove(&labels);
                }
            }
        }
        info!("partitions revoked");
    }
}

impl ClientContext for FeedContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error => error!(target: "librdkafka", "{fac} {message}"),
            RDKafkaLogLevel::Warning => warn!(target: "librdkafka", "{fac} {message}"),
            _ => debug!(target: "librdkafka", "{fac} {message}"),
        }
    }

    fn error(&self, error: RdKafkaError, reason: &str) {
        warn!(target: "librdkafka", %error, reason, "Kafka client error");
    }

    fn stats(&self, statistics: Statistics) {
        let m = metrics();
        for (name, topic) in &statistics.topics {
            for p in topic.partitions.values() {
                if p.partition < 0 || p.hi_offset < 0 {
                    continue;
                }
                let labels = PartitionLabels {
                    topic: name.clone(),
                    partition: p.partition,
                };
                // Only partitions this worker reads have a read offset.
                let Some(read) = m.kafka_read_offset.get(&labels).map(|g| g.get()) else {
                    continue;
                };
                m.kafka_lag
                    .get_or_create(&labels)
                    .set((p.hi_offset - read).max(0));
            }
        }
    }
}

impl ConsumerContext for FeedContext {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                self.begin(tpl);
                assign(consumer, tpl);
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                self.end(consumer.assignment_lost());
                if let Err(e) = consumer.unassign() {
                    warn!(error = %e, "releasing partitions failed");
                }
            }
            other => {
                error!(error = ?other, "rebalance failed; releasing partitions");
                self.end(true);
                let _ = consumer.unassign();
            }
        }
    }
}

pub type FeedConsumer = BaseConsumer<FeedContext>;

/// Assigns `tpl` (start offsets set) and makes sure its partitions fetch: a
/// partition paused for backpressure stays paused across a rebalance
/// otherwise, and the same partitions often come back.
fn assign(consumer: &FeedConsumer, tpl: &TopicPartitionList) {
    if let Err(e) = consumer.assign(tpl) {
        error!(error = %e, "assigning partitions failed");
    }
    if let Err(e) = consumer.resume(tpl) {
        warn!(error = %e, "resuming assigned partitions failed");
    }
}

/// Default `session.timeout.ms` (and `max.poll.interval.ms`) of the group.
pub const SESSION_TIMEOUT_MS: &str = "30000";

/// The running consumer thread.
pub struct KafkaFeed {
    consumer: Arc<FeedConsumer>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl KafkaFeed {
    /// Starts consuming `topics`; rebalances arrive on the returned receiver
    /// and must be answered.
    pub fn start(
        kafka: &KafkaConfig,
        cluster: &ClusterConfig,
        topics: &[String],
        batch_rows: usize,
    ) -> Result<(KafkaFeed, mpsc::UnboundedReceiver<FeedEvent>), KafkaError> {
        let (events, events_rx) = mpsc::unbounded_channel();
        let context = FeedContext {
            events,
            closing: AtomicBool::new(false),
            current: Mutex::new(None),
        };
        let mut config = client_config(kafka);
        // Our defaults first; `kafka.client` keys override them.
        for (k, v) in [
            ("group.id", cluster.group_id.as_str()),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("statistics.interval.ms", "1000"),
            // Long enough to ride out a stalled broker without losing the
            // membership (tansu keeps a timed-out member as the group's
            // leader, see docs/decisions/0034-what-tansu-taught-us.md); dead workers are noticed by
            // the lease watchdog.
            ("session.timeout.ms", SESSION_TIMEOUT_MS),
            ("max.poll.interval.ms", SESSION_TIMEOUT_MS),
            ("heartbeat.interval.ms", "1000"),
        ] {
            if !kafka.client.contains_key(k) {
                config.set(k, v);
            }
        }
        let consumer: FeedConsumer =
            config
                .create_with_context(context)
                .map_err(|source| KafkaError::Client {
                    brokers: kafka.brokers.clone(),
                    source,
                })?;
        let consumer = Arc::new(consumer);
        let fixed = match cluster.mode {
            ClusterMode::Group => {
                let names: Vec<&str> = topics.iter().map(String::as_str).collect();
                consumer
                    .subscribe(&names)
                    .map_err(|source| KafkaError::Client {
                        brokers: kafka.brokers.clone(),
                        source,
                    })?;
                None
            }
            ClusterMode::Assign => Some(fixed_partitions(&consumer, kafka, cluster, topics)?),
        };
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let consumer = consumer.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("kafka-feed".into())
                .spawn(move || {
                    if let Some(mut tpl) = fixed {
                        consumer.context().begin(&mut tpl);
                        assign(&consumer, &tpl);
                    }
                    feed_loop(&consumer, &stop, batch_rows);
                })
                .map_err(|e| KafkaError::Thread(e.to_string()))?
        };
        Ok((
            KafkaFeed {
                consumer,
                stop,
                thread: Some(thread),
            },
            events_rx,
        ))
    }

    pub fn consumer(&self) -> Arc<FeedConsumer> {
        self.consumer.clone()
    }

    /// Stops polling and leaves the group. Call after the pipeline stopped:
    /// the revoke this causes is not sent to the supervisor.
    pub fn close(mut self) {
        self.consumer
            .context()
            .closing
            .store(true, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Err(e) = self.consumer.unsubscribe_and_close() {
            warn!(error = %e, "leaving the consumer group");
        }
    }
}

trait CloseExt {
    fn unsubscribe_and_close(&self) -> Result<(), RdKafkaError>;
}

impl CloseExt for FeedConsumer {
    fn unsubscribe_and_close(&self) -> Result<(), RdKafkaError> {
        self.unsubscribe();
        // Serve the revoke of leaving the group.
        for _ in 0..20 {
            if self.poll(Duration::from_millis(50)).is_none() && self.assignment()?.count() == 0 {
                break;
            }
        }
        Ok(())
    }
}

/// The partitions of `assign` mode: as configured, or every partition of
/// every topic.
fn fixed_partitions(
    consumer: &FeedConsumer,
    kafka: &KafkaConfig,
    cluster: &ClusterConfig,
    topics: &[String],
) -> Result<TopicPartitionList, KafkaError> {
    let mut tpl = TopicPartitionList::new();
    if cluster.partitions.is_empty() {
        for (topic, partition) in partitions_of(consumer, kafka, topics)? {
            tpl.add_partition(&topic, partition);
        }
    } else {
        for (topic, partition) in cluster.partitions.iter().filter_map(|s| parse_shard(s)) {
            tpl.add_partition(topic, partition);
        }
    }
    Ok(tpl)
}

/// Builds the raw-record batch of one partition.
/// One partition's records of one poll, as a raw batch.
struct PartitionRows(RawBatchBuilder);

impl PartitionRows {
    fn new(topic: &str, partition: i32) -> Self {
        Self(RawBatchBuilder::new(topic, partition))
    }

    fn finish(self) -> Option<PartitionBatch> {
        let next_offset = self.0.last_offset()? + 1;
        let shard = shard(self.0.topic(), self.0.partition());
        match self.0.finish() {
            Ok(rows) => Some(PartitionBatch {
                shard,
                next_offset,
                rows,
            }),
            Err(e) => {
                // The columns match the raw schema by construction.
                error!(error = %e, "building a raw batch");
                None
            }
        }
    }
}

fn feed_loop(consumer: &FeedConsumer, stop: &AtomicBool, batch_rows: usize) {
    let context = consumer.context();
    while !stop.load(Ordering::SeqCst) {
        let waiting = context
            .current()
            .as_ref()
            .is_some_and(|c| !c.pending.is_empty());
        let timeout = Duration::from_millis(if waiting { 10 } else { 100 });
        let mut rows: BTreeMap<(String, i32), PartitionRows> = BTreeMap::new();
        let mut polled = 0;
        let mut next = consumer.poll(timeout);
        while let Some(result) = next {
            match result {
                Ok(m) => {
                    let key = (m.topic().to_string(), m.partition());
                    let part = rows
                        .entry(key)
                        .or_insert_with(|| PartitionRows::new(m.topic(), m.partition()));
                    let ingest_ms = m
                        .timestamp()
                        .to_millis()
                        .unwrap_or_else(|| chrono::Utc::now().timestamp_millis());
                    part.0.append(
                        &record_payload(&m),
                        ingest_ms.saturating_mul(1000),
                        m.offset(),
                    );
                }
                Err(e) => warn!(error = %e, "Kafka consume error; retrying"),
            }
            polled += 1;
            if polled >= batch_rows {
                break;
            }
            next = consumer.poll(Duration::ZERO);
        }
        let mut guard = context.current();
        let Some(current) = guard.as_mut() else {
            continue;
        };
        for (_, part) in rows {
            if let Some(batch) = accept(consumer, part, current) {
                current.pending.push_back(batch);
            }
        }
        forward(
            consumer,
            current,
            batch_rows.saturating_mul(PENDING_BATCHES),
        );
    }
}

/// Keeps the records of `part` that continue its partition in order (see
/// [`super::order`]) and advances the partition's next offset; on a gap seen
/// for the first time, fetches again from the expected offset.
fn accept(
    consumer: &FeedConsumer,
    part: PartitionRows,
    current: &mut Current,
) -> Option<PartitionBatch> {
    let s = shard(part.0.topic(), part.0.partition());
    let expected = current.next.get(&s).copied();
    let verdict = in_order(part.0.offsets(), expected, current.gaps.get(&s).copied());
    if let Some((from, found)) = verdict.refetch {
        match consumer.seek(
            part.0.topic(),
            part.0.partition(),
            Offset::Offset(from),
            Duration::from_secs(1),
        ) {
            Ok(()) => {
                debug!(shard = %s, from, found, "offset gap: fetching again to confirm it");
                current.gaps.insert(s.clone(), (from, found));
            }
            // Not confirmed: the next fetch shows the gap again and retries.
            Err(e) => warn!(shard = %s, from, found, error = %e, "offset gap: seeking back failed"),
        }
    } else if let Some(&(from, found)) = current.gaps.get(&s)
        && expected == Some(from)
        && part.0.offsets().get(verdict.keep.start) == Some(&found)
    {
        // Offsets a broker shows missing twice are skipped for good (Kafka's
        // transaction markers and compaction leave such gaps): say so, since
        // on a broker that loses records this is where they would go.
        warn!(shard = %s, from, found, "offset gap confirmed by a second fetch: offsets {from}..{found} skipped");
    }
    let keep = verdict.keep;
    if keep.is_empty() {
        return None;
    }
    let batch = part.finish()?;
    let next_offset = batch
        .rows
        .column(4)
        .as_any()
        .downcast_ref::<Int64Array>()
        .map(|a| a.value(keep.end - 1) + 1)?;
    current.next.insert(s, next_offset);
    Some(PartitionBatch {
        rows: batch.rows.slice(keep.start, keep.len()),
        next_offset,
        ..batch
    })
}

/// Rows the consumer thread holds for a full inbox before it pauses
/// fetching, in polls (`pipeline.batch_rows` records each).
const PENDING_BATCHES: usize = 8;

/// Hands pending batches to the pipeline; pauses fetching once more than
/// `pause_rows` wait for a full inbox, and resumes when all were handed on.
///
/// Why not pause at the first full inbox: librdkafka drops a paused
/// partition's prefetched records and fetches them again after the resume,
/// and the inbox is full for a moment at every checkpoint barrier. Pausing
/// then made the worker re-read what it had already fetched at every
/// checkpoint: with 1 s checkpoints under concurrent produce its produced →
/// visible p99 was 26 s while a plain consumer on the same broker received
/// every record within 0.6 s (docs/benchmarks.md). Holding a few polls'
/// worth keeps memory bounded and the fetches flowing.
fn forward(consumer: &FeedConsumer, current: &mut Current, pause_rows: usize) {
    while let Some(batch) = current.pending.pop_front() {
        match current.inbox.try_send(batch) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(batch)) => {
                current.pending.push_front(batch);
                let held: usize = current.pending.iter().map(|b| b.rows.num_rows()).sum();
                if !current.paused && held > pause_rows {
                    set_paused(consumer, true);
                    current.paused = true;
                }
                return;
            }
            // The pipeline instance ended; a revoke or shutdown follows.
            Err(mpsc::error::TrySendError::Closed(_)) => {
                current.pending.clear();
                return;
            }
        }
    }
    if current.paused {
        set_paused(consumer, false);
        current.paused = false;
    }
}

fn set_paused(consumer: &FeedConsumer, paused: bool) {
    let result = consumer.assignment().and_then(|tpl| {
        if paused {
            consumer.pause(&tpl)
        } else {
            consumer.resume(&tpl)
        }
    });
    if let Err(e) = result {
        warn!(error = %e, paused, "pausing/resuming partitions failed");
    }
}
