//! The agent pools' queues on a node without a broker, read the way a
//! Kafka consumer group reads a topic (`dispatch:consume`):
//!
//! * `GET /v1/dispatch/{pool}?group=G&max=N&wait=30s`: up to `max` steps
//!   from the group's position, waiting up to `wait` for the first. A group
//!   is not handed a step twice while the node runs; after a restart it
//!   reads again from its committed offset (at least once, in order).
//! * `POST /v1/dispatch/{pool}/commit` `{"group", "offset"}`: the group is
//!   done with every step below `offset` (the `next_offset` of a read);
//!   durable once answered. Steps every group committed past are deleted
//!   after `dispatch.queue_retention_secs`.
//!
//! Each step carries its `event_id`: an agent drops a step whose id it
//! already took (a replay after a crash may send it again).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use somaflow_pipeline::log::{QueueError, Queues};
use somaflow_pipeline::rules::Rule;
use somaflow_sql::contract;
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{Object, ObjectBuilder, Type};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::params::whole_number;
use crate::state::AppState;

const DEFAULT_MAX: usize = 100;
const MAX_MAX: usize = 10_000;
const MAX_WAIT: Duration = Duration::from_secs(60);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchParams {
    pub group: String,
    pub max: Option<usize>,
    pub wait: Option<String>,
}

impl utoipa::IntoParams for FetchParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        use contract::query;
        vec![
            query(
                "group",
                true,
                "The consumer group",
                contract::rule_schema(&GROUP),
            ),
            query(
                "max",
                false,
                "Most steps to return (default 100)",
                contract::integer(1, MAX_MAX as u64),
            ),
            query(
                "wait",
                false,
                "How long to wait for a first step (default 0s)",
                wait_schema(),
            ),
        ]
    }
}

/// A pool path parameter: one of `dispatch.pools`.
struct PoolPath;

impl utoipa::IntoParams for PoolPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        let name = ObjectBuilder::new().schema_type(Type::String).build();
        vec![contract::path(
            "pool",
            "An agent pool of dispatch.pools",
            name,
        )]
    }
}

/// A consumer group's name, as the queues take it.
static GROUP: Rule = Rule::new(
    "^[A-Za-z0-9._-]{1,128}$",
    "1 to 128 letters, digits, `-`, `_` or `.`",
);

fn group_schema() -> Object {
    contract::rule_schema(&GROUP)
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueuedStep {
    pub offset: u64,
    /// When the step was queued (RFC 3339).
    pub queued_at: String,
    /// `{event_id, tenant_id, workflow_id, run_id, step_id, step_type, agent_pool, attempt, event_time_us, tenant_plan}`
    #[schema(value_type = Object)]
    pub step: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FetchAnswer {
    pub pool: String,
    pub group: String,
    pub steps: Vec<QueuedStep>,
    /// Where the group's next read starts: commit it once these are done.
    pub next_offset: u64,
    pub committed: u64,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitRequest {
    #[schema(schema_with = group_schema)]
    pub group: String,
    /// The next step to read: every step below it is done; at most the
    /// `next_offset` of the group's last read.
    #[schema(value_type = u64)]
    pub offset: Value,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CommitAnswer {
    pub pool: String,
    pub group: String,
    pub committed: u64,
}

fn queues(state: &AppState) -> Result<&Arc<Queues>, ApiError> {
    state
        .queues
        .as_ref()
        .ok_or_else(|| ApiError::NotConfigured {
            code: "dispatch_queues_not_configured",
            message: "this node keeps no agent queues: steps go to the pools' Kafka topics \
                  (dispatch.topic_prefix + pool), or the graph has no dispatch node"
                .into(),
        })
}

fn queue_error(e: QueueError) -> ApiError {
    match e {
        QueueError::UnknownQueue { .. } => ApiError::NotFound {
            code: "unknown_pool",
            message: e.to_string(),
        },
        QueueError::BadGroup(_) => ApiError::bad_request("invalid_group", e.to_string()),
        QueueError::BeyondEnd { .. } => ApiError::Conflict {
            code: "offset_beyond_end",
            message: e.to_string(),
        },
        e => ApiError::Internal(e.to_string()),
    }
}

/// `30s`, `500ms`; at most [`MAX_WAIT`].
static WAIT: Rule = Rule::new(
    "^(([0-9]|[1-5][0-9]|60)s|([0-9]{1,4}|[1-5][0-9]{4}|60000)ms)$",
    "a duration of 0s to 60s or 0ms to 60000ms, e.g. 30s",
);

fn wait_schema() -> Object {
    contract::rule_schema(&WAIT)
}

fn parse_wait(text: &str) -> Result<Duration, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_wait",
            format!("wait={text:?} is not {}", WAIT.words),
        )
    };
    if !WAIT.matches(text) {
        return Err(bad());
    }
    let (number, millis) = match text.strip_suffix("ms") {
        Some(n) => (n, true),
        None => (text.strip_suffix('s').ok_or_else(bad)?, false),
    };
    let n: u64 = number.parse().map_err(|_| bad())?;
    let wait = if millis {
        Duration::from_millis(n)
    } else {
        Duration::from_secs(n)
    };
    if wait > MAX_WAIT {
        return Err(bad());
    }
    Ok(wait)
}

fn pool_of(pool: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    pool.map(|Path(p)| p)
        .map_err(|e| ApiError::bad_request("invalid_pool", e.body_text()))
}

#[utoipa::path(get, path = "/v1/dispatch/{pool}", tag = "dispatch",
    params(PoolPath, FetchParams),
    responses(
        (status = 200, description = "The group's next steps", body = FetchAnswer),
        (status = 404, description = "No such pool", body = crate::error::ErrorBody),
        (status = 501, description = "The node keeps no agent queues", body = crate::error::ErrorBody), crate::responses::Refusals),
    security(("bearer" = ["dispatch:consume"])))]
pub async fn fetch(
    State(state): State<AppState>,
    caller: Caller,
    pool: Result<Path<String>, PathRejection>,
    query: Result<Query<FetchParams>, QueryRejection>,
) -> Result<Json<FetchAnswer>, ApiError> {
    caller.require(Scope::DispatchConsume)?;
    let pool = pool_of(pool)?;
    let Query(p) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let max = p.max.unwrap_or(DEFAULT_MAX);
    if !(1..=MAX_MAX).contains(&max) {
        return Err(ApiError::bad_request(
            "invalid_max",
            format!("max={max} must be 1 to {MAX_MAX}"),
        ));
    }
    let wait = parse_wait(p.wait.as_deref().unwrap_or("0s"))?;
    let fetched = queues(&state)?
        .fetch(&pool, &p.group, max, wait)
        .await
        .map_err(queue_error)?;
    let steps = fetched
        .records
        .into_iter()
        .map(|r| QueuedStep {
            offset: r.offset,
            queued_at: chrono::DateTime::from_timestamp_micros(r.ingest_time_us)
                .unwrap_or_default()
                .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
            step: serde_json::from_slice(&r.payload).unwrap_or(Value::Null),
        })
        .collect();
    Ok(Json(FetchAnswer {
        pool,
        group: p.group,
        steps,
        next_offset: fetched.next_offset,
        committed: fetched.committed,
    }))
}

#[utoipa::path(post, path = "/v1/dispatch/{pool}/commit", tag = "dispatch",
    params(PoolPath),
    request_body = CommitRequest,
    responses(
        (status = 200, description = "The group's committed offset, durable", body = CommitAnswer),
        (status = 404, description = "No such pool", body = crate::error::ErrorBody),
        (status = 409, description = "The offset is past the queue's end", body = crate::error::ErrorBody),
        (status = 501, description = "The node keeps no agent queues", body = crate::error::ErrorBody), crate::responses::Refusals),
    security(("bearer" = ["dispatch:consume"])))]
pub async fn commit(
    State(state): State<AppState>,
    caller: Caller,
    pool: Result<Path<String>, PathRejection>,
    body: Result<Json<CommitRequest>, JsonRejection>,
) -> Result<Json<CommitAnswer>, ApiError> {
    caller.require(Scope::DispatchConsume)?;
    let pool = pool_of(pool)?;
    let Json(req) = body.map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!(
                "{}; send {{\"group\": \"agents\", \"offset\": 42}}",
                e.body_text()
            ),
        )
    })?;
    // A commit fsyncs a file: off the request threads.
    let offset = match &req.offset {
        Value::Number(n) => whole_number(n),
        _ => None,
    }
    .ok_or_else(|| {
        ApiError::bad_request(
            "invalid_offset",
            format!("offset {} must be a whole number ≥ 0", req.offset),
        )
    })?;
    let queues = queues(&state)?.clone();
    let (p, group) = (pool.clone(), req.group.clone());
    let committed = tokio::task::spawn_blocking(move || queues.commit(&p, &group, offset))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(queue_error)?;
    Ok(Json(CommitAnswer {
        pool,
        group: req.group,
        committed,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_bounded_durations() {
        assert_eq!(parse_wait("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_wait("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_wait("0s").unwrap(), Duration::ZERO);
        for bad in ["61s", "1m", "s", "", "-1s", "1.5s", "60001ms", "007s"] {
            assert!(parse_wait(bad).is_err(), "{bad}");
        }
    }
}
