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
pub mod version;

use std::future::Future;

use chrono::{DateTime, Utc};
use somaflow_pipeline::events::decimal::parse_decimal;
use somaflow_sql::{LakeSql, QueryLimits};

use crate::error::ApiError;
use crate::state::AppState;
use crate::store::cache::{AnswerCache, Rendered};
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

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the lake: {0}")]
    Lake(String),
    /// The lake query ran past `sql.timeout_ms`: the node is busy.
    #[error(
        "the answer took longer than {0:?} to compute and was given up; the node is busy, retry shortly"
    )]
    Timeout(std::time::Duration),
    #[error("ClickHouse: {0}")]
    ClickHouse(String),
    #[error("the store answered a sum that is not a number: {0:?}")]
    BadValue(String),
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::ClickHouse(_) | StoreError::Timeout(_) => ApiError::Unavailable {
                message: e.to_string(),
                retry_after_secs: 5,
            },
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

/// Where a request reads.
pub struct Store<'a> {
    backend: Backend<'a>,
    answers: &'a AnswerCache,
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
    /// The store a request's `source` names: `clickhouse`, `lake`, or by
    /// default ClickHouse when the node writes it.
    pub fn pick(state: &'a AppState, source: Option<&str>) -> Result<Store<'a>, ApiError> {
        let use_clickhouse = match source {
            None => state.usage_clickhouse.is_some(),
            Some("clickhouse") => true,
            Some("lake") => false,
            Some(other) => {
                return Err(ApiError::bad_request(
                    "invalid_source",
                    format!("unknown source {other:?}; use clickhouse or lake"),
                ));
            }
        };
        let answers = state.answers.as_ref();
        if !use_clickhouse {
            let mut limits = state.sql_limits;
            limits.max_rows = MAX_LAKE_ROWS;
            let backend = Backend::Lake {
                sql: &state.sql,
                limits,
            };
            return Ok(Store { backend, answers });
        }
        let client = state
            .usage_clickhouse
            .as_ref()
            .ok_or_else(|| ApiError::NotConfigured {
                code: "clickhouse_not_configured",
                message: "this node writes no ClickHouse; ask source=lake or set clickhouse.url"
                    .into(),
            })?;
        Ok(Store {
            backend: Backend::ClickHouse(client),
            answers,
        })
    }

    pub fn name(&self) -> &'static str {
        match self.backend {
            Backend::Lake { .. } => "lake",
            Backend::ClickHouse(_) => "clickhouse",
        }
    }

    /// The query's rows for `tenant` (`None`: every tenant).
    pub async fn sums(
        &self,
        query: &SumQuery,
        tenant: Option<&str>,
    ) -> Result<Vec<SumRow>, StoreError> {
        self.answers
            .sums(
                self.name(),
                query,
                tenant,
                || self.versions(),
                || self.compute(query, tenant),
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

    async fn compute(
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
