//! Encoding one lake file: rows sorted by `(tenant_id, time)`, zstd, page
//! statistics and indexes, a bloom filter on `tenant_id`.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::compute::{
    SortColumn, SortOptions, concat, interleave_record_batch, lexsort_to_indices,
};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;

use super::ParquetSinkError;

pub fn writer_properties(row_group_rows: usize) -> Result<Arc<WriterProperties>, ParquetSinkError> {
    Ok(Arc::new(
        WriterProperties::builder()
            .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
            .set_max_row_group_row_count(Some(row_group_rows))
            .set_statistics_enabled(EnabledStatistics::Page)
            .set_data_page_row_count_limit(20_000)
            .set_column_bloom_filter_enabled(ColumnPath::from("tenant_id"), true)
            .set_column_bloom_filter_fpp(ColumnPath::from("tenant_id"), 0.01)
            .build(),
    ))
}

/// Sorts by `(tenant_id, time_column)` and encodes as Parquet.
///
/// Only the two key columns are concatenated to find the order; the rows are
/// then gathered once with `interleave`, so the buffer is copied once, not
/// twice (concat + take) — this is the sink's peak memory.
pub fn encode(
    batches: &[RecordBatch],
    time_column: &str,
    props: &Arc<WriterProperties>,
) -> Result<Bytes, ParquetSinkError> {
    let Some(first) = batches.first() else {
        return Ok(Bytes::new());
    };
    let schema = first.schema();
    let mut keys = Vec::new();
    for name in ["tenant_id", time_column] {
        let Ok(index) = schema.index_of(name) else {
            continue;
        };
        let parts: Vec<&dyn Array> = batches.iter().map(|b| b.column(index).as_ref()).collect();
        keys.push(SortColumn {
            values: concat(&parts)?,
            options: Some(SortOptions {
                descending: false,
                nulls_first: true,
            }),
        });
    }
    let order = lexsort_to_indices(&keys, None)?;
    let mut locate = Vec::with_capacity(batches.iter().map(RecordBatch::num_rows).sum());
    for (b, batch) in batches.iter().enumerate() {
        locate.extend((0..batch.num_rows()).map(|r| (b, r)));
    }
    let positions: Vec<(usize, usize)> =
        order.values().iter().map(|i| locate[*i as usize]).collect();
    drop(locate);
    let refs: Vec<&RecordBatch> = batches.iter().collect();
    let sorted = interleave_record_batch(&refs, &positions)?;
    let mut out = Vec::with_capacity(sorted.get_array_memory_size() / 4);
    let mut writer = ArrowWriter::try_new(&mut out, schema, Some((**props).clone()))?;
    writer.write(&sorted)?;
    writer.close()?;
    Ok(Bytes::from(out))
}
