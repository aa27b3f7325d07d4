//! The in-process metadata cache: id → value (or "no metadata") and when it
//! was fetched. Freshness is judged against a `now` the caller passes, so
//! the rules are tested without a clock and one batch sees one instant.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Entries kept before expired ones are swept. Ids come from input, so
/// without a bound a stream of made-up tenant ids would grow it forever.
const MAX_ENTRIES: usize = 100_000;

/// A cached value: `None` means the key does not exist in Redis.
pub(crate) type Value<V> = Option<Arc<V>>;

/// What the cache knows about an id.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Cached<V> {
    /// Fetched less than a TTL ago: use it.
    Fresh(Value<V>),
    /// Older than the TTL: use it now, refresh in the background.
    Stale(Value<V>),
    /// Never fetched (or swept): fetch before use.
    Missing,
}

struct Entry<V> {
    value: Value<V>,
    fetched_at: Instant,
}

pub(crate) struct Cache<V> {
    entries: HashMap<String, Entry<V>>,
    ttl: Duration,
    max_entries: usize,
}

impl<V> Cache<V> {
    pub(crate) fn new(ttl: Duration) -> Self {
        Self::with_capacity_limit(ttl, MAX_ENTRIES)
    }

    fn with_capacity_limit(ttl: Duration, max_entries: usize) -> Self {
        Self {
            entries: HashMap::new(),
            ttl,
            max_entries,
        }
    }

    pub(crate) fn get(&self, id: &str, now: Instant) -> Cached<V> {
        match self.entries.get(id) {
            None => Cached::Missing,
            Some(e) if now.saturating_duration_since(e.fetched_at) < self.ttl => {
                Cached::Fresh(e.value.clone())
            }
            Some(e) => Cached::Stale(e.value.clone()),
        }
    }

    /// Stores what Redis answered at `fetched_at`. An answer older than the
    /// entry's (a slow background refresh finishing after a newer fetch)
    /// does not overwrite it.
    pub(crate) fn put(&mut self, id: &str, value: Value<V>, fetched_at: Instant) {
        if let Some(e) = self.entries.get_mut(id) {
            if e.fetched_at <= fetched_at {
                *e = Entry { value, fetched_at };
            }
            return;
        }
        if self.entries.len() >= self.max_entries {
            self.sweep(fetched_at);
        }
        self.entries
            .insert(id.to_string(), Entry { value, fetched_at });
    }

    /// Drops expired entries; if that is not enough, everything (what is
    /// still in use is fetched again, once).
    fn sweep(&mut self, now: Instant) {
        let ttl = self.ttl;
        self.entries
            .retain(|_, e| now.saturating_duration_since(e.fetched_at) < ttl);
        if self.entries.len() >= self.max_entries {
            self.entries.clear();
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TTL: Duration = Duration::from_secs(60);

    #[test]
    fn fresh_then_stale_then_refreshed() {
        let t0 = Instant::now();
        let mut cache = Cache::new(TTL);
        assert_eq!(cache.get("a", t0), Cached::Missing);
        cache.put("a", Some(Arc::new(1)), t0);
        assert_eq!(
            cache.get("a", t0 + TTL / 2),
            Cached::Fresh(Some(Arc::new(1)))
        );
        assert_eq!(cache.get("a", t0 + TTL), Cached::Stale(Some(Arc::new(1))));
        cache.put("a", Some(Arc::new(2)), t0 + TTL);
        assert_eq!(cache.get("a", t0 + TTL), Cached::Fresh(Some(Arc::new(2))));
    }

    #[test]
    fn absent_is_cached_with_the_same_ttl() {
        let t0 = Instant::now();
        let mut cache: Cache<u8> = Cache::new(TTL);
        cache.put("gone", None, t0);
        assert_eq!(
            cache.get("gone", t0 + Duration::from_secs(1)),
            Cached::Fresh(None)
        );
        assert_eq!(cache.get("gone", t0 + TTL * 2), Cached::Stale(None));
    }

    #[test]
    fn an_older_answer_does_not_overwrite_a_newer_one() {
        let t0 = Instant::now();
        let mut cache = Cache::new(TTL);
        cache.put("a", Some(Arc::new(2)), t0 + TTL);
        cache.put("a", Some(Arc::new(1)), t0);
        assert_eq!(cache.get("a", t0 + TTL), Cached::Fresh(Some(Arc::new(2))));
    }

    #[test]
    fn stays_bounded_dropping_expired_entries_first() {
        let t0 = Instant::now();
        let mut cache = Cache::with_capacity_limit(TTL, 3);
        cache.put("old", Some(Arc::new(0)), t0);
        cache.put("b", Some(Arc::new(1)), t0 + TTL);
        cache.put("c", Some(Arc::new(2)), t0 + TTL);
        cache.put("d", Some(Arc::new(3)), t0 + TTL + Duration::from_secs(1));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("old", t0 + TTL), Cached::Missing);
        assert!(matches!(cache.get("b", t0 + TTL), Cached::Fresh(_)));
        // Nothing expired: everything goes rather than growing past the bound.
        cache.put("e", None, t0 + TTL + Duration::from_secs(2));
        assert_eq!(cache.len(), 1);
    }
}
