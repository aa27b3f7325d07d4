//! The hourly and daily rollups (`rollup_1h`, `rollup_1d`) one shard keeps
//! between checkpoints. Every counted row adds to its hour and group; at a
//! barrier the shard sends what each hour and group summed since the last
//! one, and the same sums folded per day, as additive rows. Nothing stays
//! open across a checkpoint, so a late event is one more row of its hour
//! and day, and the rollups hold exactly what `usage_1m` holds, in fewer
//! rows: they have no capsule, and per-checkpoint rows of one hour and
//! group fold into one when the lake merges their files.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use serde::{Deserialize, Serialize};
use somaflow_pipeline::events::schema::rollup_schema;

use super::sums::{Usage, WindowError, sum_columns};
use crate::key_digest::{DigestMap, key_digest};

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

/// Whose cost a conversation is billed at.
pub const COST_FROM_PRODUCER: &str = "producer";
pub const COST_FROM_RATED: &str = "rated";

/// Tenant × model × provider × price × cost source ('' where a kind has none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RollupKey {
    pub tenant: String,
    pub model: String,
    pub provider: String,
    pub price_id: String,
    pub cost_from: String,
}

/// The borrowed parts of a [`RollupKey`], taken from one row.
#[derive(Debug, Clone, Copy, Default)]
pub struct RollupParts<'a> {
    pub model: &'a str,
    pub provider: &'a str,
    pub price_id: &'a str,
    pub cost_from: &'a str,
}

/// Sums per hour and group since the last barrier.
#[derive(Debug, Default)]
pub struct Rollups {
    hours: BTreeMap<i64, DigestMap<(RollupKey, Usage)>>,
}

impl Rollups {
    pub fn add(&mut self, event_time_us: i64, tenant: &str, parts: RollupParts<'_>, usage: &Usage) {
        let hour = event_time_us - event_time_us.rem_euclid(HOUR_US);
        let groups = self.hours.entry(hour).or_default();
        let digest = key_digest(&[
            tenant,
            parts.model,
            parts.provider,
            parts.price_id,
            parts.cost_from,
        ]);
        let entry = groups.entry(digest).or_insert_with(|| {
            (
                RollupKey {
                    tenant: tenant.to_string(),
                    model: parts.model.to_string(),
                    provider: parts.provider.to_string(),
                    price_id: parts.price_id.to_string(),
                    cost_from: parts.cost_from.to_string(),
                },
                Usage::default(),
            )
        });
        entry.1.add(usage);
    }

    pub fn is_empty(&self) -> bool {
        self.hours.is_empty()
    }

    /// Moves every hour's sums into `hours` and their per-day folds into
    /// `days`, numbering rows from `emitted` (`row_id` = `shard#n`), in a
    /// stable order so a replay of the same state emits the same rows.
    pub fn drain(
        &mut self,
        shard: &str,
        emitted: &mut u64,
        hours: &mut RollupRows,
        days: &mut RollupRows,
    ) {
        let mut by_day: BTreeMap<(i64, RollupKey), Usage> = BTreeMap::new();
        for (start, groups) in std::mem::take(&mut self.hours) {
            let mut groups: Vec<(RollupKey, Usage)> = groups.into_values().collect();
            groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let day = start - start.rem_euclid(DAY_US);
            for (key, usage) in groups {
                hours.push(start, &key, &usage, format!("{shard}#{emitted}"));
                *emitted += 1;
                by_day.entry((day, key)).or_default().add(&usage);
            }
        }
        for ((start, key), usage) in by_day {
            days.push(start, &key, &usage, format!("{shard}#{emitted}"));
            *emitted += 1;
        }
    }

    /// The open sums as a checkpoint keeps them (empty after a barrier).
    pub fn encode(&self) -> Vec<(i64, Vec<(RollupKey, Usage)>)> {
        self.hours
            .iter()
            .map(|(start, groups)| (*start, groups.values().cloned().collect()))
            .collect()
    }

    pub fn decode(encoded: Vec<(i64, Vec<(RollupKey, Usage)>)>) -> Self {
        let mut rollups = Rollups::default();
        for (start, groups) in encoded {
            for (key, usage) in groups {
                let parts = RollupParts {
                    model: &key.model,
                    provider: &key.provider,
                    price_id: &key.price_id,
                    cost_from: &key.cost_from,
                };
                rollups.add(start, &key.tenant, parts, &usage);
            }
        }
        rollups
    }
}

/// Rows of one rollup table being collected at a barrier.
#[derive(Default)]
pub struct RollupRows {
    starts: Vec<i64>,
    keys: Vec<RollupKey>,
    usage: Vec<Usage>,
    row_ids: Vec<String>,
}

impl RollupRows {
    fn push(&mut self, start: i64, key: &RollupKey, usage: &Usage, row_id: String) {
        self.starts.push(start);
        self.keys.push(key.clone());
        self.usage.push(*usage);
        self.row_ids.push(row_id);
    }

    pub fn is_empty(&self) -> bool {
        self.row_ids.is_empty()
    }

    pub fn finish(self) -> Result<RecordBatch, WindowError> {
        let text = |f: fn(&RollupKey) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(self.keys.iter().map(f)))
        };
        let mut columns: Vec<ArrayRef> = vec![
            text(|k| &k.tenant),
            Arc::new(TimestampMicrosecondArray::from(self.starts.clone()).with_timezone("UTC")),
            text(|k| &k.model),
            text(|k| &k.provider),
            text(|k| &k.price_id),
            text(|k| &k.cost_from),
        ];
        columns.extend(sum_columns(&self.usage)?);
        columns.push(Arc::new(StringArray::from(self.row_ids)));
        Ok(RecordBatch::try_new(rollup_schema(), columns)?)
    }
}
