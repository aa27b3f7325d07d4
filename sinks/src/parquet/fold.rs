//! Folding `usage_1m` rows as the compactor merges them: rows of one
//! window and group (tenant × model × provider × capsule) become one row
//! holding their sums. The window operator sends a row per open window and
//! group at every checkpoint, and more for late events; readers sum a
//! window's rows, so folding changes no answer, only how many rows there are
//! to sum. The folded row keeps the smallest `row_id` of its rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Int64Type, TimestampMicrosecondType};
use datafusion::arrow::error::ArrowError;
use somaflow_pipeline::events::schema::usage_schema;

/// Columns 5–8 and 10–12 of `usage_1m`: the counts summed.
const COUNTS: [usize; 7] = [5, 6, 7, 8, 10, 11, 12];
const COST: usize = 9;
const ROW_ID: usize = 13;

/// One window and group.
type Key = (String, i64, String, String, String);

#[derive(Default)]
struct Sums {
    counts: [i64; COUNTS.len()],
    cost: i128,
    row_id: Option<String>,
}

/// `batches` (rows of `usage_1m`) with each window and group's rows folded
/// into one; `None` when the rows are not in the current `usage_1m` layout
/// (files of an older version), which are then merged unfolded.
pub fn fold_usage(batches: &[RecordBatch]) -> Result<Option<RecordBatch>, ArrowError> {
    let schema = usage_schema();
    if batches
        .iter()
        .any(|b| b.schema().fields() != schema.fields())
    {
        return Ok(None);
    }
    let mut groups: BTreeMap<Key, Sums> = BTreeMap::new();
    for batch in batches {
        let text = |i: usize| batch.column(i).as_string::<i32>();
        let (tenant, model, provider, capsule) = (text(0), text(2), text(3), text(4));
        let start = batch.column(1).as_primitive::<TimestampMicrosecondType>();
        let counts: Vec<&Int64Array> = COUNTS
            .iter()
            .map(|i| batch.column(*i).as_primitive::<Int64Type>())
            .collect();
        let cost = batch.column(COST).as_primitive::<Decimal128Type>();
        let row_id = text(ROW_ID);
        for r in 0..batch.num_rows() {
            let key = (
                tenant.value(r).to_string(),
                start.value(r),
                model.value(r).to_string(),
                provider.value(r).to_string(),
                capsule.value(r).to_string(),
            );
            let sums = groups.entry(key).or_default();
            for (sum, column) in sums.counts.iter_mut().zip(&counts) {
                *sum += column.value(r);
            }
            sums.cost += cost.value(r);
            let id = row_id.value(r);
            if sums.row_id.as_deref().is_none_or(|kept| id < kept) {
                sums.row_id = Some(id.to_string());
            }
        }
    }
    let (tz, (precision, scale)) =
        match (schema.field(1).data_type(), schema.field(COST).data_type()) {
            (DataType::Timestamp(_, tz), DataType::Decimal128(p, s)) => (tz.clone(), (*p, *s)),
            _ => return Ok(None),
        };
    let keys: Vec<&Key> = groups.keys().collect();
    let text = |f: fn(&Key) -> &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(keys.iter().map(|k| f(k))))
    };
    let mut columns: Vec<ArrayRef> = vec![
        text(|k| &k.0),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(keys.iter().map(|k| k.1))
                .with_timezone_opt(tz),
        ),
        text(|k| &k.2),
        text(|k| &k.3),
        text(|k| &k.4),
    ];
    let count = |c: usize| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(
            groups.values().map(|s| s.counts[c]),
        ))
    };
    columns.extend((0..4).map(count));
    columns.push(Arc::new(
        Decimal128Array::from_iter_values(groups.values().map(|s| s.cost))
            .with_precision_and_scale(precision, scale)?,
    ));
    columns.extend((4..7).map(count));
    columns.push(Arc::new(StringArray::from_iter_values(
        groups
            .values()
            .map(|s| s.row_id.clone().unwrap_or_default()),
    )));
    debug_assert!(columns.iter().all(|c| c.len() == groups.len()));
    Ok(Some(RecordBatch::try_new(schema, columns)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Tenant, window start, model, input tokens, cost (nano-USD), row id.
    type Row = (&'static str, i64, &'static str, i64, i128, &'static str);

    fn rows(rows: &[Row]) -> RecordBatch {
        let schema = usage_schema();
        let (precision, scale) = match schema.field(COST).data_type() {
            DataType::Decimal128(p, s) => (*p, *s),
            other => panic!("{other}"),
        };
        let s = |f: fn(&Row) -> &'static str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(rows.iter().map(f)))
        };
        let n = |v: i64| -> ArrayRef { Arc::new(Int64Array::from(vec![v; rows.len()])) };
        let columns: Vec<ArrayRef> = vec![
            s(|r| r.0),
            Arc::new(
                TimestampMicrosecondArray::from_iter_values(rows.iter().map(|r| r.1))
                    .with_timezone("UTC"),
            ),
            s(|r| r.2),
            s(|_| "openai"),
            s(|_| ""),
            Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.3))),
            n(0),
            n(0),
            n(0),
            Arc::new(
                Decimal128Array::from_iter_values(rows.iter().map(|r| r.4))
                    .with_precision_and_scale(precision, scale)
                    .unwrap(),
            ),
            n(1),
            n(0),
            n(0),
            s(|r| r.5),
        ];
        RecordBatch::try_new(schema, columns).unwrap()
    }

    #[test]
    fn rows_of_one_window_and_group_become_their_sum() {
        let a = rows(&[
            ("t1", 0, "gpt", 5, 100, "s#3"),
            ("t1", 60, "gpt", 1, 1, "s#4"),
        ]);
        let b = rows(&[
            ("t1", 0, "gpt", 7, 20, "s#1"),
            ("t2", 0, "gpt", 2, 2, "s#2"),
        ]);
        let folded = fold_usage(&[a, b]).unwrap().unwrap();
        assert_eq!(folded.num_rows(), 3);
        let tokens = folded.column(5).as_primitive::<Int64Type>();
        let requests = folded.column(10).as_primitive::<Int64Type>();
        let cost = folded.column(COST).as_primitive::<Decimal128Type>();
        let ids = folded.column(ROW_ID).as_string::<i32>();
        // (t1, 0) first: 5 + 7 tokens, 2 requests, exact cost, the smaller id.
        assert_eq!(
            (tokens.value(0), requests.value(0), cost.value(0)),
            (12, 2, 120)
        );
        assert_eq!(ids.value(0), "s#1");
        assert_eq!((tokens.value(1), ids.value(1)), (1, "s#4"));
        assert_eq!((tokens.value(2), ids.value(2)), (2, "s#2"));
    }
}
