//! What capsule runs, marketplace transactions and billing events add to
//! the activity rollups (`activity_1h`, `activity_1d`): per tenant × source
//! table × the keys a ledger and the marketplace group them by, a count and
//! the amounts those questions sum. A month's ledger then reads one row per
//! day and line instead of every run, transaction and billing event.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, StringArray};
use datafusion::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::schema::activity_schema;

use super::rollup::{RollupKey, RollupSums};
use super::sums::WindowError;
use crate::columns::{ColumnError, Columns, decimal_array};
use crate::key_digest::key_digest;

/// Tenant × source × capsule × transaction type × author × currency ×
/// meter × unit ('' where the source has none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ActivityKey {
    pub tenant: String,
    /// [`somaflow_pipeline::events::schema::ACTIVITY_KEYS`] after the tenant.
    pub parts: [String; 7],
}

/// The borrowed key texts of one row, in [`ActivityKey::parts`] order.
pub type ActivityParts<'a> = [&'a str; 7];

fn digest(tenant: &str, parts: &[&str; 7]) -> u128 {
    let mut all = [""; 8];
    all[0] = tenant;
    all[1..].copy_from_slice(parts);
    key_digest(&all)
}

impl ActivityKey {
    pub fn new(tenant: &str, parts: &ActivityParts<'_>) -> Self {
        Self {
            tenant: tenant.to_string(),
            parts: parts.map(str::to_string),
        }
    }

    /// The digest of the key a row with these texts adds to.
    pub fn digest_of(tenant: &str, parts: &ActivityParts<'_>) -> u128 {
        digest(tenant, parts)
    }
}

impl RollupKey for ActivityKey {
    fn digest(&self) -> u128 {
        digest(&self.tenant, &self.parts.each_ref().map(String::as_str))
    }

    fn schema() -> SchemaRef {
        activity_schema()
    }

    fn columns(keys: &[Self]) -> Vec<ArrayRef> {
        (0..7)
            .map(|i| -> ArrayRef {
                Arc::new(StringArray::from_iter_values(
                    keys.iter().map(|k| k.parts[i].as_str()),
                ))
            })
            .collect()
    }

    fn tenant(&self) -> &str {
        &self.tenant
    }
}

/// What a row adds to its activity group.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivitySums {
    pub events: i64,
    /// A capsule run's reported cost, nano-USD.
    pub cost_nanos: i128,
    /// A billing event's quantity, in 10⁻⁹ units.
    pub quantity_nanos: i128,
    pub amount_cents: i64,
}

impl RollupSums for ActivitySums {
    fn add(&mut self, other: &Self) {
        self.events += other.events;
        self.cost_nanos += other.cost_nanos;
        self.quantity_nanos += other.quantity_nanos;
        self.amount_cents += other.amount_cents;
    }

    fn columns(sums: &[Self]) -> Result<Vec<ArrayRef>, WindowError> {
        let ints = |f: fn(&ActivitySums) -> i64| -> ArrayRef {
            Arc::new(Int64Array::from_iter_values(sums.iter().map(f)))
        };
        let decimals =
            |f: fn(&ActivitySums) -> i128| decimal_array(sums.iter().map(|s| Some(f(s))).collect());
        Ok(vec![
            ints(|s| s.events),
            decimals(|s| s.cost_nanos)?,
            decimals(|s| s.quantity_nanos)?,
            ints(|s| s.amount_cents),
        ])
    }
}

/// What row `i` adds: its key texts and sums.
pub type ActivityOf<'a> = Box<dyn Fn(usize) -> (ActivityParts<'a>, ActivitySums) + 'a>;

/// What a row of `kind` adds to the activity rollups, or None for kinds
/// they do not count.
pub fn activity_of<'a>(
    kind: EventKind,
    c: &Columns<'a>,
) -> Result<Option<ActivityOf<'a>>, ColumnError> {
    let source = kind.table();
    Ok(Some(match kind {
        EventKind::CapsuleRun => {
            let capsule = c.str("capsule_id")?;
            let cost = c.decimal("cost_usd")?;
            Box::new(move |i| {
                let parts = [source, capsule.value(i), "", "", "", "", ""];
                let cost_nanos = if cost.is_valid(i) { cost.value(i) } else { 0 };
                let sums = ActivitySums {
                    events: 1,
                    cost_nanos,
                    ..ActivitySums::default()
                };
                (parts, sums)
            })
        }
        EventKind::MarketplaceTx => {
            let (capsule, author) = (c.str("capsule_id")?, c.str("author_id")?);
            let (tx_type, currency) = (c.str("tx_type")?, c.str("currency")?);
            let amount = c.i64("amount_cents")?;
            Box::new(move |i| {
                let parts = [
                    source,
                    capsule.value(i),
                    tx_type.value(i),
                    author.value(i),
                    currency.value(i),
                    "",
                    "",
                ];
                let sums = ActivitySums {
                    events: 1,
                    amount_cents: amount.value(i),
                    ..ActivitySums::default()
                };
                (parts, sums)
            })
        }
        EventKind::Billing => {
            let (meter, unit) = (c.str("meter")?, c.str("unit")?);
            let quantity = c.decimal("quantity")?;
            Box::new(move |i| {
                let parts = [source, "", "", "", "", meter.value(i), unit.value(i)];
                let sums = ActivitySums {
                    events: 1,
                    quantity_nanos: quantity.value(i),
                    ..ActivitySums::default()
                };
                (parts, sums)
            })
        }
        _ => return Ok(None),
    }))
}
