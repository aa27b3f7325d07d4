//! `enrich`: fills each event row's tenant metadata (plan, region, monthly
//! budget) and, for kinds that name a capsule, its capsule metadata (author,
//! price) from Redis, cached in process. Absent metadata is a value (nulls),
//! not an error, and Redis being slow or down never stalls or fails the
//! pipeline: rows then carry stale or null metadata.
//!
//! # Redis data model
//!
//! Written by `somaflow tenants import` (from `config/tenants.csv` and
//! `config/capsules.csv`), read with HGETALL:
//!
//! | key | fields |
//! | --- | --- |
//! | `tenant:{tenant_id}` | `plan` (free, pro, enterprise), `region` (us, eu, apac), `monthly_budget_usd` (decimal string, e.g. `"250.00"`) |
//! | `capsule:{capsule_id}` | `author_id`, `price_usd` (decimal string) |
//!
//! A key that does not exist means "no metadata": the columns are null. A
//! field that is missing is null; one that is malformed (a budget that is
//! not a non-negative decimal) is null too, with a warning once per key.
//!
//! # Columns
//!
//! Every kind's schema ends with derived columns
//! ([`EventKind::derived_fields`]); enrich replaces, by name, `tenant_plan`,
//! `tenant_region`, `tenant_monthly_budget_usd` (`Decimal128(38, 9)`) and,
//! where the kind has `capsule_id`, `capsule_author_id` and
//! `capsule_price_usd`. Tables that are not an event kind pass untouched.
//!
//! # Cache
//!
//! Entries are keyed by id with their fetch time; per batch, each distinct
//! id is resolved once:
//! * fresh (younger than the TTL, `[enrich] ttl_secs`): used;
//! * stale: used now, and re-read by a background task (one at a time);
//! * never seen: read before the batch goes on, every such id of the batch
//!   in one pipelined round trip, through [`RedisLink::run`] (timeout, and
//!   a pause after a failure). If Redis does not answer, these ids get
//!   nulls and stay uncached, so a later batch asks again.
//!
//! Metric `somaflow_enrich_lookups_total{node, outcome}` counts distinct ids
//! per batch by outcome: `hit`, `fetched`, `absent` (no such key, or no
//! Redis configured), `stale`, `unavailable`.
//!
//! The operator is stateless for checkpoints: the cache is only a cache.

mod cache;
mod catalog;
mod columns;
mod config;
mod fetch;
pub mod files;
mod lookup;
mod meta;
mod store;

use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use datafusion::arrow::error::ArrowError;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::runtime::{Batch, Emitter, NodeError, OUT, Operator};
use tracing::Instrument;

use crate::redis::{RedisLink, RedisLinkError};
use columns::{gather_decimals, gather_strings, index_rows, replace_columns};
use lookup::Lookup;

pub use catalog::{CatalogError, MetadataCatalog};
pub use config::EnrichConfig;
pub use lookup::Hashes;
pub use meta::TenantMeta;
pub use store::{MetadataError, MetadataStore};

/// Redis key of a tenant's metadata hash: this prefix and the tenant id.
pub const TENANT_KEY_PREFIX: &str = "tenant:";
/// Redis key of a capsule's metadata hash: this prefix and the capsule id.
pub const CAPSULE_KEY_PREFIX: &str = "capsule:";

#[derive(Debug, thiserror::Error)]
pub enum EnrichError {
    #[error("table `{table}` has no usable `{column}` column (expected Utf8)")]
    BadColumn {
        table: &'static str,
        column: &'static str,
    },
    #[error("building enriched columns of `{table}`: {source}")]
    Arrow {
        table: &'static str,
        source: ArrowError,
    },
}

/// A tenant's metadata read from Redis now, bypassing any cache (the API
/// answers with it): `None` when `tenant:{id}` does not exist. Fields parse
/// as enrich parses them: a malformed one is null, with a warning.
pub async fn read_tenant(
    link: &RedisLink,
    node: &str,
    tenant: &str,
) -> Result<Option<TenantMeta>, RedisLinkError> {
    let key = format!("{TENANT_KEY_PREFIX}{tenant}");
    let hashes = fetch::hgetall_many(link, node, std::slice::from_ref(&key)).await?;
    let mut problems = Vec::new();
    let meta = hashes
        .first()
        .and_then(|hash| meta::parse::<TenantMeta>(hash, &mut problems));
    if !problems.is_empty() {
        tracing::warn!(node, key, problems = %problems.join("; "),
            "malformed tenant metadata in Redis; those fields are null");
    }
    Ok(meta)
}

/// The enrich operator of one pipeline node.
pub struct Enrich {
    node: String,
    lookup: Lookup,
}

impl Enrich {
    /// `redis` None = no Redis configured: every lookup yields nulls
    /// (metric outcome "absent"), no error. `ttl` is how long a fetched
    /// value is used before it is re-read.
    pub fn new(node: &str, redis: Option<RedisLink>, ttl: Duration) -> Enrich {
        Enrich {
            node: node.to_string(),
            lookup: Lookup::new(node, redis, ttl),
        }
    }

    /// An enrich that answers from the metadata files (no Redis), reading
    /// the catalog on every batch so a change shows at once.
    pub fn from_catalog(node: &str, catalog: std::sync::Arc<MetadataCatalog>) -> Enrich {
        Enrich {
            node: node.to_string(),
            lookup: Lookup::catalog(node, catalog),
        }
    }

    /// An enrich that reads no Redis: it answers from `tenants` and
    /// `capsules`, given as `(id, fields)` the way `somaflow tenants import`
    /// writes the hashes, and otherwise runs exactly as with Redis and a
    /// warm cache (same cache lookups, same column building). Ids not given
    /// get nulls. For measuring the operator without I/O.
    pub fn preloaded(node: &str, tenants: &Hashes, capsules: &Hashes) -> Enrich {
        Enrich {
            node: node.to_string(),
            lookup: Lookup::preloaded(node, tenants, capsules),
        }
    }

    async fn enrich(&self, kind: EventKind, batch: &Batch) -> Result<RecordBatch, EnrichError> {
        let (table, rows) = (batch.table, &batch.rows);
        let tenants = index_rows(string_column(rows, table, "tenant_id")?);
        let with_capsules = kind
            .derived_fields()
            .iter()
            .any(|f| f.name == "capsule_author_id");
        let capsules = if with_capsules {
            Some(index_rows(string_column(rows, table, "capsule_id")?))
        } else {
            None
        };
        let capsule_ids = capsules.as_ref().map_or(&[][..], |c| &c.ids[..]);
        let resolved = self.lookup.resolve(&tenants.ids, capsule_ids).await;
        tracing::trace!(outcomes = ?resolved.outcomes, "enrich lookups");

        let arrow = |source| EnrichError::Arrow { table, source };
        let t = &resolved.tenants;
        let mut replacements: Vec<(&str, ArrayRef)> = vec![
            (
                "tenant_plan",
                gather_strings(
                    t.iter().map(|m| m.as_ref().and_then(|m| m.plan.as_deref())),
                    &tenants.rows,
                )
                .map_err(arrow)?,
            ),
            (
                "tenant_region",
                gather_strings(
                    t.iter()
                        .map(|m| m.as_ref().and_then(|m| m.region.as_deref())),
                    &tenants.rows,
                )
                .map_err(arrow)?,
            ),
            (
                "tenant_monthly_budget_usd",
                gather_decimals(
                    t.iter()
                        .map(|m| m.as_ref().and_then(|m| m.monthly_budget_usd)),
                    &tenants.rows,
                )
                .map_err(arrow)?,
            ),
        ];
        if let Some(capsules) = &capsules {
            let c = &resolved.capsules;
            replacements.push((
                "capsule_author_id",
                gather_strings(
                    c.iter()
                        .map(|m| m.as_ref().and_then(|m| m.author_id.as_deref())),
                    &capsules.rows,
                )
                .map_err(arrow)?,
            ));
            replacements.push((
                "capsule_price_usd",
                gather_decimals(
                    c.iter().map(|m| m.as_ref().and_then(|m| m.price_usd)),
                    &capsules.rows,
                )
                .map_err(arrow)?,
            ));
        }
        replace_columns(rows, replacements).map_err(arrow)
    }
}

fn string_column<'a>(
    rows: &'a RecordBatch,
    table: &'static str,
    column: &'static str,
) -> Result<&'a StringArray, EnrichError> {
    rows.column_by_name(column)
        .and_then(|c| c.as_string_opt::<i32>())
        .ok_or(EnrichError::BadColumn { table, column })
}

#[async_trait]
impl Operator for Enrich {
    async fn process(&mut self, batch: Batch, out: &mut Emitter) -> Result<(), NodeError> {
        let kind = match EventKind::from_table(batch.table) {
            Some(kind) if batch.num_rows() > 0 => kind,
            // Dead letters, usage rows…: not ours to enrich.
            _ => {
                out.emit(OUT, batch);
                return Ok(());
            }
        };
        let span = tracing::debug_span!("enrich", node = %self.node, table = batch.table,
            rows = batch.num_rows());
        let rows = self.enrich(kind, &batch).instrument(span).await?;
        out.emit(OUT, Batch::new(batch.table, rows));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::columns::tests::conversations;
    use super::*;
    use datafusion::arrow::array::Array;

    #[tokio::test]
    async fn without_redis_every_row_gets_nulls_and_no_error() {
        let mut op = Enrich::new("enrich-test-none", None, Duration::from_secs(60));
        let batch = conversations(&[("t1", Some("c1")), ("t2", None)]);
        let mut out = Emitter::default();
        op.process(Batch::new("conversations", batch.clone()), &mut out)
            .await
            .unwrap();
        let emitted = out.take();
        assert_eq!(emitted.len(), 1);
        let rows = &emitted[0].1.rows;
        assert_eq!(rows.schema(), batch.schema());
        for name in [
            "tenant_plan",
            "tenant_region",
            "tenant_monthly_budget_usd",
            "capsule_author_id",
            "capsule_price_usd",
        ] {
            assert_eq!(rows.column_by_name(name).unwrap().null_count(), 2, "{name}");
        }
    }

    #[tokio::test]
    async fn preloaded_metadata_fills_known_ids_and_nulls_unknown_ones() {
        let hash = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let tenants = [(
            "t1".to_string(),
            hash(&[
                ("plan", "pro"),
                ("region", "eu"),
                ("monthly_budget_usd", "250.00"),
            ]),
        )];
        let capsules = [(
            "c1".to_string(),
            hash(&[("author_id", "author-01"), ("price_usd", "9.99")]),
        )];
        let mut op = Enrich::preloaded("enrich-test-preloaded", &tenants, &capsules);
        let batch = conversations(&[("t1", Some("c1")), ("t2", Some("c2"))]);
        let mut out = Emitter::default();
        op.process(Batch::new("conversations", batch), &mut out)
            .await
            .unwrap();
        let rows = &out.take()[0].1.rows;
        let text = |name: &str| {
            let c = rows.column_by_name(name).unwrap().as_string::<i32>();
            (0..c.len())
                .map(|i| c.is_valid(i).then(|| c.value(i).to_string()))
                .collect::<Vec<_>>()
        };
        assert_eq!(text("tenant_plan"), [Some("pro".to_string()), None]);
        assert_eq!(text("tenant_region"), [Some("eu".to_string()), None]);
        assert_eq!(
            text("capsule_author_id"),
            [Some("author-01".to_string()), None]
        );
        let budget = rows
            .column_by_name("tenant_monthly_budget_usd")
            .unwrap()
            .as_primitive::<datafusion::arrow::datatypes::Decimal128Type>();
        assert_eq!(budget.value(0), 250_000_000_000);
        assert!(budget.is_null(1));
    }

    #[tokio::test]
    async fn other_tables_pass_untouched() {
        let mut op = Enrich::new("enrich-test-pass", None, Duration::from_secs(60));
        let rows = RecordBatch::try_from_iter([(
            "anything",
            std::sync::Arc::new(StringArray::from(vec!["x"])) as ArrayRef,
        )])
        .unwrap();
        let mut out = Emitter::default();
        op.process(Batch::new("_dead_letters", rows.clone()), &mut out)
            .await
            .unwrap();
        assert_eq!(out.take()[0].1.rows, rows);
    }

    #[tokio::test]
    async fn a_redis_that_does_not_answer_yields_nulls_promptly() {
        // Nothing listens on port 1: connection refused, at once.
        let link = RedisLink::new("redis://127.0.0.1:1", Duration::from_millis(300)).unwrap();
        let mut op = Enrich::new("enrich-test-down", Some(link), Duration::from_secs(60));
        let batch = conversations(&[("t1", Some("c1"))]);
        for _ in 0..3 {
            let started = std::time::Instant::now();
            let mut out = Emitter::default();
            op.process(Batch::new("conversations", batch.clone()), &mut out)
                .await
                .unwrap();
            assert!(started.elapsed() < Duration::from_secs(2));
            let rows = &out.take()[0].1.rows;
            assert_eq!(rows.column_by_name("tenant_plan").unwrap().null_count(), 1);
        }
    }
}
