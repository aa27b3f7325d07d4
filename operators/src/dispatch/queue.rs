//! Where dispatched steps go: the agent pools' Kafka topics, or, on a
//! node without a broker, the pools' queues in the embedded log.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::{join_all, try_join_all};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde::Serialize;
use somaflow_pipeline::log::Queues;

use crate::columns::{ColumnError, Columns, opt_str};

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error("sending step {event_id} to {topic}: {reason}")]
    Send {
        event_id: String,
        topic: String,
        reason: String,
    },
    #[error(transparent)]
    Column(#[from] ColumnError),
}

/// The message an agent receives for a queued step.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StepMessage {
    /// Agents drop a step whose event id they already took.
    pub event_id: String,
    pub tenant_id: String,
    pub workflow_id: String,
    pub run_id: String,
    pub step_id: String,
    pub step_type: String,
    pub agent_pool: String,
    pub attempt: i64,
    pub event_time_us: i64,
    pub tenant_plan: Option<String>,
}

impl StepMessage {
    pub fn from_row(c: &Columns<'_>, i: usize) -> Result<StepMessage, ColumnError> {
        let s =
            |name: &str| -> Result<String, ColumnError> { Ok(c.str(name)?.value(i).to_string()) };
        Ok(StepMessage {
            event_id: s("event_id")?,
            tenant_id: s("tenant_id")?,
            workflow_id: s("workflow_id")?,
            run_id: s("run_id")?,
            step_id: s("step_id")?,
            step_type: s("step_type")?,
            agent_pool: s("agent_pool")?,
            attempt: c.i64("attempt")?.value(i),
            event_time_us: c.micros("event_time")?.value(i),
            tenant_plan: opt_str(c.str("tenant_plan")?, i).map(str::to_string),
        })
    }
}

#[async_trait]
pub trait AgentQueue: Send + Sync {
    /// Resolves once every message is durably accepted.
    async fn send(&self, messages: Vec<StepMessage>) -> Result<(), DispatchError>;
}

/// Agent pools as Kafka topics: `prefix + pool`.
pub struct KafkaAgentQueue {
    producer: FutureProducer,
    topic_prefix: String,
}

impl KafkaAgentQueue {
    pub fn new(producer: FutureProducer, topic_prefix: &str) -> Self {
        Self {
            producer,
            topic_prefix: topic_prefix.to_string(),
        }
    }
}

#[async_trait]
impl AgentQueue for KafkaAgentQueue {
    async fn send(&self, messages: Vec<StepMessage>) -> Result<(), DispatchError> {
        let sends = messages.iter().map(|m| async move {
            let topic = format!("{}{}", self.topic_prefix, m.agent_pool);
            let fail = |reason: String| DispatchError::Send {
                event_id: m.event_id.clone(),
                topic: topic.clone(),
                reason,
            };
            let payload = serde_json::to_vec(m).map_err(|e| fail(e.to_string()))?;
            let headers = OwnedHeaders::new().insert(Header {
                key: "event_id",
                value: Some(m.event_id.as_bytes()),
            });
            let record = FutureRecord::to(&topic)
                .key(m.run_id.as_bytes())
                .payload(&payload)
                .headers(headers);
            // Retried by librdkafka until its delivery timeout; an error
            // here fails the batch, and the pipeline replays it.
            self.producer
                .send(record, Duration::from_secs(30))
                .await
                .map(|_| ())
                .map_err(|(e, _)| fail(e.to_string()))
        });
        try_join_all(sends).await.map(|_| ())
    }
}

/// Agent pools as queues of the embedded log (one per pool, named as the
/// pool): the same message, durable once `send` returns, in the order sent,
/// each step once (a step whose event id is queued already is not queued
/// again: see [`step_key`]).
pub struct LogAgentQueue {
    queues: Arc<Queues>,
}

impl LogAgentQueue {
    pub fn new(queues: Arc<Queues>) -> Self {
        Self { queues }
    }
}

#[async_trait]
impl AgentQueue for LogAgentQueue {
    async fn send(&self, messages: Vec<StepMessage>) -> Result<(), DispatchError> {
        // One append per pool, each in the order of the batch.
        let mut pools: Vec<(&str, Vec<bytes::Bytes>)> = Vec::new();
        for m in &messages {
            let payload = serde_json::to_vec(m).map_err(|e| DispatchError::Send {
                event_id: m.event_id.clone(),
                topic: m.agent_pool.clone(),
                reason: e.to_string(),
            })?;
            match pools.iter_mut().find(|(p, _)| *p == m.agent_pool) {
                Some((_, payloads)) => payloads.push(payload.into()),
                None => pools.push((&m.agent_pool, vec![payload.into()])),
            }
        }
        let now = chrono::Utc::now().timestamp_micros();
        // Each pool is a log of its own: their fsyncs overlap instead of
        // queueing one behind the other (order is kept within a pool).
        let appends = pools.into_iter().map(|(pool, payloads)| {
            let first = messages
                .iter()
                .find(|m| m.agent_pool == pool)
                .map_or(String::new(), |m| m.event_id.clone());
            async move {
                self.queues
                    .append_new(pool, now, payloads)
                    .await
                    .map_err(|e| DispatchError::Send {
                        event_id: first,
                        topic: pool.to_string(),
                        reason: e.to_string(),
                    })
            }
        });
        // Every append runs to its end even when another fails: one cut
        // short would be on disk without its keys recorded, and the replay
        // after the error would queue its steps a second time.
        join_all(appends)
            .await
            .into_iter()
            .try_for_each(|appended| appended.map(|_| ()))
    }
}

/// A queued step's key for [`Queues::append_new`]: its event id.
pub fn step_key(payload: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Key {
        event_id: String,
    }
    serde_json::from_slice::<Key>(payload)
        .ok()
        .map(|k| k.event_id)
}
