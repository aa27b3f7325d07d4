//! The lake's sums for a [`UsagePlan`], through DataFusion. The tenant is
//! not a literal in the SQL: the query runs in the tenant's scoped session
//! (views of its rows only), so it cannot be steered to another tenant.

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use somaflow_pipeline::events::decimal::parse_decimal;
use somaflow_sql::{LakeSql, QueryLimits, TenantScope};

use super::plan::UsagePlan;
use super::request::UsageQuery;
use super::{BucketSum, UsageError};

/// The SQL text of `plan` over `query`'s range: only identifiers from the
/// plan and numbers/dates computed here go into it.
pub fn lake_sql(plan: &UsagePlan, query: &UsageQuery) -> String {
    let g = plan.granularity_secs;
    let mut select = vec![format!(
        "CAST(CAST({t} AS BIGINT) / {g_us} AS BIGINT) * {g} AS bucket",
        t = plan.time_column,
        g_us = g * 1_000_000,
    )];
    for (i, column) in plan.group_columns.iter().enumerate() {
        select.push(format!("CAST({column} AS VARCHAR) AS g{i}"));
    }
    select.push(format!("CAST(SUM({}) AS VARCHAR) AS v", plan.value));
    let groups: Vec<String> = (1..=plan.group_columns.len() + 1)
        .map(|i| i.to_string())
        .collect();
    let last_day = query.to - chrono::Duration::microseconds(1);
    format!(
        "SELECT {select} FROM {table} \
         WHERE {t} >= '{from}' AND {t} < '{to}' AND date >= '{d0}' AND date <= '{d1}' \
         GROUP BY {groups}",
        select = select.join(", "),
        table = plan.table,
        t = plan.time_column,
        from = query.from.format("%Y-%m-%dT%H:%M:%SZ"),
        to = query.to.format("%Y-%m-%dT%H:%M:%SZ"),
        d0 = query.from.format("%Y-%m-%d"),
        d1 = last_day.format("%Y-%m-%d"),
        groups = groups.join(", "),
    )
}

/// Runs the plan in `tenant`'s scope (`None`: every tenant).
pub async fn lake_sums(
    sql: &LakeSql,
    plan: &UsagePlan,
    query: &UsageQuery,
    tenant: Option<&str>,
    limits: QueryLimits,
) -> Result<Vec<BucketSum>, UsageError> {
    let scope = tenant.map_or(TenantScope::All, TenantScope::Tenant);
    let result = sql
        .query_scoped(&lake_sql(plan, query), scope, limits)
        .await
        .map_err(store_error)?;
    let mut out = Vec::new();
    let groups = plan.group_columns.len();
    for batch in &result.batches {
        let bucket = cast(batch.column(0), &DataType::Int64).map_err(store_error)?;
        let bucket = bucket.as_primitive::<Int64Type>();
        let value = text(batch.column(groups + 1))?;
        let value = value.as_string::<i32>();
        let group_columns = (1..=groups)
            .map(|i| text(batch.column(i)))
            .collect::<Result<Vec<_>, _>>()?;
        let group_columns: Vec<&StringArray> =
            group_columns.iter().map(|c| c.as_string::<i32>()).collect();
        for row in 0..batch.num_rows() {
            if value.is_null(row) {
                continue;
            }
            out.push(BucketSum {
                bucket_secs: bucket.value(row),
                group: group_columns
                    .iter()
                    .map(|c| {
                        if c.is_null(row) {
                            String::new()
                        } else {
                            c.value(row).to_string()
                        }
                    })
                    .collect(),
                value: parse_value(value.value(row), plan.is_money)?,
            });
        }
    }
    Ok(out)
}

fn store_error(e: impl std::fmt::Display) -> UsageError {
    UsageError::Store(e.to_string())
}

/// A string column as `Utf8`, whichever string type the engine chose.
fn text(column: &ArrayRef) -> Result<ArrayRef, UsageError> {
    cast(column, &DataType::Utf8).map_err(store_error)
}

/// A sum's text: nano-USD for money, else an integer.
pub fn parse_value(text: &str, is_money: bool) -> Result<i128, UsageError> {
    if is_money {
        parse_decimal(text).map_err(|_| UsageError::BadValue(text.to_string()))
    } else {
        text.parse()
            .map_err(|_| UsageError::BadValue(text.to_string()))
    }
}
