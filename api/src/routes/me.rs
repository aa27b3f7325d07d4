//! `GET /v1/me`: who the token is (subject, tenant, scopes), so a client
//! such as the console knows which tenant to show and which pages its
//! scopes open without decoding the token itself.

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::access::Caller;
use crate::state::AppState;

#[utoipa::path(get, path = "/v1/me", tag = "operations",
    responses(
        (status = 200, description = "`{subject, tenant, scopes, auth}`: `tenant` is null for a token bound to none (it may name any tenant it is allowed); `auth` is false when the node checks no tokens (everyone is an anonymous admin)", body = Object),
        crate::responses::Refusals),
    security(("bearer" = [])))]
pub async fn get_me(State(state): State<AppState>, caller: Caller) -> Json<Value> {
    let principal = caller.0;
    Json(json!({
        "subject": principal.subject,
        "tenant": principal.tenant,
        "scopes": principal.scopes.names(),
        "auth": !state.access.is_open(),
    }))
}
