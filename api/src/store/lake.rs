//! [`SumQuery`] on the lake. The tenant is not a literal in the SQL: the
//! query runs in the tenant's scoped session (views of its rows only), so
//! no request can steer it to another tenant.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use somaflow_sql::{LakeSql, QueryLimits, SqlError, TenantScope};

use super::{StoreError, SumQuery, SumRow, parse_sum};

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

/// The version of `table`'s published files (see [`LakeSql::table_version`]),
/// given up after the query time limit like a query.
pub async fn table_version(
    sql: &LakeSql,
    table: &str,
    limits: QueryLimits,
) -> Result<u64, StoreError> {
    match tokio::time::timeout(limits.timeout, sql.table_version(table)).await {
        Ok(version) => version.map_err(lake_error),
        Err(_) => Err(StoreError::Timeout(limits.timeout)),
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
