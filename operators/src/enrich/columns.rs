//! Column work of enrich, kept per batch proportional to rows with no
//! per-row allocation: each row is mapped to an index into the batch's
//! small list of distinct ids, and each output column is a `take` (gather)
//! of a dictionary holding one value per distinct id.

use std::collections::HashMap;

use datafusion::arrow::array::{
    Array, ArrayRef, Decimal128Array, RecordBatch, StringArray, UInt32Array, new_null_array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use somaflow_pipeline::events::decimal::{DECIMAL_PRECISION, DECIMAL_SCALE};

/// The distinct ids of a column and, per row, the index of its id (null
/// where the id is null).
pub(crate) struct RowIndex<'a> {
    pub ids: Vec<&'a str>,
    pub rows: UInt32Array,
}

/// Indexes the rows of an id column.
pub(crate) fn index_rows(column: &StringArray) -> RowIndex<'_> {
    let n = column.len();
    let mut seen: HashMap<&str, u32> = HashMap::new();
    let mut ids = Vec::new();
    let mut rows = Vec::with_capacity(n);
    // Rows of one tenant often come in runs (a source batch is one
    // partition, keyed by tenant): compare with the previous id first.
    let mut previous: Option<(&str, u32)> = None;
    for i in 0..n {
        if column.is_null(i) {
            rows.push(0);
            continue;
        }
        let id = column.value(i);
        let k = match previous {
            Some((p, k)) if p == id => k,
            _ => {
                let k = *seen.entry(id).or_insert_with(|| {
                    ids.push(id);
                    (ids.len() - 1) as u32
                });
                previous = Some((id, k));
                k
            }
        };
        rows.push(k);
    }
    RowIndex {
        ids,
        rows: UInt32Array::new(rows.into(), column.nulls().cloned()),
    }
}

/// A Utf8 column: `values[k]` for each row indexed `k`.
pub(crate) fn gather_strings<'v>(
    values: impl IntoIterator<Item = Option<&'v str>>,
    rows: &UInt32Array,
) -> Result<ArrayRef, ArrowError> {
    let dictionary: StringArray = values.into_iter().collect();
    gather(&dictionary, &DataType::Utf8, rows)
}

/// A `Decimal128(38, 9)` column: `values[k]` for each row indexed `k`.
pub(crate) fn gather_decimals(
    values: impl IntoIterator<Item = Option<i128>>,
    rows: &UInt32Array,
) -> Result<ArrayRef, ArrowError> {
    let dictionary = values
        .into_iter()
        .collect::<Decimal128Array>()
        .with_precision_and_scale(DECIMAL_PRECISION, DECIMAL_SCALE)?;
    let ty = dictionary.data_type().clone();
    gather(&dictionary, &ty, rows)
}

fn gather(
    dictionary: &dyn Array,
    ty: &DataType,
    rows: &UInt32Array,
) -> Result<ArrayRef, ArrowError> {
    // Every row null (no id, or nothing known): no gather needed.
    if dictionary.null_count() == dictionary.len() {
        return Ok(new_null_array(ty, rows.len()));
    }
    take(dictionary, rows, None)
}

/// The batch with the named columns replaced, same schema. A name the
/// schema does not have is skipped (the table has no such column).
pub(crate) fn replace_columns(
    rows: &RecordBatch,
    replacements: Vec<(&str, ArrayRef)>,
) -> Result<RecordBatch, ArrowError> {
    let schema = rows.schema();
    let mut columns = rows.columns().to_vec();
    for (name, array) in replacements {
        if let Ok(i) = schema.index_of(name) {
            columns[i] = array;
        }
    }
    RecordBatch::try_new(schema, columns)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::Decimal128Type;
    use somaflow_pipeline::events::schema::kind_schema;
    use somaflow_pipeline::events::{EventKind, KindBatchBuilder, SourcePosition, parse_event};

    /// A real conversations batch, as decode builds it, one row per
    /// (tenant, capsule).
    pub(crate) fn conversations(rows: &[(&str, Option<&str>)]) -> RecordBatch {
        let now = chrono::Utc::now();
        let now_us = now.timestamp_micros();
        let mut builder = KindBatchBuilder::new(EventKind::Conversation);
        for (i, (tenant, capsule)) in rows.iter().enumerate() {
            let capsule = capsule.map_or(String::new(), |c| format!(r#""capsule_id":"{c}","#));
            let raw = format!(
                r#"{{"specversion":"1.0","id":"e{i}","source":"/t","type":"soma.conversation.v1","time":"{}","tenantid":"{tenant}","data":{{"user_id":"u","session_id":"s",{capsule}"provider":"openai","model":"gpt-4o","input_tokens":10,"output_tokens":5,"cached_input_tokens":0,"reasoning_tokens":0,"latency_ms":1,"status":"ok"}}}}"#,
                now.to_rfc3339()
            );
            let ev = parse_event(raw.as_bytes(), now_us, &Default::default()).unwrap();
            let pos = SourcePosition {
                topic: "log",
                partition: 0,
                offset: i as i64,
            };
            builder.append(&ev, now_us, &pos);
        }
        builder.finish().unwrap()
    }

    #[test]
    fn indexes_distinct_ids_and_keeps_nulls() {
        let column = StringArray::from(vec![Some("a"), Some("a"), None, Some("b"), Some("a")]);
        let index = index_rows(&column);
        assert_eq!(index.ids, ["a", "b"]);
        let rows: Vec<Option<u32>> = index.rows.iter().collect();
        assert_eq!(rows, [Some(0), Some(0), None, Some(1), Some(0)]);
    }

    #[test]
    fn replaces_derived_columns_of_a_real_kind_batch() {
        let batch = conversations(&[("t1", Some("c1")), ("t2", None), ("t1", Some("c2"))]);
        assert_eq!(batch.schema(), kind_schema(EventKind::Conversation));
        let tenants = index_rows(batch.column_by_name("tenant_id").unwrap().as_string());
        let capsules = index_rows(batch.column_by_name("capsule_id").unwrap().as_string());
        assert_eq!(tenants.ids, ["t1", "t2"]);
        assert_eq!(capsules.ids, ["c1", "c2"]);
        let out = replace_columns(
            &batch,
            vec![
                (
                    "tenant_plan",
                    gather_strings([Some("pro"), None], &tenants.rows).unwrap(),
                ),
                (
                    "tenant_monthly_budget_usd",
                    gather_decimals([Some(250_000_000_000), None], &tenants.rows).unwrap(),
                ),
                (
                    "capsule_author_id",
                    gather_strings([None, Some("author-07")], &capsules.rows).unwrap(),
                ),
                // Nothing known at all: a null column of the right type.
                (
                    "capsule_price_usd",
                    gather_decimals([None, None], &capsules.rows).unwrap(),
                ),
                (
                    "not_a_column",
                    gather_strings([Some("x"), Some("y")], &tenants.rows).unwrap(),
                ),
            ],
        )
        .unwrap();
        assert_eq!(out.schema(), batch.schema(), "same schema");
        let plan: Vec<_> = out
            .column_by_name("tenant_plan")
            .unwrap()
            .as_string::<i32>()
            .iter()
            .collect();
        assert_eq!(plan, [Some("pro"), None, Some("pro")]);
        let budget = out
            .column_by_name("tenant_monthly_budget_usd")
            .unwrap()
            .as_primitive::<Decimal128Type>();
        assert_eq!(budget.value(0), 250_000_000_000);
        assert!(budget.is_null(1));
        let author: Vec<_> = out
            .column_by_name("capsule_author_id")
            .unwrap()
            .as_string::<i32>()
            .iter()
            .collect();
        assert_eq!(author, [None, None, Some("author-07")]);
        assert_eq!(
            out.column_by_name("capsule_price_usd")
                .unwrap()
                .null_count(),
            3
        );
        // Untouched columns are the very same arrays.
        assert_eq!(
            out.column_by_name("model").unwrap().to_data(),
            batch.column_by_name("model").unwrap().to_data()
        );
    }
}
