//! [`SumQuery`] on ClickHouse. Tables are read with FINAL, so a row the
//! sink wrote twice (a replay after a crash) counts once, as in the lake.
//! Written for every server from 18.16 on: no query parameters (the tenant
//! is bound, escaped, by the client) and no newer functions.

use std::collections::BTreeMap;

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

/// The one query [`versions`] sends: per table and partition, its active
/// parts' block numbers and time span; per table, its metadata time and
/// mutations.
pub const VERSIONS_SQL: &str = "SELECT table, 'part' AS kind, partition_id AS key, \
               concat(toString(min(min_block_number)), '-', toString(max(max_block_number))) AS value, \
               concat(toString(toUInt32(min(min_time))), ' ', toString(toUInt32(max(max_time)))) AS span \
             FROM system.parts WHERE database = currentDatabase() AND active \
             GROUP BY table, partition_id \
             UNION ALL SELECT name, 'table', partition_key, toString(metadata_modification_time), '' \
             FROM system.tables WHERE database = currentDatabase() \
             UNION ALL SELECT table, 'mutations', '', toString(count()), '' \
             FROM system.mutations WHERE database = currentDatabase() GROUP BY table";

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
        .query(VERSIONS_SQL)
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
    /// A partition's lowest and highest time (`min_time`, `max_time` of its
    /// parts) in Unix seconds.
    span: String,
}

/// Partitions as slices of the time their rows span when the table is
/// partitioned by `toYYYYMM(column)`; otherwise each may hold rows of any
/// time. A span is what the partition holds now, not what it could: an
/// insert into a partition changes its version, and one that widens its
/// span into a range also adds it to the slices the range hashes, so the
/// range's version moves either way.
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
                    span_slice(&fact.span, version)
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

/// The slice of a partition's `min_time max_time` span. Servers that do
/// not track it (a `DateTime64` key on some versions) answer zeros: the
/// partition may then hold any time.
fn span_slice(span: &str, version: Option<u64>) -> Option<Slice> {
    let (min, max) = span.split_once(' ')?;
    let (min, max): (i64, i64) = (min.parse().ok()?, max.parse().ok()?);
    (max > 0).then_some(Slice {
        start: min,
        end: max + 1,
        version,
    })
}

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
            span: String::new(),
        }
    }

    fn part(table: &str, partition: &str, blocks: &str, (from, to): (u32, u32)) -> Fact {
        Fact {
            span: format!("{} {}", at(from).timestamp(), at(to).timestamp() - 1),
            ..fact(table, "part", partition, blocks)
        }
    }

    /// A day as month × 100 + day: 1103 is November 3rd.
    fn at(month_day: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, month_day / 100, month_day % 100, 0, 0, 0)
            .unwrap()
    }

    fn database(november_blocks: &str, december_blocks: &str) -> Vec<Fact> {
        vec![
            part("conversations", "202612", december_blocks, (1201, 1203)),
            fact(
                "conversations",
                "table",
                "toYYYYMM(event_time)",
                "2026-11-01 00:00:00",
            ),
            part("conversations", "202611", november_blocks, (1103, 1130)),
            fact("odd", "table", "tuple()", "2026-11-01 00:00:00"),
            part("odd", "all", november_blocks, (1103, 1130)),
        ]
    }

    fn november(v: &DataVersions) -> Option<u64> {
        v.of("conversations", "event_time", at(1101), at(1201))
    }

    #[test]
    fn a_partition_moves_only_the_ranges_over_its_rows() {
        let before = versions_of(database("1-10", "11-12"));
        let december_insert = versions_of(database("1-10", "11-13"));
        assert!(november(&before).is_some());
        assert_eq!(november(&before), november(&december_insert));
        assert_ne!(
            november(&before),
            november(&versions_of(database("1-14", "11-12")))
        );
        // In a server time zone behind UTC, December's partition takes rows
        // of November's last hours (UTC): its span reaches into November.
        let mut late_rows = database("1-10", "11-13");
        late_rows[0] = part("conversations", "202612", "11-13", (1130, 1203));
        assert_ne!(november(&before), november(&versions_of(late_rows)));
        // A partition whose span the server does not know may hold any time.
        let unknown_span = |december_blocks| {
            let mut facts = database("1-10", december_blocks);
            facts[0].span = "0 0".into();
            versions_of(facts)
        };
        assert_ne!(
            november(&unknown_span("11-12")),
            november(&unknown_span("11-13"))
        );
        // Unordered answers, same versions.
        let mut shuffled = database("1-10", "11-12");
        shuffled.reverse();
        assert_eq!(versions_of(shuffled), before);
    }

    #[test]
    fn other_partitionings_and_mutations_move_every_range() {
        let odd = |v: &DataVersions| v.of("odd", "event_time", at(1203), at(1204));
        assert_ne!(
            odd(&versions_of(database("1-10", "11-12"))),
            odd(&versions_of(database("1-14", "11-12")))
        );
        let mut mutated = database("1-10", "11-12");
        mutated.push(fact("conversations", "mutations", "", "1"));
        assert_ne!(
            november(&versions_of(mutated)),
            november(&versions_of(database("1-10", "11-12")))
        );
    }
}
