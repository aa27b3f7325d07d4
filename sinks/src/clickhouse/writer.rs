//! One writer task per table: buffers rows, inserts a block at
//! `batch_rows`, at the flush interval and at every barrier, with a bounded
//! number of inserts in flight over the whole sink. An insert is retried
//! until ClickHouse takes it (transient failures) or dead-lettered with the
//! server's message (permanent ones); a barrier is answered only when every
//! insert before it has ended one of those two ways.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::json::LineDelimitedWriter;
use rand::Rng;
use somaflow_pipeline::events::schema::dead_letter_schema;
use somaflow_pipeline::metrics::{metrics, node_table};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio::task::JoinSet;
use tracing::{Instrument, debug, error, info_span, warn};

use super::ClickHouseError;
use super::DEAD_LETTERS;
use super::client::server_version;
use super::config::ClickHouseConfig;
use super::encode::encode;
use super::error::{Failure, classify};
use super::layout::TableLayout;

/// The parallel instance of the sink inside one worker: one per node today.
const TASK: u32 = 0;
/// Bytes per compressed chunk sent to the server.
const CHUNK_BYTES: usize = 1 << 20;

/// What one sink's writers share.
pub struct Shared {
    pub node: String,
    pub config: ClickHouseConfig,
    pub client: clickhouse::Client,
    /// Inserts in flight over all tables.
    pub permits: Arc<Semaphore>,
    /// Unique per sink instance: identities never repeat across runs.
    pub run_id: String,
    layouts: Mutex<HashMap<String, Arc<TableLayout>>>,
    dedup_tokens: tokio::sync::OnceCell<bool>,
}

impl Shared {
    pub fn new(node: &str, config: &ClickHouseConfig) -> Shared {
        Shared {
            node: node.to_string(),
            config: config.clone(),
            client: super::client::connect(config, None),
            permits: Arc::new(Semaphore::new(config.max_concurrent_inserts)),
            run_id: format!(
                "{:x}{:x}",
                chrono::Utc::now().timestamp_micros(),
                std::process::id()
            ),
            layouts: Mutex::new(HashMap::new()),
            dedup_tokens: tokio::sync::OnceCell::new(),
        }
    }

    async fn layout(&self, table: &str) -> Result<Arc<TableLayout>, ClickHouseError> {
        if let Some(l) = self.lock_layouts().get(table) {
            return Ok(l.clone());
        }
        let layout = Arc::new(TableLayout::load(&self.client, &self.config, table).await?);
        self.lock_layouts()
            .insert(table.to_string(), layout.clone());
        Ok(layout)
    }

    /// After a refusal the table may have changed: read it again next time.
    fn forget_layout(&self, table: &str) {
        self.lock_layouts().remove(table);
    }

    fn lock_layouts(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<TableLayout>>> {
        self.layouts.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether the server keeps insert dedup tokens (current releases).
    async fn dedup_tokens(&self) -> Result<bool, ClickHouseError> {
        self.dedup_tokens
            .get_or_try_init(|| async {
                Ok(server_version(&self.client, &self.config)
                    .await?
                    .is_current())
            })
            .await
            .copied()
    }

    pub(super) fn backoff(&self, attempt: u32) -> Duration {
        let base = self
            .config
            .retry_initial_ms
            .saturating_mul(1u64 << attempt.min(20))
            .min(self.config.retry_max_ms);
        // "Equal jitter", a delay in [base/2, base]: writers that failed
        // together do not come back together.
        Duration::from_millis(rand::rng().random_range(base / 2..=base))
    }
}

pub enum Command {
    Rows(RecordBatch),
    /// Insert what is buffered, wait for every insert in flight, answer
    /// the rows ClickHouse took since the previous barrier.
    Barrier {
        epoch: u64,
        done: oneshot::Sender<Result<u64, ClickHouseError>>,
    },
}

pub struct TableWriter {
    shared: Arc<Shared>,
    table: String,
    buffer: Vec<RecordBatch>,
    rows: usize,
    oldest: Option<Instant>,
    in_flight: JoinSet<Result<u64, ClickHouseError>>,
    /// The epoch of the next barrier, as far as this writer knows.
    epoch: u64,
    seq: u64,
    inserted: u64,
}

impl TableWriter {
    pub fn spawn(
        shared: Arc<Shared>,
        table: &str,
        inbox: mpsc::Receiver<Command>,
    ) -> tokio::task::JoinHandle<Result<(), ClickHouseError>> {
        // Series exist from the start, so rate() and alerts see a 0 rather
        // than nothing before the first retry or refusal.
        let labels = node_table(&shared.node, table);
        let m = metrics();
        let _ = m.clickhouse_rows_inserted.get_or_create(&labels);
        let _ = m.clickhouse_insert_retries.get_or_create(&labels);
        let _ = m.clickhouse_rows_rejected.get_or_create(&labels);
        let writer = TableWriter {
            shared,
            table: table.to_string(),
            buffer: Vec::new(),
            rows: 0,
            oldest: None,
            in_flight: JoinSet::new(),
            epoch: 0,
            seq: 0,
            inserted: 0,
        };
        tokio::spawn(writer.run(inbox))
    }

    async fn run(mut self, mut inbox: mpsc::Receiver<Command>) -> Result<(), ClickHouseError> {
        let interval = Duration::from_millis(self.shared.config.flush_interval_ms);
        loop {
            let deadline = self
                .oldest
                .map(|t| tokio::time::Instant::from_std(t + interval));
            tokio::select! {
                command = inbox.recv() => match command {
                    // Input ended: rows not yet acknowledged are replayed
                    // from the last checkpoint.
                    None => {
                        self.in_flight.abort_all();
                        return Ok(());
                    }
                    Some(Command::Rows(rows)) if rows.num_rows() == 0 => {}
                    Some(Command::Rows(rows)) => {
                        self.rows += rows.num_rows();
                        self.oldest.get_or_insert_with(Instant::now);
                        self.buffer.push(rows);
                        if self.rows >= self.shared.config.batch_rows {
                            self.flush().await?;
                        }
                    }
                    Some(Command::Barrier { epoch, done }) => {
                        let mut outcome = self.flush().await;
                        while let Some(finished) = self.in_flight.join_next().await {
                            if let Err(e) = self.finished(finished) {
                                outcome = Err(e);
                            }
                        }
                        let reply = outcome.map(|()| std::mem::take(&mut self.inserted));
                        let failed = reply.is_err();
                        let _ = done.send(reply);
                        if failed {
                            return Ok(());
                        }
                        self.epoch = epoch + 1;
                        self.seq = 0;
                        // Read the table's columns again for the next epoch:
                        // a type changed under us must not be written in the
                        // old encoding for long.
                        self.shared.forget_layout(&self.table);
                    }
                },
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(tokio::time::Instant::now)), if deadline.is_some() => {
                    self.flush().await?;
                }
                Some(finished) = self.in_flight.join_next(), if !self.in_flight.is_empty() => {
                    self.finished(finished)?;
                }
            }
        }
    }

    fn finished(
        &mut self,
        result: Result<Result<u64, ClickHouseError>, tokio::task::JoinError>,
    ) -> Result<(), ClickHouseError> {
        match result {
            Ok(Ok(rows)) => {
                self.inserted += rows;
                Ok(())
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ClickHouseError::WriterGone(self.table.clone())),
        }
    }

    /// Starts inserting the buffered rows; waits only for a free slot.
    async fn flush(&mut self) -> Result<(), ClickHouseError> {
        if self.rows == 0 {
            return Ok(());
        }
        let batches = std::mem::take(&mut self.buffer);
        let rows = std::mem::take(&mut self.rows);
        self.oldest = None;
        self.seq += 1;
        // Deterministic within a run: the retry of a block carries the same
        // identity (its dedup token on current servers, its query_id).
        let identity = format!(
            "{}-{}-{}-{}-{TASK}-{}",
            self.shared.node, self.shared.run_id, self.table, self.epoch, self.seq
        );
        let permit = self
            .shared
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| ClickHouseError::WriterGone(self.table.clone()))?;
        let shared = self.shared.clone();
        let table = self.table.clone();
        let span = info_span!("clickhouse_insert", table = %table, rows, identity = %identity);
        self.in_flight.spawn(
            async move {
                let result = deliver(&shared, &table, &batches, &identity).await;
                drop(permit);
                result
            }
            .instrument(span),
        );
        Ok(())
    }
}

/// Inserts `batches` into `table` until the server takes them, or
/// dead-letters them when it refuses them for good. Returns the rows the
/// table took (0 when they went to dead letters).
pub(super) async fn deliver(
    shared: &Shared,
    table: &str,
    batches: &[RecordBatch],
    identity: &str,
) -> Result<u64, ClickHouseError> {
    let labels = node_table(&shared.node, table);
    let m = metrics();
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        match insert(shared, table, batches, identity).await {
            Ok(rows) => {
                m.clickhouse_rows_inserted
                    .get_or_create(&labels)
                    .inc_by(rows);
                m.clickhouse_insert_duration
                    .get_or_create(&labels)
                    .observe(started.elapsed().as_secs_f64());
                debug!(table, rows, "inserted into ClickHouse");
                return Ok(rows);
            }
            Err(Failure::Transient(reason)) => {
                m.clickhouse_insert_retries.get_or_create(&labels).inc();
                let wait = shared.backoff(attempt);
                attempt = attempt.saturating_add(1);
                warn!(table, attempt, retry_in_ms = wait.as_millis() as u64, %reason,
                    "ClickHouse insert failed; retrying (the pipeline waits meanwhile)");
                tokio::time::sleep(wait).await;
            }
            Err(Failure::Permanent(reason)) => {
                shared.forget_layout(table);
                let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
                if table == DEAD_LETTERS {
                    // Nowhere further to send them: keep them and retry, so
                    // nothing is lost while someone repairs the table.
                    m.clickhouse_insert_retries.get_or_create(&labels).inc();
                    let wait = shared.backoff(attempt);
                    attempt = attempt.saturating_add(1);
                    error!(rows, %reason, retry_in_ms = wait.as_millis() as u64,
                        "ClickHouse refuses dead letters; fix the dead_letters table, retrying");
                    tokio::time::sleep(wait).await;
                    continue;
                }
                m.clickhouse_rows_rejected
                    .get_or_create(&labels)
                    .inc_by(rows as u64);
                error!(table, rows, %reason, "ClickHouse refused an insert; its rows go to dead_letters");
                let letters = dead_letters(table, batches, &reason)?;
                Box::pin(deliver(
                    shared,
                    DEAD_LETTERS,
                    &[letters],
                    &format!("{identity}-dead"),
                ))
                .await?;
                return Ok(0);
            }
        }
    }
}

async fn insert(
    shared: &Shared,
    table: &str,
    batches: &[RecordBatch],
    identity: &str,
) -> Result<u64, Failure> {
    let transient = |e: ClickHouseError| Failure::Transient(e.to_string());
    let layout = shared.layout(table).await.map_err(transient)?;
    let dedup_tokens = shared.dedup_tokens().await.map_err(transient)?;
    let block = encode(batches, &layout).map_err(|e| Failure::Permanent(e.to_string()))?;
    let timeout = Some(Duration::from_secs(shared.config.insert_timeout_secs));
    let mut insert = shared
        .client
        .insert_formatted_with(format!(
            "INSERT INTO {table} ({}) FORMAT RowBinary",
            block.columns
        ))
        .with_setting("query_id", identity)
        .with_timeouts(timeout, timeout);
    if dedup_tokens {
        insert = insert.with_setting("insert_deduplication_token", identity);
    }
    let body = Bytes::from(block.body);
    let failed = |e: clickhouse::error::Error| classify(&e);
    let mut offset = 0;
    while offset < body.len() {
        let end = (offset + CHUNK_BYTES).min(body.len());
        insert
            .send(body.slice(offset..end))
            .await
            .map_err(&failed)?;
        offset = end;
    }
    insert.end().await.map_err(&failed)?;
    Ok(block.rows as u64)
}

/// Rows ClickHouse refused, as dead letters: the row as JSON, where it was
/// read from, and the server's message.
fn dead_letters(
    table: &str,
    batches: &[RecordBatch],
    reason: &str,
) -> Result<RecordBatch, ClickHouseError> {
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut raw = BinaryBuilder::new();
    for batch in batches {
        let mut json = Vec::new();
        {
            let mut writer = LineDelimitedWriter::new(&mut json);
            writer.write(batch)?;
            writer.finish()?;
        }
        for line in json.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
            raw.append_value(line);
        }
    }
    let column = |name: &str| -> Result<Option<ArrayRef>, ClickHouseError> {
        let parts: Option<Vec<&dyn datafusion::arrow::array::Array>> = batches
            .iter()
            .map(|b| b.column_by_name(name).map(|c| c.as_ref()))
            .collect();
        match parts {
            Some(parts) if !parts.is_empty() => {
                Ok(Some(datafusion::arrow::compute::concat(&parts)?))
            }
            _ => Ok(None),
        }
    };
    let required = |name: &str| -> Result<ArrayRef, ClickHouseError> {
        column(name)?.ok_or_else(|| ClickHouseError::MissingColumn {
            table: table.to_string(),
            column: name.to_string(),
        })
    };
    let text = |value: &str| -> ArrayRef { Arc::new(StringArray::from(vec![value; rows])) };
    // Rows the pipeline derived (usage_1m, budget_events) were read from no
    // source: their own id names them, the table stands for the position.
    let event_id = match column("event_id")? {
        Some(ids) => ids,
        None => required("row_id")?,
    };
    let ingest_time = match column("ingest_time")? {
        Some(times) => times,
        None => Arc::new(
            TimestampMicrosecondArray::from(vec![chrono::Utc::now().timestamp_micros(); rows])
                .with_timezone("UTC"),
        ),
    };
    let source_topic = column("source_topic")?.unwrap_or_else(|| text(table));
    let source_partition =
        column("source_partition")?.unwrap_or_else(|| Arc::new(Int32Array::from(vec![-1; rows])));
    let source_offset =
        column("source_offset")?.unwrap_or_else(|| Arc::new(Int64Array::from(vec![0; rows])));
    let batch = RecordBatch::try_new(
        dead_letter_schema(),
        vec![
            required("tenant_id")?,
            event_id,
            text("clickhouse"),
            text(&format!(
                "ClickHouse refused the insert into {table}: {reason}"
            )),
            Arc::new(raw.finish()),
            ingest_time,
            source_topic,
            source_partition,
            source_offset,
        ],
    )?;
    Ok(batch)
}
