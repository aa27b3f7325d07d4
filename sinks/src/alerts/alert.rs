//! An alert: what happened, to which tenant, and the facts a person needs
//! to act on it; the JSON body a webhook receives. Its `id` is
//! deterministic (a budget crossing's is `budget:{tenant}:{month}:{level}`),
//! so a replay makes the same alert and the receiver can deduplicate by it.

use chrono::{DateTime, SecondsFormat};
use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Decimal128Type, TimestampMicrosecondType};
use serde::{Deserialize, Serialize};
use somaflow_pipeline::events::decimal::format_decimal;

use super::error::AlertsError;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The idempotency key: the same for every delivery of this alert.
    pub id: String,
    /// `budget.soft`, `budget.hard`.
    pub event: String,
    pub tenant: String,
    /// When it happened (the event time of the row that crossed), RFC 3339.
    pub occurred_at: String,
    pub detail: serde_json::Value,
}

impl Alert {
    /// The alerts of `budget_events` rows (see
    /// `somaflow_pipeline::events::schema::budget_events_schema`).
    pub fn from_budget_events(rows: &RecordBatch) -> Result<Vec<Alert>, AlertsError> {
        let text = |name: &str| {
            rows.column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| AlertsError::Schema(format!("budget_events.{name}: not text")))
        };
        let money = |name: &str| {
            rows.column_by_name(name)
                .and_then(|c| c.as_primitive_opt::<Decimal128Type>())
                .ok_or_else(|| AlertsError::Schema(format!("budget_events.{name}: not a decimal")))
        };
        let (id, tenant, month, level) = (
            text("event_id")?,
            text("tenant_id")?,
            text("month")?,
            text("level")?,
        );
        let (threshold, budget, spend) = (
            money("threshold_usd")?,
            money("budget_usd")?,
            money("spend_usd")?,
        );
        let time = rows
            .column_by_name("event_time")
            .and_then(|c| c.as_primitive_opt::<TimestampMicrosecondType>())
            .ok_or_else(|| {
                AlertsError::Schema("budget_events.event_time: not a timestamp".into())
            })?;
        let mut out = Vec::with_capacity(rows.num_rows());
        for i in 0..rows.num_rows() {
            if id.is_null(i) {
                continue;
            }
            let occurred_at = DateTime::from_timestamp_micros(time.value(i))
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Micros, true))
                .unwrap_or_default();
            out.push(Alert {
                id: id.value(i).to_owned(),
                event: format!("budget.{}", level.value(i)),
                tenant: tenant.value(i).to_owned(),
                occurred_at,
                detail: serde_json::json!({
                    "month": month.value(i),
                    "level": level.value(i),
                    "threshold_usd": format_decimal(threshold.value(i)),
                    "budget_usd": format_decimal(budget.value(i)),
                    "spend_usd": format_decimal(spend.value(i)),
                }),
            });
        }
        Ok(out)
    }
}
