//! Answering a [`SumQuery`] from the rollups. A query that states its
//! [`RollupForm`] (the same groups and sums over the columns of a rollup
//! family: `rollup_1h` / `rollup_1d` for usage, `activity_1h` /
//! `activity_1d` for capsule runs, marketplace and billing) is cut into the
//! coarsest pieces its range and buckets allow: whole days from the daily
//! rollup, whole hours around them from the hourly one, and the minutes at
//! either edge from the table it names. Every value is a
//! sum, so the pieces' rows add up to the answer the table alone gives
//! ([`super::merge`]); a day of a month's ledger is one row per group
//! instead of one per conversation.

use chrono::{DateTime, Utc};
use somaflow_pipeline::events::schema::{
    ACTIVITY_ROLLUPS, RollupGrains, USAGE_ROLLUPS, USAGE_TABLE,
};

use super::{Sum, SumQuery};

/// The question of a [`SumQuery`] over a rollup family's columns: its
/// groups (answering the same texts) and sums, in the same order, and the
/// row condition that picks the same rows.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RollupForm {
    /// The rollups it reads, finest first.
    pub family: &'static RollupGrains,
    pub groups: Vec<&'static str>,
    pub sums: Vec<Sum>,
    pub condition: Option<&'static str>,
}

impl RollupForm {
    /// The rollup form of a `usage_1m` question: the rollups have every
    /// column of `usage_1m` but the capsule, under the same names, so the
    /// question is the same unless it names `capsule_id`.
    pub fn for_usage(query: &SumQuery) -> Option<RollupForm> {
        let names_capsule = query
            .groups
            .iter()
            .chain(query.sums.iter().map(|s| &s.expr))
            .chain(query.condition.iter())
            .any(|expr| expr.contains("capsule_id"));
        (query.table == USAGE_TABLE && !names_capsule).then(|| RollupForm {
            family: &USAGE_ROLLUPS,
            groups: query.groups.clone(),
            sums: query.sums.clone(),
            condition: query.condition,
        })
    }

    /// The rollup form of a question over capsule runs, marketplace
    /// transactions or billing events: the activity rollups hold the columns
    /// those questions group and sum under the same names, with `events`
    /// for a row count (`1`). `condition` picks the same rows: it names the
    /// `source` table, and whatever else the query's own condition says.
    pub fn for_activity(query: &SumQuery, condition: &'static str) -> RollupForm {
        RollupForm {
            family: &ACTIVITY_ROLLUPS,
            groups: query.groups.clone(),
            sums: query
                .sums
                .iter()
                .map(|sum| match sum.expr {
                    "1" => Sum::int("events"),
                    _ => *sum,
                })
                .collect(),
            condition: Some(condition),
        }
    }
}

/// The rollups' time column.
const ROLLUP_TIME: &str = "window_start";

/// `query` as the pieces to sum: itself when it has no rollup form or no
/// whole hour of its range can come from a rollup.
pub fn pieces(query: &SumQuery) -> Vec<SumQuery> {
    let Some(form) = &query.rollup else {
        return vec![query.clone()];
    };
    // Coarsest first: a rollup answers a bucket only if it never cuts one.
    let grains: Vec<(&'static str, i64)> = form
        .family
        .iter()
        .rev()
        .filter(|(_, grain)| query.bucket_secs.is_none_or(|b| b % grain == 0))
        .copied()
        .collect();
    let mut out = Vec::new();
    cut(query, form, &grains, query.from, query.to, &mut out);
    out
}

/// Appends the pieces of `[from, to)` using `grains` (coarsest first), the
/// table itself where none fits.
fn cut(
    query: &SumQuery,
    form: &RollupForm,
    grains: &[(&'static str, i64)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    out: &mut Vec<SumQuery>,
) {
    if from >= to {
        return;
    }
    let Some(((table, grain), finer)) = grains.split_first() else {
        out.push(SumQuery {
            from,
            to,
            rollup: None,
            ..query.clone()
        });
        return;
    };
    let (start, end) = (from.timestamp(), to.timestamp());
    // The first whole grain starts at or after `from`, the last ends at or
    // before `to` (a sub-second `to` still ends after its whole second).
    let floor = start.div_euclid(*grain) * grain;
    let on_edge = floor == start && from.timestamp_subsec_nanos() == 0;
    let first = if on_edge { floor } else { floor + grain };
    let last = end.div_euclid(*grain) * grain;
    let (Some(whole_from), Some(whole_to)) = (
        DateTime::from_timestamp(first, 0),
        DateTime::from_timestamp(last, 0),
    ) else {
        cut(query, form, finer, from, to, out);
        return;
    };
    if whole_from >= whole_to {
        cut(query, form, finer, from, to, out);
        return;
    }
    cut(query, form, finer, from, whole_from, out);
    out.push(SumQuery {
        table,
        time_column: ROLLUP_TIME,
        from: whole_from,
        to: whole_to,
        bucket_secs: query.bucket_secs,
        groups: form.groups.clone(),
        sums: form.sums.clone(),
        condition: form.condition,
        rollup: None,
    });
    cut(query, form, finer, whole_to, to, out);
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn usage(from: DateTime<Utc>, to: DateTime<Utc>, bucket_secs: Option<i64>) -> SumQuery {
        let mut query = SumQuery {
            table: USAGE_TABLE,
            time_column: "window_start",
            from,
            to,
            bucket_secs,
            groups: vec!["model"],
            sums: vec![Sum::int("requests")],
            condition: None,
            rollup: None,
        };
        query.rollup = RollupForm::for_usage(&query);
        query
    }

    fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0)
            .unwrap()
    }

    fn ranges(pieces: &[SumQuery]) -> Vec<(&str, DateTime<Utc>, DateTime<Utc>)> {
        pieces.iter().map(|p| (p.table, p.from, p.to)).collect()
    }

    #[test]
    fn a_range_is_read_from_days_then_hours_then_minutes_at_its_edges() {
        let pieces = pieces(&usage(at(3, 7, 30), at(6, 2, 15), None));
        assert_eq!(
            ranges(&pieces),
            [
                ("usage_1m", at(3, 7, 30), at(3, 8, 0)),
                ("rollup_1h", at(3, 8, 0), at(4, 0, 0)),
                ("rollup_1d", at(4, 0, 0), at(6, 0, 0)),
                ("rollup_1h", at(6, 0, 0), at(6, 2, 0)),
                ("usage_1m", at(6, 2, 0), at(6, 2, 15)),
            ]
        );
        // The pieces tile the range: each starts where the last ended.
        for pair in pieces.windows(2) {
            assert_eq!(pair[0].to, pair[1].from);
        }
        assert!(pieces.iter().all(|p| p.rollup.is_none()));
        assert_eq!(pieces[1].groups, ["model"]);
    }

    #[test]
    fn buckets_finer_than_a_grain_or_a_named_capsule_keep_the_table() {
        // Hourly buckets: no day rollup, whole hours from the hourly one.
        let hourly = pieces(&usage(at(3, 0, 0), at(5, 0, 0), Some(3_600)));
        assert_eq!(ranges(&hourly), [("rollup_1h", at(3, 0, 0), at(5, 0, 0))]);
        // Daily buckets over whole days: one piece.
        let daily = pieces(&usage(at(3, 0, 0), at(5, 0, 0), Some(86_400)));
        assert_eq!(ranges(&daily), [("rollup_1d", at(3, 0, 0), at(5, 0, 0))]);
        // 15-minute buckets cut hours: the table alone.
        let quarter = pieces(&usage(at(3, 0, 0), at(5, 0, 0), Some(900)));
        assert_eq!(ranges(&quarter), [("usage_1m", at(3, 0, 0), at(5, 0, 0))]);
        // Less than an hour: the table alone.
        let short = pieces(&usage(at(3, 0, 10), at(3, 0, 50), None));
        assert_eq!(ranges(&short), [("usage_1m", at(3, 0, 10), at(3, 0, 50))]);
        let mut by_capsule = usage(at(3, 0, 0), at(5, 0, 0), None);
        by_capsule.groups = vec!["capsule_id"];
        assert_eq!(RollupForm::for_usage(&by_capsule), None);
    }
}
