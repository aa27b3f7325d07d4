//! The parameters of `GET /v1/usage`, checked into a [`UsageQuery`].

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;
use somaflow_pipeline::rules::{MINUTE, Rule};

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
    pub const ALL: [(&'static str, Meter); 7] = [
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

impl Window {
    pub const ALL: [(&'static str, Window); 4] = [
        ("minute", Window::Minute),
        ("hour", Window::Hour),
        ("day", Window::Day),
        ("month", Window::Month),
    ];
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
    pub const ALL: [(&'static str, Dim); 5] = [
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

/// `group_by`: dimensions, comma-separated (a space after a comma is
/// allowed); empty groups nothing.
pub static GROUP_BY: Rule = Rule::new(
    "^((tenant|user|model|provider|capsule)(, ?(tenant|user|model|provider|capsule))*)?$",
    "comma-separated dimensions: tenant, user, model, provider, capsule",
);

/// The query string as sent (documented in [`crate::contract`]).
#[derive(Debug, Default, Deserialize)]
pub struct UsageParams {
    pub meter: Option<String>,
    pub from: Option<String>,
    pub to: Option<String>,
    pub window: Option<String>,
    pub tz: Option<String>,
    pub group_by: Option<String>,
    pub tenant: Option<String>,
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
        let window_text = params.window.as_deref().unwrap_or("hour");
        let window = Window::ALL
            .iter()
            .find(|(n, _)| *n == window_text)
            .map(|(_, w)| *w)
            .ok_or_else(|| {
                bad(
                    "invalid_window",
                    format!("unknown window {window_text:?}; use minute, hour, day or month"),
                )
            })?;
        let approx_secs = match window {
            Window::Minute => 60,
            Window::Hour => 3_600,
            Window::Day => 86_400,
            Window::Month => 28 * 86_400,
        };
        let tz_text = params.tz.as_deref().unwrap_or("UTC");
        let tz: Tz = tz_text.parse().map_err(|_| {
            bad(
                "invalid_tz",
                format!("unknown time zone {tz_text:?}; use an IANA name such as Europe/Berlin"),
            )
        })?;
        let group_by = parse_group_by(params.group_by.as_deref().unwrap_or(""))?;
        if from >= to {
            return Err(QueryError::unprocessable(
                "invalid_range",
                format!("from ({from}) must be before to ({to})"),
            ));
        }
        if (to - from).num_seconds() / approx_secs > MAX_WINDOWS {
            return Err(QueryError::unprocessable(
                "too_many_windows",
                format!(
                    "[from, to) spans more than {MAX_WINDOWS} {window:?} windows; use a larger window or a shorter range"
                ),
            ));
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

/// The dimensions of [`GROUP_BY`], each once, in the order named.
fn parse_group_by(text: &str) -> Result<Vec<Dim>, QueryError> {
    if !GROUP_BY.matches(text) {
        return Err(bad(
            "invalid_group_by",
            format!(
                "cannot group by {text:?}; use any of {}, comma-separated",
                names(&Dim::ALL)
            ),
        ));
    }
    let mut group_by = Vec::new();
    for name in text.split(',').map(|n| n.trim_start_matches(' ')) {
        if let Some((_, dim)) = Dim::ALL.iter().find(|(n, _)| *n == name)
            && !group_by.contains(dim)
        {
            group_by.push(*dim);
        }
    }
    Ok(group_by)
}

/// RFC 3339, on a whole minute ([`MINUTE`]): usage is counted per minute,
/// so a bound inside a minute could not be answered exactly.
fn parse_time(name: &str, text: Option<&str>) -> Result<DateTime<Utc>, QueryError> {
    let text = text.ok_or_else(|| {
        bad(
            "invalid_range",
            format!("{name}= is required (RFC 3339, e.g. 2026-12-01T00:00:00Z)"),
        )
    })?;
    crate::checks::parse_time(name, text, &MINUTE)
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
    fn each_mistake_is_named_malformed_400_unanswerable_422() {
        const BAD: bool = false;
        const UNANSWERABLE: bool = true;
        type Case<'a> = (&'a [(&'a str, &'a str)], &'a str, bool);
        let cases: &[Case] = &[
            (&[("meter", "watts")], "invalid_meter", BAD),
            (
                &[
                    ("meter", "tokens"),
                    ("from", "2026-12-01T00:00:00Z"),
                    ("to", "2026-11-01T00:00:00Z"),
                ],
                "invalid_range",
                UNANSWERABLE,
            ),
            (
                &[("meter", "tokens"), ("from", "2026-11-01T00:00:30Z")],
                "invalid_time",
                BAD,
            ),
            (
                &[("meter", "tokens"), ("from", "yesterday")],
                "invalid_time",
                BAD,
            ),
            (
                &[("meter", "tokens"), ("from", "2026-02-30T00:00:00Z")],
                "invalid_time",
                UNANSWERABLE,
            ),
            (
                &[("meter", "tokens"), ("window", "week")],
                "invalid_window",
                BAD,
            ),
            (
                &[("meter", "tokens"), ("tz", "Mars/Olympus")],
                "invalid_tz",
                BAD,
            ),
            (
                &[("meter", "tokens"), ("group_by", "colour")],
                "invalid_group_by",
                BAD,
            ),
            (
                &[("meter", "tokens"), ("group_by", "model,,user")],
                "invalid_group_by",
                BAD,
            ),
            (
                &[
                    ("meter", "tokens"),
                    ("window", "minute"),
                    ("from", "2020-01-01T00:00:00Z"),
                ],
                "too_many_windows",
                UNANSWERABLE,
            ),
        ];
        for (pairs, code, unanswerable) in cases {
            let mut p = RANGE.to_vec();
            p.retain(|(k, _)| !pairs.iter().any(|(n, _)| n == k));
            p.extend_from_slice(pairs);
            match UsageQuery::parse(&params(&p)) {
                Err(QueryError::BadParam { code: got, .. }) if !unanswerable => {
                    assert_eq!(got, *code, "{pairs:?}")
                }
                Err(QueryError::Unprocessable { code: got, .. }) if *unanswerable => {
                    assert_eq!(got, *code, "{pairs:?}")
                }
                other => panic!("{pairs:?}: expected {code}, got {other:?}"),
            }
        }
    }
}
