//! The hourly and daily rollups one shard keeps between checkpoints, for
//! any key and sums: the usage rollups (`rollup_1h`, `rollup_1d`, keyed by
//! [`UsageRollupKey`]) and the activity rollups (`activity_1h`,
//! `activity_1d`, see [`super::activity`]). Every counted row adds to its
//! hour and group; at a barrier the shard sends what each hour and group
//! summed since the last one, and the same sums folded per day, as additive
//! rows. Nothing stays open across a checkpoint, so a late event is one more
//! row of its hour and day, and a rollup holds exactly what its source rows
//! hold, in fewer rows; per-checkpoint rows of one hour and group fold into
//! one when the lake merges their files.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};
use somaflow_pipeline::events::schema::rollup_schema;

use super::sums::{Usage, WindowError, sum_columns};
use crate::key_digest::{DigestMap, key_digest};

const HOUR_US: i64 = 3_600_000_000;
const DAY_US: i64 = 24 * HOUR_US;

/// Whose cost a conversation is billed at.
pub const COST_FROM_PRODUCER: &str = "producer";
pub const COST_FROM_RATED: &str = "rated";

/// The group key of a rollup: ordered (rows go out in key order, so a
/// replay of the same state emits the same rows) and its columns.
pub trait RollupKey: Clone + Ord {
    /// The digest [`Rollups::add`] files the key under.
    fn digest(&self) -> u128;
    /// The schema of the rollup's rows.
    fn schema() -> SchemaRef;
    /// The key columns after tenant and window start, in schema order.
    fn columns(keys: &[Self]) -> Vec<ArrayRef>;
    fn tenant(&self) -> &str;
}

/// What a rollup sums per hour and group.
pub trait RollupSums: Copy + Default {
    fn add(&mut self, other: &Self);
    /// The summed columns, in schema order (before `row_id`).
    fn columns(sums: &[Self]) -> Result<Vec<ArrayRef>, WindowError>;
}

/// Tenant × model × provider × price × cost source × rate card ('' where
/// a kind has none).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct UsageRollupKey {
    pub tenant: String,
    pub model: String,
    pub provider: String,
    pub price_id: String,
    pub cost_from: String,
    /// Added after the first release: snapshots without it read as ''.
    #[serde(default)]
    pub price_tier: String,
}

/// The borrowed parts of a [`UsageRollupKey`], taken from one row.
#[derive(Debug, Clone, Copy, Default)]
pub struct RollupParts<'a> {
    pub model: &'a str,
    pub provider: &'a str,
    pub price_id: &'a str,
    pub cost_from: &'a str,
    pub price_tier: &'a str,
}

impl RollupParts<'_> {
    pub fn digest(&self, tenant: &str) -> u128 {
        key_digest(&[
            tenant,
            self.model,
            self.provider,
            self.price_id,
            self.cost_from,
            self.price_tier,
        ])
    }

    pub fn key(&self, tenant: &str) -> UsageRollupKey {
        UsageRollupKey {
            tenant: tenant.to_string(),
            model: self.model.to_string(),
            provider: self.provider.to_string(),
            price_id: self.price_id.to_string(),
            cost_from: self.cost_from.to_string(),
            price_tier: self.price_tier.to_string(),
        }
    }
}

impl RollupKey for UsageRollupKey {
    fn digest(&self) -> u128 {
        let parts = RollupParts {
            model: &self.model,
            provider: &self.provider,
            price_id: &self.price_id,
            cost_from: &self.cost_from,
            price_tier: &self.price_tier,
        };
        parts.digest(&self.tenant)
    }

    fn schema() -> SchemaRef {
        rollup_schema()
    }

    fn columns(keys: &[Self]) -> Vec<ArrayRef> {
        let text = |f: fn(&UsageRollupKey) -> &str| -> ArrayRef {
            Arc::new(StringArray::from_iter_values(keys.iter().map(f)))
        };
        vec![
            text(|k| &k.model),
            text(|k| &k.provider),
            text(|k| &k.price_id),
            text(|k| &k.cost_from),
            text(|k| &k.price_tier),
        ]
    }

    fn tenant(&self) -> &str {
        &self.tenant
    }
}

impl RollupSums for Usage {
    fn add(&mut self, other: &Usage) {
        Usage::add(self, other);
    }

    fn columns(sums: &[Usage]) -> Result<Vec<ArrayRef>, WindowError> {
        sum_columns(sums)
    }
}

/// An hour's groups, by key digest.
type HourGroups<K, S> = DigestMap<(K, S)>;

/// Sums per hour and group since the last barrier.
#[derive(Debug)]
pub struct Rollups<K, S> {
    hours: BTreeMap<i64, HourGroups<K, S>>,
}

impl<K, S> Default for Rollups<K, S> {
    fn default() -> Self {
        Self {
            hours: BTreeMap::new(),
        }
    }
}

/// A rollup's open sums as a checkpoint keeps them.
pub type EncodedRollups<K, S> = Vec<(i64, Vec<(K, S)>)>;

impl<K: RollupKey, S: RollupSums> Rollups<K, S> {
    /// Adds `sums` to the group whose key digests to `digest` (`key` makes
    /// the key the first time the hour sees it, so a row allocates nothing
    /// for a group already there).
    pub fn add(&mut self, event_time_us: i64, digest: u128, key: impl FnOnce() -> K, sums: &S) {
        let hour = event_time_us - event_time_us.rem_euclid(HOUR_US);
        let groups = self.hours.entry(hour).or_default();
        let entry = groups
            .entry(digest)
            .or_insert_with(|| (key(), S::default()));
        entry.1.add(sums);
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
        hours: &mut RollupRows<K, S>,
        days: &mut RollupRows<K, S>,
    ) {
        let mut by_day: BTreeMap<(i64, K), S> = BTreeMap::new();
        for (start, groups) in std::mem::take(&mut self.hours) {
            let mut groups: Vec<(K, S)> = groups.into_values().collect();
            groups.sort_unstable_by(|a, b| a.0.cmp(&b.0));
            let day = start - start.rem_euclid(DAY_US);
            for (key, sums) in groups {
                hours.push(start, &key, &sums, format!("{shard}#{emitted}"));
                *emitted += 1;
                by_day.entry((day, key)).or_default().add(&sums);
            }
        }
        for ((start, key), sums) in by_day {
            days.push(start, &key, &sums, format!("{shard}#{emitted}"));
            *emitted += 1;
        }
    }

    /// The open sums as a checkpoint keeps them (empty after a barrier).
    pub fn encode(&self) -> EncodedRollups<K, S> {
        self.hours
            .iter()
            .map(|(start, groups)| (*start, groups.values().cloned().collect()))
            .collect()
    }

    pub fn decode(encoded: EncodedRollups<K, S>) -> Self {
        let mut rollups = Rollups::default();
        for (start, groups) in encoded {
            for (key, sums) in groups {
                let digest = key.digest();
                rollups.add(start, digest, || key, &sums);
            }
        }
        rollups
    }
}

/// Rows of one rollup table being collected at a barrier.
pub struct RollupRows<K, S> {
    starts: Vec<i64>,
    keys: Vec<K>,
    sums: Vec<S>,
    row_ids: Vec<String>,
}

impl<K, S> Default for RollupRows<K, S> {
    fn default() -> Self {
        Self {
            starts: Vec::new(),
            keys: Vec::new(),
            sums: Vec::new(),
            row_ids: Vec::new(),
        }
    }
}

impl<K: RollupKey, S: RollupSums> RollupRows<K, S> {
    fn push(&mut self, start: i64, key: &K, sums: &S, row_id: String) {
        self.starts.push(start);
        self.keys.push(key.clone());
        self.sums.push(*sums);
        self.row_ids.push(row_id);
    }

    pub fn is_empty(&self) -> bool {
        self.row_ids.is_empty()
    }

    pub fn finish(self) -> Result<RecordBatch, WindowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                self.keys.iter().map(RollupKey::tenant),
            )),
            Arc::new(TimestampMicrosecondArray::from(self.starts).with_timezone("UTC")),
        ];
        columns.extend(K::columns(&self.keys));
        columns.extend(S::columns(&self.sums)?);
        columns.push(Arc::new(StringArray::from(self.row_ids)));
        Ok(RecordBatch::try_new(K::schema(), columns)?)
    }
}
