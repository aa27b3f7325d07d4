//! The open windows of one source shard, their checkpoint encoding, and the
//! builder of the `usage_1m` rows they turn into at a checkpoint and when
//! closed.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray};
use serde::{Deserialize, Serialize};
use somaflow_pipeline::events::schema::usage_schema;

use super::activity::{ActivityKey, ActivityParts, ActivitySums};
use super::rollup::{EncodedRollups, RollupParts, RollupRows, Rollups, UsageRollupKey};
use super::sums::{Usage, WindowError, sum_columns};
use crate::key_digest::{DigestMap, key_digest};

/// Tenant × model × provider × capsule (empty strings where a kind has none).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct GroupKey {
    pub tenant: String,
    pub model: String,
    pub provider: String,
    pub capsule: String,
}

fn key_hash(parts: [&str; 4]) -> u128 {
    key_digest(&parts)
}

/// Windows of one shard by start time; groups by a 128-bit key hash so a
/// row adds to its group without allocating its key.
#[derive(Debug, Default)]
pub struct ShardWindows {
    windows: BTreeMap<i64, DigestMap<(GroupKey, Usage)>>,
    /// End of the newest window emitted: a row for an earlier window is late
    /// and its row a correction.
    closed_through: i64,
    /// Numbers the shard's usage and rollup rows (`row_id` = `shard#n`).
    emitted: u64,
    /// Hourly usage sums since the last barrier (see [`Rollups`]).
    rollups: Rollups<UsageRollupKey, Usage>,
    /// Hourly activity sums since the last barrier.
    activity: Rollups<ActivityKey, ActivitySums>,
    dirty: bool,
}

#[derive(Serialize, Deserialize)]
struct Encoded {
    closed_through: i64,
    emitted: u64,
    windows: Vec<(i64, Vec<(GroupKey, Usage)>)>,
    /// Empty at every checkpoint (barriers send them); kept for safety.
    #[serde(default)]
    rollups: EncodedRollups<UsageRollupKey, Usage>,
    #[serde(default)]
    activity: EncodedRollups<ActivityKey, ActivitySums>,
}

/// Hour and day rows of one rollup family, collected at a barrier.
pub struct FamilyRows<K, S> {
    pub hours: RollupRows<K, S>,
    pub days: RollupRows<K, S>,
}

impl<K, S> Default for FamilyRows<K, S> {
    fn default() -> Self {
        Self {
            hours: RollupRows::default(),
            days: RollupRows::default(),
        }
    }
}

impl ShardWindows {
    pub fn add(
        &mut self,
        start: i64,
        tenant: &str,
        model: &str,
        provider: &str,
        capsule: &str,
        usage: &Usage,
    ) {
        self.dirty = true;
        let groups = self.windows.entry(start).or_default();
        let entry = groups
            .entry(key_hash([tenant, model, provider, capsule]))
            .or_insert_with(|| {
                (
                    GroupKey {
                        tenant: tenant.to_string(),
                        model: model.to_string(),
                        provider: provider.to_string(),
                        capsule: capsule.to_string(),
                    },
                    Usage::default(),
                )
            });
        entry.1.add(usage);
    }

    /// Adds a row to its hour's rollup.
    pub fn add_to_rollups(
        &mut self,
        event_time_us: i64,
        tenant: &str,
        parts: RollupParts<'_>,
        usage: &Usage,
    ) {
        self.dirty = true;
        let digest = parts.digest(tenant);
        self.rollups
            .add(event_time_us, digest, || parts.key(tenant), usage);
    }

    /// Adds a row to its hour's activity rollup.
    pub fn add_to_activity(
        &mut self,
        event_time_us: i64,
        tenant: &str,
        parts: &ActivityParts<'_>,
        sums: &ActivitySums,
    ) {
        self.dirty = true;
        let digest = ActivityKey::digest_of(tenant, parts);
        self.activity.add(
            event_time_us,
            digest,
            || ActivityKey::new(tenant, parts),
            sums,
        );
    }

    /// Moves both rollups' sums since the last barrier into their rows
    /// (usage first, then activity: a replay numbers them the same way).
    pub fn flush_rollups(
        &mut self,
        shard: &str,
        usage: &mut FamilyRows<UsageRollupKey, Usage>,
        activity: &mut FamilyRows<ActivityKey, ActivitySums>,
    ) {
        if self.rollups.is_empty() && self.activity.is_empty() {
            return;
        }
        let emitted = &mut self.emitted;
        self.rollups
            .drain(shard, emitted, &mut usage.hours, &mut usage.days);
        self.activity
            .drain(shard, emitted, &mut activity.hours, &mut activity.days);
        self.dirty = true;
    }

    /// Moves every window ending at or before `watermark` into `rows`.
    pub fn close_until(&mut self, shard: &str, watermark: i64, size_us: i64, rows: &mut UsageRows) {
        while let Some(entry) = self.windows.first_entry() {
            let start = *entry.key();
            let end = start.saturating_add(size_us);
            if end > watermark {
                break;
            }
            let correction = end <= self.closed_through;
            let mut groups: Vec<(GroupKey, Usage)> = entry.remove().into_values().collect();
            // Deterministic row order and numbering for a given state. The
            // keys of a window are distinct, so an unstable sort (no buffer)
            // gives the same order as a stable one.
            groups.sort_unstable_by(|a, b| a.0.cmp_key(&b.0));
            for (key, usage) in groups {
                rows.push(start, key, &usage, format!("{shard}#{}", self.emitted));
                self.emitted += 1;
                if correction {
                    rows.corrections += 1;
                } else {
                    rows.first_emissions += 1;
                }
            }
            self.closed_through = self.closed_through.max(end);
            self.dirty = true;
        }
    }

    /// Moves what every open window has summed so far into `rows`, as
    /// additive rows, and starts those windows again from zero: a later row
    /// adds a further row of the same window, readers sum them.
    pub fn flush_open(&mut self, shard: &str, rows: &mut UsageRows) {
        if self.windows.is_empty() {
            return;
        }
        for (start, groups) in std::mem::take(&mut self.windows) {
            let mut groups: Vec<(GroupKey, Usage)> = groups.into_values().collect();
            groups.sort_unstable_by(|a, b| a.0.cmp_key(&b.0));
            for (key, usage) in groups {
                rows.push(start, key, &usage, format!("{shard}#{}", self.emitted));
                self.emitted += 1;
                rows.partial += 1;
            }
        }
        self.dirty = true;
    }

    pub fn open_windows(&self) -> usize {
        self.windows.len()
    }

    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }

    pub fn encode(&self) -> Result<Vec<u8>, WindowError> {
        let encoded = Encoded {
            closed_through: self.closed_through,
            emitted: self.emitted,
            windows: self
                .windows
                .iter()
                .map(|(start, groups)| (*start, groups.values().cloned().collect()))
                .collect(),
            rollups: self.rollups.encode(),
            activity: self.activity.encode(),
        };
        serde_json::to_vec(&encoded).map_err(|e| WindowError::CorruptState(e.to_string()))
    }

    pub fn decode(state: &[u8]) -> Result<Self, WindowError> {
        let encoded: Encoded =
            serde_json::from_slice(state).map_err(|e| WindowError::CorruptState(e.to_string()))?;
        let mut windows = BTreeMap::new();
        for (start, groups) in encoded.windows {
            let map: &mut DigestMap<(GroupKey, Usage)> = windows.entry(start).or_default();
            for (key, usage) in groups {
                let hash = key_hash([&key.tenant, &key.model, &key.provider, &key.capsule]);
                map.insert(hash, (key, usage));
            }
        }
        Ok(Self {
            windows,
            closed_through: encoded.closed_through,
            emitted: encoded.emitted,
            rollups: Rollups::decode(encoded.rollups),
            activity: Rollups::decode(encoded.activity),
            dirty: false,
        })
    }
}

impl GroupKey {
    fn cmp_key(&self, other: &GroupKey) -> std::cmp::Ordering {
        (&self.tenant, &self.model, &self.provider, &self.capsule).cmp(&(
            &other.tenant,
            &other.model,
            &other.provider,
            &other.capsule,
        ))
    }
}

/// `usage_1m` rows being collected at one watermark.
#[derive(Default)]
pub struct UsageRows {
    tenant: Vec<String>,
    window_start: Vec<i64>,
    model: Vec<String>,
    provider: Vec<String>,
    capsule: Vec<String>,
    usage: Vec<Usage>,
    row_id: Vec<String>,
    pub first_emissions: u64,
    pub corrections: u64,
    /// Rows of windows still open, sent at a checkpoint.
    pub partial: u64,
}

impl UsageRows {
    fn push(&mut self, start: i64, key: GroupKey, usage: &Usage, row_id: String) {
        self.tenant.push(key.tenant);
        self.window_start.push(start);
        self.model.push(key.model);
        self.provider.push(key.provider);
        self.capsule.push(key.capsule);
        self.usage.push(*usage);
        self.row_id.push(row_id);
    }

    pub fn len(&self) -> usize {
        self.row_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.row_id.is_empty()
    }

    pub fn finish(self) -> Result<RecordBatch, WindowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(self.tenant)),
            Arc::new(TimestampMicrosecondArray::from(self.window_start).with_timezone("UTC")),
            Arc::new(StringArray::from(self.model)),
            Arc::new(StringArray::from(self.provider)),
            Arc::new(StringArray::from(self.capsule)),
        ];
        columns.extend(sum_columns(&self.usage)?);
        columns.push(Arc::new(StringArray::from(self.row_id)));
        Ok(RecordBatch::try_new(usage_schema(), columns)?)
    }
}
