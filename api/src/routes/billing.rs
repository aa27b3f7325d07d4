//! `POST /v1/billing/events`: usage reported directly, as `soma.billing.v1`
//! events. One object or an array of them:
//! `{"tenant"?, "meter", "quantity", "unit", "idempotency_key", "time"?}`.
//!
//! Idempotent on `(tenant, idempotency_key)`: the event id is derived from
//! the pair, so a retried report is the same event and the dedup operator
//! drops the repeat (within `dedup.ttl_secs`, 24 h by default; ClickHouse
//! collapses it further when it falls in the same hour). A retry should
//! send the same `time`; without one, the time is the server's clock.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use somaflow_pipeline::events::BodyFormat;

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::ingest::{IngestAnswer, ingest_body};
use crate::state::AppState;

/// The CloudEvents `source` of reported usage.
const SOURCE: &str = "/v1/billing/events";
const MAX_KEY_LEN: usize = 256;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingReport {
    pub tenant: Option<String>,
    pub meter: String,
    #[schema(value_type = String)]
    pub quantity: Value,
    pub unit: String,
    pub idempotency_key: String,
    pub time: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum BillingBody {
    One(BillingReport),
    Many(Vec<BillingReport>),
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BillingAnswer {
    #[serde(flatten)]
    pub ingest: IngestAnswer,
    /// The event id each report became, in order.
    pub event_ids: Vec<String>,
}

/// The event id of `(tenant, key)`: the same pair, the same id.
pub fn billing_event_id(tenant: &str, key: &str) -> String {
    let digest = xxhash_rust::xxh3::xxh3_128(format!("{tenant}\u{0}{key}").as_bytes());
    format!("billing-{digest:032x}")
}

#[utoipa::path(post, path = "/v1/billing/events", tag = "billing",
    request_body(content = [BillingReport], description = "One report or an array; idempotent on (tenant, idempotency_key)"),
    responses(
        (status = 202, description = "Stored; `event_ids` in order", body = BillingAnswer),
        (status = 400, description = "A bad parameter: the error names it", body = crate::error::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks the scope or the tenant", body = crate::error::ErrorBody),
        (status = 429, description = "The token's rate limit; see Retry-After", body = crate::error::ErrorBody)),
    security(("bearer" = ["events:write"])))]
pub async fn post_billing_events(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<BillingBody>, JsonRejection>,
) -> Result<(StatusCode, Json<BillingAnswer>), ApiError> {
    let own = caller.require(Scope::EventsWrite)?.tenant.clone();
    let Json(body) = body.map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!(
                "{}; send {{\"meter\", \"quantity\", \"unit\", \"idempotency_key\"}} or an array of them",
                e.body_text()
            ),
        )
    })?;
    let reports = match body {
        BillingBody::One(r) => vec![r],
        BillingBody::Many(list) => list,
    };
    if reports.is_empty() {
        return Err(ApiError::bad_request(
            "empty_body",
            "the body holds no reports",
        ));
    }
    let now = chrono::Utc::now().to_rfc3339();
    let mut ndjson = Vec::new();
    let mut event_ids = Vec::with_capacity(reports.len());
    for (index, r) in reports.iter().enumerate() {
        let tenant = caller.tenant(r.tenant.as_deref())?.ok_or_else(|| {
            ApiError::bad_request(
                "tenant_required",
                format!("report {index}: name its tenant (this token is not bound to one)"),
            )
        })?;
        if r.idempotency_key.is_empty() || r.idempotency_key.len() > MAX_KEY_LEN {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                format!("report {index}: idempotency_key must be 1 to {MAX_KEY_LEN} bytes"),
            ));
        }
        let id = billing_event_id(&tenant, &r.idempotency_key);
        // The quantity goes on as sent (a string keeps its exact digits);
        // decode checks it like any billing event's.
        let event = json!({
            "specversion": "1.0",
            "id": id,
            "source": SOURCE,
            "type": "soma.billing.v1",
            "time": r.time.as_deref().unwrap_or(&now),
            "tenantid": tenant,
            "data": {
                "meter": r.meter,
                "quantity": r.quantity,
                "unit": r.unit,
                "idempotency_key": r.idempotency_key,
            },
        });
        ndjson.extend_from_slice(event.to_string().as_bytes());
        ndjson.push(b'\n');
        event_ids.push(id);
    }
    let (status, Json(ingest)) = ingest_body(
        &state.ingest,
        &state.time_bounds,
        own.as_deref(),
        BodyFormat::NdJson,
        &Bytes::from(ndjson),
    )
    .await?;
    Ok((status, Json(BillingAnswer { ingest, event_ids })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_tenant_and_key_is_one_event_id() {
        let a = billing_event_id("acme", "k-1");
        assert_eq!(a, billing_event_id("acme", "k-1"));
        assert_ne!(a, billing_event_id("acme", "k-2"));
        assert_ne!(a, billing_event_id("globex", "k-1"));
        // The separator keeps ("ab", "c") and ("a", "bc") apart.
        assert_ne!(billing_event_id("ab", "c"), billing_event_id("a", "bc"));
    }
}
