//! Answers kept until the data under them changes. Dashboards and API
//! clients ask the same sums over and over (this month's usage by model,
//! the month's ledger) while the data moves once per checkpoint commit, so
//! each answer is computed once per version of its table and shared.
//!
//! Exactness comes first: an answer is keyed by the version of the rows it
//! reads (its table over its time range, see [`version`](super::version))
//! as probed *after* the request arrived (ClickHouse: the active parts of
//! each partition, which every insert adds to; the lake: its writers'
//! publication records), so a kept answer always includes every commit the
//! request could have seen, and a commit of today's rows leaves last
//! month's answers alone. Rows that are being published right now have no
//! version: answers over them are computed and not kept. One probe covers
//! every table of a store and is shared: requests that arrive while one
//! runs wait for the next, so a burst costs one probe, not one each.
//! Concurrent requests for the same missing answer compute it once;
//! failures are not kept.
//!
//! Big answers are also kept rendered: `/v1/usage` over 30 days by model is
//! ~7,000 rows (~700 kB of JSON), and rendering them again for every hit
//! costs more than the hit itself. A rendered body is keyed the same way,
//! by a version probed after its request arrived.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::future::Cache;
use moka::policy::EvictionPolicy;

use super::version::DataVersions;
use super::{StoreError, SumQuery, SumRow};

/// An answer nobody asked for this long is let go.
const IDLE: Duration = Duration::from_secs(600);

/// A store's data versions, probed at most once per burst.
#[derive(Default)]
struct VersionProbe {
    /// When the last probe started, and what it found.
    last: tokio::sync::Mutex<Option<(Instant, Arc<DataVersions>)>>,
}

impl VersionProbe {
    /// Versions probed no earlier than `arrived`.
    async fn current<F, Fut>(
        &self,
        arrived: Instant,
        probe: F,
    ) -> Result<Arc<DataVersions>, StoreError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<DataVersions, StoreError>>,
    {
        let mut last = self.last.lock().await;
        if let Some((started, versions)) = &*last
            && *started >= arrived
        {
            return Ok(versions.clone());
        }
        let started = Instant::now();
        let versions = Arc::new(probe().await?);
        *last = Some((started, versions.clone()));
        Ok(versions)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct AnswerKey {
    store: &'static str,
    version: u64,
    tenant: Option<String>,
    query: SumQuery,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BodyKey {
    store: &'static str,
    version: u64,
    tenant: Option<String>,
    /// The parsed request, with everything its rendering depends on.
    request: String,
}

/// An answer as sent: its content type and body.
#[derive(Debug, Clone)]
pub struct Rendered {
    pub content_type: &'static str,
    pub body: Bytes,
}

/// Bytes of a rendered body counted as one row against `max_rows` (a
/// usage row renders to ~100 bytes of JSON).
const BODY_BYTES_PER_ROW: usize = 128;

/// Sums kept per store, table version, tenant and query.
pub struct AnswerCache {
    /// `None`: every request computes its answer.
    answers: Option<Cache<AnswerKey, Arc<Vec<SumRow>>>>,
    /// Rendered bodies, bounded like `answers` (rows or row-equivalents).
    bodies: Option<Cache<BodyKey, Rendered>>,
    probes: Mutex<HashMap<&'static str, Arc<VersionProbe>>>,
}

impl AnswerCache {
    /// Keeps answers of up to `max_rows` rows in all, and as many again in
    /// rendered bodies ([`BODY_BYTES_PER_ROW`] bytes a row); 0 keeps none.
    pub fn new(max_rows: u64) -> AnswerCache {
        let answers = (max_rows > 0).then(|| {
            lru(max_rows, |_key: &AnswerKey, rows: &Arc<Vec<SumRow>>| {
                weight(rows.len())
            })
        });
        let bodies = (max_rows > 0).then(|| {
            lru(max_rows, |_key: &BodyKey, rendered: &Rendered| {
                weight(rendered.body.len() / BODY_BYTES_PER_ROW)
            })
        });
        AnswerCache {
            answers,
            bodies,
            probes: Mutex::new(HashMap::new()),
        }
    }

    fn probe(&self, store: &'static str) -> Arc<VersionProbe> {
        let mut probes = self.probes.lock().unwrap_or_else(PoisonError::into_inner);
        probes.entry(store).or_default().clone()
    }

    /// `query`'s rows for `tenant` from `store`: kept ones when the
    /// version of the rows they read (from `probe`d versions) is the one
    /// they were computed at, else `compute`d and kept.
    pub async fn sums<V, VFut, C, CFut>(
        &self,
        store: &'static str,
        query: &SumQuery,
        tenant: Option<&str>,
        probe: V,
        compute: C,
    ) -> Result<Vec<SumRow>, StoreError>
    where
        V: FnOnce() -> VFut,
        VFut: Future<Output = Result<DataVersions, StoreError>>,
        C: FnOnce() -> CFut,
        CFut: Future<Output = Result<Vec<SumRow>, StoreError>>,
    {
        let Some(answers) = &self.answers else {
            return compute().await;
        };
        let Some(version) = self.version(store, query, probe).await? else {
            return compute().await;
        };
        let key = AnswerKey {
            store,
            version,
            tenant: tenant.map(str::to_string),
            query: query.clone(),
        };
        let rows = kept(answers, key, async { compute().await.map(Arc::new) }).await?;
        Ok(Vec::clone(&rows))
    }

    /// `request`'s rendered answer for `tenant` from `store`, made of the
    /// rows `query` reads: the kept one when their version (from `probe`d
    /// versions) is the one it was rendered at, else `render`ed and kept.
    /// `request` must name everything the rendering depends on.
    pub async fn rendered<V, VFut, R, RFut>(
        &self,
        store: &'static str,
        query: &SumQuery,
        tenant: Option<&str>,
        request: String,
        probe: V,
        render: R,
    ) -> Result<Rendered, StoreError>
    where
        V: FnOnce() -> VFut,
        VFut: Future<Output = Result<DataVersions, StoreError>>,
        R: FnOnce() -> RFut,
        RFut: Future<Output = Result<Rendered, StoreError>>,
    {
        let Some(bodies) = &self.bodies else {
            return render().await;
        };
        let Some(version) = self.version(store, query, probe).await? else {
            return render().await;
        };
        let key = BodyKey {
            store,
            version,
            tenant: tenant.map(str::to_string),
            request,
        };
        kept(bodies, key, render()).await
    }

    /// The version in `store` of the rows `query` reads, probed after this
    /// call started; `None` when it has none (see [`DataVersions::of`]).
    async fn version<V, VFut>(
        &self,
        store: &'static str,
        query: &SumQuery,
        probe: V,
    ) -> Result<Option<u64>, StoreError>
    where
        V: FnOnce() -> VFut,
        VFut: Future<Output = Result<DataVersions, StoreError>>,
    {
        let arrived = Instant::now();
        let versions = self.probe(store).current(arrived, probe).await?;
        let mut hash = xxhash_rust::xxh3::Xxh3::new();
        for (table, column) in query.tables_read() {
            let Some(version) = versions.of(table, column, query.from, query.to) else {
                return Ok(None);
            };
            hash.update(&version.to_le_bytes());
        }
        Ok(Some(hash.digest()))
    }
}

/// The cache's value for `key`, computed once by whichever caller comes
/// first; a failure is returned to every waiting caller and not kept.
async fn kept<K, T>(
    cache: &Cache<K, T>,
    key: K,
    compute: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    T: Clone + Send + Sync + 'static,
{
    cache
        .try_get_with(key, compute)
        .await
        .map_err(|e| StoreError::clone(&e))
}

/// A cache of `capacity` in `weigher`'s units, letting go of what is not
/// asked for in [`IDLE`]. Plain LRU: with frequency-based admission, an old
/// version's well-used answers could keep the new version's out.
fn lru<K, V>(capacity: u64, weigher: impl Fn(&K, &V) -> u32 + Send + Sync + 'static) -> Cache<K, V>
where
    K: std::hash::Hash + Eq + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    Cache::builder()
        .eviction_policy(EvictionPolicy::lru())
        .time_to_idle(IDLE)
        .max_capacity(capacity)
        .weigher(weigher)
        .build()
}

/// A cache weight: at least 1, saturating at `u32::MAX`.
fn weight(units: usize) -> u32 {
    u32::try_from(units.saturating_add(1)).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

    use chrono::{TimeZone, Utc};

    use super::*;
    use crate::store::Sum;
    use crate::store::version::{Slice, TableVersions};

    /// `usage_1m` with one slice per hour, the first hour at `version`
    /// (`None`: being published), the second at 0.
    fn versions(version: Option<u64>) -> DataVersions {
        let slice = |start, version| Slice {
            start,
            end: start + 3_600,
            version,
        };
        DataVersions::known(vec![(
            "usage_1m".into(),
            TableVersions {
                whole: 0,
                time_column: "window_start".into(),
                slices: vec![slice(0, version), slice(3_600, Some(0))],
            },
        )])
    }

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
            rollup: None,
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
                        Ok(versions(Some(self.version.load(Ordering::SeqCst))))
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
            Ok(versions(Some(1)))
        });
        let late = async {
            tokio::time::sleep(Duration::from_millis(10)).await;
            probe
                .current(Instant::now(), || async { Ok(versions(Some(2))) })
                .await
        };
        let (first, second) = tokio::join!(slow, late);
        assert_eq!(*first.unwrap(), versions(Some(1)));
        assert_eq!(*second.unwrap(), versions(Some(2)));
        // Arrived before the second probe started: it may use it.
        let reused = probe
            .current(early, || async { Ok(versions(Some(3))) })
            .await
            .unwrap();
        assert_eq!(*reused, versions(Some(2)));
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
                || async { Ok(versions(Some(1))) },
                || async { Err(StoreError::Lake("disk gone".into())) },
            )
            .await;
        assert!(matches!(failed, Err(StoreError::Lake(_))));
        let ok = cache
            .sums(
                "lake",
                &q,
                None,
                || async { Ok(versions(Some(1))) },
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

    #[tokio::test]
    async fn a_rendered_body_is_kept_per_version_request_and_tenant() {
        let cache = AnswerCache::new(1_000);
        let q = query("usage_1m");
        let version = AtomicU64::new(1);
        let renders = AtomicUsize::new(0);
        let ask = |tenant: &'static str, request: &'static str| {
            let (version, renders) = (&version, &renders);
            cache.rendered(
                "clickhouse",
                &q,
                Some(tenant),
                request.to_string(),
                move || async move { Ok(versions(Some(version.load(Ordering::SeqCst)))) },
                move || async move {
                    renders.fetch_add(1, Ordering::SeqCst);
                    let body = format!("{tenant} {request} v{}", version.load(Ordering::SeqCst));
                    Ok(Rendered {
                        content_type: "text/plain",
                        body: Bytes::from(body),
                    })
                },
            )
        };
        assert_eq!(ask("a", "q1").await.unwrap().body, "a q1 v1");
        assert_eq!(ask("a", "q1").await.unwrap().body, "a q1 v1");
        assert_eq!(renders.load(Ordering::SeqCst), 1, "the second is kept");
        assert_eq!(ask("b", "q1").await.unwrap().body, "b q1 v1");
        assert_eq!(ask("a", "q2").await.unwrap().body, "a q2 v1");
        assert_eq!(
            renders.load(Ordering::SeqCst),
            3,
            "tenants and requests apart"
        );
        version.store(2, Ordering::SeqCst);
        assert_eq!(
            ask("a", "q1").await.unwrap().body,
            "a q1 v2",
            "a commit is seen"
        );
        assert_eq!(renders.load(Ordering::SeqCst), 4);
    }

    /// Computes `query` over `[from, to)` seconds with `probe`d versions,
    /// counting computations in `computed`.
    async fn ask_range(
        cache: &AnswerCache,
        (from, to): (i64, i64),
        probe: DataVersions,
        computed: &AtomicUsize,
    ) {
        let mut q = query("usage_1m");
        q.from = Utc.timestamp_opt(from, 0).unwrap();
        q.to = Utc.timestamp_opt(to, 0).unwrap();
        cache
            .sums(
                "lake",
                &q,
                None,
                || async { Ok(probe) },
                || async {
                    computed.fetch_add(1, Ordering::SeqCst);
                    Ok(rows(1))
                },
            )
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_commit_elsewhere_in_time_keeps_the_answer_and_one_in_progress_keeps_none() {
        let cache = AnswerCache::new(1_000);
        let computed = AtomicUsize::new(0);
        let second_hour = (3_600, 7_200);
        ask_range(&cache, second_hour, versions(Some(1)), &computed).await;
        ask_range(&cache, second_hour, versions(Some(2)), &computed).await;
        assert_eq!(computed.load(Ordering::SeqCst), 1, "the first hour moved");
        ask_range(&cache, second_hour, versions(None), &computed).await;
        assert_eq!(computed.load(Ordering::SeqCst), 1);

        let both_hours = (0, 7_200);
        ask_range(&cache, both_hours, versions(None), &computed).await;
        ask_range(&cache, both_hours, versions(None), &computed).await;
        assert_eq!(
            computed.load(Ordering::SeqCst),
            3,
            "computed while being published, and not kept"
        );
        ask_range(&cache, both_hours, versions(Some(3)), &computed).await;
        ask_range(&cache, both_hours, versions(Some(3)), &computed).await;
        assert_eq!(computed.load(Ordering::SeqCst), 4);
    }
}
