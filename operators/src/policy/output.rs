//! What the policy operator emits once it knows which rules fired on which
//! rows: the `policy_decisions` rows, and the input rows with their verdict
//! (and, for `redact`, their masked message). Both are built column-wise;
//! provenance columns are `take`n from the input with the fired row indices.

use std::fmt::Write as _;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Int64Array, RecordBatch, StringArray, StringBuilder, UInt32Array,
    new_null_array,
};
use datafusion::arrow::compute::take;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::schema::kind_schema;

use super::pii::redact_pii;
use super::rules::{Decision, MESSAGE, Rule};

/// `source` of every decision this operator records.
pub const DECISION_SOURCE: &str = "somaflow/policy";
/// The derived column holding the strongest decision on a row.
pub const VERDICT: &str = "policy_verdict";

/// The rows (indices into the batch) one rule fired on, ascending.
#[derive(Debug)]
pub struct Fired {
    pub rule: usize,
    pub rows: Vec<u32>,
}

fn missing(column: &str) -> ArrowError {
    ArrowError::SchemaError(format!("policy input has no usable `{column}` column"))
}

fn strings<'a>(rows: &'a RecordBatch, column: &str) -> Result<&'a StringArray, ArrowError> {
    rows.column_by_name(column)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or_else(|| missing(column))
}

/// One `policy_decisions` row per (fired rule, row), in the column order of
/// `kind_schema(PolicyDecision)`.
pub fn decisions(
    table: &'static str,
    rows: &RecordBatch,
    rules: &[Rule],
    fired: &[Fired],
    eval_us: i64,
) -> Result<RecordBatch, ArrowError> {
    let schema = kind_schema(EventKind::PolicyDecision);
    let m: usize = fired.iter().map(|f| f.rows.len()).sum();
    let indices = UInt32Array::from_iter_values(fired.iter().flat_map(|f| f.rows.iter().copied()));
    let event_ids = strings(rows, "event_id")?;
    // Repeats a per-rule value once per row the rule fired on.
    let per_rule = |value: &dyn Fn(&Rule) -> &str| -> ArrayRef {
        let mut b = StringBuilder::with_capacity(m, m * 16);
        for f in fired {
            let v = value(&rules[f.rule]);
            for _ in &f.rows {
                b.append_value(v);
            }
        }
        Arc::new(b.finish())
    };
    let constant = |value: &str| -> ArrayRef {
        Arc::new(StringArray::from_iter_values(std::iter::repeat_n(value, m)))
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let column: ArrayRef = match field.name().as_str() {
            // Deterministic, so a replay re-creates the same id and the
            // sinks dedupe on it.
            "event_id" => {
                let mut b = StringBuilder::with_capacity(m, m * 48);
                for f in fired {
                    let rule = &rules[f.rule].id;
                    for &i in &f.rows {
                        // Writing into a builder cannot fail.
                        let _ = write!(b, "{}/{rule}", event_ids.value(i as usize));
                        b.append_value("");
                    }
                }
                Arc::new(b.finish())
            }
            "resource" => {
                let mut b = StringBuilder::with_capacity(m, m * 48);
                for &i in indices.values() {
                    let _ = write!(b, "{table}/{}", event_ids.value(i as usize));
                    b.append_value("");
                }
                Arc::new(b.finish())
            }
            "source" => constant(DECISION_SOURCE),
            "action" => constant(&format!("ingest:{table}")),
            "user_id" => match rows.column_by_name("user_id") {
                Some(users) => take(users, &indices, None)?,
                None => constant(""),
            },
            "policy_id" => per_rule(&|r| r.id.as_str()),
            "decision" => per_rule(&|r| r.decision.as_str()),
            "reason" => per_rule(&|r| r.reason.as_str()),
            "eval_us" => Arc::new(Int64Array::from_value(eval_us, m)),
            VERDICT => new_null_array(&DataType::Utf8, m),
            // Provenance and tenant metadata, copied from the row.
            name => match rows.column_by_name(name) {
                Some(source) => take(source, &indices, None)?,
                None if field.is_nullable() => new_null_array(field.data_type(), m),
                None => return Err(missing(name)),
            },
        };
        columns.push(column);
    }
    RecordBatch::try_new(schema, columns)
}

/// The input rows with `policy_verdict` raised to the strongest decision
/// that fired (an incoming stronger verdict is kept) and, where a `redact`
/// rule fired, `message` masked. Returns the batch and the PII items masked.
pub fn annotate(
    rows: &RecordBatch,
    rules: &[Rule],
    fired: &[Fired],
) -> Result<(RecordBatch, u64), ArrowError> {
    let n = rows.num_rows();
    let mut strongest = vec![0u8; n];
    let mut redact: Option<Vec<bool>> = None;
    for f in fired {
        let decision = rules[f.rule].decision;
        for &i in &f.rows {
            let s = &mut strongest[i as usize];
            *s = (*s).max(decision as u8);
        }
        if decision == Decision::Redact {
            let marks = redact.get_or_insert_with(|| vec![false; n]);
            for &i in &f.rows {
                marks[i as usize] = true;
            }
        }
    }
    let schema = rows.schema();
    let mut columns = rows.columns().to_vec();

    let at = schema.index_of(VERDICT).map_err(|_| missing(VERDICT))?;
    let incoming = columns[at]
        .as_string_opt::<i32>()
        .ok_or_else(|| missing(VERDICT))?;
    let mut verdicts = StringBuilder::with_capacity(n, n * 6);
    for (i, &ours) in strongest.iter().enumerate() {
        let theirs = incoming.is_valid(i).then(|| incoming.value(i));
        match ours_if_stronger(ours, theirs) {
            Some(d) => verdicts.append_value(d.as_str()),
            None => verdicts.append_option(theirs),
        }
    }
    columns[at] = Arc::new(verdicts.finish());

    let mut masked_items = 0u64;
    if let Some(marks) = redact {
        let at = schema.index_of(MESSAGE).map_err(|_| missing(MESSAGE))?;
        let messages = columns[at]
            .as_string_opt::<i32>()
            .ok_or_else(|| missing(MESSAGE))?;
        let mut out = StringBuilder::with_capacity(n, messages.value_data().len());
        for (i, &mark) in marks.iter().enumerate() {
            if !messages.is_valid(i) {
                out.append_null();
            } else if mark {
                let (text, items) = redact_pii(messages.value(i));
                masked_items += items as u64;
                out.append_value(text);
            } else {
                out.append_value(messages.value(i));
            }
        }
        columns[at] = Arc::new(out.finish());
    }
    Ok((RecordBatch::try_new(schema, columns)?, masked_items))
}

/// Our decision when one fired and the row's verdict is not stronger.
fn ours_if_stronger(ours: u8, theirs: Option<&str>) -> Option<Decision> {
    let decision = match ours {
        1 => Decision::Flag,
        2 => Decision::Redact,
        3 => Decision::Deny,
        _ => return None,
    };
    (ours >= Decision::strength(theirs)).then_some(decision)
}
