//! [`SumQuery`] on the lake. The tenant is not a literal in the SQL: the
//! query runs in the tenant's scoped session (views of its rows only), so
//! no request can steer it to another tenant.

use chrono::{NaiveDate, NaiveTime};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use somaflow_pipeline::events::schema::time_column;
use somaflow_pipeline::publications::PublicationRecord;
use xxhash_rust::xxh3::xxh3_64;

use super::version::{DataVersions, Slice, TableVersions};
use super::{StoreError, SumQuery, SumRow, parse_sum};
use crate::error::SqlError;
use crate::session::{LakeSql, QueryLimits, SQL_TABLES, TenantScope};

/// The query's SQL: identifiers and expressions from code, and numbers and
/// dates computed here; nothing from a request.
pub fn sql_text(q: &SumQuery) -> String {
    let t = q.time_column;
    let mut select = vec![match q.bucket_secs {
        Some(g) => format!(
            "CAST(CAST({t} AS BIGINT) / {g_us} AS BIGINT) * {g} AS bucket",
            g_us = g * 1_000_000
        ),
        None => "CAST(0 AS BIGINT) AS bucket".to_string(),
    }];
    for (i, column) in q.groups.iter().enumerate() {
        select.push(format!("CAST({column} AS VARCHAR) AS g{i}"));
    }
    for (i, sum) in q.sums.iter().enumerate() {
        select.push(format!("CAST(SUM({}) AS VARCHAR) AS s{i}", sum.expr));
    }
    let keys = if q.bucket_secs.is_some() { 1 } else { 0 } + q.groups.len();
    let group_by = if keys == 0 {
        String::new()
    } else {
        let first = if q.bucket_secs.is_some() { 1 } else { 2 };
        let ordinals: Vec<String> = (first..=q.groups.len() + 1)
            .map(|i| i.to_string())
            .collect();
        format!(" GROUP BY {}", ordinals.join(", "))
    };
    let last = q.to - chrono::Duration::microseconds(1);
    format!(
        "SELECT {select} FROM {table} \
         WHERE {t} >= '{from}' AND {t} < '{to}' AND date >= '{d0}' AND date <= '{d1}'{cond}{group_by}",
        select = select.join(", "),
        table = q.table,
        from = q.from.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        to = q.to.format("%Y-%m-%dT%H:%M:%S%.6fZ"),
        d0 = q.from.format("%Y-%m-%d"),
        d1 = last.format("%Y-%m-%d"),
        cond = q
            .condition
            .map(|c| format!(" AND ({c})"))
            .unwrap_or_default(),
    )
}

pub async fn sums(
    sql: &LakeSql,
    q: &SumQuery,
    tenant: Option<&str>,
    limits: QueryLimits,
) -> Result<Vec<SumRow>, StoreError> {
    let scope = tenant.map_or(TenantScope::All, TenantScope::Tenant);
    let result = sql
        .query_scoped(&sql_text(q), scope, limits)
        .await
        .map_err(|e| match e {
            SqlError::Timeout(limit) => StoreError::Timeout(limit),
            other => lake_error(other),
        })?;
    let mut out = Vec::new();
    let groups = q.groups.len();
    for batch in &result.batches {
        let bucket = cast(batch.column(0), &DataType::Int64).map_err(lake_error)?;
        let bucket = bucket.as_primitive::<Int64Type>();
        let texts = (1..batch.num_columns())
            .map(|i| text(batch.column(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let texts: Vec<&StringArray> = texts.iter().map(|c| c.as_string::<i32>()).collect();
        let (group_columns, sum_columns) = texts.split_at(groups);
        for row in 0..batch.num_rows() {
            let sums = q
                .sums
                .iter()
                .zip(sum_columns)
                .map(|(s, c)| cell(c, row).map_or(Ok(0), |t| parse_sum(t, s.decimal)))
                .collect::<Result<Vec<_>, _>>()?;
            out.push(SumRow {
                bucket_secs: bucket.value(row),
                group: group_columns
                    .iter()
                    .map(|c| cell(c, row).unwrap_or_default().to_string())
                    .collect(),
                sums,
            });
        }
    }
    Ok(out)
}

/// The lake's versions from its writers' publication records (see
/// [`LakeSql::publications`]), given up after the query time limit like a
/// query.
pub async fn versions(sql: &LakeSql, limits: QueryLimits) -> Result<DataVersions, StoreError> {
    match tokio::time::timeout(limits.timeout, sql.publications()).await {
        Ok(records) => Ok(versions_of(&records.map_err(lake_error)?)),
        Err(_) => Err(StoreError::Timeout(limits.timeout)),
    }
}

const DAY_SECS: i64 = 86_400;

/// Each writer's days as slices of their tables: versioned by the writer
/// and the publication that last changed them, or being published now.
fn versions_of(records: &[(String, PublicationRecord)]) -> DataVersions {
    if records.is_empty() {
        // No writer of this version has written the lake: its changes are
        // not recorded anywhere cheaper than a listing of every file.
        return DataVersions::unknown();
    }
    let tables = SQL_TABLES
        .iter()
        .map(|(name, folder)| {
            let mut slices = Vec::new();
            for (writer, record) in records {
                let published = record.days.get(*folder).into_iter().flatten();
                for (day, publication) in published {
                    let version = xxh3_64(format!("{writer} {publication}").as_bytes());
                    slices.push(day_slice(day, Some(version)));
                }
                let in_progress = record.in_progress.get(*folder).into_iter().flatten();
                slices.extend(in_progress.map(|day| day_slice(day, None)));
            }
            let versions = TableVersions {
                whole: 0,
                time_column: time_column(folder).to_string(),
                slices,
            };
            (name.to_string(), versions)
        })
        .collect();
    DataVersions::known(tables)
}

/// The slice of a `YYYY-MM-DD` day folder; any other name may hold any time.
fn day_slice(day: &str, version: Option<u64>) -> Slice {
    match NaiveDate::parse_from_str(day, "%Y-%m-%d") {
        Ok(date) => {
            let start = date.and_time(NaiveTime::MIN).and_utc().timestamp();
            Slice {
                start,
                end: start + DAY_SECS,
                version,
            }
        }
        Err(_) => Slice::everywhere(version),
    }
}

fn cell(column: &StringArray, row: usize) -> Option<&str> {
    (!column.is_null(row)).then(|| column.value(row))
}

fn lake_error(e: impl std::fmt::Display) -> StoreError {
    StoreError::Lake(e.to_string())
}

/// A string column as `Utf8`, whichever string type the engine chose.
fn text(column: &ArrayRef) -> Result<ArrayRef, StoreError> {
    cast(column, &DataType::Utf8).map_err(lake_error)
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use somaflow_pipeline::publications::DaysByTable;

    use super::*;

    fn published(record: &mut PublicationRecord, run: &str, day: &str) {
        let days = DaysByTable::from([("conversations".to_string(), [day.to_string()].into())]);
        record.begin(&days);
        record.finish(run);
    }

    #[test]
    fn publication_records_version_each_day_of_each_table() {
        let november = |v: &DataVersions| {
            let from = Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap();
            let to = Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap();
            v.of("conversations", "event_time", from, to)
        };
        assert_eq!(november(&versions_of(&[])), None, "no records, no versions");

        let mut record = PublicationRecord::default();
        published(&mut record, "r1", "2026-11-30");
        let before = versions_of(&[("lake".into(), record.clone())]);
        published(&mut record, "r1", "2026-12-01");
        let after_december = versions_of(&[("lake".into(), record.clone())]);
        assert!(november(&before).is_some());
        assert_eq!(november(&before), november(&after_december));

        published(&mut record, "r1", "2026-11-30");
        assert_ne!(
            november(&after_december),
            november(&versions_of(&[("lake".into(), record.clone())]))
        );

        // Another writer's publication, and one in progress.
        let mut other = PublicationRecord::default();
        published(&mut other, "r2", "2026-11-02");
        let two = versions_of(&[
            ("lake".into(), record.clone()),
            ("w2/lake".into(), other.clone()),
        ]);
        assert_ne!(
            november(&two),
            november(&versions_of(&[("lake".into(), record.clone())]))
        );
        other.begin(&DaysByTable::from([(
            "conversations".to_string(),
            ["2026-11-05".to_string()].into(),
        )]));
        let busy = versions_of(&[("lake".into(), record.clone()), ("w2/lake".into(), other)]);
        assert_eq!(november(&busy), None);
        // The usage table is untouched by all of it.
        let usage = |v: &DataVersions| {
            let at = |d| Utc.with_ymd_and_hms(2026, 11, d, 0, 0, 0).unwrap();
            v.of("usage_1m", "window_start", at(1), at(30))
        };
        assert_eq!(usage(&busy), usage(&before));
    }
}
