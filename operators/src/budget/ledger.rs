//! Month-to-date spend shared across workers. Each source shard pushes its
//! own cumulative spend per tenant × month; the ledger keeps the largest
//! value it has seen per shard and the sum over shards. A replay after a
//! crash re-sends values the ledger already has, which change nothing, so
//! spend is never counted twice, and a push that failed is simply sent
//! again later with a larger value. The same atomic step records which
//! shard first took a tenant over each threshold: that shard's owner emits
//! the one `budget_events` row of the crossing.
//!
//! Redis layout: hash `budget:{tenant}:{YYYY-MM}` with fields `spend:{shard}`
//! (nano-USD), `total`, `budget` (nano-USD), `soft` and `hard`
//! (`{shard}|{total at crossing}`). Lua numbers are doubles: spend is exact
//! up to $9 million per tenant, month and partition.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use redis::Script;

use crate::redis::{RedisLink, RedisLinkError};

/// One shard's cumulative spend of a tenant in a month.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendUpdate {
    pub tenant: String,
    pub month: String,
    pub shard: String,
    pub cumulative_nanos: i128,
    /// The tenant's monthly budget when known (from enrich).
    pub budget_nanos: Option<i128>,
}

/// Who first crossed a threshold, and the total at that moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crossing {
    pub shard: String,
    pub total_nanos: i128,
}

/// A tenant-month as the ledger sees it after a push or a read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerState {
    pub total_nanos: i128,
    pub budget_nanos: Option<i128>,
    pub soft: Option<Crossing>,
    pub hard: Option<Crossing>,
}

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error(transparent)]
    Redis(#[from] RedisLinkError),
    #[error("budget ledger answered something unexpected: {0}")]
    Answer(String),
}

#[async_trait]
pub trait SpendLedger: Send + Sync {
    /// Applies the updates (in one round trip) and returns each tenant-month's state.
    async fn push(
        &self,
        updates: &[SpendUpdate],
        soft_percent: u32,
    ) -> Result<Vec<LedgerState>, LedgerError>;
    /// Reads tenant-months without changing them.
    async fn read(&self, keys: &[(String, String)]) -> Result<Vec<LedgerState>, LedgerError>;
    /// Sets a tenant-month's budget at once (`None` or 0 removes it); the
    /// next push checks the thresholds against it.
    async fn set_budget(
        &self,
        tenant: &str,
        month: &str,
        budget_nanos: Option<i128>,
    ) -> Result<(), LedgerError>;
}

pub fn ledger_key(tenant: &str, month: &str) -> String {
    format!("budget:{tenant}:{month}")
}

const PUSH: &str = r#"
local key = KEYS[1]
local field = 'spend:' .. ARGV[1]
local cum = tonumber(ARGV[2])
local old = tonumber(redis.call('HGET', key, field) or '0')
if cum > old then
  redis.call('HSET', key, field, ARGV[2])
  redis.call('HINCRBY', key, 'total', string.format('%.0f', cum - old))
end
if ARGV[3] ~= '' then
  redis.call('HSET', key, 'budget', ARGV[3])
end
local total = tonumber(redis.call('HGET', key, 'total') or '0')
local budget = tonumber(redis.call('HGET', key, 'budget') or '0')
if budget > 0 then
  local at = ARGV[1] .. '|' .. string.format('%.0f', total)
  if total * 100 >= budget * tonumber(ARGV[4]) then redis.call('HSETNX', key, 'soft', at) end
  if total >= budget then redis.call('HSETNX', key, 'hard', at) end
end
return redis.call('HMGET', key, 'total', 'budget', 'soft', 'hard')
"#;

fn parse_state(fields: Vec<Option<String>>) -> Result<LedgerState, LedgerError> {
    let bad = |what: &str| LedgerError::Answer(what.to_string());
    let number = |v: &Option<String>| -> Result<Option<i128>, LedgerError> {
        v.as_deref()
            .map(|s| {
                s.parse::<i128>()
                    .map_err(|_| bad(&format!("not a number: {s:?}")))
            })
            .transpose()
    };
    let crossing = |v: &Option<String>| -> Result<Option<Crossing>, LedgerError> {
        v.as_deref()
            .map(|s| {
                let (shard, total) = s.rsplit_once('|').ok_or_else(|| bad(s))?;
                Ok(Crossing {
                    shard: shard.to_string(),
                    total_nanos: total.parse().map_err(|_| bad(s))?,
                })
            })
            .transpose()
    };
    if fields.len() != 4 {
        return Err(bad("expected 4 fields"));
    }
    Ok(LedgerState {
        total_nanos: number(&fields[0])?.unwrap_or(0),
        budget_nanos: number(&fields[1])?.filter(|b| *b > 0),
        soft: crossing(&fields[2])?,
        hard: crossing(&fields[3])?,
    })
}

/// The ledger in Redis, shared by every worker.
pub struct RedisLedger {
    link: RedisLink,
    node: String,
    script: Script,
    /// Whether Redis is known to hold the script. Cleared after any failure,
    /// since a restarted Redis has an empty script cache.
    script_loaded: AtomicBool,
}

impl RedisLedger {
    pub fn new(node: &str, link: RedisLink) -> Self {
        Self {
            link,
            node: node.to_string(),
            script: Script::new(PUSH),
            script_loaded: AtomicBool::new(false),
        }
    }
}

/// Script calls per pipelined round trip.
const PUSH_CHUNK: usize = 500;

impl RedisLedger {
    async fn push_chunk(
        &self,
        updates: &[SpendUpdate],
        soft_percent: u32,
    ) -> Result<Vec<LedgerState>, LedgerError> {
        // A pipeline invokes scripts by EVALSHA only: load the script in
        // the same round trip until Redis is known to have it.
        let script = &self.script;
        let load = !self.script_loaded.load(Ordering::Acquire);
        let answers: Result<Vec<Vec<Option<String>>>, _> = self
            .link
            .run(&self.node, |mut c| async move {
                let mut pipe = redis::pipe();
                if load {
                    pipe.load_script(script).ignore();
                }
                for u in updates {
                    pipe.invoke_script(
                        script
                            .key(ledger_key(&u.tenant, &u.month))
                            .arg(&u.shard)
                            .arg(u.cumulative_nanos.to_string())
                            .arg(u.budget_nanos.map(|b| b.to_string()).unwrap_or_default())
                            .arg(soft_percent),
                    );
                }
                pipe.query_async(&mut c).await
            })
            .await;
        self.script_loaded.store(answers.is_ok(), Ordering::Release);
        answers?.into_iter().map(parse_state).collect()
    }
}

#[async_trait]
impl SpendLedger for RedisLedger {
    async fn push(
        &self,
        updates: &[SpendUpdate],
        soft_percent: u32,
    ) -> Result<Vec<LedgerState>, LedgerError> {
        let mut states = Vec::with_capacity(updates.len());
        // Each round trip runs under the link's command timeout: a backlog
        // after an outage (one update per tenant × month × shard) goes in
        // chunks small enough to answer within it.
        for chunk in updates.chunks(PUSH_CHUNK) {
            states.extend(self.push_chunk(chunk, soft_percent).await?);
        }
        Ok(states)
    }

    async fn read(&self, keys: &[(String, String)]) -> Result<Vec<LedgerState>, LedgerError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let answers: Vec<Vec<Option<String>>> = self
            .link
            .run(&self.node, |mut c| async move {
                let mut pipe = redis::pipe();
                for (tenant, month) in keys {
                    pipe.cmd("HMGET")
                        .arg(ledger_key(tenant, month))
                        .arg(&["total", "budget", "soft", "hard"]);
                }
                pipe.query_async(&mut c).await
            })
            .await?;
        answers.into_iter().map(parse_state).collect()
    }

    async fn set_budget(
        &self,
        tenant: &str,
        month: &str,
        budget_nanos: Option<i128>,
    ) -> Result<(), LedgerError> {
        let key = ledger_key(tenant, month);
        let budget = budget_nanos.filter(|b| *b > 0);
        self.link
            .run(&self.node, move |mut c| async move {
                let mut pipe = redis::pipe();
                match budget {
                    Some(b) => pipe.hset(&key, "budget", b.to_string()).ignore(),
                    None => pipe.hdel(&key, "budget").ignore(),
                };
                pipe.query_async::<()>(&mut c).await
            })
            .await?;
        Ok(())
    }
}

/// The ledger of a single process (no Redis configured): the same rules,
/// exact within the process; nothing is shared with other workers.
#[derive(Default)]
pub struct LocalLedger {
    months: Mutex<HashMap<(String, String), LocalMonth>>,
}

#[derive(Default)]
struct LocalMonth {
    by_shard: HashMap<String, i128>,
    state: LedgerState,
}

#[async_trait]
impl SpendLedger for LocalLedger {
    async fn push(
        &self,
        updates: &[SpendUpdate],
        soft_percent: u32,
    ) -> Result<Vec<LedgerState>, LedgerError> {
        let mut months = self.months.lock().unwrap_or_else(|p| p.into_inner());
        Ok(updates
            .iter()
            .map(|u| {
                let m = months
                    .entry((u.tenant.clone(), u.month.clone()))
                    .or_default();
                let old = m.by_shard.entry(u.shard.clone()).or_insert(0);
                if u.cumulative_nanos > *old {
                    m.state.total_nanos += u.cumulative_nanos - *old;
                    *old = u.cumulative_nanos;
                }
                if let Some(b) = u.budget_nanos.filter(|b| *b > 0) {
                    m.state.budget_nanos = Some(b);
                }
                if let Some(budget) = m.state.budget_nanos {
                    let at = Crossing {
                        shard: u.shard.clone(),
                        total_nanos: m.state.total_nanos,
                    };
                    if m.state.soft.is_none()
                        && m.state.total_nanos * 100 >= budget * i128::from(soft_percent)
                    {
                        m.state.soft = Some(at.clone());
                    }
                    if m.state.hard.is_none() && m.state.total_nanos >= budget {
                        m.state.hard = Some(at);
                    }
                }
                m.state.clone()
            })
            .collect())
    }

    async fn read(&self, keys: &[(String, String)]) -> Result<Vec<LedgerState>, LedgerError> {
        let months = self.months.lock().unwrap_or_else(|p| p.into_inner());
        Ok(keys
            .iter()
            .map(|k| months.get(k).map(|m| m.state.clone()).unwrap_or_default())
            .collect())
    }

    async fn set_budget(
        &self,
        tenant: &str,
        month: &str,
        budget_nanos: Option<i128>,
    ) -> Result<(), LedgerError> {
        let mut months = self.months.lock().unwrap_or_else(|p| p.into_inner());
        let m = months
            .entry((tenant.to_string(), month.to_string()))
            .or_default();
        m.state.budget_nanos = budget_nanos.filter(|b| *b > 0);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(shard: &str, cumulative: i128) -> SpendUpdate {
        SpendUpdate {
            tenant: "t".into(),
            month: "2026-11".into(),
            shard: shard.into(),
            cumulative_nanos: cumulative,
            budget_nanos: Some(100),
        }
    }

    #[tokio::test]
    async fn replays_do_not_count_twice_and_each_threshold_is_claimed_once() {
        let ledger = LocalLedger::default();
        let s = ledger.push(&[update("a@0", 50)], 80).await.unwrap();
        assert_eq!(s[0].total_nanos, 50);
        let s = ledger
            .push(&[update("b@0", 30), update("a@0", 50)], 80)
            .await
            .unwrap();
        assert_eq!(s[1].total_nanos, 80, "the replayed 50 changes nothing");
        assert_eq!(s[1].soft.as_ref().map(|c| c.shard.as_str()), Some("b@0"));
        assert!(s[1].hard.is_none());
        let s = ledger
            .push(&[update("a@0", 40), update("a@0", 70)], 80)
            .await
            .unwrap();
        assert_eq!(s[0].total_nanos, 80, "an older cumulative value is ignored");
        assert_eq!(s[1].total_nanos, 100);
        assert_eq!(
            s[1].soft.as_ref().map(|c| c.shard.as_str()),
            Some("b@0"),
            "kept"
        );
        assert_eq!(
            s[1].hard
                .as_ref()
                .map(|c| (c.shard.as_str(), c.total_nanos)),
            Some(("a@0", 100))
        );
    }

    #[test]
    fn ledger_answers_parse() {
        let s = parse_state(vec![
            Some("120".into()),
            Some("100".into()),
            Some("x@1|85".into()),
            None,
        ])
        .unwrap();
        assert_eq!(s.total_nanos, 120);
        assert_eq!(
            s.soft,
            Some(Crossing {
                shard: "x@1".into(),
                total_nanos: 85
            })
        );
        assert!(parse_state(vec![Some("x".into()), None, None, None]).is_err());
    }
}
