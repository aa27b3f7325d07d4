//! Columnar builders: valid events and dead letters appended row by row,
//! finished into Arrow record batches.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, Decimal128Builder, Float64Builder, Int32Builder, Int64Builder,
    RecordBatch, StringBuilder, TimestampMicrosecondBuilder, new_null_array,
};
use datafusion::arrow::error::ArrowError;

use super::decimal::{DECIMAL_PRECISION, DECIMAL_SCALE};
use super::envelope::ParsedEvent;
use super::fields::{FieldType, FieldValue};
use super::kinds::EventKind;
use super::schema::{dead_letter_schema, kind_schema};

/// Where a record was read from: topic (or `log`), partition, offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourcePosition<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
}

enum Column {
    Str(StringBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Decimal(Decimal128Builder),
}

impl Column {
    fn new(ty: FieldType) -> Column {
        match ty {
            FieldType::Count | FieldType::OptCount | FieldType::Int => {
                Column::Int(Int64Builder::new())
            }
            FieldType::OptFloat => Column::Float(Float64Builder::new()),
            FieldType::Decimal | FieldType::OptDecimal => Column::Decimal(Decimal128Builder::new()),
            _ => Column::Str(StringBuilder::new()),
        }
    }

    fn append(&mut self, v: &FieldValue<'_>) {
        match (self, v) {
            (Column::Str(b), FieldValue::Str(s)) => b.append_value(s),
            (Column::Int(b), FieldValue::Int(i)) => b.append_value(*i),
            (Column::Float(b), FieldValue::Float(f)) => b.append_value(*f),
            (Column::Float(b), FieldValue::Int(i)) => b.append_value(*i as f64),
            (Column::Decimal(b), FieldValue::Decimal(d)) => b.append_value(*d),
            (Column::Str(b), _) => b.append_null(),
            (Column::Int(b), _) => b.append_null(),
            (Column::Float(b), _) => b.append_null(),
            (Column::Decimal(b), _) => b.append_null(),
        }
    }

    fn finish(&mut self) -> Result<ArrayRef, ArrowError> {
        Ok(match self {
            Column::Str(b) => Arc::new(b.finish()),
            Column::Int(b) => Arc::new(b.finish()),
            Column::Float(b) => Arc::new(b.finish()),
            Column::Decimal(b) => Arc::new(
                b.finish()
                    .with_precision_and_scale(DECIMAL_PRECISION, DECIMAL_SCALE)?,
            ),
        })
    }
}

/// Envelope and position columns shared by every table.
struct Provenance {
    topic: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    ingest_time: TimestampMicrosecondBuilder,
}

impl Provenance {
    fn new() -> Self {
        Self {
            topic: StringBuilder::new(),
            partition: Int32Builder::new(),
            offset: Int64Builder::new(),
            ingest_time: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
        }
    }

    fn append(&mut self, ingest_time_us: i64, pos: &SourcePosition<'_>) {
        self.topic.append_value(pos.topic);
        self.partition.append_value(pos.partition);
        self.offset.append_value(pos.offset);
        self.ingest_time.append_value(ingest_time_us);
    }
}

/// Rows of one kind, ready to become a [`RecordBatch`] of [`kind_schema`].
pub struct KindBatchBuilder {
    kind: EventKind,
    event_id: StringBuilder,
    tenant_id: StringBuilder,
    source: StringBuilder,
    event_time: TimestampMicrosecondBuilder,
    provenance: Provenance,
    data: Vec<Column>,
    rows: usize,
}

impl KindBatchBuilder {
    pub fn new(kind: EventKind) -> Self {
        Self {
            kind,
            event_id: StringBuilder::new(),
            tenant_id: StringBuilder::new(),
            source: StringBuilder::new(),
            event_time: TimestampMicrosecondBuilder::new().with_timezone("UTC"),
            provenance: Provenance::new(),
            data: kind.fields().iter().map(|f| Column::new(f.ty)).collect(),
            rows: 0,
        }
    }

    pub fn kind(&self) -> EventKind {
        self.kind
    }

    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn append(&mut self, ev: &ParsedEvent<'_>, ingest_time_us: i64, pos: &SourcePosition<'_>) {
        debug_assert_eq!(ev.kind, self.kind);
        self.event_id.append_value(&ev.id);
        self.tenant_id.append_value(&ev.tenant_id);
        self.source.append_value(&ev.source);
        self.event_time.append_value(ev.event_time_us);
        self.provenance.append(ingest_time_us, pos);
        for (col, v) in self.data.iter_mut().zip(&ev.data) {
            col.append(v);
        }
        self.rows += 1;
    }

    /// Takes the rows built so far as a batch; the builder starts empty again.
    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let p = &mut self.provenance;
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.event_id.finish()),
            Arc::new(self.tenant_id.finish()),
            Arc::new(self.source.finish()),
            Arc::new(self.event_time.finish()),
            Arc::new(p.ingest_time.finish()),
            Arc::new(p.topic.finish()),
            Arc::new(p.partition.finish()),
            Arc::new(p.offset.finish()),
        ];
        for col in &mut self.data {
            columns.push(col.finish()?);
        }
        let schema = kind_schema(self.kind);
        // Derived columns start null; the platform operators fill them.
        for field in &schema.fields()[columns.len()..] {
            columns.push(new_null_array(field.data_type(), self.rows));
        }
        self.rows = 0;
        RecordBatch::try_new(schema, columns)
    }
}

/// Rows of the dead-letter table.
pub struct DeadLetterBuilder {
    tenant_id: StringBuilder,
    event_id: StringBuilder,
    stage: StringBuilder,
    reason: StringBuilder,
    raw: BinaryBuilder,
    provenance: Provenance,
    rows: usize,
}

impl Default for DeadLetterBuilder {
    fn default() -> Self {
        Self {
            tenant_id: StringBuilder::new(),
            event_id: StringBuilder::new(),
            stage: StringBuilder::new(),
            reason: StringBuilder::new(),
            raw: BinaryBuilder::new(),
            provenance: Provenance::new(),
            rows: 0,
        }
    }
}

/// One dead letter: the raw record, why it failed, and which stage refused it.
pub struct DeadLetter<'a> {
    pub raw: &'a [u8],
    pub reason: &'a str,
    pub stage: &'a str,
    pub tenant_id: Option<&'a str>,
    pub event_id: Option<&'a str>,
}

impl DeadLetterBuilder {
    pub fn len(&self) -> usize {
        self.rows
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    pub fn append(&mut self, dl: &DeadLetter<'_>, ingest_time_us: i64, pos: &SourcePosition<'_>) {
        self.tenant_id.append_option(dl.tenant_id);
        self.event_id.append_option(dl.event_id);
        self.stage.append_value(dl.stage);
        self.reason.append_value(dl.reason);
        self.raw.append_value(dl.raw);
        self.provenance.append(ingest_time_us, pos);
        self.rows += 1;
    }

    pub fn finish(&mut self) -> Result<RecordBatch, ArrowError> {
        let p = &mut self.provenance;
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.tenant_id.finish()),
            Arc::new(self.event_id.finish()),
            Arc::new(self.stage.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.raw.finish()),
            Arc::new(p.ingest_time.finish()),
            Arc::new(p.topic.finish()),
            Arc::new(p.partition.finish()),
            Arc::new(p.offset.finish()),
        ];
        self.rows = 0;
        RecordBatch::try_new(dead_letter_schema(), columns)
    }
}
