//! `decode`: raw CloudEvents JSON records → Arrow rows of their kind. A bad
//! record becomes a dead letter (raw bytes, position, reason) on the
//! `dead_letters` output and never fails its batch. Emits the event-time
//! watermark (max event time seen − allowed out-of-orderness); an idle tick
//! of the embedded log (`somaflow_pipeline::log::IDLE_TICK`) moves it like
//! an event dated at the tick would, and is otherwise dropped.

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};
use somaflow_pipeline::events::schema::{DEAD_LETTERS_TABLE, RAW_TABLE};
use somaflow_pipeline::events::{
    DeadLetter, DeadLetterBuilder, EventKind, KindBatchBuilder, SourcePosition, TimeBounds,
    parse_event, peek_ids,
};
use somaflow_pipeline::log::is_idle_tick;
use somaflow_pipeline::metrics::{DeadLetterLabels, NodeLabels, metrics};
use somaflow_pipeline::runtime::trace::TraceCollector;
use somaflow_pipeline::runtime::{Batch, Emitter, NodeError, OUT, Operator};

pub const DEAD_LETTERS: &str = "dead_letters";

/// The stage name written into dead letters refused by validation.
pub const STAGE: &str = "decode";

#[derive(Debug, thiserror::Error)]
pub enum DecodeError {
    #[error("decode expects raw records, got a batch of table `{0}`")]
    UnexpectedTable(&'static str),
    #[error("raw batch column `{0}` is missing or has the wrong type")]
    BadColumn(&'static str),
}

pub struct Decode {
    node: String,
    bounds: TimeBounds,
    out_of_orderness_us: i64,
    max_event_time: Option<i64>,
    builders: Vec<KindBatchBuilder>,
    dead: DeadLetterBuilder,
    traces: TraceCollector,
}

impl Decode {
    pub fn new(node: &str, bounds: TimeBounds, out_of_orderness_us: i64) -> Self {
        // The dead-letter and idle-tick series exist from the start (0, not
        // absent).
        let _ = metrics().dead_letters.get_or_create(&DeadLetterLabels {
            node: node.to_string(),
            stage: STAGE.to_string(),
        });
        let _ = metrics().idle_ticks.get_or_create(&NodeLabels {
            node: node.to_string(),
        });
        Self {
            node: node.to_string(),
            bounds,
            out_of_orderness_us,
            max_event_time: None,
            builders: EventKind::ALL
                .iter()
                .map(|k| KindBatchBuilder::new(*k))
                .collect(),
            dead: DeadLetterBuilder::default(),
            traces: TraceCollector::default(),
        }
    }

    fn decode(&mut self, raw: &RecordBatch) -> Result<(), DecodeError> {
        let col = |name: &'static str| raw.column_by_name(name).ok_or(DecodeError::BadColumn(name));
        let payload = col("payload")?
            .as_binary_opt::<i32>()
            .ok_or(DecodeError::BadColumn("payload"))?;
        let ingest = col("ingest_time")?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or(DecodeError::BadColumn("ingest_time"))?;
        let topic = col("source_topic")?
            .as_string_opt::<i32>()
            .ok_or(DecodeError::BadColumn("source_topic"))?;
        let partition = col("source_partition")?
            .as_primitive_opt::<Int32Type>()
            .ok_or(DecodeError::BadColumn("source_partition"))?;
        let offset = col("source_offset")?
            .as_primitive_opt::<Int64Type>()
            .ok_or(DecodeError::BadColumn("source_offset"))?;
        let mut rejected = 0u64;
        for i in 0..raw.num_rows() {
            let bytes = payload.value(i);
            let ingest_us = ingest.value(i);
            if is_idle_tick(bytes) {
                // Nothing older than the tick is still on its way: its time
                // counts as an event time for the watermark, and nothing else.
                self.max_event_time =
                    Some(self.max_event_time.map_or(ingest_us, |m| m.max(ingest_us)));
                metrics()
                    .idle_ticks
                    .get_or_create(&NodeLabels {
                        node: self.node.clone(),
                    })
                    .inc();
                continue;
            }
            let pos = SourcePosition {
                topic: topic.value(i),
                partition: partition.value(i),
                offset: offset.value(i),
            };
            match parse_event(bytes, ingest_us, &self.bounds) {
                Ok(ev) => {
                    self.max_event_time = Some(
                        self.max_event_time
                            .map_or(ev.event_time_us, |m| m.max(ev.event_time_us)),
                    );
                    if let Some(tp) = &ev.traceparent {
                        self.traces.add(tp);
                    }
                    self.builders[ev.kind as usize].append(&ev, ingest_us, &pos);
                }
                Err(e) => {
                    let (tenant, id) = peek_ids(bytes);
                    let reason = e.to_string();
                    self.dead.append(
                        &DeadLetter {
                            raw: bytes,
                            reason: &reason,
                            stage: STAGE,
                            tenant_id: tenant.as_deref(),
                            event_id: id.as_deref(),
                        },
                        ingest_us,
                        &pos,
                    );
                    rejected += 1;
                }
            }
        }
        if rejected > 0 {
            metrics()
                .dead_letters
                .get_or_create(&DeadLetterLabels {
                    node: self.node.clone(),
                    stage: STAGE.to_string(),
                })
                .inc_by(rejected);
        }
        Ok(())
    }
}

#[async_trait]
impl Operator for Decode {
    fn outputs(&self) -> &'static [&'static str] {
        &[OUT, DEAD_LETTERS]
    }

    async fn process(&mut self, batch: Batch, out: &mut Emitter) -> Result<(), NodeError> {
        if batch.table != RAW_TABLE {
            return Err(DecodeError::UnexpectedTable(batch.table).into());
        }
        self.decode(&batch.rows)?;
        let trace = self.traces.finish();
        for b in &mut self.builders {
            if !b.is_empty() {
                let table = b.kind().table();
                out.emit(
                    OUT,
                    Batch::new(table, b.finish()?).with_trace(trace.clone()),
                );
            }
        }
        if !self.dead.is_empty() {
            out.emit(
                DEAD_LETTERS,
                Batch::new(DEAD_LETTERS_TABLE, self.dead.finish()?),
            );
        }
        if let Some(max) = self.max_event_time {
            out.watermark(max - self.out_of_orderness_us);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn raw_batch(records: &[&[u8]], ingest_us: i64) -> Batch {
        let rows = somaflow_pipeline::events::raw_rows("log", 0, records, 0, ingest_us).unwrap();
        Batch::new(RAW_TABLE, rows)
    }

    #[tokio::test]
    async fn splits_kinds_and_isolates_bad_records() {
        let now = chrono::Utc::now();
        let mut g = sample_events(now);
        g.push(b"{not json".to_vec());
        let refs: Vec<&[u8]> = g.iter().map(|v| v.as_slice()).collect();
        let mut op = Decode::new("decode", TimeBounds::default(), 5_000_000);
        let mut out = Emitter::default();
        op.process(raw_batch(&refs, now.timestamp_micros()), &mut out)
            .await
            .unwrap();
        let emitted: Vec<_> = out.take();
        let tables: Vec<_> = emitted
            .iter()
            .map(|(o, b)| (*o, b.table, b.num_rows()))
            .collect();
        assert!(tables.contains(&(OUT, "conversations", 2)), "{tables:?}");
        assert!(tables.contains(&(OUT, "billing_events", 1)), "{tables:?}");
        let dead = emitted.iter().find(|(o, _)| *o == DEAD_LETTERS).unwrap();
        assert_eq!(dead.1.num_rows(), 1);
        let reason = dead
            .1
            .rows
            .column_by_name("reason")
            .unwrap()
            .as_string::<i32>()
            .value(0)
            .to_string();
        assert!(reason.starts_with("malformed JSON"), "{reason}");
        assert_eq!(
            dead.1
                .rows
                .column_by_name("raw")
                .unwrap()
                .as_binary::<i32>()
                .value(0),
            b"{not json"
        );
    }

    fn sample_events(now: chrono::DateTime<chrono::Utc>) -> Vec<Vec<u8>> {
        let t = now.to_rfc3339();
        let conv = |id: &str| {
            format!(
                r#"{{"specversion":"1.0","id":"{id}","source":"s","type":"soma.conversation.v1","time":"{t}","tenantid":"t1","data":{{"user_id":"u","session_id":"s","provider":"openai","model":"gpt-4o","input_tokens":10,"output_tokens":5,"cached_input_tokens":0,"reasoning_tokens":0,"latency_ms":3,"status":"ok"}}}}"#
            )
        };
        let bill = format!(
            r#"{{"specversion":"1.0","id":"b1","source":"s","type":"soma.billing.v1","time":"{t}","tenantid":"t1","data":{{"meter":"egress_gb","quantity":"1.25","unit":"GB"}}}}"#
        );
        vec![
            conv("a").into_bytes(),
            conv("b").into_bytes(),
            bill.into_bytes(),
        ]
    }
}
