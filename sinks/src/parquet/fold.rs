//! Folding additive rows as the compactor merges them: `usage_1m` and the
//! rollups (`rollup_1h`, `rollup_1d`, `activity_1h`, `activity_1d`). Rows with equal text columns and
//! window (tenant × window × model × … ) become one row holding the sums of
//! their number columns. The window operator sends a row per open window
//! and group at every checkpoint, and more for late events; readers sum a
//! window's rows, so folding changes no answer, only how many rows there are
//! to sum. The folded row keeps the smallest `row_id` of its rows.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{
    DataType, Decimal128Type, Int64Type, SchemaRef, TimeUnit, TimestampMicrosecondType,
};
use datafusion::arrow::error::ArrowError;
use somaflow_pipeline::events::schema::{USAGE_TABLE, is_rollup, table_schema, usage_schema};

const ROW_ID: &str = "row_id";

/// What each column of a folded table is.
#[derive(Clone, Copy, PartialEq)]
enum Role {
    /// Text of the group key.
    Key,
    /// The window's start.
    Window,
    Count,
    Money,
    RowId,
}

fn roles(schema: &SchemaRef) -> Option<Vec<Role>> {
    schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 if f.name() == ROW_ID => Some(Role::RowId),
            DataType::Utf8 => Some(Role::Key),
            DataType::Timestamp(TimeUnit::Microsecond, _) => Some(Role::Window),
            DataType::Int64 => Some(Role::Count),
            DataType::Decimal128(_, _) => Some(Role::Money),
            _ => None,
        })
        .collect()
}

/// The current layout of a table whose rows fold, if `table` is one.
pub fn folded_schema(table: &str) -> Option<SchemaRef> {
    if table == USAGE_TABLE {
        Some(usage_schema())
    } else if is_rollup(table) {
        table_schema(table)
    } else {
        None
    }
}

/// One window and group: its key texts and start.
type Key = (Vec<String>, i64);

#[derive(Default)]
struct Sums {
    counts: Vec<i64>,
    money: Vec<i128>,
    row_id: Option<String>,
}

/// `batches` (rows of `schema`, a table [`folded_schema`] names) with each
/// window and group's rows folded into one; `None` when the rows are not in
/// that layout (files of an older version), which are then merged unfolded.
pub fn fold_rows(
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<Option<RecordBatch>, ArrowError> {
    let Some(roles) = roles(schema) else {
        return Ok(None);
    };
    if batches
        .iter()
        .any(|b| b.schema().fields() != schema.fields())
        || roles.iter().filter(|r| **r == Role::Window).count() != 1
    {
        return Ok(None);
    }
    let of =
        |role: Role| -> Vec<usize> { (0..roles.len()).filter(|i| roles[*i] == role).collect() };
    let (keys, counts, money) = (of(Role::Key), of(Role::Count), of(Role::Money));
    let (window, row_id) = (of(Role::Window)[0], of(Role::RowId).first().copied());
    let mut groups: BTreeMap<Key, Sums> = BTreeMap::new();
    for batch in batches {
        let texts: Vec<&StringArray> = keys.iter().map(|i| batch.column(*i).as_string()).collect();
        let start = batch
            .column(window)
            .as_primitive::<TimestampMicrosecondType>();
        let count_columns: Vec<&Int64Array> = counts
            .iter()
            .map(|i| batch.column(*i).as_primitive::<Int64Type>())
            .collect();
        let money_columns: Vec<&Decimal128Array> = money
            .iter()
            .map(|i| batch.column(*i).as_primitive::<Decimal128Type>())
            .collect();
        let ids = row_id.map(|i| batch.column(i).as_string::<i32>());
        for r in 0..batch.num_rows() {
            // A null key (a nullable column a writer left empty) folds as
            // '' and a null count as 0, as readers take them.
            let key = (
                texts
                    .iter()
                    .map(|c| if c.is_valid(r) { c.value(r) } else { "" }.to_string())
                    .collect(),
                start.value(r),
            );
            let sums = groups.entry(key).or_insert_with(|| Sums {
                counts: vec![0; counts.len()],
                money: vec![0; money.len()],
                row_id: None,
            });
            for (sum, column) in sums.counts.iter_mut().zip(&count_columns) {
                if column.is_valid(r) {
                    *sum += column.value(r);
                }
            }
            for (sum, column) in sums.money.iter_mut().zip(&money_columns) {
                *sum += column.value(r);
            }
            if let Some(ids) = ids {
                let id = ids.value(r);
                if sums.row_id.as_deref().is_none_or(|kept| id < kept) {
                    sums.row_id = Some(id.to_string());
                }
            }
        }
    }
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(roles.len());
    let (mut key_ix, mut count_ix, mut money_ix) = (0, 0, 0);
    for (field, role) in schema.fields().iter().zip(&roles) {
        let column: ArrayRef = match role {
            Role::Key => {
                let k = key_ix;
                key_ix += 1;
                Arc::new(StringArray::from_iter_values(
                    groups.keys().map(|key| key.0[k].as_str()),
                ))
            }
            Role::Window => {
                let tz = match field.data_type() {
                    DataType::Timestamp(_, tz) => tz.clone(),
                    _ => None,
                };
                Arc::new(
                    TimestampMicrosecondArray::from_iter_values(groups.keys().map(|k| k.1))
                        .with_timezone_opt(tz),
                )
            }
            Role::Count => {
                let c = count_ix;
                count_ix += 1;
                Arc::new(Int64Array::from_iter_values(
                    groups.values().map(|s| s.counts[c]),
                ))
            }
            Role::Money => {
                let (precision, scale) = match field.data_type() {
                    DataType::Decimal128(p, s) => (*p, *s),
                    _ => return Ok(None),
                };
                let m = money_ix;
                money_ix += 1;
                Arc::new(
                    Decimal128Array::from_iter_values(groups.values().map(|s| s.money[m]))
                        .with_precision_and_scale(precision, scale)?,
                )
            }
            Role::RowId => Arc::new(StringArray::from_iter_values(
                groups
                    .values()
                    .map(|s| s.row_id.clone().unwrap_or_default()),
            )),
        };
        columns.push(column);
    }
    Ok(Some(RecordBatch::try_new(schema.clone(), columns)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    const COST: usize = 9;
    const ROW_ID_COLUMN: usize = 15;

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
        let folded = fold_rows(&usage_schema(), &[a, b]).unwrap().unwrap();
        assert_eq!(folded.num_rows(), 3);
        let tokens = folded.column(5).as_primitive::<Int64Type>();
        let requests = folded.column(10).as_primitive::<Int64Type>();
        let cost = folded.column(COST).as_primitive::<Decimal128Type>();
        let ids = folded.column(ROW_ID_COLUMN).as_string::<i32>();
        // (t1, 0) first: 5 + 7 tokens, 2 requests, exact cost, the smaller id.
        assert_eq!(
            (tokens.value(0), requests.value(0), cost.value(0)),
            (12, 2, 120)
        );
        assert_eq!(ids.value(0), "s#1");
        assert_eq!((tokens.value(1), ids.value(1)), (1, "s#4"));
        assert_eq!((tokens.value(2), ids.value(2)), (2, "s#2"));
    }

    #[test]
    fn rollup_rows_fold_by_every_text_column_and_window() {
        let schema = somaflow_pipeline::events::schema::rollup_schema();
        let batch = |price: &str, tokens: i64, id: &str| -> RecordBatch {
            let text = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v.to_string()])) };
            let n = |v: i64| -> ArrayRef { Arc::new(Int64Array::from(vec![v])) };
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    text("t1"),
                    Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC")),
                    text("gpt"),
                    text("openai"),
                    text(price),
                    text("rated"),
                    text("standard"),
                    n(tokens),
                    n(0),
                    n(0),
                    n(0),
                    Arc::new(
                        Decimal128Array::from(vec![tokens as i128])
                            .with_precision_and_scale(38, 9)
                            .unwrap(),
                    ),
                    n(1),
                    n(0),
                    n(0),
                    n(0),
                    n(0),
                    text(id),
                ],
            )
            .unwrap()
        };
        let folded = fold_rows(
            &schema,
            &[
                batch("p1", 3, "s#2"),
                batch("p2", 5, "s#3"),
                batch("p1", 4, "s#1"),
            ],
        )
        .unwrap()
        .unwrap();
        assert_eq!(folded.num_rows(), 2, "one row per price");
        let tokens = folded.column(7).as_primitive::<Int64Type>();
        let ids = folded.column(17).as_string::<i32>();
        assert_eq!((tokens.value(0), ids.value(0)), (7, "s#1"));
        assert_eq!((tokens.value(1), ids.value(1)), (5, "s#3"));
    }
}
