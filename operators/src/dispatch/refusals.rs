//! `policy_decisions` rows for steps dispatch refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::error::ArrowError;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::schema::kind_schema;

use crate::columns::Columns;

#[derive(Default)]
pub struct Refusals {
    rows: Vec<u32>,
    reasons: Vec<&'static str>,
}

impl Refusals {
    pub fn push(&mut self, row: usize, reason: &'static str) {
        self.rows.push(row as u32);
        self.reasons.push(reason);
    }

    pub fn counts(&self) -> BTreeMap<&'static str, u64> {
        let mut counts = BTreeMap::new();
        for r in &self.reasons {
            *counts.entry(*r).or_insert(0) += 1;
        }
        counts
    }

    /// The refusals as rows of `policy_decisions`, provenance copied from
    /// the step so a replay yields the same event ids.
    pub fn finish(self, steps: &Columns<'_>) -> Result<Option<RecordBatch>, ArrowError> {
        if self.rows.is_empty() {
            return Ok(None);
        }
        let n = self.rows.len();
        let index = UInt32Array::from(self.rows);
        let pick = |name: &str| -> Result<ArrayRef, ArrowError> {
            let column = steps.rows.column_by_name(name).ok_or_else(|| {
                ArrowError::SchemaError(format!("workflow_executions has no `{name}`"))
            })?;
            take(column.as_ref(), &index, None)
        };
        let ids = pick("event_id")?;
        let ids = ids
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| ArrowError::SchemaError("event_id is not Utf8".into()))?;
        let schema = kind_schema(EventKind::PolicyDecision);
        let constant = |v: &str| -> ArrayRef { Arc::new(StringArray::from(vec![v; n])) };
        let mut columns = Vec::with_capacity(schema.fields().len());
        for field in schema.fields() {
            columns.push(match field.name().as_str() {
                "event_id" => Arc::new(StringArray::from_iter_values(
                    ids.iter()
                        .map(|id| format!("{}/dispatch", id.unwrap_or_default())),
                )) as ArrayRef,
                "source" => constant("somaflow/dispatch"),
                "user_id" => constant(""),
                "policy_id" => Arc::new(StringArray::from_iter_values(
                    self.reasons.iter().map(|r| format!("dispatch.{r}")),
                )),
                // The pool the step was refused for: refusals per pool are
                // a group-by, with no join back to the steps.
                "action" => {
                    let pools = pick("agent_pool")?;
                    let pools = pools
                        .as_any()
                        .downcast_ref::<StringArray>()
                        .ok_or_else(|| ArrowError::SchemaError("agent_pool is not Utf8".into()))?;
                    Arc::new(StringArray::from_iter_values(
                        pools
                            .iter()
                            .map(|pool| format!("dispatch:{}", pool.unwrap_or_default())),
                    )) as ArrayRef
                }
                "resource" => {
                    Arc::new(StringArray::from_iter_values(ids.iter().map(|id| {
                        format!("workflow_executions/{}", id.unwrap_or_default())
                    })))
                }
                "decision" => constant("deny"),
                "reason" => Arc::new(StringArray::from(self.reasons.clone())),
                "eval_us" => Arc::new(Int64Array::from(vec![0; n])),
                "policy_verdict" => datafusion::arrow::array::new_null_array(field.data_type(), n),
                // Envelope, provenance and tenant metadata come from the step.
                other => pick(other)?,
            });
        }
        RecordBatch::try_new(schema, columns).map(Some)
    }
}
