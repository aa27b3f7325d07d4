//! The calendar month (UTC, `YYYY-MM`) of event times, computed once per
//! month seen in a batch rather than once per row.

use chrono::{DateTime, Datelike, NaiveDate};

#[derive(Default)]
pub struct MonthOf {
    /// `[start, end)` in µs of the month last asked for, and its name.
    last: Option<(i64, i64, String)>,
}

impl MonthOf {
    pub fn month(&mut self, at_us: i64) -> &str {
        let hit = matches!(&self.last, Some((start, end, _)) if *start <= at_us && at_us < *end);
        if !hit {
            self.last = Some(month_bounds(at_us));
        }
        match &self.last {
            Some((_, _, name)) => name,
            None => "",
        }
    }
}

fn month_bounds(at_us: i64) -> (i64, i64, String) {
    let day = DateTime::from_timestamp_micros(at_us)
        .unwrap_or_default()
        .date_naive();
    let first = NaiveDate::from_ymd_opt(day.year(), day.month(), 1).unwrap_or(day);
    let next = first
        .checked_add_months(chrono::Months::new(1))
        .unwrap_or(first);
    let micros = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_micros())
            .unwrap_or(i64::MAX)
    };
    (
        micros(first),
        micros(next),
        first.format("%Y-%m").to_string(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_change_at_midnight_utc_of_the_first() {
        let mut m = MonthOf::default();
        let nov = NaiveDate::from_ymd_opt(2026, 11, 30)
            .unwrap()
            .and_hms_opt(23, 59, 59)
            .unwrap()
            .and_utc()
            .timestamp_micros();
        assert_eq!(m.month(nov), "2026-11");
        assert_eq!(m.month(nov + 1_000_000), "2026-12");
        assert_eq!(m.month(nov), "2026-11");
    }
}
