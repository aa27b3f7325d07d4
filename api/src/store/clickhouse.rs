//! [`SumQuery`] on ClickHouse. Tables are read with FINAL, so a row the
//! sink wrote twice (a replay after a crash) counts once, as in the lake.
//! Written for every server from 18.16 on: no query parameters (the tenant
//! is bound, escaped, by the client) and no newer functions.

use clickhouse::Row;
use serde::Deserialize;

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

/// The version of `table`: per partition, the lowest and highest block
/// number of its active parts; the table's metadata time; its mutations.
/// Every insert into a (non-replicated) MergeTree adds a part with a new,
/// table-wide block number, so the data read with FINAL cannot change
/// without this changing. A background merge joins adjacent parts of one
/// partition into a part spanning their blocks, so it leaves this alone:
/// after a bulk load ClickHouse merges for minutes, and answers must stay
/// kept meanwhile. Dropping a partition removes its entry; the metadata
/// time covers a table dropped and created again (block numbers restart)
/// and `ALTER`s; a mutation (`ALTER … DELETE`, never issued by somaflow)
/// adds a row to `system.mutations`.
pub async fn table_version(client: &clickhouse::Client, table: &str) -> Result<u64, StoreError> {
    let version = client
        .query(
            "SELECT concat(\
             (SELECT arrayStringConcat(arraySort(groupArray(p)), ',') FROM (\
               SELECT concat(partition_id, ':', toString(min(min_block_number)), '-', \
                 toString(max(max_block_number))) AS p FROM system.parts \
               WHERE database = currentDatabase() AND table = ? AND active GROUP BY partition_id)), \
             '/', (SELECT toString(any(metadata_modification_time)) FROM system.tables \
               WHERE database = currentDatabase() AND name = ?), \
             '/', (SELECT toString(count()) FROM system.mutations \
               WHERE database = currentDatabase() AND table = ?))",
        )
        .bind(table)
        .bind(table)
        .bind(table)
        .fetch_one::<String>()
        .await
        .map_err(|e| StoreError::ClickHouse(e.to_string()))?;
    Ok(xxhash_rust::xxh3::xxh3_64(version.as_bytes()))
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
