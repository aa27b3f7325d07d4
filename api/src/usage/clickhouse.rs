//! ClickHouse's sums for a [`UsagePlan`]. Tables are read with FINAL, so
//! a row the sink wrote twice (a replay after a crash) counts once, as in
//! the lake. Written for every server from 18.16 on: no query parameters
//! (the tenant is bound, escaped, by the client) and no newer functions.

use clickhouse::Row;
use serde::Deserialize;

use super::lake::parse_value;
use super::plan::UsagePlan;
use super::request::UsageQuery;
use super::{BucketSum, UsageError};

/// Read by position (RowBinary), in the SELECT's order.
#[derive(Debug, Row, Deserialize)]
struct SumRow {
    bucket: i64,
    grp: Vec<String>,
    value: String,
}

pub fn clickhouse_sql(plan: &UsagePlan, query: &UsageQuery, by_tenant: bool) -> String {
    let g = plan.granularity_secs;
    let t = plan.time_column;
    let group = if plan.group_columns.is_empty() {
        "emptyArrayString()".to_string()
    } else {
        let items: Vec<String> = plan
            .group_columns
            .iter()
            .map(|c| format!("toString({c})"))
            .collect();
        format!("[{}]", items.join(", "))
    };
    let mut group_by = vec!["bucket".to_string()];
    group_by.extend(plan.group_columns.iter().map(|c| c.to_string()));
    format!(
        "SELECT toInt64(intDiv(toUInt32({t}), {g}) * {g}) AS bucket, {group} AS grp, \
         toString(sum({value})) AS value FROM {table} FINAL \
         WHERE {t} >= toDateTime({from}) AND {t} < toDateTime({to}){tenant} \
         GROUP BY {group_by}",
        value = plan.value,
        table = plan.table,
        from = query.from.timestamp(),
        to = query.to.timestamp(),
        tenant = if by_tenant { " AND tenant_id = ?" } else { "" },
        group_by = group_by.join(", "),
    )
}

pub async fn clickhouse_sums(
    client: &clickhouse::Client,
    plan: &UsagePlan,
    query: &UsageQuery,
    tenant: Option<&str>,
) -> Result<Vec<BucketSum>, UsageError> {
    let mut q = client.query(&clickhouse_sql(plan, query, tenant.is_some()));
    if let Some(tenant) = tenant {
        q = q.bind(tenant);
    }
    let rows = q
        .fetch_all::<SumRow>()
        .await
        .map_err(|e| UsageError::Store(format!("ClickHouse: {e}")))?;
    rows.into_iter()
        .map(|r| {
            Ok(BucketSum {
                bucket_secs: r.bucket,
                group: r.grp,
                value: parse_value(&r.value, plan.is_money)?,
            })
        })
        .collect()
}
