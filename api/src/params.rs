//! Parameters several routes share, checked once by the rules
//! `/openapi.json` states ([`somaflow_sql::contract`]): a malformed value is
//! a 400 naming the rule, a well-formed range that cannot be answered a 422.

use axum::extract::Path;
use axum::extract::rejection::PathRejection;
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;
use somaflow_pipeline::rules::Rule;
use somaflow_sql::{checks, contract};
use utoipa::IntoParams;
use utoipa::openapi::path::{Parameter, ParameterIn};

use crate::error::ApiError;

/// Days a range covers when the request gives no `from`.
const DEFAULT_RANGE_DAYS: i64 = 30;

/// `YYYY-MM`, a real month.
pub fn parse_month(text: &str) -> Result<String, ApiError> {
    checks::parse_month(text)?;
    Ok(text.to_string())
}

/// `YYYY-MM` or, without one, the current month (UTC).
pub fn month_or_current(text: Option<&str>) -> Result<String, ApiError> {
    match text {
        Some(m) => parse_month(m),
        None => Ok(Utc::now().format("%Y-%m").to_string()),
    }
}

/// `[from, to)` of times following `rule`; default the last 30 days.
pub fn parse_range(
    from: Option<&str>,
    to: Option<&str>,
    rule: &Rule,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let to = match to {
        Some(t) => checks::parse_time("to", t, rule)?,
        None => Utc::now(),
    };
    let from = match from {
        Some(f) => checks::parse_time("from", f, rule)?,
        None => to - Duration::days(DEFAULT_RANGE_DAYS),
    };
    if from >= to {
        return Err(ApiError::Unprocessable {
            code: "invalid_range",
            message: "from must be before to".into(),
        });
    }
    Ok((from, to))
}

/// `{tenant}` in a path: a tenant id ([`somaflow_pipeline::rules::ID`]).
#[derive(Debug, Deserialize)]
pub struct TenantPath {
    pub tenant: String,
}

impl IntoParams for TenantPath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![contract::path("tenant", "A tenant id", contract::id())]
    }
}

impl TenantPath {
    /// The tenant, checked; a path that does not read is a 400.
    pub fn read(path: Result<Path<TenantPath>, PathRejection>) -> Result<String, ApiError> {
        let Path(TenantPath { tenant }) =
            path.map_err(|e| ApiError::bad_request("invalid_tenant", e.body_text()))?;
        checks::check_id("tenant", &tenant)?;
        Ok(tenant)
    }
}

/// `{capsule}` in a path: a capsule id ([`somaflow_pipeline::rules::ID`]).
#[derive(Debug, Deserialize)]
pub struct CapsulePath {
    pub capsule: String,
}

impl IntoParams for CapsulePath {
    fn into_params(_: impl Fn() -> Option<ParameterIn>) -> Vec<Parameter> {
        vec![contract::path("capsule", "A capsule id", contract::id())]
    }
}

impl CapsulePath {
    pub fn read(path: Result<Path<CapsulePath>, PathRejection>) -> Result<String, ApiError> {
        let Path(CapsulePath { capsule }) =
            path.map_err(|e| ApiError::bad_request("invalid_capsule", e.body_text()))?;
        checks::check_id("capsule", &capsule)?;
        Ok(capsule)
    }
}

/// A JSON number that is a whole non-negative number: `42` or `42.0`
/// (JSON Schema's `integer` counts both).
pub fn whole_number(n: &serde_json::Number) -> Option<u64> {
    if let Some(v) = n.as_u64() {
        return Some(v);
    }
    // Below 2^53 every whole f64 is exact.
    let f = n.as_f64()?;
    (f.fract() == 0.0 && (0.0..9_007_199_254_740_992.0).contains(&f)).then_some(f as u64)
}
