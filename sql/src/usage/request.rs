//! The parameters of `GET /v1/usage`, checked into a [`UsageQuery`].

use chrono::{DateTime, Timelike, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::error::QueryError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meter {
    /// Input + output tokens (cached input is part of input, reasoning part
    /// of output, as providers report them).
    Tokens,
    InputTokens,
    OutputTokens,
    CostUsd,
    Requests,
    CapsuleRuns,
    WorkflowSteps,
}

impl Meter {
    const ALL: [(&'static str, Meter); 7] = [
        ("tokens", Meter::Tokens),
        ("input_tokens", Meter::InputTokens),
        ("output_tokens", Meter::OutputTokens),
        ("cost_usd", Meter::CostUsd),
        ("requests", Meter::Requests),
        ("capsule_runs", Meter::CapsuleRuns),
        ("workflow_steps", Meter::WorkflowSteps),
    ];

    /// A meter's name, or a 400 naming the known ones.
    pub fn parse(text: &str) -> Result<Meter, QueryError> {
        Meter::ALL
            .iter()
            .find(|(n, _)| *n == text)
            .map(|(_, m)| *m)
            .ok_or_else(|| {
                bad(
                    "invalid_meter",
                    format!("unknown meter {text:?}; use one of {}", names(&Meter::ALL)),
                )
            })
    }

    pub fn name(self) -> &'static str {
        Meter::ALL
            .iter()
            .find(|(_, m)| *m == self)
            .map_or("", |(n, _)| n)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Window {
    Minute,
    Hour,
    Day,
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Dim {
    Tenant,
    User,
    Model,
    Provider,
    Capsule,
}

impl Dim {
    const ALL: [(&'static str, Dim); 5] = [
        ("tenant", Dim::Tenant),
        ("user", Dim::User),
        ("model", Dim::Model),
        ("provider", Dim::Provider),
        ("capsule", Dim::Capsule),
    ];

    pub fn name(self) -> &'static str {
        Dim::ALL
            .iter()
            .find(|(_, d)| *d == self)
            .map_or("", |(n, _)| n)
    }
}

/// The query string as sent.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageParams {
    /// tokens, input_tokens, output_tokens, cost_usd, requests, capsule_runs, workflow_steps
    pub meter: Option<String>,
    /// RFC 3339, a whole minute
    pub from: Option<String>,
    /// RFC 3339, a whole minute (exclusive)
    pub to: Option<String>,
    /// minute, hour (default), day, month
    pub window: Option<String>,
    /// IANA time zone of day and month windows (default UTC)
    pub tz: Option<String>,
    /// Comma-separated: tenant, user, model, provider, capsule
    pub group_by: Option<String>,
    /// Required for an admin token; a tenant token sees its own tenant only
    pub tenant: Option<String>,
    /// `clickhouse` or `lake`; default: ClickHouse when configured.
    pub source: Option<String>,
}

/// A checked usage question.
#[derive(Debug, Clone)]
pub struct UsageQuery {
    pub meter: Meter,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub window: Window,
    pub tz: Tz,
    pub group_by: Vec<Dim>,
}

/// Most windows one answer may span (a year of hours is 8,784).
pub const MAX_WINDOWS: i64 = 50_000;

/// The names of a `(name, value)` table, for error messages.
fn names<T>(list: &[(&str, T)]) -> String {
    list.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
}

fn bad(code: &'static str, message: String) -> QueryError {
    QueryError::bad_param(code, message)
}

impl UsageQuery {
    pub fn parse(params: &UsageParams) -> Result<UsageQuery, QueryError> {
        let meter_text = params.meter.as_deref().ok_or_else(|| {
            bad(
                "invalid_meter",
                format!("name a meter: meter= one of {}", names(&Meter::ALL)),
            )
        })?;
        let meter = Meter::parse(meter_text)?;
        let from = parse_time("from", params.from.as_deref())?;
        let to = parse_time("to", params.to.as_deref())?;
        if from >= to {
            return Err(bad(
                "invalid_range",
                format!("from ({from}) must be before to ({to})"),
            ));
        }
        let window = match params.window.as_deref().unwrap_or("hour") {
            "minute" => Window::Minute,
            "hour" => Window::Hour,
            "day" => Window::Day,
            "month" => Window::Month,
            other => {
                return Err(bad(
                    "invalid_window",
                    format!("unknown window {other:?}; use minute, hour, day or month"),
                ));
            }
        };
        let approx_secs = match window {
            Window::Minute => 60,
            Window::Hour => 3_600,
            Window::Day => 86_400,
            Window::Month => 28 * 86_400,
        };
        if (to - from).num_seconds() / approx_secs > MAX_WINDOWS {
            return Err(bad(
                "too_many_windows",
                format!(
                    "[from, to) spans more than {MAX_WINDOWS} {window:?} windows; use a larger window or a shorter range"
                ),
            ));
        }
        let tz_text = params.tz.as_deref().unwrap_or("UTC");
        let tz: Tz = tz_text.parse().map_err(|_| {
            bad(
                "invalid_tz",
                format!("unknown time zone {tz_text:?}; use an IANA name such as Europe/Berlin"),
            )
        })?;
        let mut group_by = Vec::new();
        for name in params
            .group_by
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let dim = Dim::ALL
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, d)| *d)
                .ok_or_else(|| {
                    bad(
                        "invalid_group_by",
                        format!("cannot group by {name:?}; use any of {}", names(&Dim::ALL)),
                    )
                })?;
            if !group_by.contains(&dim) {
                group_by.push(dim);
            }
        }
        Ok(UsageQuery {
            meter,
            from,
            to,
            window,
            tz,
            group_by,
        })
    }
}

/// RFC 3339, on a whole minute: usage is counted per minute, so a bound
/// inside a minute could not be answered exactly.
fn parse_time(name: &str, text: Option<&str>) -> Result<DateTime<Utc>, QueryError> {
    let text = text.ok_or_else(|| {
        bad(
            "invalid_range",
            format!("{name}= is required (RFC 3339, e.g. 2026-12-01T00:00:00Z)"),
        )
    })?;
    let time = DateTime::parse_from_rfc3339(text)
        .map_err(|e| {
            bad(
                "invalid_range",
                format!("{name}={text:?} is not an RFC 3339 time ({e}); e.g. 2026-12-01T00:00:00Z"),
            )
        })?
        .with_timezone(&Utc);
    if time.second() != 0 || time.nanosecond() != 0 {
        return Err(bad(
            "invalid_range",
            format!("{name}={text:?} must be a whole minute: usage is counted per minute"),
        ));
    }
    Ok(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> UsageParams {
        let get = |k: &str| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        };
        UsageParams {
            meter: get("meter"),
            from: get("from"),
            to: get("to"),
            window: get("window"),
            tz: get("tz"),
            group_by: get("group_by"),
            tenant: get("tenant"),
            source: get("source"),
        }
    }

    const RANGE: [(&str, &str); 2] = [
        ("from", "2026-11-01T00:00:00Z"),
        ("to", "2026-12-01T00:00:00Z"),
    ];

    #[test]
    fn a_full_query_parses() {
        let mut p = RANGE.to_vec();
        p.extend([
            ("meter", "cost_usd"),
            ("window", "day"),
            ("tz", "Asia/Kolkata"),
            ("group_by", "model, tenant,model"),
        ]);
        let q = UsageQuery::parse(&params(&p)).unwrap();
        assert_eq!(q.meter, Meter::CostUsd);
        assert_eq!(q.window, Window::Day);
        assert_eq!(q.group_by, vec![Dim::Model, Dim::Tenant]);
        assert_eq!(q.tz, chrono_tz::Asia::Kolkata);
    }

    #[test]
    fn each_mistake_is_named() {
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[("meter", "watts")], "invalid_meter"),
            (
                &[
                    ("meter", "tokens"),
                    ("from", "2026-12-01T00:00:00Z"),
                    ("to", "2026-11-01T00:00:00Z"),
                ],
                "invalid_range",
            ),
            (
                &[
                    ("meter", "tokens"),
                    ("from", "2026-11-01T00:00:30Z"),
                    ("to", "2026-12-01T00:00:00Z"),
                ],
                "invalid_range",
            ),
            (
                &[
                    ("meter", "tokens"),
                    ("from", "yesterday"),
                    ("to", "2026-12-01T00:00:00Z"),
                ],
                "invalid_range",
            ),
            (&[("meter", "tokens"), ("window", "week")], "invalid_window"),
            (&[("meter", "tokens"), ("tz", "Mars/Olympus")], "invalid_tz"),
            (
                &[("meter", "tokens"), ("group_by", "colour")],
                "invalid_group_by",
            ),
            (
                &[
                    ("meter", "tokens"),
                    ("window", "minute"),
                    ("from", "2020-01-01T00:00:00Z"),
                ],
                "too_many_windows",
            ),
        ];
        for (pairs, code) in cases {
            let mut p = RANGE.to_vec();
            p.retain(|(k, _)| !pairs.iter().any(|(n, _)| n == k));
            p.extend_from_slice(pairs);
            match UsageQuery::parse(&params(&p)) {
                Err(QueryError::BadParam { code: got, .. }) => assert_eq!(got, *code, "{pairs:?}"),
                other => panic!("{pairs:?}: expected {code}, got {other:?}"),
            }
        }
    }
}
