//! `POST /v1/events`: CloudEvents in (structured: one event, a batch, or
//! NDJSON; or one event in binary mode, `ce-*` headers and the data as the
//! body), validated per event, stored (embedded log or Kafka, see [`crate::ingest`]), answered
//! only once durable. Refused events are stored too, as dead letters to be,
//! so the answer and the dead letters always agree. `GET /v1/events/recent`:
//! the newest accepted ones, for a live view.

use axum::Json;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use somaflow_pipeline::events::BodyFormat;
use utoipa::openapi::path::{Parameter, ParameterIn};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::ingest::{IngestAnswer, RECENT_CAPACITY, binary, ingest_body, recent_events};
use crate::state::AppState;

const MEDIA_TYPES: &str = "application/cloudevents+json, application/cloudevents-batch+json or \
     application/x-ndjson, or send one event in binary mode (ce-specversion, ce-id, ce-source, ce-type, \
     ce-time and ce-tenantid headers, the data as the body)";

/// `application/json`: a body of events (our extension) unless `ce-*`
/// headers make it the data of a binary-mode event.
fn is_json_only(content_type: &str) -> bool {
    content_type
        .split(';')
        .next()
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

#[utoipa::path(post, path = "/v1/events", tag = "events",
    request_body(description = "One CloudEvent (application/cloudevents+json), a batch \
        (application/cloudevents-batch+json) or NDJSON (application/x-ndjson); or one event in \
        binary mode: `ce-specversion`, `ce-id`, `ce-source`, `ce-type`, `ce-time` and \
        `ce-tenantid` headers with the data as the body (its own Content-Type, e.g. \
        application/json)",
        content(("application/cloudevents+json"), ("application/cloudevents-batch+json"), ("application/x-ndjson"))),
    responses(
        (status = 202, description = "Stored durably (an empty body stores nothing); refused events are listed and dead-lettered", body = IngestAnswer),
        (status = 413, description = "Body over server.body_limit_bytes", body = crate::error::ErrorBody),
        (status = 415, description = "Unknown Content-Type", body = crate::error::ErrorBody),
        (status = 422, description = "Every event was refused by validation (each listed with its reason, and dead-lettered)", body = IngestAnswer),
        crate::responses::Refusals),
    security(("bearer" = ["events:write"])))]
pub async fn post_events(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<(StatusCode, Json<IngestAnswer>), ApiError> {
    let own_tenant = caller.require(Scope::EventsWrite)?.tenant.clone();
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge {
                limit: state.body_limit,
            }
        } else {
            ApiError::bad_request("unreadable_body", e.body_text())
        }
    })?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    // A CloudEvents format or NDJSON says how the body holds its events;
    // otherwise `ce-*` headers make it one event in binary mode.
    let declared = BodyFormat::from_content_type(content_type, &body);
    let (format, body) = match declared {
        Some(format) if !is_json_only(content_type) || !binary::is_binary(&headers) => {
            (format, body)
        }
        _ if binary::is_binary(&headers) => (
            BodyFormat::Single,
            Bytes::from(binary::structured_record(&headers, &body)?),
        ),
        _ if content_type.is_empty() => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "set Content-Type to {MEDIA_TYPES}"
            )));
        }
        _ => {
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Type {content_type:?} is not accepted; use {MEDIA_TYPES}"
            )));
        }
    };
    ingest_body(
        &state.ingest,
        &state.time_bounds,
        own_tenant.as_deref(),
        format,
        &body,
    )
    .await
}

/// `GET /v1/events/recent`'s parameters.
#[derive(Debug, Deserialize)]
pub struct RecentParams {
    pub tenant: Option<String>,
    pub limit: Option<usize>,
}

impl utoipa::IntoParams for RecentParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        use somaflow_sql::contract::{self, query};
        vec![
            query(
                "tenant",
                false,
                "Only this tenant's events (a tenant's token sees its own only)",
                contract::id(),
            ),
            query(
                "limit",
                false,
                "How many, newest first (default 50)",
                contract::integer(1, RECENT_CAPACITY as u64),
            ),
        ]
    }
}

/// The newest events this node accepted over HTTP (envelopes only), for
/// a live view: they show here at their `202`, before any checkpoint.
#[utoipa::path(get, path = "/v1/events/recent", tag = "events",
    params(RecentParams),
    responses(
        (status = 200, description = "`{events: [{id, type, table, tenant, event_time_us, accepted_us}]}`, newest first; kept in memory, the newest 256 since the node started", body = Object),
        crate::responses::Refusals),
    security(("bearer" = ["usage:read"])))]
pub async fn get_recent(
    caller: Caller,
    query: Result<Query<RecentParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::UsageRead)?;
    let Query(p) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let tenant = caller.tenant(p.tenant.as_deref())?;
    let limit = p.limit.unwrap_or(50);
    if !(1..=RECENT_CAPACITY).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_limit",
            format!("limit={limit}: ask for 1 to {RECENT_CAPACITY} events"),
        ));
    }
    let events = recent_events().newest(limit, tenant.as_deref());
    Ok(Json(json!({ "events": events })))
}
