//! `PUT /v1/tenants/{id}` `{"plan", "region", "monthly_budget_usd"}` and
//! `PUT /v1/capsules/{id}` `{"author_id", "price_usd"}` (`admin`): set the
//! metadata enrich adds to rows. On a node without Redis they rewrite the
//! metadata files (durable, and read by the next batch); with Redis they
//! write the `tenant:{id}` / `capsule:{id}` hashes (read by enrich within
//! `enrich.ttl_secs`). Values are checked as a line of the files is: plan
//! `free|pro|enterprise`, region `us|eu|apac`, amounts decimal ≥ 0 with at
//! most 9 places, ids without whitespace or commas.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use serde::{Deserialize, Serialize};
use somaflow_operators::enrich::{CatalogError, MetadataError, MetadataStore};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::params::visible_tenant;
use crate::state::AppState;

/// Label of the API's metadata writes in `somaflow_redis_errors`.
const NODE: &str = "api";

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TenantMetadata {
    /// `free`, `pro` or `enterprise`
    #[schema(pattern = "^(free|pro|enterprise)$")]
    pub plan: String,
    /// `us`, `eu` or `apac`
    #[schema(pattern = "^(us|eu|apac)$")]
    pub region: String,
    /// USD, a decimal ≥ 0 with at most 9 places; 0: no budget
    #[schema(pattern = "^[0-9]+(\\.[0-9]{1,9})?$")]
    pub monthly_budget_usd: String,
}

#[derive(Debug, Clone, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapsuleMetadata {
    #[schema(pattern = "^[^\\s,\"]+$")]
    pub author_id: String,
    /// USD, a decimal ≥ 0 with at most 9 places
    #[schema(pattern = "^[0-9]+(\\.[0-9]{1,9})?$")]
    pub price_usd: String,
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
    params(("tenant" = String, Path, description = "A tenant id: no whitespace or commas")),
    request_body = TenantMetadata,
    responses(
        (status = 200, description = "The tenant's metadata as stored", body = TenantMetadata),
        (status = 400, description = "A bad parameter: the error names it", body = crate::error::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks the scope", body = crate::error::ErrorBody),
        (status = 501, description = "The node keeps no metadata", body = crate::error::ErrorBody),
        (status = 503, description = "Redis does not answer; retry", body = crate::error::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn put_tenant(
    State(state): State<AppState>,
    caller: Caller,
    tenant: Result<Path<String>, PathRejection>,
    update: Result<Json<TenantMetadata>, JsonRejection>,
) -> Result<Json<TenantMetadata>, ApiError> {
    caller.require(Scope::Admin)?;
    let Path(tenant) =
        tenant.map_err(|e| ApiError::bad_request("invalid_tenant", e.body_text()))?;
    visible_tenant(&tenant)?;
    let t = body(
        update,
        r#"{"plan": "pro", "region": "eu", "monthly_budget_usd": "250.00"}"#,
    )?;
    store(&state)?
        .put_tenant(NODE, &tenant, &t.plan, &t.region, &t.monthly_budget_usd)
        .await
        .map_err(metadata_error)?;
    Ok(Json(t))
}

#[utoipa::path(put, path = "/v1/capsules/{capsule}", tag = "metadata",
    params(("capsule" = String, Path, description = "A capsule id: no whitespace or commas")),
    request_body = CapsuleMetadata,
    responses(
        (status = 200, description = "The capsule's metadata as stored", body = CapsuleMetadata),
        (status = 400, description = "A bad parameter: the error names it", body = crate::error::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks the scope", body = crate::error::ErrorBody),
        (status = 501, description = "The node keeps no metadata", body = crate::error::ErrorBody),
        (status = 503, description = "Redis does not answer; retry", body = crate::error::ErrorBody)),
    security(("bearer" = ["admin"])))]
pub async fn put_capsule(
    State(state): State<AppState>,
    caller: Caller,
    capsule: Result<Path<String>, PathRejection>,
    update: Result<Json<CapsuleMetadata>, JsonRejection>,
) -> Result<Json<CapsuleMetadata>, ApiError> {
    caller.require(Scope::Admin)?;
    let Path(capsule) =
        capsule.map_err(|e| ApiError::bad_request("invalid_capsule", e.body_text()))?;
    let c = body(update, r#"{"author_id": "author-01", "price_usd": "9.99"}"#)?;
    store(&state)?
        .put_capsule(NODE, &capsule, &c.author_id, &c.price_usd)
        .await
        .map_err(metadata_error)?;
    Ok(Json(c))
}
