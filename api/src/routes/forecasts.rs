//! `GET /v1/forecasts?tenant=&meter=&horizon=` and `POST
//! /v1/anomalies/scan`: the models of [`somaflow_sql::forecast`] on a tenant's
//! hourly usage (`usage_1m`, from either store).

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use somaflow_sql::forecast::MIN_CHANGE_PERCENT;
use somaflow_sql::forecast::usage::{TenantForecast, forecast_tenant, scan_tenants};
use somaflow_sql::usage::request::Meter;

use crate::access::Caller;
use crate::auth::{AuthError, Scope};
use crate::error::ApiError;
use crate::state::AppState;

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

fn this_hour() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(Duration::hours(1)).unwrap_or(now)
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
    let store = state.stores.pick(p.source.as_deref())?;
    let TenantForecast {
        forecast: f,
        history_hours,
    } = forecast_tenant(&store, &tenant, meter, origin, horizon as usize).await?;
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
        "history_hours": history_hours,
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
    let (flags, scanned) = scan_tenants(
        &store,
        own.as_deref(),
        wanted.as_deref(),
        &meters,
        from,
        to,
        min_change,
    )
    .await?;
    let hour = |t: DateTime<Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let anomalies: Vec<Value> = flags
        .iter()
        .map(|f| {
            json!({
                "tenant": f.tenant,
                "meter": f.meter.name(),
                "window_start": hour(f.window_start),
                "window_end": hour(f.window_start + Duration::hours(1)),
                "observed": f.flag.observed,
                "expected": f.flag.expected,
                "score": f.flag.score,
                "direction": f.flag.direction,
            })
        })
        .collect();
    Ok(Json(json!({
        "from": req.from,
        "to": req.to,
        "series_scanned": scanned,
        "min_change_percent": min_change,
        "source": store.name(),
        "anomalies": anomalies,
    })))
}
