//! The node's alerts: the outbox behind a lock, shared by the sink (which
//! stages and seals), its committer (which marks commits) and the delivery
//! task (which sends what is due), and the record of recent attempts that
//! `GET /v1/alerts` reads.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use super::alert::Alert;
use super::config::AlertsConfig;
use super::error::AlertsError;
use super::outbox::{Delivery, Outbox, OutboxSnapshot};
use super::sign::{backoff, signature};

/// What the checkpoint holds: the outbox and the process that wrote it
/// (a cluster worker's committer also sees its peers' manifests).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sealed {
    pub run: String,
    #[serde(flatten)]
    pub outbox: OutboxSnapshot,
}

/// One attempt, or a delivery still waiting, as `GET /v1/alerts` lists it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeliveryRecord {
    pub alert_id: String,
    pub event: String,
    pub tenant: String,
    pub webhook: String,
    /// `delivered`, `failed` (this attempt; it is tried again), `pending`
    /// (waiting for its checkpoint or its next attempt), `dropped` (its
    /// webhook was removed from the config).
    pub status: &'static str,
    pub attempts: u32,
    pub http_status: Option<u16>,
    pub error: Option<String>,
    /// When (RFC 3339): of the attempt, or for `pending` when it was staged.
    pub at: String,
}

pub struct AlertsHub {
    config: AlertsConfig,
    run: String,
    outbox: Mutex<Outbox>,
    recent: Mutex<VecDeque<DeliveryRecord>>,
    wake: Notify,
    client: reqwest::Client,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl AlertsHub {
    pub fn new(config: &AlertsConfig) -> Result<Arc<Self>, AlertsError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms))
            // A webhook answers where it is; a redirect is an answer to
            // report, not to follow with a signed body.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent("somaflow-alerts")
            .build()
            .map_err(|e| AlertsError::Client(e.to_string()))?;
        Ok(Arc::new(AlertsHub {
            config: config.clone(),
            run: format!("{:016x}", rand::random::<u64>()),
            outbox: Mutex::new(Outbox::default()),
            recent: Mutex::new(VecDeque::new()),
            wake: Notify::new(),
            client,
        }))
    }

    fn outbox(&self) -> MutexGuard<'_, Outbox> {
        self.outbox.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Queues `alerts` for every webhook that wants them; returns how many
    /// deliveries were added.
    pub fn stage(&self, alerts: &[Alert]) -> usize {
        let now = now_ms();
        let mut outbox = self.outbox();
        alerts
            .iter()
            .map(|alert| {
                let hooks: Vec<&str> = self
                    .config
                    .webhooks
                    .iter()
                    .filter(|h| h.wants(&alert.tenant, &alert.event))
                    .map(|h| h.name.as_str())
                    .collect();
                outbox.stage(alert, &hooks, now)
            })
            .sum()
    }

    /// At the barrier of `epoch`: the outbox the checkpoint keeps.
    pub fn seal(&self, epoch: u64) -> Sealed {
        let window = i64::try_from(self.config.ack_window_hours)
            .unwrap_or(i64::MAX / 3_600_000)
            .saturating_mul(3_600_000);
        Sealed {
            run: self.run.clone(),
            outbox: self.outbox().seal(epoch, now_ms(), window),
        }
    }

    /// The checkpoint of `epoch` that `sealed` is from is durable.
    pub fn committed(&self, epoch: u64, sealed: &Sealed) {
        // A peer's manifest (a cluster worker at assignment) is its own
        // worker's to deliver.
        if sealed.run == self.run {
            self.outbox().committed(epoch);
            self.wake.notify_one();
        }
    }

    /// At start: the newest checkpoint's outbox, all of it deliverable.
    pub fn restore(&self, sealed: Sealed) {
        self.outbox().restore(sealed.outbox);
        self.wake.notify_one();
    }

    /// The recent attempts, newest first, then the deliveries waiting;
    /// only `tenant`'s when given.
    pub fn recent(&self, tenant: Option<&str>, limit: usize) -> Vec<DeliveryRecord> {
        let wanted = |t: &str| tenant.is_none_or(|w| w == t);
        let mut out: Vec<DeliveryRecord> = self
            .outbox()
            .pending()
            .filter(|d| wanted(&d.alert.tenant))
            .map(|d| {
                record(
                    d,
                    "pending",
                    d.last_status,
                    d.last_error.clone(),
                    d.staged_at_ms,
                )
            })
            .collect();
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        out.extend(recent.iter().rev().filter(|r| wanted(&r.tenant)).cloned());
        out.truncate(limit);
        out
    }

    fn remember(&self, r: DeliveryRecord) {
        let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        recent.push_back(r);
        while recent.len() > self.config.recent {
            recent.pop_front();
        }
    }

    /// Sends what is due, for as long as the node runs.
    pub fn spawn_delivery(self: &Arc<Self>) -> JoinHandle<()> {
        let hub = self.clone();
        tokio::spawn(async move {
            loop {
                let due = hub.outbox().due(now_ms());
                for d in due {
                    hub.deliver(d).await;
                }
                let wait = hub
                    .outbox()
                    .next_due_ms()
                    .map(|at| Duration::from_millis(u64::try_from(at - now_ms()).unwrap_or(0)));
                match wait {
                    Some(w) if w.is_zero() => continue,
                    Some(w) => {
                        tokio::select! {
                            _ = tokio::time::sleep(w) => {}
                            _ = hub.wake.notified() => {}
                        }
                    }
                    None => hub.wake.notified().await,
                }
            }
        })
    }

    #[tracing::instrument(skip_all, fields(alert = %d.alert.id, webhook = %d.webhook, attempt = d.attempts + 1))]
    async fn deliver(&self, d: Delivery) {
        let Some(hook) = self.config.webhooks.iter().find(|h| h.name == d.webhook) else {
            // The webhook left the config since the alert was staged:
            // nobody is there to send it to. Said, not silent.
            tracing::warn!("the webhook is no longer configured; the alert is dropped");
            self.outbox()
                .ack(&(d.alert.id.clone(), d.webhook.clone()), now_ms());
            self.remember(record(
                &d,
                "dropped",
                None,
                Some(format!("webhook {:?} is no longer in [alerts]", d.webhook)),
                now_ms(),
            ));
            return;
        };
        let body = serde_json::json!({
            "id": d.alert.id,
            "event": d.alert.event,
            "tenant": d.alert.tenant,
            "occurred_at": d.alert.occurred_at,
            "detail": d.alert.detail,
        })
        .to_string();
        let sent = now_ms();
        let result = self
            .client
            .post(&hook.url)
            .header("content-type", "application/json")
            .header("idempotency-key", &d.alert.id)
            .header("x-somaflow-event", &d.alert.event)
            .header("x-somaflow-attempt", (d.attempts + 1).to_string())
            .header(
                "x-somaflow-signature",
                signature(hook.secret.as_bytes(), sent / 1_000, body.as_bytes()),
            )
            .body(body)
            .send()
            .await;
        let key = (d.alert.id.clone(), d.webhook.clone());
        let (status, error) = match result {
            Ok(r) if r.status().is_success() => {
                self.outbox().ack(&key, now_ms());
                self.remember(record(
                    &d,
                    "delivered",
                    Some(r.status().as_u16()),
                    None,
                    sent,
                ));
                return;
            }
            Ok(r) => (Some(r.status().as_u16()), format!("HTTP {}", r.status())),
            Err(e) => (None, e.to_string()),
        };
        tracing::warn!(%error, "alert delivery failed; retried after a backoff");
        let wait = backoff(
            d.attempts + 1,
            Duration::from_millis(self.config.retry_initial_ms),
            Duration::from_millis(self.config.retry_max_ms),
            0.5 + rand::random::<f64>() / 2.0,
        );
        let next = now_ms() + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
        self.outbox().retry(&key, status, error.clone(), next);
        self.remember(record(&d, "failed", status, Some(error), sent));
    }
}

fn record(
    d: &Delivery,
    status: &'static str,
    http_status: Option<u16>,
    error: Option<String>,
    at_ms: i64,
) -> DeliveryRecord {
    DeliveryRecord {
        alert_id: d.alert.id.clone(),
        event: d.alert.event.clone(),
        tenant: d.alert.tenant.clone(),
        webhook: d.webhook.clone(),
        status,
        attempts: d.attempts + u32::from(status == "delivered" || status == "failed"),
        http_status,
        error,
        at: rfc3339(at_ms),
    }
}
