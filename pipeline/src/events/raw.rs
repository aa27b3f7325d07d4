//! Raw batches: undecoded records of one shard (a topic partition) as a
//! source reads them, in [`raw_schema`] order. The embedded log's source,
//! the Kafka feed, benchmarks and tests all build them here.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryBuilder, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::error::ArrowError;

use super::schema::raw_schema;

/// Collects one shard's records, then makes their [`RecordBatch`].
pub struct RawBatchBuilder {
    topic: String,
    partition: i32,
    payload: BinaryBuilder,
    ingest_us: Vec<i64>,
    offsets: Vec<i64>,
}

impl RawBatchBuilder {
    pub fn new(topic: &str, partition: i32) -> Self {
        Self::with_capacity(topic, partition, 0, 0)
    }

    /// Room for `records` records of `bytes` payload bytes in all.
    pub fn with_capacity(topic: &str, partition: i32, records: usize, bytes: usize) -> Self {
        Self {
            topic: topic.to_string(),
            partition,
            payload: BinaryBuilder::with_capacity(records, bytes),
            ingest_us: Vec::with_capacity(records),
            offsets: Vec::with_capacity(records),
        }
    }

    pub fn append(&mut self, payload: &[u8], ingest_us: i64, offset: i64) {
        self.payload.append_value(payload);
        self.ingest_us.push(ingest_us);
        self.offsets.push(offset);
    }

    pub fn len(&self) -> usize {
        self.offsets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// The offsets appended so far, in order.
    pub fn offsets(&self) -> &[i64] {
        &self.offsets
    }

    /// The offset of the newest record appended.
    pub fn last_offset(&self) -> Option<i64> {
        self.offsets.last().copied()
    }

    pub fn topic(&self) -> &str {
        &self.topic
    }

    pub fn partition(&self) -> i32 {
        self.partition
    }

    pub fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let n = self.offsets.len();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(self.payload.finish()),
            Arc::new(TimestampMicrosecondArray::from(self.ingest_us).with_timezone("UTC")),
            Arc::new(StringArray::from_iter_values(std::iter::repeat_n(
                &self.topic,
                n,
            ))),
            Arc::new(Int32Array::from(vec![self.partition; n])),
            Arc::new(Int64Array::from(self.offsets)),
        ];
        RecordBatch::try_new(raw_schema(), columns)
    }
}

/// The rows of `records` of `topic@partition` at consecutive offsets from
/// `first_offset`, all ingested at `ingest_us`, as a source reads them.
pub fn raw_rows<R: AsRef<[u8]>>(
    topic: &str,
    partition: i32,
    records: impl IntoIterator<Item = R>,
    first_offset: i64,
    ingest_us: i64,
) -> Result<RecordBatch, ArrowError> {
    let mut builder = RawBatchBuilder::new(topic, partition);
    for (offset, record) in (first_offset..).zip(records) {
        builder.append(record.as_ref(), ingest_us, offset);
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Int64Type;

    use super::*;

    #[test]
    fn offsets_follow_the_first_and_every_column_is_filled() {
        let rows = &raw_rows("log", 0, [b"a".as_slice(), b"bc"], 40, 7).unwrap();
        assert_eq!(rows.num_rows(), 2);
        let offsets = rows.column(4).as_primitive::<Int64Type>();
        assert_eq!((offsets.value(0), offsets.value(1)), (40, 41));
        assert_eq!(rows.column(0).as_binary::<i32>().value(1), b"bc");
        assert_eq!(rows.column(2).as_string::<i32>().value(0), "log");
    }
}
