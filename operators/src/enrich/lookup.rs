//! Resolving a batch's distinct tenant and capsule ids to metadata: fresh
//! cache entries as they are; stale ones as they are while one background
//! task re-reads them; ids never seen fetched before the batch goes on, all
//! in one pipelined round trip. When Redis does not answer, known ids keep
//! their stale values, unknown ones get nulls (and are not cached, so they
//! are asked for again later), and the batch goes on.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use somaflow_pipeline::metrics::{OutcomeLabels, metrics, outcome};
use tracing::Instrument;

use super::cache::{Cache, Cached, Value};
use super::catalog::MetadataCatalog;
use super::fetch::hgetall_many;
use super::meta::{CapsuleMeta, Metadata, TenantMeta, parse};
use crate::redis::{RedisLink, RedisLinkError};

/// At most one "Redis unavailable" warning per this interval.
const UNAVAILABLE_WARN_EVERY: Duration = Duration::from_secs(10);

/// Lookups of one batch by outcome, each distinct id counted once.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcomes {
    /// Fresh in the cache, with metadata.
    pub hit: u64,
    /// Read from Redis for this batch, with metadata.
    pub fetched: u64,
    /// No metadata: the key does not exist (fetched now or cached), or no
    /// Redis is configured.
    pub absent: u64,
    /// Older than the TTL, used while a refresh runs (or Redis is down).
    pub stale: u64,
    /// Never seen and Redis did not answer: nulls this time.
    pub unavailable: u64,
}

/// The label sets of [`Outcomes`], built once per node.
struct OutcomeSeries {
    hit: OutcomeLabels,
    fetched: OutcomeLabels,
    absent: OutcomeLabels,
    stale: OutcomeLabels,
    unavailable: OutcomeLabels,
}

impl OutcomeSeries {
    fn new(node: &str) -> Self {
        let c = Self {
            hit: outcome(node, "hit"),
            fetched: outcome(node, "fetched"),
            absent: outcome(node, "absent"),
            stale: outcome(node, "stale"),
            unavailable: outcome(node, "unavailable"),
        };
        // Every series exists from the start, at 0, so rates work at once.
        for labels in c.all() {
            let _ = metrics().enrich_lookups.get_or_create(labels);
        }
        c
    }

    fn all(&self) -> [&OutcomeLabels; 5] {
        [
            &self.hit,
            &self.fetched,
            &self.absent,
            &self.stale,
            &self.unavailable,
        ]
    }

    fn record(&self, o: &Outcomes) {
        let counts = [o.hit, o.fetched, o.absent, o.stale, o.unavailable];
        for (labels, n) in self.all().into_iter().zip(counts) {
            if n > 0 {
                metrics().enrich_lookups.get_or_create(labels).inc_by(n);
            }
        }
    }
}

/// Metadata per distinct id, in the order the ids were given.
pub(crate) struct Resolved {
    pub tenants: Vec<Value<TenantMeta>>,
    pub capsules: Vec<Value<CapsuleMeta>>,
    pub outcomes: Outcomes,
}

/// What the operator and its background refreshes share.
struct Shared {
    tenants: Mutex<Cache<TenantMeta>>,
    capsules: Mutex<Cache<CapsuleMeta>>,
    /// A background refresh is running; stale ids wait for the next batch.
    refreshing: AtomicBool,
    last_unavailable_warning: Mutex<Option<Instant>>,
    /// Keys whose malformed fields were already reported.
    malformed_reported: Mutex<HashSet<String>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock leaves a usable cache.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Shared {
    fn warn_unavailable(&self, node: &str, what: &str, error: &RedisLinkError) {
        let now = Instant::now();
        let mut last = lock(&self.last_unavailable_warning);
        if last.is_some_and(|t| now.saturating_duration_since(t) < UNAVAILABLE_WARN_EVERY) {
            return;
        }
        *last = Some(now);
        tracing::warn!(node, %error,
            "enrich: {what}; unknown tenants and capsules get null metadata, known ones keep their cached values");
    }

    fn warn_malformed(&self, node: &str, key: &str, problems: &[String]) {
        if problems.is_empty() || !lock(&self.malformed_reported).insert(key.to_string()) {
            return;
        }
        tracing::warn!(node, key, problems = %problems.join("; "),
            "enrich: malformed metadata in Redis; those fields are null");
    }

    /// Parses what Redis answered for `ids` and caches it.
    fn store<V: Metadata>(
        &self,
        cache: &Mutex<Cache<V>>,
        node: &str,
        ids: &[&str],
        hashes: &[HashMap<String, String>],
        fetched_at: Instant,
    ) -> Vec<Value<V>> {
        let mut values = Vec::with_capacity(ids.len());
        let mut problems = Vec::new();
        for (id, hash) in ids.iter().zip(hashes) {
            problems.clear();
            let value = parse::<V>(hash, &mut problems).map(Arc::new);
            if !problems.is_empty() {
                self.warn_malformed(node, &format!("{}{id}", V::PREFIX), &problems);
            }
            values.push(value);
        }
        let mut cache = lock(cache);
        for (id, value) in ids.iter().zip(&values) {
            cache.put(id, value.clone(), fetched_at);
        }
        values
    }
}

/// Caches metadata given in process through the same parsing as a Redis
/// answer (malformed fields are null and reported the same way).
fn store_given<V: Metadata>(
    shared: &Shared,
    cache: &Mutex<Cache<V>>,
    node: &str,
    given: &Hashes,
    at: Instant,
) {
    let ids: Vec<&str> = given.iter().map(|(id, _)| id.as_str()).collect();
    let hashes: Vec<HashMap<String, String>> = given.iter().map(|(_, h)| h.clone()).collect();
    shared.store(cache, node, &ids, &hashes, at);
}

/// Clears the refresh flag when the refresh task ends, however it ends.
struct RefreshDone(Arc<Shared>);

impl Drop for RefreshDone {
    fn drop(&mut self) {
        self.0.refreshing.store(false, Ordering::Release);
    }
}

/// Ids of one kind being resolved for a batch.
struct Pending<'a, V> {
    ids: &'a [&'a str],
    values: Vec<Value<V>>,
    /// Positions in `ids` never seen.
    missing: Vec<usize>,
    /// Positions in `ids` whose value is stale.
    stale: Vec<usize>,
}

impl<'a, V: Metadata> Pending<'a, V> {
    /// Looks every id up in the cache, under one lock.
    fn classify(
        cache: &Mutex<Cache<V>>,
        ids: &'a [&'a str],
        now: Instant,
        o: &mut Outcomes,
    ) -> Self {
        let mut p = Pending {
            ids,
            values: Vec::with_capacity(ids.len()),
            missing: Vec::new(),
            stale: Vec::new(),
        };
        let cache = lock(cache);
        for (i, id) in ids.iter().enumerate() {
            let value = match cache.get(id, now) {
                Cached::Fresh(v) => {
                    if v.is_some() {
                        o.hit += 1;
                    } else {
                        o.absent += 1;
                    }
                    v
                }
                Cached::Stale(v) => {
                    o.stale += 1;
                    p.stale.push(i);
                    v
                }
                Cached::Missing => {
                    p.missing.push(i);
                    None
                }
            };
            p.values.push(value);
        }
        p
    }

    fn keys(&self, positions: &[usize]) -> impl Iterator<Item = String> {
        positions
            .iter()
            .map(|&i| format!("{}{}", V::PREFIX, self.ids[i]))
    }

    fn missing_ids(&self) -> Vec<&'a str> {
        self.missing.iter().map(|&i| self.ids[i]).collect()
    }

    fn stale_ids(&self) -> Vec<String> {
        self.stale
            .iter()
            .map(|&i| self.ids[i].to_string())
            .collect()
    }

    /// Takes fetched values for the missing ids.
    fn fill(&mut self, fetched: Vec<Value<V>>, o: &mut Outcomes) {
        for (&i, value) in self.missing.iter().zip(fetched) {
            if value.is_some() {
                o.fetched += 1;
            } else {
                o.absent += 1;
            }
            self.values[i] = value;
        }
    }
}

/// Where a lookup's metadata comes from.
enum Source {
    /// No Redis configured: every id is absent, the cache is not consulted.
    None,
    Redis(RedisLink),
    /// Given once at construction, held in the cache for good; an id not
    /// given is absent.
    Preloaded,
    /// Read from the metadata files on every batch (no cache: the catalog
    /// is in process, and a change must show at once).
    Catalog(Arc<MetadataCatalog>),
}

/// Metadata given in process, as `(id, hash fields)`: what the Redis hash
/// `tenant:{id}` or `capsule:{id}` would hold.
pub type Hashes = [(String, HashMap<String, String>)];

/// Resolves ids for one enrich node; its cache is its own (per node and
/// process), the Redis link is shared.
pub(crate) struct Lookup {
    node: String,
    source: Source,
    shared: Arc<Shared>,
    counters: OutcomeSeries,
}

impl Lookup {
    pub(crate) fn new(node: &str, link: Option<RedisLink>, ttl: Duration) -> Self {
        let source = link.map_or(Source::None, Source::Redis);
        Self::with_source(node, source, ttl)
    }

    /// A lookup answering from `tenants` and `capsules` only, parsed as a
    /// Redis answer would be. The entries never go stale: there is nothing
    /// to re-read them from.
    pub(crate) fn preloaded(node: &str, tenants: &Hashes, capsules: &Hashes) -> Self {
        let lookup = Self::with_source(node, Source::Preloaded, Duration::MAX);
        let shared = &lookup.shared;
        let now = Instant::now();
        store_given(shared, &shared.tenants, node, tenants, now);
        store_given(shared, &shared.capsules, node, capsules, now);
        lookup
    }

    /// A lookup answering from the metadata files' catalog.
    pub(crate) fn catalog(node: &str, catalog: Arc<MetadataCatalog>) -> Self {
        Self::with_source(node, Source::Catalog(catalog), Duration::MAX)
    }

    fn with_source(node: &str, source: Source, ttl: Duration) -> Self {
        Self {
            node: node.to_string(),
            source,
            shared: Arc::new(Shared {
                tenants: Mutex::new(Cache::new(ttl)),
                capsules: Mutex::new(Cache::new(ttl)),
                refreshing: AtomicBool::new(false),
                last_unavailable_warning: Mutex::new(None),
                malformed_reported: Mutex::new(HashSet::new()),
            }),
            counters: OutcomeSeries::new(node),
        }
    }

    /// Metadata for each of `tenant_ids` and `capsule_ids` (distinct ids).
    /// Never fails: what Redis cannot tell now is null.
    pub(crate) async fn resolve(&self, tenant_ids: &[&str], capsule_ids: &[&str]) -> Resolved {
        if matches!(self.source, Source::None) {
            let o = Outcomes {
                absent: (tenant_ids.len() + capsule_ids.len()) as u64,
                ..Outcomes::default()
            };
            self.counters.record(&o);
            return Resolved {
                tenants: vec![None; tenant_ids.len()],
                capsules: vec![None; capsule_ids.len()],
                outcomes: o,
            };
        }
        if let Source::Catalog(catalog) = &self.source {
            let mut o = Outcomes::default();
            let mut count = |found: bool| {
                if found {
                    o.hit += 1;
                } else {
                    o.absent += 1;
                }
            };
            let tenants: Vec<Value<TenantMeta>> = tenant_ids
                .iter()
                .map(|id| catalog.tenant(id))
                .inspect(|v| count(v.is_some()))
                .collect();
            let capsules: Vec<Value<CapsuleMeta>> = capsule_ids
                .iter()
                .map(|id| catalog.capsule(id))
                .inspect(|v| count(v.is_some()))
                .collect();
            self.counters.record(&o);
            return Resolved {
                tenants,
                capsules,
                outcomes: o,
            };
        }
        let now = Instant::now();
        let mut o = Outcomes::default();
        let mut tenants = Pending::classify(&self.shared.tenants, tenant_ids, now, &mut o);
        let mut capsules = Pending::classify(&self.shared.capsules, capsule_ids, now, &mut o);
        match &self.source {
            Source::Redis(link) => {
                if !tenants.missing.is_empty() || !capsules.missing.is_empty() {
                    self.fetch_missing(link, &mut tenants, &mut capsules, &mut o)
                        .await;
                }
                if !tenants.stale.is_empty() || !capsules.stale.is_empty() {
                    self.refresh_in_background(link, tenants.stale_ids(), capsules.stale_ids());
                }
            }
            // Nothing to fetch from: an id that was not given has no metadata.
            Source::Preloaded | Source::None | Source::Catalog(_) => {
                o.absent += (tenants.missing.len() + capsules.missing.len()) as u64;
            }
        }
        self.counters.record(&o);
        Resolved {
            tenants: tenants.values,
            capsules: capsules.values,
            outcomes: o,
        }
    }

    async fn fetch_missing(
        &self,
        link: &RedisLink,
        tenants: &mut Pending<'_, TenantMeta>,
        capsules: &mut Pending<'_, CapsuleMeta>,
        o: &mut Outcomes,
    ) {
        let keys: Vec<String> = tenants
            .keys(&tenants.missing)
            .chain(capsules.keys(&capsules.missing))
            .collect();
        match hgetall_many(link, &self.node, &keys).await {
            Ok(hashes) if hashes.len() == keys.len() => {
                let fetched_at = Instant::now();
                let (t, c) = hashes.split_at(tenants.missing.len());
                let shared = &self.shared;
                let t = shared.store(
                    &shared.tenants,
                    &self.node,
                    &tenants.missing_ids(),
                    t,
                    fetched_at,
                );
                let c = shared.store(
                    &shared.capsules,
                    &self.node,
                    &capsules.missing_ids(),
                    c,
                    fetched_at,
                );
                tenants.fill(t, o);
                capsules.fill(c, o);
            }
            Ok(hashes) => {
                // A pipeline answers once per command; anything else is a
                // broken connection, treated like no answer.
                o.unavailable += keys.len() as u64;
                tracing::warn!(node = %self.node, asked = keys.len(), answered = hashes.len(),
                    "enrich: Redis answered a metadata pipeline incompletely");
            }
            Err(e) => {
                o.unavailable += keys.len() as u64;
                self.shared
                    .warn_unavailable(&self.node, "cannot read metadata from Redis", &e);
            }
        }
    }

    /// Re-reads stale ids in one spawned task; if one is already running,
    /// these ids stay stale and the next batch asks again.
    fn refresh_in_background(&self, link: &RedisLink, tenants: Vec<String>, capsules: Vec<String>) {
        if self.shared.refreshing.swap(true, Ordering::AcqRel) {
            return;
        }
        let done = RefreshDone(self.shared.clone());
        let link = link.clone();
        let node = self.node.clone();
        let span = tracing::debug_span!("enrich_refresh", node = %node,
            tenants = tenants.len(), capsules = capsules.len());
        let task = async move {
            let shared = &done.0;
            let keys: Vec<String> = tenants
                .iter()
                .map(|id| format!("{}{id}", TenantMeta::PREFIX))
                .chain(
                    capsules
                        .iter()
                        .map(|id| format!("{}{id}", CapsuleMeta::PREFIX)),
                )
                .collect();
            match hgetall_many(&link, &node, &keys).await {
                Ok(hashes) if hashes.len() == keys.len() => {
                    let fetched_at = Instant::now();
                    let (t, c) = hashes.split_at(tenants.len());
                    fn ids(v: &[String]) -> Vec<&str> {
                        v.iter().map(String::as_str).collect()
                    }
                    shared.store(&shared.tenants, &node, &ids(&tenants), t, fetched_at);
                    shared.store(&shared.capsules, &node, &ids(&capsules), c, fetched_at);
                }
                Ok(_) => {}
                Err(e) => {
                    shared.warn_unavailable(&node, "cannot refresh cached metadata from Redis", &e)
                }
            }
        };
        tokio::spawn(task.instrument(span));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_fresh_stale_absent_and_missing_with_their_outcomes() {
        let ttl = Duration::from_secs(60);
        let t0 = Instant::now();
        let cache = Mutex::new(Cache::new(ttl));
        let meta = |plan: &str| {
            Some(Arc::new(TenantMeta {
                plan: Some(plan.into()),
                ..TenantMeta::default()
            }))
        };
        {
            let mut c = lock(&cache);
            c.put("fresh", meta("pro"), t0 + ttl);
            c.put("gone", None, t0 + ttl);
            c.put("old", meta("free"), t0);
            c.put("old-gone", None, t0);
        }
        let ids = ["fresh", "gone", "old", "old-gone", "new"];
        let mut o = Outcomes::default();
        let mut p = Pending::classify(&cache, &ids, t0 + ttl + Duration::from_secs(1), &mut o);
        assert_eq!(
            o,
            Outcomes {
                hit: 1,
                absent: 1,
                stale: 2,
                ..Outcomes::default()
            }
        );
        assert_eq!(p.stale_ids(), ["old", "old-gone"]);
        assert_eq!(p.missing_ids(), ["new"]);
        assert_eq!(p.values[0], meta("pro"));
        assert_eq!(p.values[2], meta("free"), "stale values are used");
        assert_eq!(p.keys(&p.missing).collect::<Vec<_>>(), ["tenant:new"]);
        p.fill(vec![meta("enterprise")], &mut o);
        assert_eq!(o.fetched, 1);
        assert_eq!(p.values[4], meta("enterprise"));
    }

    #[test]
    fn stores_fetched_hashes_and_reports_malformed_fields() {
        let shared = Lookup::new("enrich-test-store", None, Duration::from_secs(60)).shared;
        let t0 = Instant::now();
        let hashes = [
            HashMap::from([("author_id".to_string(), "author-01".to_string())]),
            HashMap::new(),
        ];
        let values = shared.store(&shared.capsules, "n", &["c1", "c2"], &hashes, t0);
        assert_eq!(
            values[0].as_ref().unwrap().author_id.as_deref(),
            Some("author-01")
        );
        assert_eq!(values[1], None);
        let cache = lock(&shared.capsules);
        assert!(
            matches!(cache.get("c2", t0), Cached::Fresh(None)),
            "absent is cached"
        );
    }
}
