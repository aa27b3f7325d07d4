//! `PUT /v1/tenants/{id}` `{"plan", "region", "monthly_budget_usd"}` and
//! `PUT /v1/capsules/{id}` `{"author_id", "price_usd"}` (`admin`): set the
//! metadata enrich adds to rows. On a node without Redis they rewrite the
//! metadata files (durable, and read by the next batch); with Redis they
//! write the `tenant:{id}` / `capsule:{id}` hashes (read by enrich within
//! `enrich.ttl_secs`). Values are checked as a line of the files is: plan
//! `free|pro|enterprise`, region `us|eu|apac`, amounts and ids by the
//! rules of [`somaflow_pipeline::rules`] that `/openapi.json` states.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use somaflow_operators::enrich::files::{PLANS, REGIONS};
use somaflow_operators::enrich::{CatalogError, MetadataError, MetadataStore};
use somaflow_pipeline::rules::AMOUNT;
use somaflow_sql::contract;
use utoipa::openapi::schema::Object;

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::params::{CapsulePath, TenantPath};
use crate::state::AppState;

/// Label of the API's metadata writes in `somaflow_redis_errors`.
const NODE: &str = "api";

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantMetadata {
    #[schema(schema_with = plan)]
    pub plan: String,
    #[schema(schema_with = region)]
    pub region: String,
    /// USD; 0: no budget
    #[schema(schema_with = contract::amount)]
    pub monthly_budget_usd: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapsuleMetadata {
    #[schema(schema_with = contract::id)]
    pub author_id: String,
    /// USD
    #[schema(schema_with = contract::amount)]
    pub price_usd: String,
}

fn plan() -> Object {
    contract::enum_schema(PLANS)
}

fn region() -> Object {
    contract::enum_schema(REGIONS)
}

/// The amounts as the contract states them (the files read any decimal).
fn check_amount(name: &str, value: &str) -> Result<(), ApiError> {
    if AMOUNT.matches(value) {
        return Ok(());
    }
    Err(ApiError::bad_request(
        "invalid_metadata",
        format!("{name} {value:?} must be {}", AMOUNT.words),
    ))
}

fn store(state: &AppState) -> Result<&MetadataStore, ApiError> {
    state
        .metadata
        .as_ref()
        .ok_or_else(|| ApiError::NotConfigured {
            code: "metadata_not_configured",
            message: "this node keeps no tenant metadata: set [redis] url, or run embedded with \
                  enrich.tenants and enrich.capsules files"
                .into(),
        })
}

fn metadata_error(e: MetadataError) -> ApiError {
    match e {
        MetadataError::Catalog(CatalogError::Invalid(reason)) => {
            ApiError::bad_request("invalid_metadata", reason)
        }
        MetadataError::Redis(e) => ApiError::Unavailable {
            message: format!("tenant metadata is kept in Redis, which does not answer ({e})"),
            retry_after_secs: 1,
        },
        e => ApiError::Internal(e.to_string()),
    }
}

fn body<T>(body: Result<Json<T>, JsonRejection>, example: &str) -> Result<T, ApiError> {
    body.map(|Json(b)| b).map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!("{}; send {example}", e.body_text()),
        )
    })
}

#[utoipa::path(put, path = "/v1/tenants/{tenant}", tag = "metadata",
    params(TenantPath),
    request_body = TenantMetadata,
    responses(
        (status = 200, description = "The tenant's metadata as stored", body = TenantMetadata),
        (status = 501, description = "The node keeps no metadata", body = crate::error::ErrorBody), crate::responses::Refusals),
    security(("bearer" = ["admin"])))]
pub async fn put_tenant(
    State(state): State<AppState>,
    caller: Caller,
    tenant: Result<Path<TenantPath>, PathRejection>,
    update: Result<Json<TenantMetadata>, JsonRejection>,
) -> Result<Json<TenantMetadata>, ApiError> {
    caller.require(Scope::Admin)?;
    let tenant = TenantPath::read(tenant)?;
    let t = body(
        update,
        r#"{"plan": "pro", "region": "eu", "monthly_budget_usd": "250.00"}"#,
    )?;
    check_amount("monthly_budget_usd", &t.monthly_budget_usd)?;
    store(&state)?
        .put_tenant(NODE, &tenant, &t.plan, &t.region, &t.monthly_budget_usd)
        .await
        .map_err(metadata_error)?;
    Ok(Json(t))
}

#[utoipa::path(put, path = "/v1/capsules/{capsule}", tag = "metadata",
    params(CapsulePath),
    request_body = CapsuleMetadata,
    responses(
        (status = 200, description = "The capsule's metadata as stored", body = CapsuleMetadata),
        (status = 501, description = "The node keeps no metadata", body = crate::error::ErrorBody), crate::responses::Refusals),
    security(("bearer" = ["admin"])))]
pub async fn put_capsule(
    State(state): State<AppState>,
    caller: Caller,
    capsule: Result<Path<CapsulePath>, PathRejection>,
    update: Result<Json<CapsuleMetadata>, JsonRejection>,
) -> Result<Json<CapsuleMetadata>, ApiError> {
    caller.require(Scope::Admin)?;
    let capsule = CapsulePath::read(capsule)?;
    let c = body(update, r#"{"author_id": "author-01", "price_usd": "9.99"}"#)?;
    check_amount("price_usd", &c.price_usd)?;
    store(&state)?
        .put_capsule(NODE, &capsule, &c.author_id, &c.price_usd)
        .await
        .map_err(metadata_error)?;
    Ok(Json(c))
}
