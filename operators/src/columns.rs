//! Typed access to a batch's columns by name, and replacing columns in
//! place, for the operators that read event rows and fill derived columns.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{
    Decimal128Type, Int32Type, Int64Type, TimestampMicrosecondType,
};
use datafusion::arrow::error::ArrowError;

/// A column an operator needs is missing or of another type.
#[derive(Debug, thiserror::Error)]
#[error("table `{table}` has no usable `{column}` column ({expected})")]
pub struct ColumnError {
    pub table: String,
    pub column: String,
    pub expected: &'static str,
}

/// Typed column lookups on one batch of one table.
pub struct Columns<'a> {
    pub table: &'a str,
    pub rows: &'a RecordBatch,
}

impl<'a> Columns<'a> {
    pub fn new(table: &'a str, rows: &'a RecordBatch) -> Self {
        Self { table, rows }
    }

    fn error(&self, column: &str, expected: &'static str) -> ColumnError {
        ColumnError {
            table: self.table.to_string(),
            column: column.to_string(),
            expected,
        }
    }

    pub fn has(&self, column: &str) -> bool {
        self.rows.schema().index_of(column).is_ok()
    }

    pub fn str(&self, column: &str) -> Result<&'a StringArray, ColumnError> {
        self.rows
            .column_by_name(column)
            .and_then(|c| c.as_string_opt::<i32>())
            .ok_or_else(|| self.error(column, "Utf8"))
    }

    pub fn i64(&self, column: &str) -> Result<&'a Int64Array, ColumnError> {
        self.rows
            .column_by_name(column)
            .and_then(|c| c.as_primitive_opt::<Int64Type>())
            .ok_or_else(|| self.error(column, "Int64"))
    }

    pub fn i32(&self, column: &str) -> Result<&'a Int32Array, ColumnError> {
        self.rows
            .column_by_name(column)
            .and_then(|c| c.as_primitive_opt::<Int32Type>())
            .ok_or_else(|| self.error(column, "Int32"))
    }

    pub fn decimal(&self, column: &str) -> Result<&'a Decimal128Array, ColumnError> {
        self.rows
            .column_by_name(column)
            .and_then(|c| c.as_primitive_opt::<Decimal128Type>())
            .ok_or_else(|| self.error(column, "Decimal128"))
    }

    pub fn micros(&self, column: &str) -> Result<&'a TimestampMicrosecondArray, ColumnError> {
        self.rows
            .column_by_name(column)
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or_else(|| self.error(column, "Timestamp(µs)"))
    }
}

/// `rows` with the named columns replaced (same names and types, so the
/// schema stays the table's).
pub fn replace_columns(
    rows: &RecordBatch,
    replacements: Vec<(&str, ArrayRef)>,
) -> Result<RecordBatch, ArrowError> {
    let schema = rows.schema();
    let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
    for (name, array) in replacements {
        let i = schema.index_of(name)?;
        columns[i] = array;
    }
    RecordBatch::try_new(schema, columns)
}

/// A nullable count's value, 0 when null (a field the event left out).
pub fn count_or_zero(column: &Int64Array, row: usize) -> i64 {
    if column.is_valid(row) {
        column.value(row)
    } else {
        0
    }
}

/// A value of an optional string column (null → None).
pub fn opt_str(column: &StringArray, row: usize) -> Option<&str> {
    column.is_valid(row).then(|| column.value(row))
}

/// A decimal column of the engine's precision and scale.
pub fn decimal_array(values: Vec<Option<i128>>) -> Result<ArrayRef, ArrowError> {
    use somaflow_pipeline::events::decimal::{DECIMAL_PRECISION, DECIMAL_SCALE};
    Ok(Arc::new(
        Decimal128Array::from(values).with_precision_and_scale(DECIMAL_PRECISION, DECIMAL_SCALE)?,
    ))
}
