//! Answers kept until the data under them changes. Dashboards and API
//! clients ask the same sums over and over (this month's usage by model,
//! the month's ledger) while the data moves once per checkpoint commit, so
//! each answer is computed once per version of its table and shared.
//!
//! Exactness comes first: an answer is keyed by the version of its table
//! as probed *after* the request arrived (ClickHouse: the table's active
//! parts, which every insert adds to; the lake: its published files), so a
//! kept answer always includes every commit the request could have seen.
//! Probes are shared too: requests that arrive while one runs wait for the
//! next, so a burst costs one probe, not one each. Concurrent requests for
//! the same missing answer compute it once; failures are not kept.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use moka::future::Cache;
use moka::policy::EvictionPolicy;

use super::{StoreError, SumQuery, SumRow};

/// An answer nobody asked for this long is let go.
const IDLE: Duration = Duration::from_secs(600);

/// The version of one table in one store, probed at most once per burst.
#[derive(Default)]
struct VersionProbe {
    /// When the last probe started, and what it found.
    last: tokio::sync::Mutex<Option<(Instant, u64)>>,
}

impl VersionProbe {
    /// A version probed no earlier than `arrived`.
    async fn current<F, Fut>(&self, arrived: Instant, probe: F) -> Result<u64, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<u64, StoreError>>,
    {
        let mut last = self.last.lock().await;
        if let Some((started, version)) = *last
            && started >= arrived
        {
            return Ok(version);
        }
        let started = Instant::now();
        let version = probe().await?;
        *last = Some((started, version));
        Ok(version)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AnswerKey {
    store: &'static str,
    version: u64,
    tenant: Option<String>,
    query: SumQuery,
}

/// Sums kept per store, table version, tenant and query.
pub struct AnswerCache {
    /// `None`: every request computes its answer.
    answers: Option<Cache<AnswerKey, Arc<Vec<SumRow>>>>,
    probes: Mutex<HashMap<(&'static str, &'static str), Arc<VersionProbe>>>,
}

impl AnswerCache {
    /// Keeps answers of up to `max_rows` rows in all; 0 keeps none.
    pub fn new(max_rows: u64) -> AnswerCache {
        let answers = (max_rows > 0).then(|| {
            // Plain LRU: with frequency-based admission, an old version's
            // well-used answers could keep the new version's out.
            Cache::builder()
                .eviction_policy(EvictionPolicy::lru())
                .time_to_idle(IDLE)
                .max_capacity(max_rows)
                .weigher(|_key: &AnswerKey, rows: &Arc<Vec<SumRow>>| {
                    u32::try_from(rows.len().saturating_add(1)).unwrap_or(u32::MAX)
                })
                .build()
        });
        AnswerCache {
            answers,
            probes: Mutex::new(HashMap::new()),
        }
    }

    fn probe(&self, store: &'static str, table: &'static str) -> Arc<VersionProbe> {
        let mut probes = self.probes.lock().unwrap_or_else(PoisonError::into_inner);
        probes.entry((store, table)).or_default().clone()
    }

    /// `query`'s rows for `tenant` from `store`: kept ones when `version`
    /// (the table's version, probed now) is the one they were computed at,
    /// else `compute`d and kept.
    pub async fn sums<V, VFut, C, CFut>(
        &self,
        store: &'static str,
        query: &SumQuery,
        tenant: Option<&str>,
        version: V,
        compute: C,
    ) -> Result<Vec<SumRow>, StoreError>
    where
        V: FnOnce() -> VFut,
        VFut: Future<Output = Result<u64, StoreError>>,
        C: FnOnce() -> CFut,
        CFut: Future<Output = Result<Vec<SumRow>, StoreError>>,
    {
        let Some(answers) = &self.answers else {
            return compute().await;
        };
        let arrived = Instant::now();
        let version = self
            .probe(store, query.table)
            .current(arrived, version)
            .await?;
        let key = AnswerKey {
            store,
            version,
            tenant: tenant.map(str::to_string),
            query: query.clone(),
        };
        let rows = answers
            .try_get_with(key, async { compute().await.map(Arc::new) })
            .await
            .map_err(|e| StoreError::clone(&e))?;
        Ok(Vec::clone(&rows))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::store::Sum;

    fn query(table: &'static str) -> SumQuery {
        SumQuery {
            table,
            time_column: "window_start",
            from: Utc.timestamp_opt(0, 0).unwrap(),
            to: Utc.timestamp_opt(3_600, 0).unwrap(),
            bucket_secs: Some(60),
            groups: vec!["model"],
            sums: vec![Sum::int("requests")],
            condition: None,
        }
    }

    fn rows(n: i128) -> Vec<SumRow> {
        vec![SumRow {
            bucket_secs: 0,
            group: vec!["m".into()],
            sums: vec![n],
        }]
    }

    /// A table whose version and content move together, counting probes
    /// and computations.
    #[derive(Default)]
    struct Table {
        version: AtomicU64,
        probes: AtomicUsize,
        computed: AtomicUsize,
    }

    impl Table {
        async fn ask(&self, cache: &AnswerCache, tenant: Option<&str>) -> i128 {
            let got = cache
                .sums(
                    "clickhouse",
                    &query("usage_1m"),
                    tenant,
                    || async {
                        self.probes.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(self.version.load(Ordering::SeqCst))
                    },
                    || async {
                        self.computed.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Ok(rows(self.version.load(Ordering::SeqCst) as i128))
                    },
                )
                .await
                .unwrap();
            got[0].sums[0]
        }
    }

    #[tokio::test]
    async fn an_answer_is_computed_once_per_version_and_never_outlives_it() {
        let cache = AnswerCache::new(1_000);
        let table = Table::default();
        assert_eq!(table.ask(&cache, Some("a")).await, 0);
        assert_eq!(table.ask(&cache, Some("a")).await, 0);
        assert_eq!(
            table.computed.load(Ordering::SeqCst),
            1,
            "the second is kept"
        );
        assert_eq!(table.ask(&cache, Some("b")).await, 0);
        assert_eq!(table.computed.load(Ordering::SeqCst), 2, "tenants apart");

        table.version.store(7, Ordering::SeqCst);
        assert_eq!(table.ask(&cache, Some("a")).await, 7, "a commit is seen");
        assert_eq!(table.computed.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_burst_shares_probes_and_one_computation() {
        let cache = AnswerCache::new(1_000);
        let table = Table::default();
        let answers =
            futures::future::join_all((0..50).map(|_| table.ask(&cache, Some("a")))).await;
        assert!(answers.iter().all(|a| *a == 0));
        assert_eq!(table.computed.load(Ordering::SeqCst), 1);
        // The first probe, and one shared by all that arrived while it ran.
        assert_eq!(table.probes.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_request_arriving_during_a_probe_waits_for_a_newer_one() {
        let probe = VersionProbe::default();
        let early = Instant::now();
        let slow = probe.current(early, || async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            Ok(1)
        });
        let late = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            probe.current(Instant::now(), || async { Ok(2) }).await
        };
        let (first, second) = tokio::join!(slow, late);
        assert_eq!((first.unwrap(), second.unwrap()), (1, 2));
        // Arrived before the second probe started: it may use it.
        assert_eq!(probe.current(early, || async { Ok(3) }).await.unwrap(), 2);
    }

    #[tokio::test]
    async fn failures_are_not_kept_and_a_zero_size_cache_keeps_nothing() {
        let cache = AnswerCache::new(1_000);
        let q = query("usage_1m");
        let failed = cache
            .sums(
                "lake",
                &q,
                None,
                || async { Ok(1) },
                || async { Err(StoreError::Lake("disk gone".into())) },
            )
            .await;
        assert!(matches!(failed, Err(StoreError::Lake(_))));
        let ok = cache
            .sums(
                "lake",
                &q,
                None,
                || async { Ok(1) },
                || async { Ok(rows(5)) },
            )
            .await
            .unwrap();
        assert_eq!(ok[0].sums[0], 5);

        let off = AnswerCache::new(0);
        let table = Table::default();
        table.ask(&off, None).await;
        table.ask(&off, None).await;
        assert_eq!(table.computed.load(Ordering::SeqCst), 2);
        assert_eq!(table.probes.load(Ordering::SeqCst), 0);
    }
}
