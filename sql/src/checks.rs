//! Checks of single values by the rules `/openapi.json` states
//! ([`somaflow_pipeline::rules`]): a value that breaks its rule is a 400
//! ([`QueryError::BadParam`]); one that follows it but names nothing real
//! (2026-02-30) is a 422 ([`QueryError::Unprocessable`]).

use chrono::{DateTime, NaiveDate, Utc};
use somaflow_pipeline::rules::{self, Rule};

use crate::error::QueryError;

/// `text` by a time `rule` ([`rules::TIME`], [`rules::MINUTE`],
/// [`rules::HOUR`]): 400 when it breaks the rule, 422 when it names a day
/// that does not exist (2026-02-30: the rule cannot count days).
pub fn parse_time(name: &str, text: &str, rule: &Rule) -> Result<DateTime<Utc>, QueryError> {
    if !rule.matches(text) {
        return Err(QueryError::bad_param(
            "invalid_time",
            format!("{name}={text:?} is not {}", rule.words),
        ));
    }
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| QueryError::unprocessable("invalid_time", format!("{name}={text:?}: {e}")))
}

/// `YYYY-MM` ([`rules::MONTH`]), as its first day.
pub fn parse_month(text: &str) -> Result<NaiveDate, QueryError> {
    let bad = || {
        QueryError::bad_param(
            "invalid_month",
            format!("month {text:?} is not {}", rules::MONTH.words),
        )
    };
    if !rules::MONTH.matches(text) {
        return Err(bad());
    }
    NaiveDate::parse_from_str(&format!("{text}-01"), "%Y-%m-%d").map_err(|_| bad())
}

/// A tenant id named in a request ([`rules::ID`]).
pub fn check_id(what: &'static str, text: &str) -> Result<(), QueryError> {
    if rules::ID.matches(text) {
        return Ok(());
    }
    Err(QueryError::bad_param(
        match what {
            "tenant" => "invalid_tenant",
            "capsule" => "invalid_capsule",
            _ => "invalid_id",
        },
        format!("{what} id {text:?} must be {}", rules::ID.words),
    ))
}
