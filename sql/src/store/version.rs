//! What one probe of a store found out about its data: enough to name the
//! version of any time range of any table, so an answer over last month is
//! kept while only today's rows change.
//!
//! A table is cut into slices of time (ClickHouse: monthly partitions; the
//! lake: per writer, UTC days), each with a version that changes whenever
//! rows are added to or removed from it. The version of a range hashes the
//! table-wide part (schema, mutations) with every slice the range overlaps;
//! a slice that is being changed right now has no version, and neither does
//! any range over it (answers computed then are not kept).

use chrono::{DateTime, Utc};
use xxhash_rust::xxh3::Xxh3;

/// A slice of a table: rows whose time column falls in `[start, end)`, in
/// Unix seconds.
#[derive(Debug, Clone, PartialEq)]
pub struct Slice {
    pub start: i64,
    pub end: i64,
    /// `None`: rows are being added to it now.
    pub version: Option<u64>,
}

impl Slice {
    /// A slice that may hold rows of any time.
    pub fn everywhere(version: Option<u64>) -> Slice {
        Slice {
            start: i64::MIN,
            end: i64::MAX,
            version,
        }
    }
}

/// One table's versions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableVersions {
    /// Changes that may touch any row (schema, mutations).
    pub whole: u64,
    /// The column slices are cut by; a query by another column overlaps
    /// every slice.
    pub time_column: String,
    pub slices: Vec<Slice>,
}

/// Versions of every table of one store, as one probe found them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DataVersions {
    tables: Vec<(String, TableVersions)>,
    /// `false`: the store keeps no record of its changes (a lake no writer
    /// of this version has written), so nothing read from it can be kept.
    known: bool,
}

impl DataVersions {
    /// A store whose changes are all recorded in `tables`; a table not
    /// among them has never had a row.
    pub fn known(tables: Vec<(String, TableVersions)>) -> DataVersions {
        DataVersions {
            tables,
            known: true,
        }
    }

    /// A store that keeps no record of its changes.
    pub fn unknown() -> DataVersions {
        DataVersions::default()
    }

    /// The version of `table`'s rows with `time_column` in `[from, to)`:
    /// the same while, and only while, none of them changes. `None` when it
    /// cannot be named (rows in the range are changing now, or the store
    /// keeps no record).
    pub fn of(
        &self,
        table: &str,
        time_column: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Option<u64> {
        if !self.known {
            return None;
        }
        let mut hash = Xxh3::new();
        hash.update(table.as_bytes());
        let Some((_, versions)) = self.tables.iter().find(|(name, _)| name == table) else {
            return Some(hash.digest());
        };
        hash.update(&versions.whole.to_le_bytes());
        let (from, to) = (from.timestamp(), to.timestamp());
        let by_slices = versions.time_column == time_column;
        for slice in &versions.slices {
            let overlaps = !by_slices || (slice.start < to && from < slice.end);
            if overlaps {
                hash.update(&slice.version?.to_le_bytes());
            }
        }
        Some(hash.digest())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    const DAY: i64 = 86_400;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).unwrap()
    }

    fn store(day_versions: &[Option<u64>]) -> DataVersions {
        let slices = day_versions
            .iter()
            .enumerate()
            .map(|(i, version)| Slice {
                start: i as i64 * DAY,
                end: (i as i64 + 1) * DAY,
                version: *version,
            })
            .collect();
        DataVersions::known(vec![(
            "conversations".into(),
            TableVersions {
                whole: 1,
                time_column: "event_time".into(),
                slices,
            },
        )])
    }

    #[test]
    fn a_range_changes_with_the_slices_it_overlaps_only() {
        let before = store(&[Some(1), Some(2), Some(3)]);
        let after = store(&[Some(1), Some(2), Some(4)]);
        let first_two = |s: &DataVersions| s.of("conversations", "event_time", at(0), at(2 * DAY));
        assert_eq!(first_two(&before), first_two(&after), "day 3 is outside");
        let all = |s: &DataVersions| s.of("conversations", "event_time", at(0), at(3 * DAY));
        assert_ne!(all(&before), all(&after));
        // A range ending inside day 3 still reads some of it.
        let into_third =
            |s: &DataVersions| s.of("conversations", "event_time", at(DAY), at(2 * DAY + 1));
        assert_ne!(into_third(&before), into_third(&after));
        // By another column, any slice may hold the rows.
        let by_ingest = |s: &DataVersions| s.of("conversations", "ingest_time", at(0), at(DAY));
        assert_ne!(by_ingest(&before), by_ingest(&after));
    }

    #[test]
    fn no_version_while_rows_in_range_change_or_nothing_is_recorded() {
        let busy = store(&[Some(1), None]);
        assert!(
            busy.of("conversations", "event_time", at(0), at(DAY))
                .is_some()
        );
        assert_eq!(
            busy.of("conversations", "event_time", at(0), at(2 * DAY)),
            None
        );
        assert_eq!(
            DataVersions::unknown().of("conversations", "event_time", at(0), at(DAY)),
            None
        );
        // Tables apart; a table without rows has a version too.
        let empty = store(&[]);
        assert_ne!(
            empty.of("conversations", "event_time", at(0), at(DAY)),
            empty.of("usage_1m", "window_start", at(0), at(DAY))
        );
        assert!(
            empty
                .of("usage_1m", "window_start", at(0), at(DAY))
                .is_some()
        );
    }

    #[test]
    fn the_whole_table_part_moves_every_range() {
        let mut altered = store(&[Some(1)]);
        altered.tables[0].1.whole = 2;
        assert_ne!(
            store(&[Some(1)]).of("conversations", "event_time", at(0), at(DAY)),
            altered.of("conversations", "event_time", at(0), at(DAY))
        );
    }
}
