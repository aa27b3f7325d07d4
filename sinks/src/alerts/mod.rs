//! Alerts that reach people: budget crossings delivered to webhooks,
//! signed, retried with backoff until acknowledged, and exactly once per
//! crossing for a receiver that deduplicates by the `Idempotency-Key`
//! header, through crashes: the outbox ([`outbox`]) is the sink's
//! pre-commit, kept in the checkpoint with the budget state that produced
//! it. `docs/alerts.md` says what a receiver gets and how to check it.

mod alert;
mod config;
mod error;
mod hub;
mod outbox;
mod sign;
mod sink;

pub use alert::Alert;
pub use config::{AlertsConfig, EVENTS, Webhook};
pub use error::AlertsError;
pub use hub::{AlertsHub, DeliveryRecord};
pub use sign::signature;
pub use sink::AlertsSink;
