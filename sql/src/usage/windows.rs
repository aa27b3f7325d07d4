//! Folding time buckets into the requested windows, in a time zone:
//! hours, days and months start at local midnight and last what the zone
//! says (23 or 25 hours across DST changes).

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;

use super::request::Window;
use crate::store::SumRow;

/// One window's sum for one group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowSum {
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub group: Vec<String>,
    pub value: i128,
}

/// The windows with usage, ordered by start then group: windows without
/// rows, or whose sum is zero (a capsule run has no tokens), are left out.
/// Each bucket's first sum is the meter.
pub fn fold(buckets: Vec<SumRow>, window: Window, tz: Tz) -> Vec<WindowSum> {
    let mut sums: BTreeMap<(i64, Vec<String>), (i64, i128)> = BTreeMap::new();
    for b in buckets {
        let Some(at) = DateTime::from_timestamp(b.bucket_secs, 0) else {
            continue;
        };
        let (start, end) = window_of(at, window, tz);
        let entry = sums
            .entry((start.timestamp(), b.group))
            .or_insert((end.timestamp(), 0));
        entry.1 += b.sums.first().copied().unwrap_or(0);
    }
    sums.into_iter()
        .filter(|(_, (_, value))| *value != 0)
        .filter_map(|((start, group), (end, value))| {
            Some(WindowSum {
                window_start: DateTime::from_timestamp(start, 0)?,
                window_end: DateTime::from_timestamp(end, 0)?,
                group,
                value,
            })
        })
        .collect()
}

/// The `[start, end)` of the window holding `at`.
pub fn window_of(at: DateTime<Utc>, window: Window, tz: Tz) -> (DateTime<Utc>, DateTime<Utc>) {
    let local = at.with_timezone(&tz).naive_local();
    match window {
        Window::Minute => {
            let start = at - Duration::seconds(i64::from(at.second()));
            (start, start + Duration::minutes(1))
        }
        Window::Hour => {
            // An hour is 60 real minutes from the local hour's start, which
            // is also right across DST changes (offsets move whole hours or
            // the window is the zone's own 30/45-minute step, not split).
            let start = at - Duration::seconds(i64::from(local.minute() * 60 + local.second()));
            (start, start + Duration::hours(1))
        }
        Window::Day => {
            let day = local.date();
            let next = day + Duration::days(1);
            (
                start_of(tz, day.and_hms_opt(0, 0, 0)),
                start_of(tz, next.and_hms_opt(0, 0, 0)),
            )
        }
        Window::Month => {
            let first = local.date().with_day(1);
            let next = first.and_then(|f| {
                if f.month() == 12 {
                    f.with_year(f.year() + 1)?.with_month(1)
                } else {
                    f.with_month(f.month() + 1)
                }
            });
            (
                start_of(tz, first.and_then(|d| d.and_hms_opt(0, 0, 0))),
                start_of(tz, next.and_then(|d| d.and_hms_opt(0, 0, 0))),
            )
        }
    }
}

/// The instant a local time names; a local midnight skipped by a DST
/// change starts at the first instant after the gap.
fn start_of(tz: Tz, local: Option<NaiveDateTime>) -> DateTime<Utc> {
    let Some(local) = local else {
        return DateTime::<Utc>::MAX_UTC;
    };
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => (1..=4)
            .find_map(
                |q| match tz.from_local_datetime(&(local + Duration::minutes(15 * q))) {
                    LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => {
                        Some(t.with_timezone(&Utc))
                    }
                    LocalResult::None => None,
                },
            )
            .unwrap_or_else(|| Utc.from_utc_datetime(&local)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn bucket(at: &str, group: &str, value: i128) -> SumRow {
        SumRow {
            bucket_secs: utc(at).timestamp(),
            group: vec![group.to_string()],
            sums: vec![value],
        }
    }

    #[test]
    fn days_follow_the_zone_and_dst_makes_a_25_hour_day() {
        let berlin = chrono_tz::Europe::Berlin;
        // 2026-10-25: clocks go back at 03:00 CEST.
        let (start, end) = window_of(utc("2026-10-25T12:00:00Z"), Window::Day, berlin);
        assert_eq!(start, utc("2026-10-24T22:00:00Z"));
        assert_eq!(end, utc("2026-10-25T23:00:00Z"));
        assert_eq!((end - start).num_hours(), 25);
        let (start, _) = window_of(utc("2026-11-30T23:30:00Z"), Window::Month, berlin);
        assert_eq!(
            start,
            utc("2026-11-30T23:00:00Z"),
            "already December in Berlin"
        );
        let (start, end) = window_of(utc("2026-12-15T08:00:00Z"), Window::Month, Tz::UTC);
        assert_eq!(
            (start, end),
            (utc("2026-12-01T00:00:00Z"), utc("2027-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn half_hour_zones_cut_hours_at_their_half_hour() {
        let kolkata = chrono_tz::Asia::Kolkata;
        let (start, end) = window_of(utc("2026-11-01T10:45:00Z"), Window::Hour, kolkata);
        assert_eq!(
            (start, end),
            (utc("2026-11-01T10:30:00Z"), utc("2026-11-01T11:30:00Z"))
        );
    }

    #[test]
    fn buckets_sum_per_window_and_group_in_order() {
        let rows = fold(
            vec![
                bucket("2026-11-01T10:00:00Z", "b", 5),
                bucket("2026-11-01T09:00:00Z", "a", 1),
                bucket("2026-11-01T11:00:00Z", "a", 2),
                bucket("2026-11-02T01:00:00Z", "a", 4),
            ],
            Window::Day,
            Tz::UTC,
        );
        let got: Vec<_> = rows
            .iter()
            .map(|r| {
                (
                    r.window_start.date_naive().day(),
                    r.group[0].as_str(),
                    r.value,
                )
            })
            .collect();
        assert_eq!(got, [(1, "a", 3), (1, "b", 5), (2, "a", 4)]);
    }
}
