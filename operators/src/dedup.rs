//! `dedup`: drops repeated `(tenant_id, source, event_id)` seen within a TTL
//! (default 24 h, measured in ingest time so a replay decides the same way).
//! The set of seen keys is checkpointed per source shard (a Kafka partition;
//! producers key by tenant, so an event's repeats share its partition), so a
//! restart or a rebalance neither lets a duplicate through nor drops a first
//! occurrence. Only shards that changed are written at a checkpoint, and
//! mostly as deltas: the keys first seen since the previous checkpoint. The
//! whole set is written again once the deltas since it add up to its size,
//! so a checkpoint costs what arrived since the last one (amortised), not
//! the whole TTL's keys, and a restore reads at most twice the set.

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Int32Type, TimestampMicrosecondType};
use serde::{Deserialize, Serialize};
use somaflow_pipeline::checkpoint::shard;
use somaflow_pipeline::config::{ConfigError, require_positive};
use somaflow_pipeline::metrics::{NodeLabels, metrics};
use somaflow_pipeline::runtime::{Batch, Emitter, NodeError, OUT, Operator, StateBlob};

use crate::key_digest::{DigestMap, key_digest};

/// `[dedup]`: how long a key is remembered.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    pub ttl_secs: u64,
}

impl Default for DedupConfig {
    fn default() -> Self {
        Self { ttl_secs: 86_400 }
    }
}

impl DedupConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        require_positive(&[("dedup.ttl_secs", self.ttl_secs)])
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DedupError {
    #[error("dedup state snapshot is corrupt: {0}")]
    CorruptState(String),
    #[error("table `{table}` has no usable `{column}` column")]
    BadColumn {
        table: &'static str,
        column: &'static str,
    },
}

pub struct Dedup {
    node: String,
    ttl_us: i64,
    /// State per source shard, so a partition's state moves with it.
    shards: HashMap<String, ShardState>,
}

/// The keys seen in one source shard.
struct ShardState {
    /// Key hash → ingest time after which the key is forgotten.
    seen: DigestMap<i64>,
    /// Newest ingest time seen in the shard; expiry is relative to it.
    clock_us: i64,
    last_sweep_us: i64,
    /// Changed since the last snapshot.
    dirty: bool,
    /// Keys remembered (or remembered longer) since the last snapshot.
    fresh: Vec<(u128, i64)>,
    /// Whether the checkpoint holds a whole blob of this shard to add
    /// deltas to.
    has_whole: bool,
    /// Bytes of the last whole blob, and of the deltas written since.
    whole_bytes: usize,
    delta_bytes: usize,
}

/// Bytes per remembered key in a blob.
const ENTRY_BYTES: usize = 24;
/// Bytes of a blob's header (clock, key count).
const HEADER_BYTES: usize = 16;

fn key(tenant: &str, source: &str, id: &str) -> u128 {
    key_digest(&[tenant, source, id])
}

impl ShardState {
    fn empty() -> Self {
        Self {
            seen: DigestMap::default(),
            clock_us: i64::MIN,
            last_sweep_us: i64::MIN,
            dirty: false,
            fresh: Vec::new(),
            has_whole: false,
            whole_bytes: 0,
            delta_bytes: 0,
        }
    }

    /// Whether the key is new (and now remembered).
    fn first_sight(&mut self, k: u128, ingest_us: i64, ttl_us: i64) -> bool {
        self.clock_us = self.clock_us.max(ingest_us);
        self.dirty = true;
        // Expiry is judged by the newest ingest time seen, as the sweep
        // is, so whether a key is remembered never depends on sweep timing.
        // One lookup, not a lookup and then an insert: most keys are new.
        let expires = ingest_us.saturating_add(ttl_us);
        match self.seen.entry(k) {
            Entry::Occupied(e) if *e.get() > self.clock_us => false,
            Entry::Occupied(mut e) => {
                e.insert(expires);
                self.fresh.push((k, expires));
                true
            }
            Entry::Vacant(e) => {
                e.insert(expires);
                self.fresh.push((k, expires));
                true
            }
        }
    }

    /// The blob for a checkpoint: the keys since the last one, or the whole
    /// set when there is no whole blob yet or the deltas since the last one
    /// would outgrow it (so the set's size doubles between whole writes at
    /// most, and a chain is never more than twice the set).
    fn snapshot(&mut self) -> StateBlob {
        let delta = HEADER_BYTES + self.fresh.len() * ENTRY_BYTES;
        let fresh = std::mem::take(&mut self.fresh);
        if !self.has_whole || self.delta_bytes + delta > self.whole_bytes {
            self.has_whole = true;
            self.whole_bytes = HEADER_BYTES + self.seen.len() * ENTRY_BYTES;
            self.delta_bytes = 0;
            return StateBlob::Whole(encode(
                self.clock_us,
                self.seen.iter().map(|(k, e)| (*k, *e)),
                self.seen.len(),
            ));
        }
        self.delta_bytes += delta;
        StateBlob::Delta(encode(self.clock_us, fresh.iter().copied(), fresh.len()))
    }

    fn sweep(&mut self, ttl_us: i64) {
        // Sweep at most every tenth of the TTL: amortised O(1) per event.
        if self.clock_us.saturating_sub(self.last_sweep_us) < ttl_us / 10 {
            return;
        }
        let now = self.clock_us;
        self.seen.retain(|_, expires| *expires > now);
        self.last_sweep_us = now;
    }

    fn decode(state: &[u8]) -> Result<Self, DedupError> {
        let mut shard = Self::empty();
        shard.apply(state)?;
        shard.last_sweep_us = shard.clock_us;
        // The checkpoint holds this blob: later ones can be deltas of it.
        shard.has_whole = true;
        shard.whole_bytes = state.len();
        Ok(shard)
    }

    /// Adds a blob's keys (a whole set into an empty shard, or a delta).
    fn apply(&mut self, state: &[u8]) -> Result<(), DedupError> {
        let corrupt = |why: &str| DedupError::CorruptState(why.to_string());
        if state.len() < HEADER_BYTES {
            return Err(corrupt("shorter than its header"));
        }
        let (header, body) = state.split_at(HEADER_BYTES);
        let clock = i64::from_le_bytes(header[..8].try_into().map_err(|_| corrupt("header"))?);
        let n = u64::from_le_bytes(header[8..].try_into().map_err(|_| corrupt("header"))?) as usize;
        if body.len() != n.saturating_mul(ENTRY_BYTES) {
            return Err(corrupt(&format!("{} bytes for {n} keys", body.len())));
        }
        self.seen.reserve(n);
        for entry in body.chunks_exact(ENTRY_BYTES) {
            let k = u128::from_le_bytes(entry[..16].try_into().map_err(|_| corrupt("key"))?);
            let e = i64::from_le_bytes(entry[16..].try_into().map_err(|_| corrupt("expiry"))?);
            self.seen.insert(k, e);
        }
        self.clock_us = self.clock_us.max(clock);
        Ok(())
    }
}

/// A blob: the shard's clock, then `n` keys with their expiry.
fn encode(clock_us: i64, entries: impl Iterator<Item = (u128, i64)>, n: usize) -> Vec<u8> {
    let mut buf = Vec::with_capacity(HEADER_BYTES + n * ENTRY_BYTES);
    buf.extend_from_slice(&clock_us.to_le_bytes());
    buf.extend_from_slice(&(n as u64).to_le_bytes());
    for (k, expires) in entries {
        buf.extend_from_slice(&k.to_le_bytes());
        buf.extend_from_slice(&expires.to_le_bytes());
    }
    buf
}

impl Dedup {
    pub fn new(node: &str, ttl_secs: u64) -> Self {
        // The series exists from the start (0, not absent).
        let _ = metrics().duplicates_dropped.get_or_create(&NodeLabels {
            node: node.to_string(),
        });
        Self {
            node: node.to_string(),
            ttl_us: (ttl_secs as i64).saturating_mul(1_000_000),
            shards: HashMap::new(),
        }
    }

    pub fn tracked_keys(&self) -> usize {
        self.shards.values().map(|s| s.seen.len()).sum()
    }
}

#[async_trait]
impl Operator for Dedup {
    async fn process(&mut self, batch: Batch, out: &mut Emitter) -> Result<(), NodeError> {
        let rows = &batch.rows;
        let table = batch.table;
        let col = |column: &'static str| {
            rows.column_by_name(column)
                .ok_or(DedupError::BadColumn { table, column })
        };
        let bad = |column: &'static str| DedupError::BadColumn { table, column };
        let tenant = col("tenant_id")?
            .as_string_opt::<i32>()
            .ok_or(bad("tenant_id"))?;
        let source = col("source")?.as_string_opt::<i32>().ok_or(bad("source"))?;
        let id = col("event_id")?
            .as_string_opt::<i32>()
            .ok_or(bad("event_id"))?;
        let topic = col("source_topic")?
            .as_string_opt::<i32>()
            .ok_or(bad("source_topic"))?;
        let partition = col("source_partition")?
            .as_primitive_opt::<Int32Type>()
            .ok_or(bad("source_partition"))?;
        let ingest = col("ingest_time")?
            .as_primitive_opt::<TimestampMicrosecondType>()
            .ok_or(bad("ingest_time"))?;
        let n = rows.num_rows();
        let mut keep = Vec::with_capacity(n);
        let mut dropped = 0u64;
        let mut start = 0;
        // Rows come in runs of one shard (a source batch is one partition).
        while start < n {
            let (t, p) = (topic.value(start), partition.value(start));
            let mut end = start + 1;
            while end < n && partition.value(end) == p && topic.value(end) == t {
                end += 1;
            }
            let state = self
                .shards
                .entry(shard(t, p))
                .or_insert_with(ShardState::empty);
            for i in start..end {
                let k = key(tenant.value(i), source.value(i), id.value(i));
                let fresh = state.first_sight(k, ingest.value(i), self.ttl_us);
                dropped += u64::from(!fresh);
                keep.push(fresh);
            }
            state.sweep(self.ttl_us);
            start = end;
        }
        if dropped == 0 {
            out.emit(OUT, batch);
            return Ok(());
        }
        metrics()
            .duplicates_dropped
            .get_or_create(&NodeLabels {
                node: self.node.clone(),
            })
            .inc_by(dropped);
        let filtered = filter_record_batch(rows, &BooleanArray::from(keep))?;
        out.emit(OUT, Batch::new(table, filtered));
        Ok(())
    }

    fn snapshot(&mut self) -> Result<Vec<(String, StateBlob)>, NodeError> {
        let mut changed = Vec::new();
        for (name, state) in &mut self.shards {
            if std::mem::take(&mut state.dirty) {
                changed.push((name.clone(), state.snapshot()));
            }
        }
        Ok(changed)
    }

    fn restore(&mut self, shard: &str, state: &[u8]) -> Result<(), NodeError> {
        self.shards
            .insert(shard.to_string(), ShardState::decode(state)?);
        Ok(())
    }

    fn restore_delta(&mut self, shard: &str, delta: &[u8]) -> Result<(), NodeError> {
        let state = self.shards.get_mut(shard).ok_or_else(|| {
            DedupError::CorruptState(format!(
                "a delta for shard {shard}, which has no whole state"
            ))
        })?;
        state.apply(delta)?;
        state.last_sweep_us = state.clock_us;
        state.delta_bytes += delta.len();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{
        Array, ArrayRef, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray,
    };
    use std::sync::Arc;

    fn batch(ids: &[&str], ingest_us: i64) -> Batch {
        batch_in(ids, ingest_us, 0)
    }

    fn batch_in(ids: &[&str], ingest_us: i64, partition: i32) -> Batch {
        let n = ids.len();
        let cols: Vec<(&str, ArrayRef)> = vec![
            ("source_topic", Arc::new(StringArray::from(vec!["t"; n]))),
            (
                "source_partition",
                Arc::new(Int32Array::from(vec![partition; n])),
            ),
            ("event_id", Arc::new(StringArray::from(ids.to_vec()))),
            ("tenant_id", Arc::new(StringArray::from(vec!["t"; n]))),
            ("source", Arc::new(StringArray::from(vec!["s"; n]))),
            (
                "ingest_time",
                Arc::new(TimestampMicrosecondArray::from(vec![ingest_us; n]).with_timezone("UTC")),
            ),
        ];
        Batch::new("conversations", RecordBatch::try_from_iter(cols).unwrap())
    }

    async fn ids_out(op: &mut Dedup, b: Batch) -> Vec<String> {
        let mut out = Emitter::default();
        op.process(b, &mut out).await.unwrap();
        out.take()
            .iter()
            .flat_map(|(_, b)| {
                let c = b
                    .rows
                    .column_by_name("event_id")
                    .unwrap()
                    .as_string::<i32>()
                    .clone();
                (0..c.len())
                    .map(move |i| c.value(i).to_string())
                    .collect::<Vec<_>>()
            })
            .collect()
    }

    #[tokio::test]
    async fn drops_repeats_within_and_across_batches_until_the_ttl() {
        let mut op = Dedup::new("dedup", 60);
        assert_eq!(
            ids_out(&mut op, batch(&["a", "b", "a"], 0)).await,
            ["a", "b"]
        );
        assert_eq!(ids_out(&mut op, batch(&["b", "c"], 1_000_000)).await, ["c"]);
        // After the TTL the key is new again.
        assert_eq!(ids_out(&mut op, batch(&["a"], 61_000_000)).await, ["a"]);
    }

    #[tokio::test]
    async fn state_survives_snapshot_and_restore() {
        let mut op = Dedup::new("dedup", 3600);
        ids_out(&mut op, batch(&["a", "b"], 5)).await;
        ids_out(&mut op, batch_in(&["c"], 5, 1)).await;
        let snap = op.snapshot().unwrap();
        assert_eq!(snap.len(), 2, "one blob per shard");
        assert!(op.snapshot().unwrap().is_empty(), "nothing changed since");
        let (name, state) = snap.iter().find(|(s, _)| s == "t@0").unwrap();
        let StateBlob::Whole(state) = state else {
            panic!("a shard's first blob is whole")
        };
        // Only partition 0 moves to the new owner.
        let mut restored = Dedup::new("dedup", 3600);
        restored.restore(name, state).unwrap();
        assert_eq!(restored.tracked_keys(), 2);
        assert_eq!(ids_out(&mut restored, batch(&["a", "z"], 10)).await, ["z"]);
        assert_eq!(ids_out(&mut restored, batch_in(&["a"], 10, 1)).await, ["a"]);
        assert!(restored.restore(name, &state[..20]).is_err());
    }

    /// Restores a shard from its chain of blobs, as a restart does.
    fn restore_chain(blobs: &[StateBlob]) -> Dedup {
        let mut op = Dedup::new("dedup", 3600);
        for blob in blobs {
            match blob {
                StateBlob::Whole(b) => op.restore("t@0", b).unwrap(),
                StateBlob::Delta(b) => op.restore_delta("t@0", b).unwrap(),
            }
        }
        op
    }

    #[tokio::test]
    async fn checkpoints_write_the_new_keys_and_the_whole_set_once_deltas_outgrow_it() {
        let mut op = Dedup::new("dedup", 3600);
        let ids: Vec<String> = (0..100).map(|i| format!("k{i}")).collect();
        let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
        ids_out(&mut op, batch(&refs, 1)).await;
        let mut chain: Vec<StateBlob> =
            op.snapshot().unwrap().into_iter().map(|(_, b)| b).collect();
        assert!(matches!(chain[0], StateBlob::Whole(_)));

        // Ten more keys per checkpoint: deltas of ten keys each, until their
        // sum would pass the whole set's size.
        let mut kinds = Vec::new();
        for round in 0..12 {
            let ids: Vec<String> = (0..10).map(|i| format!("r{round}-{i}")).collect();
            let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
            ids_out(&mut op, batch(&refs, 2 + round)).await;
            let (_, blob) = op.snapshot().unwrap().pop().unwrap();
            kinds.push(matches!(blob, StateBlob::Delta(_)));
            if let StateBlob::Delta(b) = &blob {
                assert_eq!(
                    b.len(),
                    HEADER_BYTES + 10 * ENTRY_BYTES,
                    "only the new keys"
                );
            } else {
                chain.clear();
            }
            chain.push(blob);
        }
        assert!(
            kinds.iter().filter(|d| **d).count() >= 8,
            "mostly deltas: {kinds:?}"
        );
        assert!(
            kinds.contains(&false),
            "a whole blob once the deltas outgrow it: {kinds:?}"
        );

        // The chain restores every key: all repeats are dropped, new keys pass.
        let mut restored = restore_chain(&chain);
        assert_eq!(restored.tracked_keys(), 220);
        assert_eq!(
            ids_out(&mut restored, batch(&["k5", "r11-9", "r0-0", "new"], 50)).await,
            ["new"]
        );
    }
}
