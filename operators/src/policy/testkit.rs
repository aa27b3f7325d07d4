//! Test rows for the policy operator: a batch of any kind built on the real
//! `kind_schema`, every column filled with a clean value (one no default
//! rule fires on) unless a test overrides it.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Decimal128Builder, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::decimal::{DECIMAL_PRECISION, DECIMAL_SCALE};
use somaflow_pipeline::events::schema::kind_schema;
use somaflow_pipeline::runtime::Batch;

/// A value for one column of a test row.
#[derive(Debug, Clone, Copy)]
pub enum V {
    S(&'static str),
    I(i64),
    Null,
}

/// 2025-06-15T12:00:00Z
const TIME_US: i64 = 1_750_000_000_000_000;

fn clean(kind: EventKind, column: &str, row: usize) -> V {
    match column {
        "tenant_id" => V::S("tenant-1"),
        "source" => V::S("test"),
        "source_topic" => V::S("soma.test"),
        "tenant_plan" => V::S("pro"),
        "tenant_region" => V::S("us"),
        "provider" => V::S("openai"),
        "model" => V::S("gpt-4o"),
        "status" => V::S("ok"),
        "message" => V::S("Summarise the attached quarterly report in five bullet points."),
        "input_tokens" => V::I(1200),
        "output_tokens" => V::I(300),
        "cached_input_tokens" | "reasoning_tokens" => V::I(0),
        "attempt" => V::I(1),
        "tx_type" => V::S("purchase"),
        "amount_cents" => V::I(499),
        "currency" => V::S("USD"),
        "decision" => V::S("allow"),
        "source_offset" => V::I(100 + row as i64),
        // Optional fields (capsule_id, cost_usd, policy_verdict, …) absent.
        _ => match kind_schema(kind).field_with_name(column) {
            Ok(f) if f.is_nullable() => V::Null,
            Ok(f) if f.data_type() == &DataType::Utf8 => V::S("x"),
            _ => V::I(1),
        },
    }
}

/// One batch of `kind` with a row per entry of `rows`; each entry overrides
/// some columns. Event ids are `evt-<row>`.
pub fn batch(kind: EventKind, rows: &[&[(&str, V)]]) -> Batch {
    let schema = kind_schema(kind);
    let value = |row: usize, column: &str| {
        rows[row]
            .iter()
            .find(|(c, _)| *c == column)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| clean(kind, column, row))
    };
    let n = rows.len();
    let columns: Vec<ArrayRef> = schema
        .fields()
        .iter()
        .map(|field| {
            let name = field.name().as_str();
            let values: Vec<V> = (0..n).map(|r| value(r, name)).collect();
            let int = |v: &V| match v {
                V::I(i) => Some(*i),
                V::Null => None,
                V::S(s) => panic!("{name}: {s:?} is not a number"),
            };
            let array: ArrayRef = match (name, field.data_type()) {
                ("event_id", _) => Arc::new(StringArray::from_iter_values(
                    (0..n).map(|r| format!("evt-{r}")),
                )),
                (_, DataType::Utf8) => {
                    Arc::new(StringArray::from_iter(values.iter().map(|v| match v {
                        V::S(s) => Some(*s),
                        V::Null => None,
                        V::I(i) => panic!("{name}: {i} is not text"),
                    })))
                }
                (_, DataType::Int64) => Arc::new(Int64Array::from_iter(values.iter().map(int))),
                (_, DataType::Int32) => Arc::new(Int32Array::from_iter(
                    values.iter().map(|v| int(v).map(|i| i as i32)),
                )),
                (_, DataType::Float64) => Arc::new(Float64Array::from_iter(
                    values.iter().map(|v| int(v).map(|i| i as f64)),
                )),
                (_, DataType::Timestamp(TimeUnit::Microsecond, _)) => Arc::new(
                    TimestampMicrosecondArray::from_iter(
                        values.iter().map(|v| int(v).map(|_| TIME_US)),
                    )
                    .with_timezone("UTC"),
                ),
                (_, DataType::Decimal128(..)) => {
                    // Whole units: 1 → 1.000000000.
                    let mut b = Decimal128Builder::with_capacity(n)
                        .with_precision_and_scale(DECIMAL_PRECISION, DECIMAL_SCALE)
                        .unwrap();
                    for v in &values {
                        b.append_option(int(v).map(|i| i128::from(i) * 1_000_000_000));
                    }
                    Arc::new(b.finish())
                }
                (_, other) => panic!("{name}: no test values for {other}"),
            };
            array
        })
        .collect();
    Batch::new(kind.table(), RecordBatch::try_new(schema, columns).unwrap())
}
