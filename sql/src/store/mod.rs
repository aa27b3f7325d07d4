//! Grouped sums from either store: the Parquet lake through DataFusion, or
//! ClickHouse. Every read endpoint states what it needs as a [`SumQuery`]
//! (a table, a time range, group expressions, sums) and gets the same
//! [`SumRow`]s from either, so their answers can only differ if the data
//! does. Expressions come from code, never from a request, and are written
//! in the SQL both dialects share (down to ClickHouse 18.16). Answers are
//! kept until the rows under them change ([`cache`], [`version`]).

pub mod cache;
pub mod clickhouse;
pub mod lake;
pub mod rollup;
pub mod version;

use std::collections::BTreeMap;
use std::collections::btree_map::Entry;
use std::future::Future;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use futures::future::try_join_all;
use somaflow_pipeline::events::decimal::parse_decimal;

use crate::error::QueryError;
pub use crate::error::StoreError;
use crate::session::{LakeSql, QueryLimits};
use crate::store::cache::{AnswerCache, Rendered};
pub use crate::store::rollup::RollupForm;
use crate::store::version::DataVersions;

/// A sum over the rows of one table in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SumQuery {
    pub table: &'static str,
    /// The column `[from, to)` applies to (and buckets are cut from).
    pub time_column: &'static str,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Buckets of this many seconds as the first key; `None`: no time key.
    pub bucket_secs: Option<i64>,
    /// Group expressions; each answers as text.
    pub groups: Vec<&'static str>,
    pub sums: Vec<Sum>,
    /// A further row condition.
    pub condition: Option<&'static str>,
    /// The same question over the rollups, when they can answer it: then
    /// whole days and hours of the range are read from them ([`rollup`]).
    pub rollup: Option<RollupForm>,
}

const DAY_SECS: i64 = 86_400;

impl SumQuery {
    /// The query, answered from the rollups `form` reads where it can.
    pub fn with_rollup(self, form: RollupForm) -> SumQuery {
        SumQuery {
            rollup: Some(form),
            ..self
        }
    }

    /// The tables (and time columns) this query may read: its own, and the
    /// rollups when it has a rollup form. Kept answers are versioned by all.
    pub fn tables_read(&self) -> Vec<(&'static str, &'static str)> {
        let mut tables = vec![(self.table, self.time_column)];
        if let Some(form) = &self.rollup {
            tables.extend(form.family.iter().map(|(name, _)| (*name, "window_start")));
        }
        tables
    }

    /// The query as two: its rows before the UTC day `to` falls in, and
    /// that day's (one query when the range is within a day). Commits land
    /// mostly in the newest day, so the older part's answer stays kept
    /// through them and only the small newest part is computed again.
    fn split_at_last_day(&self) -> Vec<SumQuery> {
        let last = (self.to - chrono::Duration::microseconds(1)).timestamp();
        let Some(day_start) = DateTime::from_timestamp(last.div_euclid(DAY_SECS) * DAY_SECS, 0)
        else {
            return vec![self.clone()];
        };
        if day_start <= self.from {
            return vec![self.clone()];
        }
        let older = SumQuery {
            to: day_start,
            ..self.clone()
        };
        let newest = SumQuery {
            from: day_start,
            ..self.clone()
        };
        vec![older, newest]
    }
}

/// The rows of queries over disjoint ranges as the rows of their union:
/// every value is a sum, so a key's values add up.
fn merge(parts: Vec<Vec<SumRow>>) -> Vec<SumRow> {
    let mut merged: BTreeMap<(i64, Vec<String>), Vec<i128>> = BTreeMap::new();
    for row in parts.into_iter().flatten() {
        match merged.entry((row.bucket_secs, row.group)) {
            Entry::Vacant(slot) => {
                slot.insert(row.sums);
            }
            Entry::Occupied(mut slot) => {
                for (total, value) in slot.get_mut().iter_mut().zip(row.sums) {
                    *total += value;
                }
            }
        }
    }
    merged
        .into_iter()
        .map(|((bucket_secs, group), sums)| SumRow {
            bucket_secs,
            group,
            sums,
        })
        .collect()
}

/// One summed expression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sum {
    pub expr: &'static str,
    /// A decimal (answered in 10⁻⁹ units, e.g. nano-USD) rather than an integer.
    pub decimal: bool,
}

impl Sum {
    pub const fn int(expr: &'static str) -> Sum {
        Sum {
            expr,
            decimal: false,
        }
    }

    pub const fn decimal(expr: &'static str) -> Sum {
        Sum {
            expr,
            decimal: true,
        }
    }
}

/// One group's sums.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SumRow {
    /// Unix seconds of the bucket's start; 0 without buckets.
    pub bucket_secs: i64,
    pub group: Vec<String>,
    /// In the query's order: integers, or 10⁻⁹ units for decimals.
    pub sums: Vec<i128>,
}

/// Every `source` a request may name.
pub const SOURCES: [&str; 2] = ["clickhouse", "lake"];

/// The stores a node reads: the lake always, ClickHouse when it writes
/// it, and the answers kept for both. Cheap to clone.
#[derive(Clone)]
pub struct Stores {
    lake: Arc<LakeSql>,
    limits: QueryLimits,
    clickhouse: Option<::clickhouse::Client>,
    answers: Arc<AnswerCache>,
    /// Whether queries with a rollup form read the rollups (`sql.rollups`).
    rollups: bool,
}

impl Stores {
    /// `limits` bound the lake's queries (the row limit is raised for
    /// bucketed sums); `clickhouse`, when set, is the default store.
    pub fn new(
        lake: Arc<LakeSql>,
        limits: QueryLimits,
        clickhouse: Option<::clickhouse::Client>,
        answers: Arc<AnswerCache>,
        rollups: bool,
    ) -> Self {
        Stores {
            lake,
            limits,
            clickhouse,
            answers,
            rollups,
        }
    }

    /// The `source`s this node can read, as [`SOURCES`] names them.
    pub fn sources(&self) -> Vec<&'static str> {
        SOURCES
            .into_iter()
            .filter(|s| *s != "clickhouse" || self.clickhouse.is_some())
            .collect()
    }

    /// The store a request's `source` names: `clickhouse`, `lake`, or by
    /// default ClickHouse when the node writes it.
    pub fn pick(&self, source: Option<&str>) -> Result<Store<'_>, QueryError> {
        let use_clickhouse = match source {
            None => self.clickhouse.is_some(),
            Some("clickhouse") => true,
            Some("lake") => false,
            Some(other) => {
                return Err(QueryError::bad_param(
                    "invalid_source",
                    format!("unknown source {other:?}; use clickhouse or lake"),
                ));
            }
        };
        let answers = self.answers.as_ref();
        if !use_clickhouse {
            let mut limits = self.limits;
            limits.max_rows = MAX_LAKE_ROWS;
            let backend = Backend::Lake {
                sql: &self.lake,
                limits,
            };
            return Ok(Store {
                backend,
                answers,
                rollups: self.rollups,
            });
        }
        let client = self.clickhouse.as_ref().ok_or_else(|| {
            QueryError::bad_param(
                "invalid_source",
                "this node writes no ClickHouse: ask source=lake, or set clickhouse.url",
            )
        })?;
        Ok(Store {
            backend: Backend::ClickHouse(client),
            answers,
            rollups: self.rollups,
        })
    }
}

/// Where a request reads.
pub struct Store<'a> {
    backend: Backend<'a>,
    answers: &'a AnswerCache,
    rollups: bool,
}

enum Backend<'a> {
    Lake {
        sql: &'a LakeSql,
        limits: QueryLimits,
    },
    ClickHouse(&'a ::clickhouse::Client),
}

/// Bucket rows one lake query may return before it is refused.
const MAX_LAKE_ROWS: usize = 2_000_000;

impl<'a> Store<'a> {
    pub fn name(&self) -> &'static str {
        match self.backend {
            Backend::Lake { .. } => "lake",
            Backend::ClickHouse(_) => "clickhouse",
        }
    }

    /// The query's rows for `tenant` (`None`: every tenant), from kept
    /// answers where the rows under them have not changed. A missing answer
    /// over more than a day is made of two kept ones (see
    /// [`SumQuery::split_at_last_day`]) and kept whole as well, so a hit
    /// costs one lookup and a miss after today's commit one small query.
    pub async fn sums(
        &self,
        query: &SumQuery,
        tenant: Option<&str>,
    ) -> Result<Vec<SumRow>, StoreError> {
        let parts = query.split_at_last_day();
        self.answers
            .sums(
                self.name(),
                query,
                tenant,
                || self.versions(),
                || async {
                    if let [whole] = parts.as_slice() {
                        return self.compute(whole, tenant).await;
                    }
                    let answers =
                        try_join_all(parts.iter().map(|part| self.kept_part(part, tenant))).await?;
                    Ok(merge(answers))
                },
            )
            .await
    }

    async fn kept_part(
        &self,
        part: &SumQuery,
        tenant: Option<&str>,
    ) -> Result<Vec<SumRow>, StoreError> {
        self.answers
            .sums(
                self.name(),
                part,
                tenant,
                || self.versions(),
                || self.compute(part, tenant),
            )
            .await
    }

    /// `request`'s rendered answer for `tenant`, made of the rows `query`
    /// reads: kept while they do not change (see [`AnswerCache::rendered`]).
    pub async fn rendered<R, RFut>(
        &self,
        query: &SumQuery,
        tenant: Option<&str>,
        request: String,
        render: R,
    ) -> Result<Rendered, StoreError>
    where
        R: FnOnce() -> RFut,
        RFut: Future<Output = Result<Rendered, StoreError>>,
    {
        self.answers
            .rendered(
                self.name(),
                query,
                tenant,
                request,
                || self.versions(),
                render,
            )
            .await
    }

    /// The query's rows, read from the rollups where they answer it.
    async fn compute(
        &self,
        query: &SumQuery,
        tenant: Option<&str>,
    ) -> Result<Vec<SumRow>, StoreError> {
        let pieces = if self.rollups {
            rollup::pieces(query)
        } else {
            vec![SumQuery {
                rollup: None,
                ..query.clone()
            }]
        };
        if let [whole] = pieces.as_slice() {
            return self.compute_piece(whole, tenant).await;
        }
        let answers =
            try_join_all(pieces.iter().map(|piece| self.compute_piece(piece, tenant))).await?;
        Ok(merge(answers))
    }

    async fn compute_piece(
        &self,
        query: &SumQuery,
        tenant: Option<&str>,
    ) -> Result<Vec<SumRow>, StoreError> {
        match &self.backend {
            Backend::Lake { sql, limits } => lake::sums(sql, query, tenant, *limits).await,
            Backend::ClickHouse(client) => clickhouse::sums(client, query, tenant).await,
        }
    }

    async fn versions(&self) -> Result<DataVersions, StoreError> {
        match &self.backend {
            Backend::Lake { sql, limits } => lake::versions(sql, *limits).await,
            Backend::ClickHouse(client) => clickhouse::versions(client).await,
        }
    }
}

/// A sum's text as an integer, or in 10⁻⁹ units for a decimal.
fn parse_sum(text: &str, decimal: bool) -> Result<i128, StoreError> {
    let bad = || StoreError::BadValue(text.to_string());
    if decimal {
        parse_decimal(text).map_err(|_| bad())
    } else {
        text.parse().map_err(|_| bad())
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn query(from: DateTime<Utc>, to: DateTime<Utc>) -> SumQuery {
        SumQuery {
            table: "usage_1m",
            time_column: "window_start",
            from,
            to,
            bucket_secs: Some(3_600),
            groups: vec!["model"],
            sums: vec![Sum::int("requests")],
            condition: None,
            rollup: None,
        }
    }

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 0, 0).unwrap()
    }

    #[test]
    fn a_range_is_split_before_its_last_day_only_when_it_reaches_into_an_earlier_one() {
        let parts = query(at(3, 7), at(20, 9)).split_at_last_day();
        let ranges: Vec<_> = parts.iter().map(|p| (p.from, p.to)).collect();
        assert_eq!(ranges, [(at(3, 7), at(20, 0)), (at(20, 0), at(20, 9))]);
        // Ending at midnight, the last day is the one before.
        let parts = query(at(3, 7), at(20, 0)).split_at_last_day();
        assert_eq!(parts[1].from, at(19, 0));
        assert_eq!(query(at(20, 1), at(20, 9)).split_at_last_day().len(), 1);
        assert_eq!(query(at(20, 0), at(21, 0)).split_at_last_day().len(), 1);
    }

    #[test]
    fn merged_parts_add_up_per_bucket_and_group() {
        let row = |bucket_secs, model: &str, n| SumRow {
            bucket_secs,
            group: vec![model.into()],
            sums: vec![n, 2 * n],
        };
        let merged = merge(vec![
            vec![row(0, "b", 1), row(0, "a", 2)],
            vec![row(0, "a", 3), row(3_600, "a", 4)],
        ]);
        assert_eq!(merged, [row(0, "a", 5), row(0, "b", 1), row(3_600, "a", 4)]);
    }
}
