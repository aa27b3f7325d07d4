//! Every [`SumQuery`] the read endpoints send, for one range, built by the
//! same functions the endpoints call: usage (each meter, grouping and
//! window), the forecasts' hourly series, a ledger's five sums, KAMACHIQ
//! steps and spend, the capsule board. A test runs them all against a store
//! (`tests/it/chdb.rs` sends their ClickHouse SQL to ClickHouse 26 in chdb
//! and compares the answers with the lake's).

use chrono::{DateTime, SecondsFormat, Utc};

use crate::store::SumQuery;
use crate::usage::plan::{UsagePlan, hourly_by_tenant};
use crate::usage::request::{Meter, UsageParams, UsageQuery};
use crate::{kamachiq, ledger, marketplace};

/// Groupings usage is asked for (`user` reads the conversations).
const GROUPINGS: [&str; 6] = [
    "",
    "model",
    "tenant,provider",
    "capsule",
    "user,model",
    "model,capsule",
];
/// Windows and zones: hours and days in UTC (the rollups), minutes, and a
/// half-hour zone (15-minute buckets).
const WINDOWS: [(&str, &str); 4] = [
    ("hour", "UTC"),
    ("day", "UTC"),
    ("minute", "UTC"),
    ("day", "Asia/Kolkata"),
];

/// `(name, query)` for every question the read endpoints ask over `[from, to)`.
pub fn catalogue(from: DateTime<Utc>, to: DateTime<Utc>) -> Vec<(String, SumQuery)> {
    let mut all = Vec::new();
    let text = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
    for (meter, _) in Meter::ALL {
        for group_by in GROUPINGS {
            for (window, tz) in WINDOWS {
                let params = UsageParams {
                    meter: Some(meter.to_string()),
                    from: Some(text(from)),
                    to: Some(text(to)),
                    window: Some(window.to_string()),
                    tz: Some(tz.to_string()),
                    group_by: Some(group_by.to_string()),
                    ..UsageParams::default()
                };
                // Combinations the endpoint refuses (capsule runs by user,
                // too many minutes) are not asked.
                let Ok(query) = UsageQuery::parse(&params) else {
                    continue;
                };
                let Ok(plan) = UsagePlan::for_query(&query) else {
                    continue;
                };
                let name = format!("usage {meter} by [{group_by}] per {window} {tz}");
                all.push((name, plan.sum_query(&query)));
            }
        }
    }
    for (meter, value) in Meter::ALL {
        all.push((
            format!("forecast series {meter}"),
            hourly_by_tenant(value, from, to),
        ));
    }
    let ledger = [
        ("ledger rated", ledger::queries::rated(from, to)),
        ("ledger reported", ledger::queries::reported(from, to)),
        (
            "ledger capsule runs",
            ledger::queries::capsule_runs(from, to),
        ),
        ("ledger marketplace", ledger::queries::marketplace(from, to)),
        ("ledger billing", ledger::queries::billing(from, to)),
        ("kamachiq steps", kamachiq::steps(from, to)),
        ("kamachiq spend", kamachiq::spend(from, to)),
        ("capsules runs", marketplace::runs_query(from, to)),
        ("capsules revenue", marketplace::revenue_query(from, to)),
    ];
    all.extend(ledger.into_iter().map(|(n, q)| (n.to_string(), q)));
    all
}
