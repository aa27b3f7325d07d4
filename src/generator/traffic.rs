//! The traffic model: tenants with Zipf-skewed activity, conversations with
//! realistic token mixes, capsule runs, KAMACHIQ workflows whose steps fan
//! out and sometimes fail and retry, marketplace and billing events, daily
//! and weekly seasonality, and a small share of malformed and duplicate
//! records. Everything is drawn from one seeded RNG: the same seed and the
//! same calls give the same events.

use std::collections::VecDeque;

use bytes::Bytes;
use chrono::{DateTime, Datelike, Timelike, Utc};
use rand::distr::Distribution;
use rand::distr::weighted::WeightedIndex;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::catalog::{AGENT_POOLS, BILLING_METERS, MESSAGES, MODELS, Model, POLICIES, STEP_TYPES};
use super::stats::{GeneratorStats, KindStats};
use super::wire::to_wire;

#[derive(Debug, Clone)]
pub struct GeneratorConfig {
    pub seed: u64,
    pub tenants: usize,
    /// Share of records that are malformed or invalid.
    pub malformed_ratio: f64,
    /// Share of records that repeat an earlier valid event.
    pub duplicate_ratio: f64,
    /// Share of live records dated 30 s to 10 min in the past.
    pub late_ratio: f64,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            seed: 42,
            tenants: 300,
            malformed_ratio: 0.005,
            duplicate_ratio: 0.01,
            late_ratio: 0.01,
        }
    }
}

/// One generated record.
#[derive(Debug, Clone)]
pub struct Generated {
    pub bytes: Bytes,
    pub class: RecordClass,
    /// The kind's table (a malformed record counts as a conversation), which
    /// picks its Kafka topic.
    pub table: &'static str,
    /// The tenant, used as the Kafka message key.
    pub tenant: String,
    /// When it was generated for (a repeat: when its original was).
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordClass {
    Valid,
    Duplicate,
    Malformed,
}

struct Capsule {
    id: String,
    author: String,
    price_cents: i64,
}

struct WorkflowRun {
    tenant: usize,
    workflow_id: String,
    run_id: String,
    next_step: u32,
    steps: u32,
    pool: &'static str,
}

pub struct Generator {
    rng: ChaCha8Rng,
    config: GeneratorConfig,
    tenants: Vec<String>,
    tenant_pick: WeightedIndex<f64>,
    model_pick: WeightedIndex<f64>,
    kind_pick: WeightedIndex<f64>,
    capsules: Vec<Capsule>,
    runs: Vec<WorkflowRun>,
    recent: VecDeque<(Bytes, &'static str, String)>,
    seq: u64,
    stats: GeneratorStats,
}

/// Relative activity at time `t`: a daily cycle peaking mid-afternoon UTC and
/// quieter weekends. Between 0.25 and 1.0.
pub fn seasonality(t: DateTime<Utc>) -> f64 {
    let hour = t.hour() as f64 + t.minute() as f64 / 60.0;
    let daily = 0.6 + 0.4 * ((hour - 15.0) / 24.0 * std::f64::consts::TAU).cos();
    let weekly = if t.weekday().number_from_monday() >= 6 {
        0.55
    } else {
        1.0
    };
    daily * weekly
}

/// The relative activity of the tenant of rank `rank` (0 = busiest):
/// Zipf-like skew, a few tenants make most of the traffic.
pub fn tenant_weight(rank: usize) -> f64 {
    1.0 / ((rank + 1) as f64).powf(1.1)
}

/// The share of records that are conversations.
pub fn conversation_share() -> f64 {
    let total: f64 = KINDS.iter().map(|k| k.1).sum();
    KINDS[0].1 / total
}

const KINDS: [(&str, f64); 6] = [
    ("conversations", 55.0),
    ("policy_decisions", 15.0),
    ("capsule_executions", 10.0),
    ("workflow_executions", 12.0),
    ("marketplace_transactions", 3.0),
    ("billing_events", 5.0),
];

impl Generator {
    pub fn new(config: GeneratorConfig) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(config.seed);
        let n = config.tenants.max(1);
        let tenants = (0..n).map(|i| format!("tenant-{i:04}")).collect();
        let tenant_pick =
            WeightedIndex::new((0..n).map(tenant_weight)).expect("weights are positive and finite");
        let model_pick = WeightedIndex::new(MODELS.iter().map(|m| m.weight))
            .expect("model weights are positive");
        let kind_pick =
            WeightedIndex::new(KINDS.iter().map(|k| k.1)).expect("kind weights are positive");
        let capsules = (0..60)
            .map(|i| Capsule {
                id: format!("capsule-{i:03}"),
                author: format!("author-{:02}", i % 20),
                price_cents: [0, 199, 499, 999, 2499][rng.random_range(0..5)],
            })
            .collect();
        Self {
            rng,
            config,
            tenants,
            tenant_pick,
            model_pick,
            kind_pick,
            capsules,
            runs: Vec::new(),
            recent: VecDeque::with_capacity(1024),
            seq: 0,
            stats: GeneratorStats::default(),
        }
    }

    pub fn stats(&self) -> &GeneratorStats {
        &self.stats
    }

    /// The next record, dated `at` (UTC).
    pub fn next_at(&mut self, at: DateTime<Utc>) -> Generated {
        self.stats.emitted += 1;
        let roll: f64 = self.rng.random();
        if roll < self.config.duplicate_ratio && !self.recent.is_empty() {
            let i = self.rng.random_range(0..self.recent.len());
            self.stats.duplicates += 1;
            let (bytes, table, tenant) = self.recent[i].clone();
            return Generated {
                bytes,
                class: RecordClass::Duplicate,
                table,
                tenant,
                at,
            };
        }
        if roll < self.config.duplicate_ratio + self.config.malformed_ratio {
            self.stats.malformed += 1;
            let (bytes, tenant) = self.malformed(at);
            return Generated {
                bytes: Bytes::from(bytes),
                class: RecordClass::Malformed,
                table: "conversations",
                tenant,
                at,
            };
        }
        let (table, event) = self.valid_event(at);
        let bytes = Bytes::from(to_wire(&event));
        let tenant = event["tenantid"].as_str().unwrap_or_default().to_string();
        self.record_stats(table, &event["data"]);
        if self.recent.len() == 1024 {
            self.recent.pop_front();
        }
        self.recent
            .push_back((bytes.clone(), table, tenant.clone()));
        Generated {
            bytes,
            class: RecordClass::Valid,
            table,
            tenant,
            at,
        }
    }

    /// A record dated now, sometimes a little or (rarely) minutes late.
    pub fn next_live(&mut self) -> Generated {
        let mut at = Utc::now();
        let lateness: f64 = self.rng.random();
        if lateness < self.config.late_ratio {
            at -= chrono::Duration::seconds(self.rng.random_range(30..600));
        } else {
            at -= chrono::Duration::milliseconds(self.rng.random_range(0..2000));
        }
        self.next_at(at)
    }

    /// A record dated within `[from, to)`, with the seasonal density.
    pub fn next_between(&mut self, from: DateTime<Utc>, to: DateTime<Utc>) -> Generated {
        let span = (to - from).num_milliseconds().max(1);
        loop {
            let at = from + chrono::Duration::milliseconds(self.rng.random_range(0..span));
            if self.rng.random::<f64>() < seasonality(at) {
                return self.next_at(at);
            }
        }
    }

    fn record_stats(&mut self, table: &str, data: &Value) {
        self.stats.valid += 1;
        let k: &mut KindStats = self.stats.kinds.entry(table.to_string()).or_default();
        k.count += 1;
        let int = |f: &str| data.get(f).and_then(Value::as_i64).unwrap_or(0);
        k.input_tokens += int("input_tokens");
        k.output_tokens += int("output_tokens");
        k.cached_input_tokens += int("cached_input_tokens");
        k.reasoning_tokens += int("reasoning_tokens");
        k.tokens += int("tokens");
        k.amount_cents += int("amount_cents");
        if let Some(q) = data.get("quantity").and_then(Value::as_str) {
            k.quantity_nanos += somaflow_pipeline::events::decimal::parse_decimal(q).unwrap_or(0);
        }
    }

    fn envelope(&mut self, type_name: &str, tenant: &str, at: DateTime<Utc>, data: Value) -> Value {
        self.seq += 1;
        json!({
            "specversion": "1.0",
            "id": format!("{:08x}-{:010}", self.config.seed, self.seq),
            "source": "/soma/agents",
            "type": type_name,
            "time": at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "tenantid": tenant,
            "datacontenttype": "application/json",
            "data": data,
        })
    }

    fn pick_tenant(&mut self) -> usize {
        self.tenant_pick.sample(&mut self.rng)
    }

    fn valid_event(&mut self, at: DateTime<Utc>) -> (&'static str, Value) {
        let table = KINDS[self.kind_pick.sample(&mut self.rng)].0;
        let tenant_ix = self.pick_tenant();
        let tenant = self.tenants[tenant_ix].clone();
        let (type_name, data) = match table {
            "conversations" => ("soma.conversation.v1", self.conversation(tenant_ix)),
            "policy_decisions" => ("soma.policy_decision.v1", self.policy_decision(tenant_ix)),
            "capsule_executions" => ("soma.capsule_run.v1", self.capsule_run(tenant_ix)),
            "workflow_executions" => return self.workflow_step(at),
            "marketplace_transactions" => ("soma.marketplace_tx.v1", self.marketplace_tx()),
            _ => ("soma.billing.v1", self.billing()),
        };
        (table, self.envelope(type_name, &tenant, at, data))
    }

    fn tokens(&mut self, m: &Model) -> (i64, i64, i64, i64) {
        let r = &mut self.rng;
        let input = 50 + (r.random::<f64>().powi(3) * 12_000.0) as i64;
        let cached = if r.random_bool(0.4) {
            (input as f64 * r.random_range(0.1..0.8)) as i64
        } else {
            0
        };
        let output = 20 + (r.random::<f64>().powi(2) * 2_000.0) as i64;
        let reasoning = if m.reasons && r.random_bool(0.6) {
            (output as f64 * r.random_range(0.2..0.8)) as i64
        } else {
            0
        };
        (input, cached, output, reasoning)
    }

    fn conversation(&mut self, tenant: usize) -> Value {
        let m = MODELS[self.model_pick.sample(&mut self.rng)];
        let (input, cached, output, reasoning) = self.tokens(&m);
        let failed = self.rng.random_bool(0.02);
        let capsule = self.rng.random_bool(0.3).then(|| {
            self.capsules[self.rng.random_range(0..self.capsules.len())]
                .id
                .clone()
        });
        let message = self
            .rng
            .random_bool(0.2)
            .then(|| MESSAGES[self.rng.random_range(0..MESSAGES.len())]);
        json!({
            "user_id": format!("user-{tenant}-{}", self.rng.random_range(0..40)),
            "session_id": format!("sess-{:x}", self.rng.random::<u32>()),
            "capsule_id": capsule,
            "provider": m.provider,
            "model": m.name,
            "input_tokens": input,
            "output_tokens": output,
            "cached_input_tokens": cached,
            "reasoning_tokens": reasoning,
            "latency_ms": 200 + (output * 12) + self.rng.random_range(0..800),
            "status": if failed { "error" } else { "ok" },
            "message": message,
        })
    }

    fn policy_decision(&mut self, tenant: usize) -> Value {
        let (policy, action, resource) = POLICIES[self.rng.random_range(0..POLICIES.len())];
        let roll: f64 = self.rng.random();
        let decision = if roll < 0.85 {
            "allow"
        } else if roll < 0.95 {
            "deny"
        } else {
            "redact"
        };
        json!({
            "user_id": format!("user-{tenant}-{}", self.rng.random_range(0..40)),
            "policy_id": policy,
            "action": action,
            "resource": resource,
            "decision": decision,
            "reason": if decision == "allow" { Value::Null } else { json!(format!("{policy} matched")) },
            "eval_us": self.rng.random_range(15..900),
        })
    }

    fn capsule_run(&mut self, tenant: usize) -> Value {
        let c = self.rng.random_range(0..self.capsules.len());
        let m = MODELS[self.model_pick.sample(&mut self.rng)];
        let tokens = 500 + (self.rng.random::<f64>().powi(2) * 40_000.0) as i64;
        // Blended price, rounded to whole micro-dollars so it is exact as a decimal.
        let cost_micros =
            (tokens as f64 * (m.input_per_m * 0.7 + m.output_per_m * 0.3)).round() as i64;
        let with_cost = self.rng.random_bool(0.5);
        json!({
            "capsule_id": self.capsules[c].id,
            "capsule_version": format!("1.{}.0", c % 4),
            "run_id": format!("run-{tenant}-{:x}", self.rng.random::<u32>()),
            "agent_id": format!("agent-{}", self.rng.random_range(0..25)),
            "status": if self.rng.random_bool(0.06) { "failed" } else { "succeeded" },
            "duration_ms": self.rng.random_range(300..120_000),
            "tokens": tokens,
            "cost_usd": if with_cost { json!(format!("{}.{:06}", cost_micros / 1_000_000, cost_micros % 1_000_000)) } else { Value::Null },
        })
    }

    /// Continues a running workflow or starts one; steps retry after failures.
    fn workflow_step(&mut self, at: DateTime<Utc>) -> (&'static str, Value) {
        if self.runs.len() < 20 || self.rng.random_bool(0.1) {
            let tenant = self.pick_tenant();
            let seq = self.seq;
            self.runs.push(WorkflowRun {
                tenant,
                workflow_id: format!("wf-{}", self.rng.random_range(0..30)),
                run_id: format!("wfrun-{:x}-{seq}", self.config.seed),
                next_step: 0,
                steps: self.rng.random_range(3..12),
                pool: AGENT_POOLS[self.rng.random_range(0..AGENT_POOLS.len())],
            });
        }
        let i = self.rng.random_range(0..self.runs.len());
        let failed = self.rng.random_bool(0.08);
        let queued = self.rng.random_bool(0.25);
        let run = &mut self.runs[i];
        let step = run.next_step;
        let attempt = if failed {
            1
        } else {
            1 + u32::from(self.rng.random_bool(0.05))
        };
        let status = if queued {
            "queued"
        } else if failed {
            "failed"
        } else {
            "succeeded"
        };
        if !failed && !queued {
            run.next_step += 1;
        }
        let (tenant, workflow_id, run_id, pool, done) = (
            run.tenant,
            run.workflow_id.clone(),
            run.run_id.clone(),
            run.pool,
            run.next_step >= run.steps,
        );
        if done {
            self.runs.swap_remove(i);
        }
        let data = json!({
            "workflow_id": workflow_id,
            "run_id": run_id,
            "step_id": format!("step-{step}"),
            "step_type": STEP_TYPES[step as usize % STEP_TYPES.len()],
            "status": status,
            "agent_pool": pool,
            "attempt": attempt,
            "duration_ms": if queued { 0 } else { self.rng.random_range(50..30_000) },
            "quality_score": if status == "succeeded" { json!((self.rng.random_range(0.5..1.0f64) * 100.0).round() / 100.0) } else { Value::Null },
        });
        let tenant = self.tenants[tenant].clone();
        (
            "workflow_executions",
            self.envelope("soma.workflow_step.v1", &tenant, at, data),
        )
    }

    fn marketplace_tx(&mut self) -> Value {
        let c = &self.capsules[self.rng.random_range(0..self.capsules.len())];
        let roll: f64 = self.rng.random();
        let tx_type = if roll < 0.6 {
            "purchase"
        } else if roll < 0.85 {
            "install"
        } else if roll < 0.93 {
            "refund"
        } else {
            "payout"
        };
        let amount = match tx_type {
            "install" => 0,
            "payout" => c.price_cents * 7 / 10,
            _ => c.price_cents,
        };
        json!({
            "capsule_id": c.id,
            "author_id": c.author,
            "tx_type": tx_type,
            "amount_cents": amount,
            "currency": "USD",
        })
    }

    fn billing(&mut self) -> Value {
        let (meter, unit) = BILLING_METERS[self.rng.random_range(0..BILLING_METERS.len())];
        let thousandths = self.rng.random_range(1..500_000);
        json!({
            "meter": meter,
            "quantity": format!("{}.{:03}", thousandths / 1000, thousandths % 1000),
            "unit": unit,
            "idempotency_key": format!("bill-{:x}-{}", self.config.seed, self.seq),
        })
    }

    /// A record validation must refuse, of one of several realistic shapes,
    /// and the tenant it claims.
    fn malformed(&mut self, at: DateTime<Utc>) -> (Vec<u8>, String) {
        let tenant_ix = self.pick_tenant();
        let tenant = self.tenants[tenant_ix].clone();
        let good = self.conversation(0);
        let mut event = self.envelope("soma.conversation.v1", &tenant, at, good);
        match self.rng.random_range(0..5) {
            0 => {
                let text = to_wire(&event);
                return (text[..text.len() / 2].to_vec(), tenant);
            }
            1 => {
                event.as_object_mut().map(|o| o.remove("tenantid"));
            }
            2 => event["data"]["input_tokens"] = json!("lots"),
            3 => event["type"] = json!("soma.unknown.v1"),
            _ => {
                let input = event["data"]["input_tokens"].as_i64().unwrap_or(0);
                event["data"]["cached_input_tokens"] = json!(input + 1);
            }
        }
        (to_wire(&event), tenant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use somaflow_pipeline::events::{TimeBounds, parse_event};

    #[test]
    fn same_seed_same_events_and_classes_match_validation() {
        let now = Utc::now();
        let mut a = Generator::new(GeneratorConfig {
            malformed_ratio: 0.05,
            duplicate_ratio: 0.05,
            ..Default::default()
        });
        let mut b = Generator::new(GeneratorConfig {
            malformed_ratio: 0.05,
            duplicate_ratio: 0.05,
            ..Default::default()
        });
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3000 {
            let (x, y) = (a.next_at(now), b.next_at(now));
            assert_eq!(x.bytes, y.bytes);
            let parsed = parse_event(&x.bytes, now.timestamp_micros(), &TimeBounds::default());
            match x.class {
                RecordClass::Valid => {
                    let ev = parsed
                        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&x.bytes)));
                    assert!(seen.insert(ev.id.to_string()), "valid ids are unique");
                }
                RecordClass::Duplicate => assert!(!seen.insert(parsed.unwrap().id.to_string())),
                RecordClass::Malformed => assert!(parsed.is_err()),
            }
        }
        let s = a.stats();
        assert_eq!(s.emitted, 3000);
        assert_eq!(s.valid + s.duplicates + s.malformed, 3000);
        assert_eq!(s.kinds.values().map(|k| k.count).sum::<u64>(), s.valid);
        assert!(
            s.kinds.len() == 6,
            "all six kinds appear: {:?}",
            s.kinds.keys()
        );
        assert!(s.malformed > 50 && s.duplicates > 50);
    }

    #[test]
    fn seasonality_peaks_in_the_afternoon_and_dips_on_weekends() {
        let day = |d: u32, h: u32| {
            chrono::NaiveDate::from_ymd_opt(2026, 11, d)
                .unwrap()
                .and_hms_opt(h, 0, 0)
                .unwrap()
                .and_utc()
        };
        assert!(seasonality(day(18, 15)) > seasonality(day(18, 3)));
        assert!(
            seasonality(day(18, 15)) > seasonality(day(21, 15)),
            "Wednesday over Saturday"
        );
    }
}
