//! `GET /v1/forecasts?tenant=&meter=&horizon=` and `POST
//! /v1/anomalies/scan`: the models of [`somaflow_sql::forecast`] on a tenant's
//! hourly usage (`rollup_1h` for whole hours, `usage_1m` at the edges;
//! from either store).

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde::Deserialize;
use serde_json::{Value, json};
use somaflow_pipeline::rules::{HOUR, Rule};
use somaflow_sql::forecast::MIN_CHANGE_PERCENT;
use somaflow_sql::forecast::usage::{TenantForecast, forecast_tenant, scan_tenants};
use somaflow_sql::usage::request::Meter;
use somaflow_sql::{checks, contract};
use utoipa::openapi::path::{Parameter, ParameterIn};
use utoipa::openapi::schema::{Array, ArrayBuilder, Object, SchemaType, Type};

/// What `source` says in every route's parameters.
pub(crate) const SOURCE: &str = "Default: ClickHouse when the node writes it, else the lake";

use crate::access::Caller;
use crate::auth::{AuthError, Scope};
use crate::error::ApiError;
use crate::state::AppState;

const MAX_SCAN_HOURS: i64 = 31 * 24;

/// A forecast's horizon: 1 to 744 hours (`48h`) or 1 to 31 days (`7d`).
static HORIZON: Rule = Rule::new(
    "^(([1-9]|[1-9][0-9]|[1-6][0-9][0-9]|7[0-3][0-9]|74[0-4])h|([1-9]|[12][0-9]|3[01])d)$",
    "a duration of 1h to 744h or 1d to 31d, e.g. 48h or 7d",
);

fn horizon() -> Object {
    contract::rule_schema(&HORIZON)
}

#[derive(Debug, Deserialize)]
pub struct ForecastParams {
    pub tenant: Option<String>,
    pub meter: Option<String>,
    pub horizon: Option<String>,
    pub at: Option<String>,
    pub source: Option<String>,
}

impl utoipa::IntoParams for ForecastParams {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        use contract::query;
        vec![
            query(
                "tenant",
                false,
                "The tenant; required for a token bound to none",
                contract::id(),
            ),
            query(
                "meter",
                false,
                "What is forecast (default cost_usd)",
                contract::meter(),
            ),
            query("horizon", false, "How far ahead (default 7d)", horizon()),
            query(
                "at",
                false,
                "The forecast origin: the last hour of history ends here (default: the current hour's start)",
                contract::hour(),
            ),
            query("source", false, SOURCE, contract::source()),
        ]
    }
}

fn parse_hours(text: &str) -> Result<i64, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_horizon",
            format!("horizon {text:?} is not {}", HORIZON.words),
        )
    };
    if !HORIZON.matches(text) {
        return Err(bad());
    }
    let (number, unit) = text.split_at(text.len() - 1);
    let n: i64 = number.parse().map_err(|_| bad())?;
    Ok(if unit == "d" { n * 24 } else { n })
}

fn parse_hour(name: &str, text: &str) -> Result<DateTime<Utc>, ApiError> {
    Ok(checks::parse_time(name, text, &HOUR)?)
}

fn this_hour() -> DateTime<Utc> {
    let now = Utc::now();
    now.duration_trunc(Duration::hours(1)).unwrap_or(now)
}

#[utoipa::path(get, path = "/v1/forecasts", tag = "forecasts",
    params(ForecastParams),
    responses((status = 200, description = "`{model (`ensemble` or the one candidate used), members: [{model, weight}], backtest: {mape_percent, bias_percent, horizon_hours, origins}, candidates, points: [{window_start, value, lower_80, upper_80, lower_95, upper_95}]}`", body = Object),
        (status = 422, description = "`at` names a day that does not exist", body = crate::error::ErrorBody),
        crate::responses::Refusals),
    security(("bearer" = ["usage:read"])))]
pub async fn get_forecast(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<ForecastParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    caller.require(Scope::UsageRead)?;
    let Query(p) = query.map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))?;
    let tenant = caller.one_tenant(p.tenant.as_deref())?;
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
        "members": f.members,
        "backtest": f.backtest,
        "candidates": f.candidates.iter().map(|(m, e)| json!({"model": m, "mape_percent": e})).collect::<Vec<_>>(),
        "source": store.name(),
        "points": points,
    })))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// Start, on a whole hour
    #[schema(schema_with = contract::hour)]
    pub from: String,
    /// End (exclusive), on a whole hour; 1 to 744 hours after `from`
    #[schema(schema_with = contract::hour)]
    pub to: String,
    /// The meters to scan, at least one
    #[schema(schema_with = contract::meters)]
    pub meters: Vec<String>,
    /// Only these tenants (default: every tenant the token sees)
    #[schema(schema_with = tenant_list)]
    pub tenants: Option<Vec<String>>,
    /// Smallest change from the expected value that is flagged, in percent
    /// (default 20; below 0 counts as 0)
    pub min_change_percent: Option<f64>,
    /// Default: ClickHouse when the node writes it, else the lake
    #[schema(schema_with = source)]
    pub source: Option<String>,
}

fn source() -> Object {
    contract::or_null(contract::source())
}

fn tenant_list() -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(contract::id())
        .build()
}

#[utoipa::path(post, path = "/v1/anomalies/scan", tag = "forecasts",
    request_body = ScanRequest,
    responses((status = 200, description = "`{anomalies: [{tenant, meter, window_start, window_end, observed, expected, score, direction}], series_scanned}`", body = Object),
        (status = 422, description = "[from, to) spans less than 1 or more than 744 hours, or names a day that does not exist", body = crate::error::ErrorBody),
        crate::responses::Refusals),
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
        return Err(ApiError::Unprocessable {
            code: "invalid_range",
            message: format!("[from, to) must span 1 hour to {MAX_SCAN_HOURS} hours"),
        });
    }
    if let Some(tenants) = &req.tenants {
        for t in tenants {
            checks::check_id("tenant", t)?;
        }
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
