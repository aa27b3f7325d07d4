//! What flows on the edges of a dataflow graph.

use datafusion::arrow::array::RecordBatch;

use super::trace::BatchTrace;

/// Rows of one table. `table` names the kind's table, the raw record table or
/// the dead-letter table, so one edge can carry several kinds.
#[derive(Debug, Clone)]
pub struct Batch {
    pub table: &'static str,
    pub rows: RecordBatch,
    /// The producers' trace contexts of these rows (see [`BatchTrace`]).
    pub trace: BatchTrace,
}

impl Batch {
    pub fn new(table: &'static str, rows: RecordBatch) -> Self {
        Self {
            table,
            rows,
            trace: BatchTrace::default(),
        }
    }

    /// The same rows, carrying the producers' trace contexts.
    pub fn with_trace(mut self, trace: BatchTrace) -> Self {
        self.trace = trace;
        self
    }

    pub fn num_rows(&self) -> usize {
        self.rows.num_rows()
    }
}

/// Event-time watermark: no row with an earlier event time (µs) is expected.
pub type Watermark = i64;

/// A message between two tasks.
#[derive(Debug, Clone)]
pub enum Message {
    Batch(Batch),
    Watermark(Watermark),
    /// Checkpoint barrier: everything before it belongs to this epoch.
    Barrier(u64),
    /// No more messages will follow.
    Stop,
}

impl Message {
    /// Rows the message holds; what a row-counted channel charges for it.
    pub fn rows(&self) -> usize {
        match self {
            Message::Batch(b) => b.num_rows(),
            _ => 0,
        }
    }
}
