//! The newest events this node accepted over HTTP, kept in memory so the
//! console's Live page (and `GET /v1/events/recent`) can show a request's
//! events the moment it is answered `202`, before any checkpoint publishes
//! them. Only the envelope is kept (id, kind, tenant, times), never the
//! data, and a reader sees only the tenants its token may see.

use std::collections::VecDeque;
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

/// How many accepted events are kept: a screenful and then some.
pub const RECENT_CAPACITY: usize = 256;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RecentEvent {
    pub id: String,
    /// The CloudEvents `type`.
    #[serde(rename = "type")]
    pub type_name: &'static str,
    /// The table the event goes to.
    pub table: &'static str,
    pub tenant: String,
    /// Event time, microseconds since the Unix epoch.
    pub event_time_us: i64,
    /// When the node accepted it (answered `202`), microseconds.
    pub accepted_us: i64,
}

/// The process's buffer of recently accepted events.
pub fn recent_events() -> &'static RecentEvents {
    static RECENT: OnceLock<RecentEvents> = OnceLock::new();
    RECENT.get_or_init(RecentEvents::default)
}

#[derive(Debug, Default)]
pub struct RecentEvents(Mutex<VecDeque<RecentEvent>>);

impl RecentEvents {
    /// Keeps the newest of `events` (in acceptance order), dropping the
    /// oldest past [`RECENT_CAPACITY`].
    pub fn record(&self, events: Vec<RecentEvent>) {
        if events.is_empty() {
            return;
        }
        // A poisoned lock only means a reader panicked mid-copy; the
        // buffer itself is always whole.
        let mut kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let skip = events.len().saturating_sub(RECENT_CAPACITY);
        for event in events.into_iter().skip(skip) {
            if kept.len() == RECENT_CAPACITY {
                kept.pop_front();
            }
            kept.push_back(event);
        }
    }

    /// Up to `limit` of the newest events, newest first, of `tenant` only
    /// when one is given.
    pub fn newest(&self, limit: usize, tenant: Option<&str>) -> Vec<RecentEvent> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner());
        kept.iter()
            .rev()
            .filter(|e| tenant.is_none_or(|t| e.tenant == t))
            .take(limit)
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: usize, tenant: &str) -> RecentEvent {
        RecentEvent {
            id: format!("e{n}"),
            type_name: "soma.conversation.v1",
            table: "conversations",
            tenant: tenant.into(),
            event_time_us: 0,
            accepted_us: i64::try_from(n).unwrap(),
        }
    }

    #[test]
    fn keeps_the_newest_and_filters_by_tenant() {
        let recent = RecentEvents::default();
        recent.record((0..RECENT_CAPACITY + 10).map(|n| event(n, "a")).collect());
        recent.record(vec![event(9_000, "b")]);
        let all = recent.newest(RECENT_CAPACITY * 2, None);
        assert_eq!(all.len(), RECENT_CAPACITY);
        assert_eq!(all[0].id, "e9000", "newest first");
        assert_eq!(
            all.last().map(|e| e.id.as_str()),
            Some("e11"),
            "the oldest ones are gone"
        );
        let b = recent.newest(10, Some("b"));
        assert_eq!(b.len(), 1);
        assert!(recent.newest(5, Some("a")).iter().all(|e| e.tenant == "a"));
    }
}
