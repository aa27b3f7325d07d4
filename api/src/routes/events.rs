//! `POST /v1/events`: CloudEvents in (single, batch, NDJSON), validated per
//! event, stored (embedded log or Kafka, see [`crate::ingest`]), answered
//! only once durable. Refused events are stored too, as dead letters to be,
//! so the answer and the dead letters always agree.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use serde::Serialize;
use somaflow_pipeline::events::{BodyFormat, parse_event, split_body};
use somaflow_pipeline::metrics::metrics;

use crate::auth::{AuthError, Caller, Scope};
use crate::error::ApiError;
use crate::ingest::{Checked, IngestError};
use crate::state::AppState;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Rejection {
    pub index: usize,
    pub error: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IngestAnswer {
    pub accepted: usize,
    pub rejected: Vec<Rejection>,
}

const MEDIA_TYPES: &str =
    "application/cloudevents+json, application/cloudevents-batch+json or application/x-ndjson";

#[utoipa::path(post, path = "/v1/events", tag = "events",
    request_body(content = Object, description = "One CloudEvent (application/cloudevents+json), a batch (application/cloudevents-batch+json) or NDJSON (application/x-ndjson)", content_type = "application/cloudevents+json"),
    responses(
        (status = 202, description = "Stored durably; rejected events are listed and dead-lettered", body = IngestAnswer),
        (status = 413, description = "Body over server.body_limit_bytes", body = crate::openapi::ErrorBody),
        (status = 415, description = "Unknown Content-Type", body = crate::openapi::ErrorBody),
        (status = 503, description = "Storage unavailable; retry", body = crate::openapi::ErrorBody),
        (status = 400, description = "A bad parameter: the error names it", body = crate::openapi::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token lacks the scope or the tenant", body = crate::openapi::ErrorBody),
        (status = 429, description = "The token's rate limit; see Retry-After", body = crate::openapi::ErrorBody)),
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
        .ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!("set Content-Type to {MEDIA_TYPES}"))
        })?;
    let format = BodyFormat::from_content_type(content_type, &body).ok_or_else(|| {
        ApiError::UnsupportedMediaType(format!(
            "Content-Type {content_type:?} is not accepted; use {MEDIA_TYPES}"
        ))
    })?;
    ingest_body(&state, own_tenant.as_deref(), format, &body).await
}

/// Validates and stores the events of `body`; a tenant's token
/// (`own_tenant`) may only write its own tenant's events.
pub(crate) async fn ingest_body(
    state: &AppState,
    own_tenant: Option<&str>,
    format: BodyFormat,
    body: &Bytes,
) -> Result<(StatusCode, Json<IngestAnswer>), ApiError> {
    let records = split_body(format, body)
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    if records.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the body holds no events",
        ));
    }

    let ingest_time_us = chrono::Utc::now().timestamp_micros();
    let mut rejected = Vec::new();
    let mut checked = Vec::with_capacity(records.len());
    for (index, record) in records.iter().enumerate() {
        let verdict = match parse_event(record, ingest_time_us, &state.time_bounds) {
            Ok(event) => Ok((event.kind, event.tenant_id.into_owned())),
            Err(e) => {
                let error = e.to_string();
                rejected.push(Rejection {
                    index,
                    error: error.clone(),
                });
                Err(error)
            }
        };
        checked.push(Checked {
            raw: share(body, record),
            verdict,
        });
    }
    // A tenant's token writes only its own tenant's events. The whole
    // request is refused, nothing stored: a dead letter would land the
    // bytes in the other tenant's rows.
    if let Some(own) = own_tenant
        && let Some(other) = checked.iter().find_map(|c| match &c.verdict {
            Ok((_, tenant)) if tenant.as_str() != own => Some(tenant.clone()),
            _ => None,
        })
    {
        return Err(ApiError::Auth(AuthError::OtherTenant {
            token: own.to_string(),
            requested: other,
        }));
    }
    let accepted = records.len() - rejected.len();
    state
        .ingest
        .store(ingest_time_us, checked)
        .await
        .map_err(|e| match e {
            IngestError::Refused(m) => ApiError::bad_request("event_too_large", m),
            IngestError::Unavailable(message) => ApiError::Unavailable {
                message,
                retry_after_secs: 1,
            },
        })?;
    let m = metrics();
    m.ingest_accepted.inc_by(accepted as u64);
    m.ingest_rejected.inc_by(rejected.len() as u64);
    let status = if accepted > 0 {
        StatusCode::ACCEPTED
    } else {
        StatusCode::BAD_REQUEST
    };
    Ok((status, Json(IngestAnswer { accepted, rejected })))
}

/// The record as a view into the body when it lies inside it (it always
/// does: the splitter only borrows), a copy otherwise.
fn share(body: &Bytes, record: &[u8]) -> Bytes {
    let start = body.as_ptr() as usize;
    let at = record.as_ptr() as usize;
    if at >= start && at + record.len() <= start + body.len() {
        body.slice_ref(record)
    } else {
        Bytes::copy_from_slice(record)
    }
}
