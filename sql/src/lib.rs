//! The query side: everything that answers a question about the data.
//!
//! * [`session`]: SQL over the Parquet lake (a DataFusion session with every
//!   lake table registered, hive partitions `date` and `hour` as columns,
//!   read-only and tenant-scoped execution) and [`format`]ted results.
//! * [`store`]: grouped sums from either store (the lake or ClickHouse),
//!   and the answers kept until the rows under them change.
//! * [`usage`], [`ledger`], [`forecast`], [`budgets`]: usage over windows,
//!   billing ledgers, forecasts and anomaly scans, budget status.
//!
//! Errors are typed ([`SqlError`], [`QueryError`], [`store::StoreError`]);
//! the HTTP layer (`somaflow-api`) maps them to statuses. Nothing here
//! knows HTTP.

pub mod budgets;
pub mod config;
pub mod error;
pub mod forecast;
pub mod format;
pub mod ledger;
pub mod money;
pub mod session;
pub mod store;
pub mod usage;

pub use config::SqlConfig;
pub use error::QueryError;
pub use format::QueryResult;
pub use session::{LakeSql, QueryLimits, SQL_TABLES, TenantScope};

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The query is wrong (syntax, unknown column, not read-only): the caller's to fix.
    #[error("{0}")]
    Query(String),
    /// The result has more rows than the limit.
    #[error(
        "the result has more than {0} rows; add LIMIT, filter on date/hour, or aggregate (the limit is sql.max_rows)"
    )]
    TooManyRows(usize),
    /// The query ran out of time and was stopped.
    #[error(
        "the query ran longer than {0:?} and was stopped; filter on the date/hour partitions or aggregate (the limit is sql.timeout_ms)"
    )]
    Timeout(std::time::Duration),
    /// The lake could not be opened or read.
    #[error("lake: {0}")]
    Lake(String),
}

impl SqlError {
    /// A short machine-readable name of the error.
    pub fn code(&self) -> &'static str {
        match self {
            SqlError::Query(_) => "invalid_query",
            SqlError::TooManyRows(_) => "too_many_rows",
            SqlError::Timeout(_) => "query_timeout",
            SqlError::Lake(_) => "lake",
        }
    }

    pub fn is_client_error(&self) -> bool {
        !matches!(self, SqlError::Lake(_))
    }
}
