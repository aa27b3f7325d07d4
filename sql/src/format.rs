//! Query results as JSON (`{"columns", "rows"}`), CSV and an aligned table.

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::writer::JsonArray;
use serde_json::{Map, Value};

#[derive(Debug, Clone)]
pub struct QueryResult {
    pub schema: SchemaRef,
    pub batches: Vec<RecordBatch>,
}

impl QueryResult {
    pub fn num_rows(&self) -> usize {
        self.batches.iter().map(|b| b.num_rows()).sum()
    }

    pub fn column_names(&self) -> Vec<String> {
        self.schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect()
    }

    /// `{"columns": [...], "rows": [[...], ...]}` with values in column order.
    pub fn to_json(&self) -> Result<Value, ArrowError> {
        let columns = self.column_names();
        let mut buf = Vec::new();
        {
            let mut writer = datafusion::arrow::json::WriterBuilder::new()
                .with_explicit_nulls(true)
                .build::<_, JsonArray>(&mut buf);
            for b in &self.batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
        let objects: Vec<Map<String, Value>> = if buf.is_empty() {
            Vec::new()
        } else {
            serde_json::from_slice(&buf).map_err(|e| ArrowError::JsonError(e.to_string()))?
        };
        let rows: Vec<Value> = objects
            .into_iter()
            .map(|mut o| {
                Value::Array(
                    columns
                        .iter()
                        .map(|c| o.remove(c).unwrap_or(Value::Null))
                        .collect(),
                )
            })
            .collect();
        Ok(serde_json::json!({ "columns": columns, "rows": rows }))
    }

    pub fn to_csv(&self) -> Result<Vec<u8>, ArrowError> {
        let mut buf = Vec::new();
        {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut buf);
            if self.batches.is_empty() {
                writer.write(&RecordBatch::new_empty(self.schema.clone()))?;
            }
            for b in &self.batches {
                writer.write(b)?;
            }
        }
        Ok(buf)
    }

    /// An aligned text table, as `somaflow sql` prints it.
    pub fn to_table(&self) -> Result<String, ArrowError> {
        let table = datafusion::arrow::util::pretty::pretty_format_batches_with_schema(
            self.schema.clone(),
            &self.batches,
        )?;
        Ok(format!(
            "{table}\n({} row{})",
            self.num_rows(),
            if self.num_rows() == 1 { "" } else { "s" }
        ))
    }
}
