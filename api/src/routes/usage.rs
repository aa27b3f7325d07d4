//! `GET /v1/usage`: see [`crate::usage`]. JSON rows `{window_start,
//! window_end, group, value}`, or CSV with `Accept: text/csv`. `value` is
//! a number for counts and an exact decimal string for `cost_usd`.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::money::usd;
use crate::state::AppState;
use crate::store::Store;
use crate::usage::plan::UsagePlan;
use crate::usage::request::{UsageParams, UsageQuery};
use crate::usage::windows::{WindowSum, fold};

#[utoipa::path(get, path = "/v1/usage", tag = "usage",
    params(UsageParams),
    responses(
        (status = 200, description = "`{meter, from, to, window, tz, group_by, tenant, source, rows: [{window_start, window_end, group, value}]}`; CSV with `Accept: text/csv`", body = Object),
        (status = 400, description = "A bad parameter: the error names it", body = crate::openapi::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::openapi::ErrorBody),
        (status = 403, description = "The token lacks the scope or the tenant", body = crate::openapi::ErrorBody),
        (status = 429, description = "The token's rate limit; see Retry-After", body = crate::openapi::ErrorBody)),
    security(("bearer" = ["usage:read"])))]
pub async fn get_usage(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    params: Result<Query<UsageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    caller.require(Scope::UsageRead)?;
    let Query(params) =
        params.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let tenant = caller.tenant(params.tenant.as_deref())?;
    let query = UsageQuery::parse(&params)?;
    let plan = UsagePlan::for_query(&query)?;
    let store = Store::pick(&state, params.source.as_deref())?;
    let sums = store
        .sums(&plan.sum_query(&query), tenant.as_deref())
        .await?;
    let source = store.name();
    let rows = fold(sums, query.window, query.tz);
    let dims: Vec<&str> = query.group_by.iter().map(|d| d.name()).collect();
    let value = |v: i128| {
        if plan.is_money {
            Value::String(usd(v))
        } else {
            i64::try_from(v).map_or_else(|_| Value::String(v.to_string()), Value::from)
        }
    };
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    if wants_csv {
        return Ok(csv_answer(&dims, &rows, value));
    }
    let rows: Vec<Value> = rows
        .iter()
        .map(|r| {
            let group: Map<String, Value> = dims
                .iter()
                .zip(&r.group)
                .map(|(d, g)| (d.to_string(), Value::String(g.clone())))
                .collect();
            json!({
                "window_start": r.window_start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "window_end": r.window_end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "group": group,
                "value": value(r.value),
            })
        })
        .collect();
    Ok(Json(json!({
        "meter": query.meter.name(),
        "from": query.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "to": query.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "window": format!("{:?}", query.window).to_lowercase(),
        "tz": query.tz.name(),
        "group_by": dims,
        "tenant": tenant,
        "source": source,
        "rows": rows,
    }))
    .into_response())
}

fn csv_answer(dims: &[&str], rows: &[WindowSum], value: impl Fn(i128) -> Value) -> Response {
    let mut out = String::from("window_start,window_end");
    for d in dims {
        out.push(',');
        out.push_str(d);
    }
    out.push_str(",value\n");
    for r in rows {
        out.push_str(
            &r.window_start
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        out.push(',');
        out.push_str(
            &r.window_end
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        for g in &r.group {
            out.push(',');
            out.push_str(&csv_field(g));
        }
        out.push(',');
        match value(r.value) {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        out.push('\n');
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        out,
    )
        .into_response()
}

/// RFC 4180: quote a field holding a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
