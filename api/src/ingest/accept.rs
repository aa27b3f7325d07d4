//! Accepting a request's events: split the body, validate each event,
//! refuse another tenant's events for a tenant's token, store them all
//! (the refused ones too, as dead letters to be) and answer with the
//! refused indices. `POST /v1/events` and `POST /v1/billing/events` both
//! end here.

use axum::Json;
use axum::http::StatusCode;
use bytes::Bytes;
use serde::Serialize;
use somaflow_pipeline::events::{BodyFormat, TimeBounds, parse_event, split_body};
use somaflow_pipeline::log::is_idle_tick;
use somaflow_pipeline::metrics::metrics;

use super::recent::{RECENT_CAPACITY, RecentEvent, recent_events};
use super::store::{Checked, Ingest, IngestError};
use crate::auth::AuthError;
use crate::error::ApiError;

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

/// Validates and stores the events of `body`; a tenant's token
/// (`own_tenant`) may only write its own tenant's events.
pub async fn ingest_body(
    ingest: &Ingest,
    time_bounds: &TimeBounds,
    own_tenant: Option<&str>,
    format: BodyFormat,
    body: &Bytes,
) -> Result<(StatusCode, Json<IngestAnswer>), ApiError> {
    let records = split_body(format, body)
        .map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))?;
    let ingest_time_us = chrono::Utc::now().timestamp_micros();
    let mut rejected = Vec::new();
    let mut checked = Vec::with_capacity(records.len());
    let mut fresh = Vec::with_capacity(records.len().min(RECENT_CAPACITY));
    for (index, record) in records.iter().enumerate() {
        if is_idle_tick(record) {
            // The log's own control record: refused, and not stored, where
            // it would read as one.
            rejected.push(Rejection {
                index,
                error: "malformed JSON: a record may not start with a NUL byte".into(),
            });
            continue;
        }
        let verdict = match parse_event(record, ingest_time_us, time_bounds) {
            Ok(event) => {
                if records.len() - index <= RECENT_CAPACITY {
                    fresh.push(RecentEvent {
                        id: event.id.into_owned(),
                        type_name: event.kind.type_name(),
                        table: event.kind.table(),
                        tenant: event.tenant_id.to_string(),
                        event_time_us: event.event_time_us,
                        accepted_us: ingest_time_us,
                    });
                }
                Ok((event.kind, event.tenant_id.into_owned()))
            }
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
    ingest
        .store(ingest_time_us, checked)
        .await
        .map_err(|e| match e {
            IngestError::Refused(m) => ApiError::TooLargeEvent(m),
            IngestError::Unavailable(message) => ApiError::Unavailable {
                message,
                retry_after_secs: 1,
            },
        })?;
    let m = metrics();
    m.ingest_accepted.inc_by(accepted as u64);
    m.ingest_rejected.inc_by(rejected.len() as u64);
    recent_events().record(fresh);
    // Every event refused: the request as a whole could not be processed,
    // though each part was read (422, with the reasons). A body of no
    // events stores nothing and refuses nothing: 202.
    let status = if accepted == 0 && !rejected.is_empty() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::ACCEPTED
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
