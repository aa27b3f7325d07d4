//! The rule file (`config/policies.toml`): parsing, validation, and the
//! one-time compilation of every rule's `when` into a DataFusion physical
//! expression over its table's Arrow schema. Nothing here runs per batch.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::DFSchema;
use datafusion::error::DataFusionError;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;
use serde::Deserialize;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::schema::kind_schema;

use super::udf::contains_pii_udf;

/// Table a rule applies to when it names none.
const DEFAULT_TABLE: &str = "conversations";
/// The column a `redact` rule masks.
pub const MESSAGE: &str = "message";

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read policy rules from {path}: {source}; check `policy.rules` in the config")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{origin}: {reason}\nEach rule is a [[rules]] table with the keys id, table (optional, default \"conversations\"), when, decision and reason."
    )]
    Syntax { origin: String, reason: String },
    #[error("{origin}: rule #{index} has an empty `id`; give every rule a unique, non-empty id")]
    EmptyId { origin: String, index: usize },
    #[error("{origin}: rule `{id}`: {reason}")]
    Rule {
        origin: String,
        id: String,
        reason: String,
    },
    #[error("a `{table}` batch does not have the table's columns: {reason}")]
    Schema { table: &'static str, reason: String },
    #[error("rule `{id}` returned {data_type} on a `{table}` batch, not a boolean column")]
    NotBoolean {
        id: String,
        table: &'static str,
        data_type: DataType,
    },
}

/// What a rule decides when its condition holds. The order is the strength
/// of the verdict: deny beats redact beats flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Decision {
    Flag = 1,
    Redact = 2,
    Deny = 3,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Flag => "flag",
            Decision::Redact => "redact",
            Decision::Deny => "deny",
        }
    }

    fn parse(text: &str) -> Option<Decision> {
        [Decision::Flag, Decision::Redact, Decision::Deny]
            .into_iter()
            .find(|d| d.as_str() == text)
    }

    /// Strength of a verdict already on a row; values this operator does not
    /// give (`allow`, anything unknown) are the weakest.
    pub fn strength(verdict: Option<&str>) -> u8 {
        verdict.and_then(Decision::parse).map_or(0, |d| d as u8)
    }
}

/// One compiled rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub table: &'static str,
    pub when: String,
    pub decision: Decision,
    pub reason: String,
    /// `when`, bound to the columns of `kind_schema(table)` by position.
    pub(crate) expr: Arc<dyn PhysicalExpr>,
}

/// The rules of one table and the schema their expressions are bound to.
#[derive(Debug, Clone)]
pub struct TableRules {
    pub table: &'static str,
    pub schema: SchemaRef,
    pub rules: Vec<Rule>,
}

/// The compiled rule set, grouped by table.
#[derive(Debug, Clone, Default)]
pub struct PolicyRules {
    tables: Vec<TableRules>,
}

/// A `[[rules]]` entry as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    id: String,
    #[serde(default = "default_table")]
    table: String,
    when: String,
    decision: String,
    reason: String,
}

fn default_table() -> String {
    DEFAULT_TABLE.to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    #[serde(default)]
    rules: Vec<RuleSpec>,
}

impl PolicyRules {
    /// Reads and compiles a rule file.
    pub fn load(path: &Path) -> Result<PolicyRules, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::compile(&text, &path.display().to_string())
    }

    /// Compiles rules given as TOML text.
    pub fn parse(text: &str) -> Result<PolicyRules, PolicyError> {
        Self::compile(text, "policy rules")
    }

    pub fn len(&self) -> usize {
        self.tables.iter().map(|t| t.rules.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// Every rule, grouped by table.
    pub fn rules(&self) -> impl Iterator<Item = &Rule> {
        self.tables.iter().flat_map(|t| t.rules.iter())
    }

    /// The rules that apply to a table's batches.
    pub fn for_table(&self, table: &str) -> Option<&TableRules> {
        self.tables.iter().find(|t| t.table == table)
    }

    /// The tables that have rules, in the order [`Self::table_index`] counts.
    pub fn tables(&self) -> impl Iterator<Item = &TableRules> {
        self.tables.iter()
    }

    /// A table's rules and their position among [`Self::tables`].
    pub(crate) fn table_index(&self, table: &str) -> Option<(usize, &TableRules)> {
        self.tables
            .iter()
            .enumerate()
            .find(|(_, t)| t.table == table)
    }

    fn compile(text: &str, origin: &str) -> Result<PolicyRules, PolicyError> {
        let file: RuleFile = toml::from_str(text).map_err(|e| PolicyError::Syntax {
            origin: origin.to_string(),
            reason: e.to_string(),
        })?;
        let ctx = SessionContext::new();
        ctx.register_udf(contains_pii_udf());
        let mut seen = HashSet::new();
        let mut set = PolicyRules::default();
        for (index, spec) in file.rules.into_iter().enumerate() {
            let id = spec.id.trim().to_string();
            if id.is_empty() {
                return Err(PolicyError::EmptyId {
                    origin: origin.to_string(),
                    index: index + 1,
                });
            }
            let fail = |reason: String| PolicyError::Rule {
                origin: origin.to_string(),
                id: id.clone(),
                reason,
            };
            // The id names the rule in metrics labels and in the
            // decisions' event ids: keep it to characters both carry as is.
            if !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
            {
                return Err(fail(
                    "an id may only hold letters, digits, `-`, `_`, `.` and `:`".to_string(),
                ));
            }
            if !seen.insert(id.clone()) {
                return Err(fail(
                    "the id is used by an earlier rule; ids must be unique (they name the rule in decisions and metrics)".into(),
                ));
            }
            let (kind, rule) = compile_rule(&ctx, id.clone(), spec).map_err(fail)?;
            match set.tables.iter_mut().find(|t| t.table == rule.table) {
                Some(t) => t.rules.push(rule),
                None => set.tables.push(TableRules {
                    table: rule.table,
                    schema: kind_schema(kind),
                    rules: vec![rule],
                }),
            }
        }
        tracing::debug!(rules = set.len(), origin, "policy rules compiled");
        Ok(set)
    }
}

/// Validates one rule and compiles its condition; the error is the reason,
/// the caller adds the rule id.
fn compile_rule(
    ctx: &SessionContext,
    id: String,
    spec: RuleSpec,
) -> Result<(EventKind, Rule), String> {
    let tables = || {
        EventKind::ALL
            .iter()
            .map(|k| k.table())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let kind = EventKind::from_table(spec.table.trim()).ok_or_else(|| {
        format!(
            "`table` = {:?} is not an event table; use one of {}",
            spec.table,
            tables()
        )
    })?;
    let table = kind.table();
    let decision = Decision::parse(spec.decision.trim()).ok_or_else(|| {
        format!(
            "`decision` = {:?} is not a decision; use deny, flag or redact (rows no rule fires on are allowed)",
            spec.decision
        )
    })?;
    let reason = spec.reason.trim().to_string();
    if reason.is_empty() {
        return Err(
            "`reason` is empty; say why the rule exists (it is recorded with every decision)"
                .into(),
        );
    }
    let when = spec.when.trim().to_string();
    if when.is_empty() {
        return Err(format!(
            "`when` is empty; write a SQL condition over the columns of `{table}`, e.g. \"input_tokens > 100000\""
        ));
    }
    let schema = kind_schema(kind);
    if decision == Decision::Redact && schema.index_of(MESSAGE).is_err() {
        return Err(format!(
            "decision `redact` masks the `{MESSAGE}` column, which `{table}` does not have; use flag or deny, or apply the rule to conversations"
        ));
    }
    let df_schema = DFSchema::try_from(Arc::clone(&schema))
        .map_err(|e| format!("internal: schema of `{table}`: {e}"))?;
    let not_compiled = |e: DataFusionError| {
        format!("`when` = {when:?} does not compile against the columns of `{table}`: {e}")
    };
    let logical = ctx
        .parse_sql_expr(&when, &df_schema)
        .map_err(not_compiled)?;
    let expr = ctx
        .create_physical_expr(logical, &df_schema)
        .map_err(not_compiled)?;
    let data_type = expr.data_type(&schema).map_err(not_compiled)?;
    if data_type != DataType::Boolean {
        return Err(format!(
            "`when` = {when:?} is of type {data_type}, not a boolean; write a condition such as \"input_tokens > 100000\""
        ));
    }
    // Some expressions only fail when run (e.g. `now()`, which DataFusion
    // folds at planning time and cannot evaluate per batch): find out now,
    // not on the first batch.
    expr.evaluate(&RecordBatch::new_empty(Arc::clone(&schema)))
        .map_err(|e| {
            let e = match e {
                // Not a DataFusion bug here, whatever its text says.
                DataFusionError::Internal(desc) => desc,
                other => other.to_string(),
            };
            format!(
                "`when` = {when:?} cannot be evaluated on rows ({e}); rules may use the row's columns and row-wise functions, not now() or other planning-time values (compare event_time with ingest_time instead)"
            )
        })?;
    let rule = Rule {
        id,
        table,
        when,
        decision,
        reason,
        expr,
    };
    Ok((kind, rule))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        PolicyRules::parse(text).unwrap_err().to_string()
    }

    fn rule(id: &str, table: &str, when: &str, decision: &str) -> String {
        format!(
            "[[rules]]\nid = \"{id}\"\ntable = \"{table}\"\nwhen = \"{when}\"\ndecision = \"{decision}\"\nreason = \"because\"\n"
        )
    }

    #[test]
    fn compiles_and_groups_by_table() {
        let text = [
            rule("a", "conversations", "input_tokens > 10", "flag"),
            rule("b", "workflow_executions", "attempt >= 3", "flag"),
            rule("c", "conversations", "contains_pii(message)", "redact"),
        ]
        .concat();
        let rules = PolicyRules::parse(&text).unwrap();
        assert_eq!(rules.len(), 3);
        assert!(!rules.is_empty());
        let conv = rules.for_table("conversations").unwrap();
        assert_eq!(
            conv.rules.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
            ["a", "c"]
        );
        assert!(rules.for_table("billing_events").is_none());
        assert!(PolicyRules::parse("").unwrap().is_empty());
    }

    #[test]
    fn an_id_is_kept_to_what_labels_and_event_ids_carry() {
        let e = error(&rule(
            "no \\\"quotes\\\"",
            "conversations",
            "input_tokens > 1",
            "flag",
        ));
        assert!(e.contains("may only hold"), "{e}");
        PolicyRules::parse(&rule(
            "eu:residency.v2_a-b",
            "conversations",
            "input_tokens > 1",
            "flag",
        ))
        .unwrap();
    }

    #[test]
    fn table_defaults_to_conversations() {
        let rules = PolicyRules::parse(
            "[[rules]]\nid = \"x\"\nwhen = \"model = 'o3'\"\ndecision = \"deny\"\nreason = \"r\"\n",
        )
        .unwrap();
        assert_eq!(rules.rules().next().unwrap().table, "conversations");
    }

    #[test]
    fn unknown_column_names_the_rule() {
        let e = error(&rule(
            "bad-col",
            "conversations",
            "no_such_column > 1",
            "flag",
        ));
        assert!(e.contains("rule `bad-col`"), "{e}");
        assert!(e.contains("no_such_column"), "{e}");
        // A column of another table is unknown too.
        let e = error(&rule(
            "wrong-table",
            "billing_events",
            "attempt >= 3",
            "flag",
        ));
        assert!(
            e.contains("rule `wrong-table`") && e.contains("attempt"),
            "{e}"
        );
    }

    #[test]
    fn syntax_error_names_the_rule() {
        let e = error(&rule(
            "bad-syntax",
            "conversations",
            "input_tokens >",
            "flag",
        ));
        assert!(e.contains("rule `bad-syntax`"), "{e}");
        assert!(e.contains("does not compile"), "{e}");
    }

    #[test]
    fn non_boolean_names_the_rule() {
        let e = error(&rule(
            "not-bool",
            "conversations",
            "input_tokens + 1",
            "flag",
        ));
        assert!(e.contains("rule `not-bool`"), "{e}");
        assert!(e.contains("Int64") && e.contains("not a boolean"), "{e}");
    }

    #[test]
    fn redact_needs_a_message_column() {
        let e = error(&rule(
            "r",
            "billing_events",
            "meter = 'egress_gb'",
            "redact",
        ));
        assert!(e.contains("rule `r`") && e.contains("`message`"), "{e}");
    }

    #[test]
    fn runtime_only_failures_are_caught_at_load() {
        let e = error(&rule(
            "clock",
            "conversations",
            "event_time > now() - interval '1 day'",
            "flag",
        ));
        assert!(e.contains("rule `clock`"), "{e}");
    }

    #[test]
    fn bad_keys_and_values_say_what_to_do() {
        let e = error(
            "[[rules]]\nid = \"x\"\nwhen = \"true\"\ndecision = \"flag\"\nreason = \"r\"\nseverity = 3\n",
        );
        assert!(e.contains("severity") && e.contains("[[rules]]"), "{e}");
        let e = error(&rule("d", "conversations", "true", "allow"));
        assert!(
            e.contains("rule `d`") && e.contains("deny, flag or redact"),
            "{e}"
        );
        let e = error(&rule("t", "chats", "true", "flag"));
        assert!(
            e.contains("rule `t`") && e.contains("workflow_executions"),
            "{e}"
        );
        let e = error(&rule("", "conversations", "true", "flag"));
        assert!(e.contains("rule #1") && e.contains("empty `id`"), "{e}");
        let e = error(
            &[
                rule("dup", "conversations", "true", "flag"),
                rule("dup", "conversations", "false", "deny"),
            ]
            .concat(),
        );
        assert!(e.contains("rule `dup`") && e.contains("unique"), "{e}");
        let e =
            error("[[rules]]\nid = \"x\"\nwhen = \"true\"\ndecision = \"flag\"\nreason = \" \"\n");
        assert!(
            e.contains("rule `x`") && e.contains("`reason` is empty"),
            "{e}"
        );
    }

    #[test]
    fn load_names_the_file() {
        let e = PolicyRules::load(Path::new("/nonexistent/policies.toml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/policies.toml"), "{e}");
    }

    #[test]
    fn verdict_strength() {
        assert!(Decision::Deny > Decision::Redact && Decision::Redact > Decision::Flag);
        assert_eq!(Decision::strength(Some("deny")), 3);
        assert_eq!(Decision::strength(Some("allow")), 0);
        assert_eq!(Decision::strength(None), 0);
    }
}
