//! Merging lake files, each sorted by `(tenant_id, time)`, into one sorted
//! file while holding only a few rows of each: a k-way merge over one batch
//! per input, written as it goes. A merge's memory is then bounded by
//! `lake.compaction_memory_mib` of decoded rows however large its files are
//! (rows of 8 KiB messages compress a hundredfold, so a file's size says
//! little about what decoding it takes).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::compute::interleave_record_batch;
use datafusion::arrow::datatypes::{SchemaRef, TimestampMicrosecondType};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::{
    ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use datafusion::parquet::file::properties::WriterProperties;

use super::ParquetSinkError;

const MAX_BATCH_ROWS: usize = 8192;

/// One input: its reader and the row it is at.
struct Cursor {
    reader: ParquetRecordBatchReader,
    batch: RecordBatch,
    row: usize,
    /// Index of `batch` in the batches the pending output refers to.
    slot: usize,
    done: bool,
}

/// The sort key of a row: tenant (nulls first), then time.
type Key = (Option<String>, i64);

fn key(batch: &RecordBatch, row: usize, tenant: Option<usize>, time: Option<usize>) -> Key {
    let tenant = tenant.and_then(|i| {
        let c = batch.column(i).as_string_opt::<i32>()?;
        c.is_valid(row).then(|| c.value(row).to_string())
    });
    let time = time
        .and_then(|i| {
            let c = batch
                .column(i)
                .as_primitive_opt::<TimestampMicrosecondType>()?;
            c.is_valid(row).then(|| c.value(row))
        })
        .unwrap_or(i64::MIN);
    (tenant, time)
}

/// The next non-empty batch of `reader`.
fn next_batch(
    reader: &mut ParquetRecordBatchReader,
) -> Result<Option<RecordBatch>, ParquetSinkError> {
    for batch in reader.by_ref() {
        let batch = batch?;
        if batch.num_rows() > 0 {
            return Ok(Some(batch));
        }
    }
    Ok(None)
}

/// Rows per batch so that one batch of every input fits the memory bound.
/// A row's decoded size is measured on a few rows of each file: Parquet's
/// own "uncompressed" sizes are of dictionary-encoded data, which for a
/// repeated 8 KiB message is a few bytes a row.
fn batch_rows(files: &[Bytes], memory_bytes: usize) -> Result<usize, ParquetSinkError> {
    const SAMPLE_ROWS: usize = 16;
    let mut row_bytes = 1usize;
    for file in files {
        let mut sample = ParquetRecordBatchReaderBuilder::try_new(file.clone())?
            .with_batch_size(SAMPLE_ROWS)
            .build()?;
        if let Some(batch) = next_batch(&mut sample)? {
            row_bytes = row_bytes.max(batch.get_array_memory_size() / batch.num_rows());
        }
    }
    let per_input = memory_bytes / files.len().max(1) / row_bytes;
    Ok(per_input.clamp(16, MAX_BATCH_ROWS))
}

/// Writes the rows of `files` (same schema, each sorted by `tenant_id`
/// then `time_column`) sorted into one Parquet file; returns it and its rows.
pub fn merge_sorted(
    files: &[Bytes],
    schema: SchemaRef,
    time_column: &str,
    props: &Arc<WriterProperties>,
    memory_bytes: usize,
) -> Result<(Bytes, u64), ParquetSinkError> {
    let rows_per_batch = batch_rows(files, memory_bytes)?;
    let tenant = schema.index_of("tenant_id").ok();
    let time = schema.index_of(time_column).ok();
    let mut slots: Vec<RecordBatch> = Vec::new();
    let mut cursors: Vec<Cursor> = Vec::new();
    let mut heap: BinaryHeap<Reverse<(Key, usize)>> = BinaryHeap::new();
    for file in files {
        let mut reader = ParquetRecordBatchReaderBuilder::try_new(file.clone())?
            .with_batch_size(rows_per_batch)
            .build()?;
        if let Some(batch) = next_batch(&mut reader)? {
            heap.push(Reverse((key(&batch, 0, tenant, time), cursors.len())));
            slots.push(batch.clone());
            cursors.push(Cursor {
                reader,
                batch,
                row: 0,
                slot: slots.len() - 1,
                done: false,
            });
        }
    }
    let mut out = Vec::new();
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some((**props).clone()))?;
    let mut positions: Vec<(usize, usize)> = Vec::with_capacity(rows_per_batch);
    let mut written = 0u64;
    while let Some(Reverse((_, i))) = heap.pop() {
        let c = &mut cursors[i];
        positions.push((c.slot, c.row));
        c.row += 1;
        if c.row == c.batch.num_rows() {
            match next_batch(&mut c.reader)? {
                Some(batch) => {
                    slots.push(batch.clone());
                    c.batch = batch;
                    c.row = 0;
                    c.slot = slots.len() - 1;
                }
                None => {
                    c.done = true;
                    continue;
                }
            }
        }
        heap.push(Reverse((key(&c.batch, c.row, tenant, time), i)));
        if positions.len() >= rows_per_batch {
            written += flush(&mut writer, &mut slots, &mut positions, &mut cursors)?;
        }
    }
    written += flush(&mut writer, &mut slots, &mut positions, &mut cursors)?;
    writer.close()?;
    Ok((Bytes::from(out), written))
}

/// Writes the pending rows, then keeps only the batches cursors still read.
fn flush(
    writer: &mut ArrowWriter<&mut Vec<u8>>,
    slots: &mut Vec<RecordBatch>,
    positions: &mut Vec<(usize, usize)>,
    cursors: &mut [Cursor],
) -> Result<u64, ParquetSinkError> {
    if positions.is_empty() {
        return Ok(0);
    }
    let refs: Vec<&RecordBatch> = slots.iter().collect();
    let chunk = interleave_record_batch(&refs, positions)?;
    writer.write(&chunk)?;
    let n = positions.len() as u64;
    positions.clear();
    slots.clear();
    for c in cursors.iter_mut().filter(|c| !c.done) {
        slots.push(c.batch.clone());
        c.slot = slots.len() - 1;
    }
    Ok(n)
}
