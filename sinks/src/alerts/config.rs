//! `[alerts]`: where alerts are delivered and how hard it is tried.
//!
//! ```toml
//! [alerts]
//! retry_initial_ms = 1000
//! retry_max_ms = 300000
//!
//! [[alerts.webhooks]]
//! name = "ops"                      # part of each delivery's key: keep it stable
//! url = "https://hooks.example.com/somaflow"
//! secret = "…"                      # at least 32 bytes; signs every request
//! tenant = "tenant-0001"            # optional: only this tenant's alerts
//! events = ["budget.hard"]          # optional: only these (prefixes); default all
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::{ConfigError, optional_http_url};

#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    pub name: String,
    pub url: String,
    pub secret: String,
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub events: Vec<String>,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("secret", &"<redacted>")
            .field("tenant", &self.tenant)
            .field("events", &self.events)
            .finish()
    }
}

impl Webhook {
    /// Whether an alert of `tenant` and `event` goes to this webhook.
    pub fn wants(&self, tenant: &str, event: &str) -> bool {
        self.tenant.as_deref().is_none_or(|t| t == tenant)
            && (self.events.is_empty() || self.events.iter().any(|e| event.starts_with(e.as_str())))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    pub webhooks: Vec<Webhook>,
    /// The first retry's wait; each further one doubles it…
    pub retry_initial_ms: u64,
    /// …up to this.
    pub retry_max_ms: u64,
    /// One request's time limit.
    pub timeout_ms: u64,
    /// How long an acknowledged delivery's key is remembered, so that the
    /// same crossing emitted again is not sent again (35 days: longer
    /// than a month's crossings can be replayed).
    pub ack_window_hours: u64,
    /// Deliveries kept for `GET /v1/alerts`.
    pub recent: usize,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        Self {
            webhooks: Vec::new(),
            retry_initial_ms: 1_000,
            retry_max_ms: 300_000,
            timeout_ms: 10_000,
            ack_window_hours: 35 * 24,
            recent: 1_000,
        }
    }
}

/// The event names an alert can have, for `events` filters.
pub const EVENTS: [&str; 2] = ["budget.soft", "budget.hard"];

impl AlertsConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut names = std::collections::BTreeSet::new();
        for (i, hook) in self.webhooks.iter().enumerate() {
            let key = |field: &str| format!("alerts.webhooks[{i}].{field}");
            if hook.name.is_empty() || !names.insert(hook.name.as_str()) {
                return Err(ConfigError::key(
                    key("name"),
                    format!("{:?} must be present and unique", hook.name),
                ));
            }
            if hook.url.is_empty() {
                return Err(ConfigError::key(key("url"), "must be set"));
            }
            optional_http_url(&key("url"), &hook.url, "https://hooks.example.com/somaflow")?;
            if hook.secret.len() < 32 {
                return Err(ConfigError::key(
                    key("secret"),
                    "must be at least 32 bytes (e.g. `openssl rand -hex 32`)",
                ));
            }
            for event in &hook.events {
                if !EVENTS.iter().any(|e| e.starts_with(event.as_str())) {
                    return Err(ConfigError::key(
                        key("events"),
                        format!("{event:?} matches no alert ({})", EVENTS.join(", ")),
                    ));
                }
            }
        }
        if self.retry_initial_ms == 0 || self.retry_initial_ms > self.retry_max_ms {
            return Err(ConfigError::key(
                "alerts.retry_initial_ms",
                "must be above 0 and at most alerts.retry_max_ms",
            ));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::key("alerts.timeout_ms", "must be above 0"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(name: &str) -> Webhook {
        Webhook {
            name: name.into(),
            url: "https://hooks.example.com/a".into(),
            secret: "s".repeat(32),
            tenant: None,
            events: Vec::new(),
        }
    }

    fn mistake(config: AlertsConfig) -> String {
        config.validate().unwrap_err().to_string()
    }

    #[test]
    fn a_mistake_names_its_key() {
        let mut c = AlertsConfig {
            webhooks: vec![hook("ops"), hook("ops")],
            ..AlertsConfig::default()
        };
        assert!(mistake(c.clone()).contains("alerts.webhooks[1].name"));
        c.webhooks[1].name = "billing".into();
        c.webhooks[1].secret = "short".into();
        assert!(mistake(c.clone()).contains("alerts.webhooks[1].secret"));
        c.webhooks[1].secret = "s".repeat(32);
        c.webhooks[0].url = "ftp://x".into();
        assert!(mistake(c.clone()).contains("alerts.webhooks[0].url"));
        c.webhooks[0].url = "https://x".into();
        c.webhooks[0].events = vec!["budget.warm".into()];
        assert!(mistake(c.clone()).contains("alerts.webhooks[0].events"));
        c.webhooks[0].events = vec!["budget".into()];
        assert!(c.validate().is_ok());
        assert!(
            !format!("{:?}", c.webhooks[0]).contains("sss"),
            "secret redacted"
        );
    }

    #[test]
    fn a_webhook_takes_its_tenant_and_events() {
        let mut h = hook("ops");
        assert!(h.wants("t1", "budget.soft"));
        h.tenant = Some("t1".into());
        h.events = vec!["budget.hard".into()];
        assert!(h.wants("t1", "budget.hard"));
        assert!(!h.wants("t1", "budget.soft"));
        assert!(!h.wants("t2", "budget.hard"));
    }
}
