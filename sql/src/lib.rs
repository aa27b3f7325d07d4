//! SQL over the Parquet lake: a DataFusion session with every lake table
//! registered (hive partitions `date` and `hour` as columns), read-only
//! query execution, and result formats (JSON rows, CSV, aligned text).

mod format;
mod session;

pub use format::QueryResult;
pub use session::{LakeSql, SQL_TABLES};

#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The query is wrong (syntax, unknown column, not read-only): the caller's to fix.
    #[error("{0}")]
    Query(String),
    /// The lake could not be opened or read.
    #[error("lake: {0}")]
    Lake(String),
}

impl SqlError {
    pub fn is_client_error(&self) -> bool {
        matches!(self, SqlError::Query(_))
    }
}
