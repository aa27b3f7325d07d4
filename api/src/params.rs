//! Parameters several routes share, checked once: tenant ids, months and
//! time ranges. Each mistake is a 400 that names the rule it broke.

use chrono::{DateTime, Duration, NaiveDate, Utc};

use crate::error::ApiError;

/// Longest tenant id accepted (the ids themselves are not checked further).
const MAX_TENANT_LEN: usize = 256;

/// Days a range covers when the request gives no `from`.
const DEFAULT_RANGE_DAYS: i64 = 30;

/// Whether `tenant` is a well-formed id (the caller's right to it is
/// checked before, from its token).
pub fn visible_tenant(tenant: &str) -> Result<(), ApiError> {
    if tenant.is_empty()
        || tenant.len() > MAX_TENANT_LEN
        || tenant.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::bad_request(
            "invalid_tenant",
            format!("tenant id {tenant:?} must be 1 to {MAX_TENANT_LEN} bytes without whitespace"),
        ));
    }
    Ok(())
}

/// `YYYY-MM`, a real month.
pub fn parse_month(text: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(
            "invalid_month",
            format!("month {text:?} is not a month; use YYYY-MM, e.g. 2026-12"),
        )
    };
    let b = text.as_bytes();
    let digits = |r: std::ops::Range<usize>| b[r].iter().all(u8::is_ascii_digit);
    if b.len() != 7 || b[4] != b'-' || !digits(0..4) || !digits(5..7) {
        return Err(bad());
    }
    let year: i32 = text[..4].parse().map_err(|_| bad())?;
    let month: u32 = text[5..].parse().map_err(|_| bad())?;
    NaiveDate::from_ymd_opt(year, month, 1).ok_or_else(bad)?;
    Ok(text.to_string())
}

/// `[from, to)` from RFC 3339 bounds; default the last 30 days.
pub fn parse_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), ApiError> {
    let parse = |name: &str, text: &str| {
        DateTime::parse_from_rfc3339(text)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|e| {
                ApiError::bad_request(
                    "invalid_range",
                    format!("{name}={text:?} is not RFC 3339 ({e})"),
                )
            })
    };
    let to = match to {
        Some(t) => parse("to", t)?,
        None => Utc::now(),
    };
    let from = match from {
        Some(f) => parse("from", f)?,
        None => to - Duration::days(DEFAULT_RANGE_DAYS),
    };
    if from >= to {
        return Err(ApiError::bad_request(
            "invalid_range",
            "from must be before to",
        ));
    }
    Ok((from, to))
}
