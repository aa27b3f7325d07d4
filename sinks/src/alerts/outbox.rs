//! The outbox: every alert × webhook delivery from the moment the alert
//! reaches the sink until the receiver acknowledges it. What a checkpoint
//! holds of it ([`OutboxSnapshot`]) is the sink's pre-commit, so an alert
//! and the operator state that produced it become durable together, and
//! nothing is sent before that (see `docs/alerts.md`).
//!
//! Pure state, no I/O: the sink stages and seals, the committer marks
//! commits, the delivery task takes what is due and reports answers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::alert::Alert;

/// One delivery: an alert's id and the webhook's name.
pub type DeliveryKey = (String, String);

/// A delivery not yet acknowledged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Delivery {
    pub alert: Alert,
    pub webhook: String,
    /// The checkpoint that holds it; `None` while only in memory.
    pub epoch: Option<u64>,
    /// Its checkpoint is durable: it may be sent.
    pub committed: bool,
    pub attempts: u32,
    /// Not sent again before this (Unix ms).
    pub next_at_ms: i64,
    pub last_status: Option<u16>,
    pub last_error: Option<String>,
    pub staged_at_ms: i64,
}

/// What a checkpoint keeps: the deliveries it covers and the keys acked
/// recently (so a crossing emitted again is not sent again).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct OutboxSnapshot {
    pub pending: Vec<Delivery>,
    pub acked: Vec<(DeliveryKey, i64)>,
}

#[derive(Debug, Default)]
pub struct Outbox {
    pending: BTreeMap<DeliveryKey, Delivery>,
    /// Acknowledged keys and when (Unix ms), kept for `ack_window_ms`.
    acked: BTreeMap<DeliveryKey, i64>,
}

impl Outbox {
    /// Adds a delivery of `alert` to each of `webhooks`, unless that key is
    /// already pending or was acknowledged.
    pub fn stage(&mut self, alert: &Alert, webhooks: &[&str], now_ms: i64) -> usize {
        let mut added = 0;
        for webhook in webhooks {
            let key = (alert.id.clone(), (*webhook).to_owned());
            if self.pending.contains_key(&key) || self.acked.contains_key(&key) {
                continue;
            }
            self.pending.insert(
                key,
                Delivery {
                    alert: alert.clone(),
                    webhook: (*webhook).to_owned(),
                    epoch: None,
                    committed: false,
                    attempts: 0,
                    next_at_ms: now_ms,
                    last_status: None,
                    last_error: None,
                    staged_at_ms: now_ms,
                },
            );
            added += 1;
        }
        added
    }

    /// At the barrier of `epoch`: what was staged belongs to it; returns
    /// what the checkpoint keeps. Acks older than `ack_window_ms` go.
    pub fn seal(&mut self, epoch: u64, now_ms: i64, ack_window_ms: i64) -> OutboxSnapshot {
        for d in self.pending.values_mut() {
            d.epoch.get_or_insert(epoch);
        }
        self.acked.retain(|_, at| now_ms - *at <= ack_window_ms);
        OutboxSnapshot {
            pending: self.pending.values().cloned().collect(),
            acked: self.acked.iter().map(|(k, at)| (k.clone(), *at)).collect(),
        }
    }

    /// The checkpoint of `epoch` is durable: its deliveries may go out.
    pub fn committed(&mut self, epoch: u64) {
        for d in self.pending.values_mut() {
            if d.epoch.is_some_and(|e| e <= epoch) {
                d.committed = true;
            }
        }
    }

    /// At start, from the newest durable checkpoint: everything in it is
    /// committed. What was only in memory is dropped: it is replayed.
    pub fn restore(&mut self, snapshot: OutboxSnapshot) {
        self.pending.clear();
        self.acked = snapshot.acked.into_iter().collect();
        for mut d in snapshot.pending {
            d.committed = true;
            let key = (d.alert.id.clone(), d.webhook.clone());
            if !self.acked.contains_key(&key) {
                self.pending.insert(key, d);
            }
        }
    }

    /// Committed deliveries due at `now_ms`, oldest first.
    pub fn due(&self, now_ms: i64) -> Vec<Delivery> {
        let mut due: Vec<Delivery> = self
            .pending
            .values()
            .filter(|d| d.committed && d.next_at_ms <= now_ms)
            .cloned()
            .collect();
        due.sort_by_key(|d| d.staged_at_ms);
        due
    }

    /// The earliest time a committed delivery is due.
    pub fn next_due_ms(&self) -> Option<i64> {
        self.pending
            .values()
            .filter(|d| d.committed)
            .map(|d| d.next_at_ms)
            .min()
    }

    /// The receiver answered 2xx.
    pub fn ack(&mut self, key: &DeliveryKey, now_ms: i64) -> Option<Delivery> {
        let d = self.pending.remove(key)?;
        self.acked.insert(key.clone(), now_ms);
        Some(d)
    }

    /// The attempt failed; try again at `next_at_ms`.
    pub fn retry(
        &mut self,
        key: &DeliveryKey,
        status: Option<u16>,
        error: String,
        next_at_ms: i64,
    ) -> Option<&Delivery> {
        let d = self.pending.get_mut(key)?;
        d.attempts += 1;
        d.last_status = status;
        d.last_error = Some(error);
        d.next_at_ms = next_at_ms;
        Some(d)
    }

    pub fn pending(&self) -> impl Iterator<Item = &Delivery> {
        self.pending.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alert(id: &str) -> Alert {
        Alert {
            id: id.to_owned(),
            event: "budget.soft".to_owned(),
            tenant: "t1".to_owned(),
            occurred_at: "2026-12-07T10:00:00Z".to_owned(),
            detail: serde_json::json!({"level": "soft"}),
        }
    }

    fn key(id: &str, hook: &str) -> DeliveryKey {
        (id.to_owned(), hook.to_owned())
    }

    #[test]
    fn nothing_is_due_before_its_checkpoint_commits() {
        let mut o = Outbox::default();
        assert_eq!(o.stage(&alert("a"), &["ops", "billing"], 0), 2);
        assert!(o.due(10).is_empty(), "staged only");
        let snap = o.seal(1, 10, 1_000);
        assert_eq!(snap.pending.len(), 2);
        assert!(o.due(10).is_empty(), "sealed, not durable");
        o.stage(&alert("b"), &["ops"], 20);
        o.committed(1);
        let due: Vec<String> = o.due(20).iter().map(|d| d.alert.id.clone()).collect();
        assert_eq!(due, ["a", "a"], "b belongs to the next checkpoint");
    }

    #[test]
    fn an_acked_or_pending_key_is_not_staged_again() {
        let mut o = Outbox::default();
        o.stage(&alert("a"), &["ops"], 0);
        assert_eq!(o.stage(&alert("a"), &["ops"], 1), 0);
        o.seal(1, 1, 1_000);
        o.committed(1);
        assert!(o.ack(&key("a", "ops"), 5).is_some());
        assert_eq!(o.stage(&alert("a"), &["ops"], 6), 0, "acked");
        // The ack window passes: the key is forgotten.
        o.seal(2, 2_000, 1_000);
        assert_eq!(o.stage(&alert("a"), &["ops"], 2_001), 1);
    }

    #[test]
    fn a_restart_keeps_the_checkpointed_deliveries_and_drops_the_rest() {
        let mut o = Outbox::default();
        o.stage(&alert("a"), &["ops"], 0);
        o.stage(&alert("b"), &["ops"], 0);
        let snap = o.seal(1, 0, 1_000);
        o.stage(&alert("c"), &["ops"], 1);
        o.retry(&key("a", "ops"), Some(503), "503".into(), 100);
        let json = serde_json::to_value(&snap).unwrap();
        let mut restarted = Outbox::default();
        restarted.restore(serde_json::from_value(json).unwrap());
        let due: Vec<String> = restarted
            .due(0)
            .iter()
            .map(|d| d.alert.id.clone())
            .collect();
        assert_eq!(due, ["a", "b"], "committed at once; c is replayed");
        // An ack the checkpoint recorded is not sent again.
        let mut o = Outbox::default();
        o.stage(&alert("a"), &["ops"], 0);
        o.seal(1, 0, 1_000);
        o.committed(1);
        o.ack(&key("a", "ops"), 1);
        let snap = o.seal(2, 2, 1_000);
        let mut restarted = Outbox::default();
        restarted.restore(snap);
        assert!(restarted.due(10).is_empty());
        assert_eq!(restarted.stage(&alert("a"), &["ops"], 10), 0);
    }

    #[test]
    fn a_failed_attempt_waits_for_its_backoff() {
        let mut o = Outbox::default();
        o.stage(&alert("a"), &["ops"], 0);
        o.seal(1, 0, 1_000);
        o.committed(1);
        o.retry(&key("a", "ops"), None, "connection refused".into(), 500);
        assert!(o.due(499).is_empty());
        assert_eq!(o.next_due_ms(), Some(500));
        let d = &o.due(500)[0];
        assert_eq!(
            (d.attempts, d.last_error.as_deref()),
            (1, Some("connection refused"))
        );
    }
}
