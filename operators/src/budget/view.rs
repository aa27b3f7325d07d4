//! A worker's view of budget state: the ledger plus a short-lived cache of
//! what it last answered, shared by the budget operator (which refreshes it
//! with every push) and dispatch (which asks whether a tenant is over its
//! hard budget before sending work to an agent pool).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::ledger::{LedgerError, LedgerState, SpendLedger, SpendUpdate};

/// The last answer per (tenant, month), and when it came.
type StateCache = HashMap<(String, String), (LedgerState, Instant)>;

/// Cheap to clone; clones share the cache.
#[derive(Clone)]
pub struct BudgetView {
    ledger: Arc<dyn SpendLedger>,
    soft_percent: u32,
    refresh: Duration,
    cache: Arc<Mutex<StateCache>>,
}

impl BudgetView {
    pub fn new(ledger: Arc<dyn SpendLedger>, soft_percent: u32, refresh: Duration) -> Self {
        Self {
            ledger,
            soft_percent,
            refresh,
            cache: Arc::default(),
        }
    }

    pub fn soft_percent(&self) -> u32 {
        self.soft_percent
    }

    /// Pushes spend and remembers the answers.
    pub async fn push(&self, updates: &[SpendUpdate]) -> Result<Vec<LedgerState>, LedgerError> {
        let states = self.ledger.push(updates, self.soft_percent).await?;
        let now = Instant::now();
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        for (u, s) in updates.iter().zip(&states) {
            cache.insert((u.tenant.clone(), u.month.clone()), (s.clone(), now));
        }
        Ok(states)
    }

    /// Which of `keys` (tenant, month) are at or over their hard budget now. Answers
    /// older than the refresh interval are read again; when the ledger does
    /// not answer, the last known state is used (unknown = not over).
    pub async fn over_hard_budget(&self, keys: &[(String, String)]) -> Vec<bool> {
        let now = Instant::now();
        let stale: Vec<(String, String)> = {
            let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            let mut stale: Vec<_> = keys
                .iter()
                .filter(|k| {
                    cache
                        .get(*k)
                        .is_none_or(|(_, at)| now.duration_since(*at) >= self.refresh)
                })
                .cloned()
                .collect();
            stale.sort();
            stale.dedup();
            stale
        };
        if let Ok(states) = self.ledger.read(&stale).await {
            let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
            for (k, s) in stale.into_iter().zip(states) {
                cache.insert(k, (s, now));
            }
        }
        let cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        keys.iter()
            // From the current total, not the recorded crossing: a budget
            // raised after the crossing lets the tenant's work through again.
            .map(|k| {
                cache.get(k).is_some_and(|(s, _)| {
                    s.budget_nanos.is_some_and(|budget| s.total_nanos >= budget)
                })
            })
            .collect()
    }

    /// Sets a tenant-month's budget in the ledger (see
    /// [`SpendLedger::set_budget`]) and forgets the cached answer.
    pub async fn set_budget(
        &self,
        tenant: &str,
        month: &str,
        budget_nanos: Option<i128>,
    ) -> Result<(), LedgerError> {
        self.ledger.set_budget(tenant, month, budget_nanos).await?;
        let key = (tenant.to_string(), month.to_string());
        self.cache
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        Ok(())
    }

    /// A tenant-month's state, read from the ledger.
    pub async fn read(&self, tenant: &str, month: &str) -> Result<LedgerState, LedgerError> {
        let keys = [(tenant.to_string(), month.to_string())];
        Ok(self.ledger.read(&keys).await?.pop().unwrap_or_default())
    }
}
