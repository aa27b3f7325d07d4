//! [`SumQuery`] on ClickHouse. Tables are read with FINAL, so a row the
//! sink wrote twice (a replay after a crash) counts once, as in the lake.
//! Written for every server from 18.16 on: no query parameters (the tenant
//! is bound, escaped, by the client) and no newer functions.

use std::collections::BTreeMap;

use chrono::{Months, NaiveDate, NaiveTime};
use clickhouse::Row;
use serde::Deserialize;
use xxhash_rust::xxh3::xxh3_64;

use super::version::{DataVersions, Slice, TableVersions};
use super::{StoreError, SumQuery, SumRow, parse_sum};

/// Read by position (RowBinary), in the SELECT's order.
#[derive(Debug, Row, Deserialize)]
struct Answer {
    bucket: i64,
    grp: Vec<String>,
    sums: Vec<String>,
}

fn text_array(items: Vec<String>) -> String {
    if items.is_empty() {
        "emptyArrayString()".to_string()
    } else {
        format!("[{}]", items.join(", "))
    }
}

pub fn sql_text(q: &SumQuery, by_tenant: bool) -> String {
    let t = q.time_column;
    let bucket = match q.bucket_secs {
        Some(g) => format!("toInt64(intDiv(toUInt32({t}), {g}) * {g})"),
        None => "toInt64(0)".to_string(),
    };
    // ifNull: a Nullable column, or a sum over no rows of one, would answer
    // NULL, which an array of String cannot hold.
    let groups = text_array(
        q.groups
            .iter()
            .map(|c| format!("ifNull(toString({c}), '')"))
            .collect(),
    );
    let sums = text_array(
        q.sums
            .iter()
            .map(|s| format!("ifNull(toString(sum({})), '0')", s.expr))
            .collect(),
    );
    let mut keys: Vec<String> = Vec::new();
    if q.bucket_secs.is_some() {
        keys.push("bucket".into());
    }
    keys.extend(q.groups.iter().map(|c| c.to_string()));
    format!(
        "SELECT {bucket} AS bucket, {groups} AS grp, {sums} AS sums FROM {table} FINAL \
         WHERE {t} >= toDateTime({from}) AND {t} < toDateTime({to}){tenant}{cond}{group_by}",
        table = q.table,
        from = q.from.timestamp(),
        to = q.to.timestamp(),
        tenant = if by_tenant { " AND tenant_id = ?" } else { "" },
        cond = q
            .condition
            .map(|c| format!(" AND ({c})"))
            .unwrap_or_default(),
        group_by = if keys.is_empty() {
            String::new()
        } else {
            format!(" GROUP BY {}", keys.join(", "))
        },
    )
}

/// The versions of every table in the database, in one query: per
/// partition, the lowest and highest block number of its active parts; per
/// table, its metadata time and mutations. Every insert into a
/// (non-replicated) MergeTree adds a part with a new, table-wide block
/// number, so the rows of a partition read with FINAL cannot change without
/// its entry changing. A background merge joins adjacent parts of one
/// partition into a part spanning their blocks, so it leaves entries alone:
/// after a bulk load ClickHouse merges for minutes, and answers must stay
/// kept meanwhile. Dropping a partition removes its entry; the metadata
/// time covers a table dropped and created again (block numbers restart)
/// and `ALTER`s; a mutation (`ALTER … DELETE`, never issued by somaflow)
/// adds a row to `system.mutations`.
pub async fn versions(client: &clickhouse::Client) -> Result<DataVersions, StoreError> {
    let facts = client
        .query(
            "SELECT table, 'part' AS kind, partition_id AS key,                concat(toString(min(min_block_number)), '-', toString(max(max_block_number))) AS value              FROM system.parts WHERE database = currentDatabase() AND active              GROUP BY table, partition_id              UNION ALL SELECT name, 'table', partition_key, toString(metadata_modification_time)              FROM system.tables WHERE database = currentDatabase()              UNION ALL SELECT table, 'mutations', '', toString(count())              FROM system.mutations WHERE database = currentDatabase() GROUP BY table",
        )
        .fetch_all::<Fact>()
        .await
        .map_err(|e| StoreError::ClickHouse(e.to_string()))?;
    Ok(versions_of(facts))
}

/// One row of the versions query, read by position.
#[derive(Debug, Row, Deserialize)]
struct Fact {
    table: String,
    kind: String,
    key: String,
    value: String,
}

/// Partitions as slices of time when the table is partitioned by
/// `toYYYYMM(column)`; otherwise each may hold rows of any time.
fn versions_of(mut facts: Vec<Fact>) -> DataVersions {
    // The server answers in no particular order; versions must not depend on it.
    facts.sort_by(|a, b| (&a.table, &a.kind, &a.key).cmp(&(&b.table, &b.kind, &b.key)));
    let mut tables: BTreeMap<String, TableVersions> = BTreeMap::new();
    let mut months: BTreeMap<String, bool> = BTreeMap::new();
    for fact in facts.iter().filter(|f| f.kind == "table") {
        let column = fact
            .key
            .strip_prefix("toYYYYMM(")
            .and_then(|rest| rest.strip_suffix(')'));
        months.insert(fact.table.clone(), column.is_some());
        let versions = tables.entry(fact.table.clone()).or_default();
        versions.time_column = column.unwrap_or_default().to_string();
        versions.whole ^= xxh3_64(fact.value.as_bytes());
    }
    for fact in &facts {
        let versions = tables.entry(fact.table.clone()).or_default();
        match fact.kind.as_str() {
            "part" => {
                let version = Some(xxh3_64(format!("{}:{}", fact.key, fact.value).as_bytes()));
                let by_month = months.get(&fact.table).copied().unwrap_or(false);
                versions.slices.push(
                    month_slice(&fact.key, version)
                        .filter(|_| by_month)
                        .unwrap_or_else(|| Slice::everywhere(version)),
                );
            }
            "mutations" => versions.whole ^= xxh3_64(format!("m{}", fact.value).as_bytes()),
            _ => {}
        }
    }
    DataVersions::known(tables.into_iter().collect())
}

/// The rows a `YYYYMM` partition may hold. A `DateTime` column without a
/// time zone is cut into months in the server's, up to 14 hours away from
/// UTC: the slice is widened by a day on each side.
fn month_slice(partition_id: &str, version: Option<u64>) -> Option<Slice> {
    let (year, month) = partition_id.split_at_checked(4)?;
    let first = NaiveDate::from_ymd_opt(year.parse().ok()?, month.parse().ok()?, 1)?;
    let next = first.checked_add_months(Months::new(1))?;
    let secs = |d: NaiveDate| d.and_time(NaiveTime::MIN).and_utc().timestamp();
    Some(Slice {
        start: secs(first) - DAY_SECS,
        end: secs(next) + DAY_SECS,
        version,
    })
}

const DAY_SECS: i64 = 86_400;

pub async fn sums(
    client: &clickhouse::Client,
    q: &SumQuery,
    tenant: Option<&str>,
) -> Result<Vec<SumRow>, StoreError> {
    let mut query = client.query(&sql_text(q, tenant.is_some()));
    if let Some(tenant) = tenant {
        query = query.bind(tenant);
    }
    let answers = query
        .fetch_all::<Answer>()
        .await
        .map_err(|e| StoreError::ClickHouse(e.to_string()))?;
    answers
        .into_iter()
        .map(|a| {
            let sums = q
                .sums
                .iter()
                .zip(&a.sums)
                .map(|(s, text)| parse_sum(text, s.decimal))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(SumRow {
                bucket_secs: a.bucket,
                group: a.grp,
                sums,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::{DateTime, TimeZone, Utc};

    use super::*;

    fn fact(table: &str, kind: &str, key: &str, value: &str) -> Fact {
        Fact {
            table: table.into(),
            kind: kind.into(),
            key: key.into(),
            value: value.into(),
        }
    }

    fn database(november_blocks: &str, december_blocks: &str) -> Vec<Fact> {
        vec![
            fact("conversations", "part", "202612", december_blocks),
            fact(
                "conversations",
                "table",
                "toYYYYMM(event_time)",
                "2026-11-01 00:00:00",
            ),
            fact("conversations", "part", "202611", november_blocks),
            fact("odd", "table", "tuple()", "2026-11-01 00:00:00"),
            fact("odd", "part", "all", november_blocks),
        ]
    }

    fn at(month: u32, day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month, day, 0, 0, 0).unwrap()
    }

    #[test]
    fn a_month_partition_moves_only_the_ranges_over_its_month() {
        let november =
            |v: &DataVersions| v.of("conversations", "event_time", at(11, 3), at(11, 20));
        let before = versions_of(database("1-10", "11-12"));
        let december_insert = versions_of(database("1-10", "11-13"));
        assert!(november(&before).is_some());
        assert_eq!(november(&before), november(&december_insert));
        assert_ne!(
            november(&before),
            november(&versions_of(database("1-14", "11-12")))
        );
        // The last day of November may sit in December's partition in the
        // server's time zone.
        let month_end =
            |v: &DataVersions| v.of("conversations", "event_time", at(11, 25), at(12, 1));
        assert_ne!(month_end(&before), month_end(&december_insert));
        // Unordered answers, same versions.
        let mut shuffled = database("1-10", "11-12");
        shuffled.reverse();
        assert_eq!(versions_of(shuffled), before);
    }

    #[test]
    fn other_partitionings_and_mutations_move_every_range() {
        let odd = |v: &DataVersions| v.of("odd", "event_time", at(11, 3), at(11, 4));
        assert_ne!(
            odd(&versions_of(database("1-10", "11-12"))),
            odd(&versions_of(database("1-14", "11-12")))
        );
        let mut mutated = database("1-10", "11-12");
        mutated.push(fact("conversations", "mutations", "", "1"));
        let november =
            |v: &DataVersions| v.of("conversations", "event_time", at(11, 3), at(11, 20));
        assert_ne!(
            november(&versions_of(mutated)),
            november(&versions_of(database("1-10", "11-12")))
        );
    }
}
