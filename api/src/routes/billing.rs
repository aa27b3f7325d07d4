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
use somaflow_pipeline::rules::TIME;
use somaflow_sql::contract;
use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, Type};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::ingest::{IngestAnswer, ingest_body};
use crate::state::AppState;

/// The CloudEvents `source` of reported usage.
const SOURCE: &str = "/v1/billing/events";
const MAX_KEY_CHARS: usize = 256;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BillingReport {
    /// The tenant; required for a token bound to none, its own for a
    /// tenant's token
    #[schema(schema_with = tenant)]
    pub tenant: Option<String>,
    #[schema(min_length = 1)]
    pub meter: String,
    /// A decimal (string or number) with at most 9 places; checked as
    /// every billing event's is, a refusal listed in the answer
    #[schema(schema_with = quantity)]
    pub quantity: Value,
    #[schema(min_length = 1)]
    pub unit: String,
    /// 1 to 256 characters; the same key for the same tenant is the same report
    #[schema(min_length = 1, max_length = 256)]
    pub idempotency_key: String,
    /// When the usage happened (default: now); within the ingest time bounds
    #[schema(schema_with = time)]
    pub time: Option<String>,
}

fn tenant() -> Object {
    contract::or_null(contract::id())
}

fn time() -> Object {
    contract::or_null(contract::time())
}

fn quantity() -> Schema {
    Schema::OneOf(
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1)),
            )
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .build(),
    )
}

/// One report, or an array of them (an empty one stores nothing: 202).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
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
    request_body(content = BillingBody, description = "One report or an array; idempotent on (tenant, idempotency_key)"),
    responses(
        (status = 202, description = "Stored; `event_ids` in order; refused reports listed (and dead-lettered)", body = BillingAnswer),
        (status = 422, description = "Every report was refused by event validation (e.g. a quantity that is not a decimal, a time outside the ingest bounds): each listed with its reason", body = BillingAnswer),
        crate::responses::Refusals),
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
    let now = chrono::Utc::now().to_rfc3339();
    let mut ndjson = Vec::new();
    let mut event_ids = Vec::with_capacity(reports.len());
    for (index, r) in reports.iter().enumerate() {
        let tenant = caller.one_tenant(r.tenant.as_deref())?;
        let key_chars = r.idempotency_key.chars().count();
        if !(1..=MAX_KEY_CHARS).contains(&key_chars) {
            return Err(ApiError::bad_request(
                "invalid_idempotency_key",
                format!("report {index}: idempotency_key must be 1 to {MAX_KEY_CHARS} characters"),
            ));
        }
        let text_fields = [("meter", &r.meter), ("unit", &r.unit)];
        if let Some((name, _)) = text_fields.iter().find(|(_, v)| v.is_empty()) {
            return Err(ApiError::bad_request(
                "invalid_report",
                format!("report {index}: {name} must not be empty"),
            ));
        }
        let quantity_ok = match &r.quantity {
            Value::String(q) => !q.is_empty(),
            Value::Number(_) => true,
            _ => false,
        };
        if !quantity_ok {
            return Err(ApiError::bad_request(
                "invalid_report",
                format!("report {index}: quantity must be a decimal string or a number"),
            ));
        }
        if let Some(time) = &r.time
            && !TIME.matches(time)
        {
            return Err(ApiError::bad_request(
                "invalid_time",
                format!("report {index}: time {time:?} is not {}", TIME.words),
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
