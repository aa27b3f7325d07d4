//! Text rules that both the server checks and `/openapi.json` states: each
//! is one anchored regular expression, read the same by ECMA-262 (the
//! OpenAPI `pattern`), Python (what schemathesis and most clients check
//! with) and the `regex` crate (the server's check). They use only classes,
//! groups, alternatives and counted repeats, never `\s` or `\d`, whose
//! meaning differs between those three. One pattern, so the contract and
//! the check cannot drift apart.
//!
//! Years are 1970–2199: every time the engine keeps is nanoseconds since
//! 1970 in an `i64`, which ends in 2262.

use std::sync::OnceLock;

use regex::Regex;

/// A named text rule: its pattern and how to say it in an error.
pub struct Rule {
    /// Anchored (`^…$`) ECMA-262 / Python / Rust pattern.
    pub pattern: &'static str,
    /// What a value must look like, for error messages.
    pub words: &'static str,
    compiled: OnceLock<Regex>,
}

impl Rule {
    pub const fn new(pattern: &'static str, words: &'static str) -> Rule {
        Rule {
            pattern,
            words,
            compiled: OnceLock::new(),
        }
    }

    /// Whether `text` follows the rule.
    pub fn matches(&self, text: &str) -> bool {
        self.compiled
            .get_or_init(|| {
                // The patterns are constants, each compiled by the tests
                // below: a failure here is a bug, never input.
                Regex::new(self.pattern).expect("a rule's pattern compiles (tested)")
            })
            .is_match(text)
    }
}

/// Characters an id may not hold: ASCII and Latin-1 controls, every
/// Unicode space, the byte-order mark, and `,` and `"` (ids are columns
/// of the metadata CSV files).
macro_rules! id_class {
    () => {
        r#"[^\x00-\x20\x22\x2c\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"#
    };
}

/// A tenant, capsule or author id: 1 to 128 characters without whitespace,
/// controls, commas or quotes.
pub static ID: Rule = Rule::new(
    concat!("^", id_class!(), "{1,128}$"),
    "1 to 128 characters without whitespace, control characters, commas or quotes",
);

/// A USD amount the API takes: a plain decimal ≥ 0, at most 9 places.
pub static AMOUNT: Rule = Rule::new(
    r"^[0-9]{1,9}(\.[0-9]{1,9})?$",
    "a decimal ≥ 0 below 1,000,000,000 with at most 9 places, e.g. 250.00",
);

macro_rules! year {
    () => {
        "(19[7-9][0-9]|2[01][0-9][0-9])"
    };
}
macro_rules! date {
    () => {
        concat!(
            year!(),
            "-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3])"
        )
    };
}

/// `YYYY-MM`.
pub static MONTH: Rule = Rule::new(
    concat!("^", year!(), "-(0[1-9]|1[0-2])$"),
    "a month YYYY-MM between 1970-01 and 2199-12, e.g. 2026-12",
);

/// An RFC 3339 instant (`T` and `Z` upper case).
pub static TIME: Rule = Rule::new(
    concat!(
        "^",
        date!(),
        r":[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    ),
    "an RFC 3339 time between 1970 and 2199, e.g. 2026-12-01T09:30:00Z",
);

/// An RFC 3339 instant on a whole minute.
pub static MINUTE: Rule = Rule::new(
    concat!(
        "^",
        date!(),
        r":[0-5][0-9]:00(\.0{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
    ),
    "an RFC 3339 time on a whole minute between 1970 and 2199, e.g. 2026-12-01T09:30:00Z",
);

/// An RFC 3339 instant on a whole hour of UTC (so its offset is whole hours).
pub static HOUR: Rule = Rule::new(
    concat!(
        "^",
        date!(),
        r":00:00(\.0{1,9})?(Z|[+-]([01][0-9]|2[0-3]):00)$"
    ),
    "an RFC 3339 time on a whole hour between 1970 and 2199, e.g. 2026-12-01T09:00:00Z",
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_rule_compiles_and_reads_as_documented() {
        let cases: &[(&Rule, &[&str], &[&str])] = &[
            (
                &ID,
                &["acme", "tenant-0001", "a/b", "ü*", &"x".repeat(128)],
                &[
                    "",
                    "a b",
                    "a,b",
                    "a\"b",
                    "a\u{3000}b",
                    "a\nb",
                    &"x".repeat(129),
                ],
            ),
            (
                &AMOUNT,
                &["0", "250.00", "999999999.999999999"],
                &[
                    "",
                    "-1",
                    "1e3",
                    ".5",
                    "5.",
                    "1000000000",
                    "1.0000000001",
                    " 5",
                ],
            ),
            (
                &MONTH,
                &["2026-12", "1970-01", "2199-12"],
                &["", "2026-13", "2026-00", "1969-12", "2200-01", "2026-1"],
            ),
            (
                &TIME,
                &[
                    "2026-12-01T09:30:15Z",
                    "2026-12-01T09:30:15.123456789+05:30",
                ],
                &[
                    "2026-12-01 09:30:15Z",
                    "2026-12-01T09:30:15z",
                    "2026-12-01T24:00:00Z",
                    "2026-12-01T09:30:60Z",
                ],
            ),
            (
                &MINUTE,
                &["2026-12-01T09:30:00Z", "2026-12-01T09:30:00.000-03:30"],
                &["2026-12-01T09:30:01Z", "2026-12-01T09:30:00.5Z"],
            ),
            (
                &HOUR,
                &["2026-12-01T09:00:00Z", "2026-12-01T09:00:00+02:00"],
                &["2026-12-01T09:30:00Z", "2026-12-01T09:00:00+05:30"],
            ),
        ];
        for (rule, good, bad) in cases {
            for g in *good {
                assert!(rule.matches(g), "{} should match {g:?}", rule.pattern);
            }
            for b in *bad {
                assert!(!rule.matches(b), "{} should refuse {b:?}", rule.pattern);
            }
        }
    }

    #[test]
    fn what_the_time_rules_pass_chrono_reads() {
        for text in [
            "2026-12-01T09:30:15Z",
            "2026-12-01T09:30:00.000-03:30",
            "2199-12-31T23:59:59.999999999+23:59",
            "1970-01-01T00:00:00-23:59",
        ] {
            assert!(TIME.matches(text));
            assert!(chrono::DateTime::parse_from_rfc3339(text).is_ok(), "{text}");
        }
    }
}
