//! `policy`: judges every event against the rules of `config/policies.toml`
//! (docs/architecture.md, "Operators"). Each rule is a SQL boolean expression over its table's row,
//! compiled once with DataFusion and evaluated on whole batches. A rule that
//! fires yields a `policy_decisions` row on the [`DECISIONS`] output and
//! raises the row's `policy_verdict`; a `redact` rule also masks PII in the
//! row's `message`. Stateless: nothing to checkpoint.

mod config;
mod output;
mod pii;
mod rules;
mod udf;

#[cfg(test)]
mod testkit;

use std::borrow::Cow;
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::prep_null_mask_filter;
use datafusion::arrow::datatypes::SchemaRef;
use somaflow_pipeline::metrics::{PolicyLabels, metrics, node};
use somaflow_pipeline::runtime::{Batch, Emitter, NodeError, OUT, Operator};

use output::Fired;

pub use config::PolicyConfig;
pub use pii::{contains_pii, redact_pii};
pub use rules::{Decision, PolicyError, PolicyRules, Rule, TableRules};
pub use udf::{CONTAINS_PII, contains_pii_udf};

/// The second output: one `policy_decisions` row per rule that fired on a row.
pub const DECISIONS: &str = "decisions";

pub struct Policy {
    node: String,
    rules: PolicyRules,
    /// Metric labels per table and rule, built once so counting a decision
    /// allocates nothing.
    labels: Vec<Vec<PolicyLabels>>,
}

impl Policy {
    pub fn new(node: &str, rules: PolicyRules) -> Policy {
        let labels: Vec<Vec<PolicyLabels>> = rules
            .tables()
            .map(|t| {
                t.rules
                    .iter()
                    .map(|r| PolicyLabels {
                        node: node.to_string(),
                        rule: r.id.clone(),
                        decision: r.decision.as_str().to_string(),
                    })
                    .collect()
            })
            .collect();
        tracing::info!(node, rules = rules.len(), "policy rules loaded");
        // Every rule's series exists from the start (0, not absent).
        let m = metrics();
        for l in labels.iter().flatten() {
            let _ = m.policy_decisions.get_or_create(l);
        }
        let _ = m.pii_redacted.get_or_create(&self::node(node));
        Policy {
            node: node.to_string(),
            rules,
            labels,
        }
    }
}

#[async_trait]
impl Operator for Policy {
    fn outputs(&self) -> &'static [&'static str] {
        &[OUT, DECISIONS]
    }

    async fn process(&mut self, batch: Batch, out: &mut Emitter) -> Result<(), NodeError> {
        let Some((t, table_rules)) = self.rules.table_index(batch.table) else {
            out.emit(OUT, batch);
            return Ok(());
        };
        let n = batch.num_rows();
        if n == 0 {
            return Ok(());
        }
        let started = Instant::now();
        let aligned = align(&batch.rows, &table_rules.schema, batch.table)?;
        let mut fired = Vec::new();
        for (r, rule) in table_rules.rules.iter().enumerate() {
            let rows = fired_rows(rule, &aligned)?;
            if !rows.is_empty() {
                fired.push(Fired { rule: r, rows });
            }
        }
        if fired.is_empty() {
            // The common case: the batch goes on untouched, not copied.
            out.emit(OUT, batch);
            return Ok(());
        }
        let eval_us = i64::try_from(started.elapsed().as_micros() / n as u128).unwrap_or(i64::MAX);

        let m = metrics();
        for f in &fired {
            m.policy_decisions
                .get_or_create(&self.labels[t][f.rule])
                .inc_by(f.rows.len() as u64);
        }
        let rules = &table_rules.rules;
        let decisions = output::decisions(batch.table, &batch.rows, rules, &fired, eval_us)?;
        let (annotated, masked) = output::annotate(&batch.rows, rules, &fired)?;
        if masked > 0 {
            m.pii_redacted
                .get_or_create(&node(&self.node))
                .inc_by(masked);
        }
        out.emit(OUT, Batch::new(batch.table, annotated));
        out.emit(DECISIONS, Batch::new("policy_decisions", decisions));
        Ok(())
    }
}

/// The batch with the columns in the order the rules were compiled against
/// (physical expressions read columns by position). Batches built from
/// `kind_schema` already are: that check is a pointer comparison.
fn align<'a>(
    rows: &'a RecordBatch,
    schema: &SchemaRef,
    table: &'static str,
) -> Result<Cow<'a, RecordBatch>, PolicyError> {
    let have = rows.schema_ref();
    let same = std::sync::Arc::ptr_eq(have, schema)
        || (have.fields().len() == schema.fields().len()
            && have
                .fields()
                .iter()
                .zip(schema.fields())
                .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type()));
    if same {
        return Ok(Cow::Borrowed(rows));
    }
    let mut projection = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        let i = have
            .index_of(field.name())
            .ok()
            .filter(|&i| have.field(i).data_type() == field.data_type())
            .ok_or_else(|| PolicyError::Schema {
                table,
                reason: format!(
                    "column `{}` of type {} is missing",
                    field.name(),
                    field.data_type()
                ),
            })?;
        projection.push(i);
    }
    rows.project(&projection)
        .map(Cow::Owned)
        .map_err(|e| PolicyError::Schema {
            table,
            reason: e.to_string(),
        })
}

/// Indices of the rows a rule fires on (null counts as not fired).
fn fired_rows(rule: &Rule, rows: &RecordBatch) -> Result<Vec<u32>, NodeError> {
    let n = rows.num_rows();
    let mask = match rule.expr.evaluate(rows).and_then(|v| v.into_array(n)) {
        Ok(mask) => mask,
        // A value the expression cannot handle (say a division by zero)
        // must not stop the pipeline or skip the rule for the whole batch:
        // find the rows it fails on and let the rule fire on the others.
        Err(e) => return fired_rows_one_by_one(rule, rows, &e.to_string()),
    };
    let mask = as_mask(rule, &mask)?;
    Ok(indices(mask))
}

fn as_mask<'a>(rule: &Rule, mask: &'a dyn Array) -> Result<&'a BooleanArray, PolicyError> {
    mask.as_boolean_opt()
        .ok_or_else(|| PolicyError::NotBoolean {
            id: rule.id.clone(),
            table: rule.table,
            data_type: mask.data_type().clone(),
        })
}

fn indices(mask: &BooleanArray) -> Vec<u32> {
    if mask.true_count() == 0 {
        return Vec::new();
    }
    // Null is "not fired": fold the validity into the values first.
    let values = match mask.nulls() {
        Some(_) => prep_null_mask_filter(mask).values().clone(),
        None => mask.values().clone(),
    };
    values.set_indices().map(|i| i as u32).collect()
}

fn fired_rows_one_by_one(
    rule: &Rule,
    rows: &RecordBatch,
    first_error: &str,
) -> Result<Vec<u32>, NodeError> {
    let mut fired = Vec::new();
    let mut failed = 0usize;
    for i in 0..rows.num_rows() {
        let row = rows.slice(i, 1);
        match rule.expr.evaluate(&row).and_then(|v| v.into_array(1)) {
            Ok(mask) => {
                let mask = as_mask(rule, &mask)?;
                if mask.is_valid(0) && mask.value(0) {
                    fired.push(i as u32);
                }
            }
            Err(_) => failed += 1,
        }
    }
    tracing::warn!(
        rule = %rule.id,
        table = rule.table,
        rows = failed,
        error = first_error,
        "policy rule could not be evaluated on some rows; it did not fire on them"
    );
    Ok(fired)
}

#[cfg(test)]
mod tests;
