//! The query side: everything that answers a question about the data.
//!
//! * [`session`]: SQL over the Parquet lake (a DataFusion session with every
//!   lake table registered, hive partitions `date` and `hour` as columns,
//!   read-only and tenant-scoped execution) and [`format`]ted results.
//! * [`store`]: grouped sums from either store (the lake or ClickHouse),
//!   and the answers kept until the rows under them change.
//! * [`usage`], [`ledger`], [`forecast`], [`budgets`]: usage over windows,
//!   billing ledgers, forecasts and anomaly scans, budget status.
//! * [`catalogue`]: every grouped sum the read endpoints ask a store, for
//!   tests that run them all.
//!
//! Errors are typed ([`SqlError`], [`QueryError`], [`store::StoreError`]);
//! the HTTP layer (`somaflow-api`) maps them to statuses. Nothing here
//! knows HTTP: the types a question is read from or an answer written as
//! derive `serde` and `utoipa` traits (a schema, not a server), so the
//! API's OpenAPI document describes them where they are defined.

pub mod budgets;
pub mod catalogue;
pub mod checks;
pub mod config;
pub mod contract;
pub mod error;
pub mod forecast;
pub mod format;
pub mod kamachiq;
pub mod ledger;
pub mod marketplace;
pub mod money;
pub mod session;
pub mod store;
pub mod usage;

pub use config::SqlConfig;
pub use error::{QueryError, SqlError};
pub use format::QueryResult;
pub use session::{LakeSql, QueryLimits, SQL_TABLES, TenantScope};
