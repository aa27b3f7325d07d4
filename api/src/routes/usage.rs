//! `GET /v1/usage`: see [`somaflow_sql::usage`]. JSON rows `{window_start,
//! window_end, group, value}`, or CSV with `Accept: text/csv`. `value` is
//! a number for counts and an exact decimal string for `cost_usd`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{Map, Value, json};
use somaflow_sql::money::usd;
use somaflow_sql::store::cache::Rendered;
use somaflow_sql::usage::plan::UsagePlan;
use somaflow_sql::usage::request::{UsageParams, UsageQuery};
use somaflow_sql::usage::windows::{WindowSum, fold};

use crate::access::Caller;
use crate::auth::Scope;
use crate::error::ApiError;
use crate::state::AppState;

#[utoipa::path(get, path = "/v1/usage", tag = "usage",
    params(UsageParams),
    responses(
        (status = 200, description = "`{meter, from, to, window, tz, group_by, tenant, source, rows: [{window_start, window_end, group, value}]}`; CSV with `Accept: text/csv`", body = Object),
        (status = 422, description = "`from` is not before `to`, the range spans more than 50,000 windows (`too_many_windows`), or a day that does not exist", body = crate::error::ErrorBody),
        crate::responses::Refusals),
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
    let store = state.stores.pick(params.source.as_deref())?;
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/csv"));
    let sum_query = plan.sum_query(&query);
    let tenant = tenant.as_deref();
    // The parsed query names every input of the rendering; tenant and
    // store are part of the cache's key.
    let request = format!("usage {query:?} csv={wants_csv}");
    let answer = store
        .rendered(&sum_query, tenant, request, || async {
            let sums = store.sums(&sum_query, tenant).await?;
            let rows = fold(sums, query.window, query.tz);
            Ok(if wants_csv {
                csv_answer(&query, &plan, &rows)
            } else {
                json_answer(&query, &plan, &rows, tenant, store.name())
            })
        })
        .await?;
    Ok(([(header::CONTENT_TYPE, answer.content_type)], answer.body).into_response())
}

/// A row's value: a number for counts, an exact decimal string for money.
fn row_value(plan: &UsagePlan, v: i128) -> Value {
    if plan.is_money {
        Value::String(usd(v))
    } else {
        i64::try_from(v).map_or_else(|_| Value::String(v.to_string()), Value::from)
    }
}

fn json_answer(
    query: &UsageQuery,
    plan: &UsagePlan,
    rows: &[WindowSum],
    tenant: Option<&str>,
    source: &str,
) -> Rendered {
    let dims: Vec<&str> = query.group_by.iter().map(|d| d.name()).collect();
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
                "value": row_value(plan, r.value),
            })
        })
        .collect();
    let body = json!({
        "meter": query.meter.name(),
        "from": query.from.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "to": query.to.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "window": format!("{:?}", query.window).to_lowercase(),
        "tz": query.tz.name(),
        "group_by": dims,
        "tenant": tenant,
        "source": source,
        "rows": rows,
    });
    Rendered {
        content_type: "application/json",
        body: Bytes::from(body.to_string()),
    }
}

fn csv_answer(query: &UsageQuery, plan: &UsagePlan, rows: &[WindowSum]) -> Rendered {
    let dims = query.group_by.iter().map(|d| d.name());
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
        match row_value(plan, r.value) {
            Value::String(s) => out.push_str(&s),
            other => out.push_str(&other.to_string()),
        }
        out.push('\n');
    }
    Rendered {
        content_type: "text/csv; charset=utf-8",
        body: Bytes::from(out),
    }
}

/// RFC 4180: quote a field holding a comma, quote or line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}
