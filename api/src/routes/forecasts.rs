//! `GET /v1/forecasts?tenant=&meter=&horizon=` and `POST
//! /v1/anomalies/scan`: the models of [`somaflow_sql::forecast`] on a tenant's
//! hourly usage (`usage_1m`, from either store).

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use somaflow_sql::forecast::{self, COUNT_MIN_SIGMA, MIN_CHANGE_PERCENT};
use somaflow_sql::store::SumRow;
use somaflow_sql::usage::plan::hourly_by_tenant;
use somaflow_sql::usage::request::Meter;

use crate::access::Caller;
use crate::auth::{AuthError, Scope};
use crate::error::ApiError;
use crate::state::AppState;

/// History a forecast or scan is fitted on (the backtest needs two weeks
/// for the weekly models; four give the weekly median three to choose from).
const HISTORY_DAYS: i64 = 28;
const MAX_HORIZON_HOURS: i64 = 31 * 24;
const MAX_SCAN_HOURS: i64 = 31 * 24;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ForecastParams {
    pub tenant: Option<String>,
    pub meter: Option<String>,
    /// `48h`, `7d`; default 7 days.
    pub horizon: Option<String>,
    /// The forecast origin: the last hour of history ends here (default:
    /// the current hour's start).
    pub at: Option<String>,
    pub source: Option<String>,
}

fn parse_hours(text: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_horizon",
            format!("horizon {text:?} is not a duration like 48h or 7d (at most 31d)"),
        )
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let n: i64 = number.parse().map_err(|_| bad())?;
    let hours = match unit {
        "h" => n,
        "d" => n * 24,
        _ => return Err(bad()),
    };
    if !(1..=MAX_HORIZON_HOURS).contains(&hours) {
        return Err(bad());
    }
    Ok(hours)
}

fn parse_hour(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    let t = DateTime::parse_from_rfc3339(text)
        .map_err(|e| {
            ApiError::bad_request(
                "invalid_time",
                format!("{name}={text:?} is not RFC 3339 ({e})"),
            )
        })?
        .with_timezone(&Utc);
    if t.duration_trunc(Duration::hours(1)).ok() != Some(t) {
        return Err(ApiError::bad_request(
            "invalid_time",
            format!("{name}={text:?} must be a whole hour: the series are hourly"),
        ));
    }
    Ok(t)
}

/// Counts get the Poisson floor on their spread; money does not.
fn min_sigma(meter: Meter) -> f64 {
    if meter == Meter::CostUsd {
        0.0
    } else {
        COUNT_MIN_SIGMA
    }
}

fn this_hour() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(Duration::hours(1)).unwrap_or(now)
}

/// Each tenant's hourly values over `hours` hours from `from`; the series
/// starts at the tenant's first hour with usage (a newer tenant has a
/// shorter history), zero-filled after it.
fn series_by_tenant(
    rows: &[SumRow],
    from: DateTime<Utc>,
    hours: usize,
    money: bool,
) -> BTreeMap<String, (usize, Vec<f64>)> {
    let mut out: BTreeMap<String, (usize, Vec<f64>)> = BTreeMap::new();
    for row in rows {
        let Some(tenant) = row.group.first() else {
            continue;
        };
        let offset = (row.bucket_secs - from.timestamp()) / 3_600;
        let Ok(i) = usize::try_from(offset) else {
            continue;
        };
        if i >= hours {
            continue;
        }
        let raw = row.sums.first().copied().unwrap_or(0);
        let value = if money { raw as f64 / 1e9 } else { raw as f64 };
        let entry = out
            .entry(tenant.clone())
            .or_insert_with(|| (usize::MAX, vec![0.0; hours]));
        entry.1[i] += value;
        if value != 0.0 {
            entry.0 = entry.0.min(i);
        }
    }
    out
}

#[utoipa::path(get, path = "/v1/forecasts", tag = "forecasts",
    params(ForecastParams),
    responses((status = 200, description = "`{model, backtest: {mape_percent, bias_percent, horizon_hours, origins}, candidates, points: [{window_start, value, lower_80, upper_80, lower_95, upper_95}]}`", body = Object), (status = 400, description = "A bad parameter: the error names it", body = crate::error::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks the scope or the tenant", body = crate::error::ErrorBody),
        (status = 429, description = "The token's rate limit; see Retry-After", body = crate::error::ErrorBody)),
    security(("bearer" = ["usage:read"])))]
pub async fn get_forecast(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ForecastParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::UsageRead)?;
    let Query(p) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let tenant = caller
        .tenant(p.tenant.as_deref())?
        .ok_or_else(|| ApiError::bad_request("tenant_required", "name the tenant: tenant=<id>"))?;
    let meter = Meter::parse(p.meter.as_deref().unwrap_or("cost_usd"))?;
    let horizon = parse_hours(p.horizon.as_deref().unwrap_or("7d"))?;
    let origin = match p.at.as_deref() {
        Some(at) => parse_hour("at", at)?,
        None => this_hour(),
    };
    let from = origin - Duration::days(HISTORY_DAYS);
    let store = state.stores.pick(p.source.as_deref())?;
    let rows = store
        .sums(&hourly_by_tenant(meter, from, origin), Some(&tenant))
        .await?;
    let hours = (HISTORY_DAYS * 24) as usize;
    let series = series_by_tenant(&rows, from, hours, meter == Meter::CostUsd);
    let history: &[f64] = match series.get(&tenant) {
        Some((first, values)) if *first < hours => &values[*first..],
        _ => &[],
    };
    let f = forecast::forecast(history, horizon as usize, min_sigma(meter));
    let points: Vec<Value> = f
        .points
        .iter()
        .map(|pt| {
            let start = origin + Duration::hours(pt.step as i64 - 1);
            json!({
                "window_start": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                "value": pt.value,
                "lower_80": pt.lower_80, "upper_80": pt.upper_80,
                "lower_95": pt.lower_95, "upper_95": pt.upper_95,
            })
        })
        .collect();
    Ok(Json(json!({
        "tenant": tenant,
        "meter": meter.name(),
        "origin": origin.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        "history_hours": history.len(),
        "horizon_hours": horizon,
        "model": f.model,
        "backtest": f.backtest,
        "candidates": f.candidates.iter().map(|(m, e)| json!({"model": m, "mape_percent": e})).collect::<Vec<_>>(),
        "source": store.name(),
        "points": points,
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    pub from: String,
    pub to: String,
    pub meters: Vec<String>,
    pub tenants: Option<Vec<String>>,
    pub min_change_percent: Option<f64>,
    pub source: Option<String>,
}

#[utoipa::path(post, path = "/v1/anomalies/scan", tag = "forecasts",
    request_body = ScanRequest,
    responses((status = 200, description = "`{anomalies: [{tenant, meter, window_start, window_end, observed, expected, score, direction}], series_scanned}`", body = Object), (status = 400, description = "A bad parameter: the error names it", body = crate::error::ErrorBody),
        (status = 401, description = "No valid bearer token", body = crate::error::ErrorBody),
        (status = 403, description = "The token lacks the scope or the tenant", body = crate::error::ErrorBody),
        (status = 429, description = "The token's rate limit; see Retry-After", body = crate::error::ErrorBody)),
    security(("bearer" = ["usage:read"])))]
pub async fn post_scan(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<ScanRequest>, JsonRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::UsageRead)?;
    let Json(req) = body.map_err(|e| {
        ApiError::bad_request(
            "invalid_request",
            format!(
                "{}; send {{\"from\", \"to\", \"meters\": [...], \"tenants\"?: [...]}}",
                e.body_text()
            ),
        )
    })?;
    let from = parse_hour("from", &req.from)?;
    let to = parse_hour("to", &req.to)?;
    let scan_hours = (to - from).num_hours();
    if !(1..=MAX_SCAN_HOURS).contains(&scan_hours) {
        return Err(ApiError::bad_request(
            "invalid_range",
            format!("[from, to) must span 1 hour to {MAX_SCAN_HOURS} hours"),
        ));
    }
    let meters = req
        .meters
        .iter()
        .map(|m| Meter::parse(m))
        .collect::<Result<Vec<_>, _>>()?;
    if meters.is_empty() {
        return Err(ApiError::bad_request(
            "invalid_meter",
            "name at least one meter",
        ));
    }
    let min_change = req
        .min_change_percent
        .unwrap_or(MIN_CHANGE_PERCENT)
        .max(0.0);
    // A tenant's token scans its own tenant; naming another is refused.
    let own = caller.tenant(None).ok().flatten();
    let wanted: Option<Vec<String>> = match (&own, req.tenants) {
        (Some(own), Some(list)) => {
            if let Some(other) = list.iter().find(|t| *t != own) {
                return Err(ApiError::Auth(AuthError::OtherTenant {
                    token: own.clone(),
                    requested: other.clone(),
                }));
            }
            Some(vec![own.clone()])
        }
        (Some(own), None) => Some(vec![own.clone()]),
        (None, list) => {
            caller.tenant(None)?;
            list
        }
    };
    let store = state.stores.pick(req.source.as_deref())?;
    let history_from = from - Duration::days(HISTORY_DAYS);
    let history_hours = (HISTORY_DAYS * 24) as usize;
    let total = history_hours + scan_hours as usize;
    let scope = own.as_deref();
    let mut anomalies = Vec::new();
    let mut scanned = 0usize;
    for meter in &meters {
        let rows = store
            .sums(&hourly_by_tenant(*meter, history_from, to), scope)
            .await?;
        let series = series_by_tenant(&rows, history_from, total, *meter == Meter::CostUsd);
        for (tenant, (first, values)) in &series {
            if wanted.as_ref().is_some_and(|w| !w.contains(tenant)) {
                continue;
            }
            scanned += 1;
            let history = if *first < history_hours {
                &values[*first..history_hours]
            } else {
                &[][..]
            };
            for flag in forecast::scan(
                history,
                &values[history_hours..],
                min_change,
                min_sigma(*meter),
            ) {
                let start = from + Duration::hours(flag.index as i64);
                anomalies.push(json!({
                    "tenant": tenant,
                    "meter": meter.name(),
                    "window_start": start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "window_end": (start + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    "observed": flag.observed,
                    "expected": flag.expected,
                    "score": flag.score,
                    "direction": flag.direction,
                }));
            }
        }
    }
    Ok(Json(json!({
        "from": req.from,
        "to": req.to,
        "series_scanned": scanned,
        "min_change_percent": min_change,
        "source": store.name(),
        "anomalies": anomalies,
    })))
}
