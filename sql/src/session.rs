//! The DataFusion session over the lake, and the per-tenant sessions that
//! see it only through views filtered on the tenant.

use std::sync::Arc;
use std::time::Duration;

use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{TableProvider, view::ViewTable};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::provider_as_source;
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
use futures::StreamExt;
use somaflow_pipeline::compaction::LakeView;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::schema::{
    ACTIVITY_DAY_TABLE, ACTIVITY_HOUR_TABLE, BUDGET_EVENTS_TABLE, DEAD_LETTERS_TABLE,
    ROLLUP_DAY_TABLE, ROLLUP_HOUR_TABLE, USAGE_TABLE, table_schema,
};
use somaflow_pipeline::publications::{self, PublicationRecord};
use somaflow_pipeline::storage::StorageLocation;
use tracing::{Instrument, info_span};

use crate::error::SqlError;
use crate::format::QueryResult;

/// SQL name → lake folder of every table a query can read.
pub const SQL_TABLES: [(&str, &str); 13] = [
    ("conversations", "conversations"),
    ("policy_decisions", "policy_decisions"),
    ("capsule_executions", "capsule_executions"),
    ("workflow_executions", "workflow_executions"),
    ("marketplace_transactions", "marketplace_transactions"),
    ("billing_events", "billing_events"),
    ("dead_letters", DEAD_LETTERS_TABLE),
    (USAGE_TABLE, USAGE_TABLE),
    (ROLLUP_HOUR_TABLE, ROLLUP_HOUR_TABLE),
    (ROLLUP_DAY_TABLE, ROLLUP_DAY_TABLE),
    (ACTIVITY_HOUR_TABLE, ACTIVITY_HOUR_TABLE),
    (ACTIVITY_DAY_TABLE, ACTIVITY_DAY_TABLE),
    (BUDGET_EVENTS_TABLE, BUDGET_EVENTS_TABLE),
];

pub struct LakeSql {
    /// Every table, every tenant: for admins and the CLI.
    ctx: SessionContext,
    /// What a tenant session is built from.
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    tables: Vec<(&'static str, Arc<dyn TableProvider>)>,
    /// Where the lake is, for [`LakeSql::publications`].
    location: StorageLocation,
}

/// Whose rows a query may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TenantScope<'a> {
    All,
    Tenant(&'a str),
}

/// Bounds on one query's run.
#[derive(Debug, Clone, Copy)]
pub struct QueryLimits {
    pub timeout: Duration,
    pub max_rows: usize,
}

impl QueryLimits {
    pub const NONE: QueryLimits = QueryLimits {
        timeout: Duration::MAX,
        max_rows: usize::MAX,
    };
}

fn lake_error(e: impl std::fmt::Display) -> SqlError {
    SqlError::Lake(e.to_string())
}

impl LakeSql {
    /// Opens a session over the lake at `lake_url` (local path, `file://`, `s3://`).
    pub async fn open(lake_url: &str) -> Result<LakeSql, SqlError> {
        let location = StorageLocation::parse(lake_url).map_err(lake_error)?;
        let mut config = SessionConfig::new().with_information_schema(true);
        let opts = config.options_mut();
        opts.execution.parquet.pushdown_filters = true;
        opts.execution.parquet.reorder_filters = true;
        // The lake changes at every checkpoint commit; DataFusion's default
        // list-files cache never expires, so a long-lived session (the API
        // server) would stop seeing new files. Committed files never change,
        // so the statistics and footer caches stay on.
        let runtime = RuntimeEnvBuilder::new()
            .with_cache_manager(CacheManagerConfig::default().with_list_files_cache_limit(0))
            .build_arc()
            .map_err(lake_error)?;
        // Through the lake view: a listing leaves out files a compacted
        // file replaced, so a query never counts a row twice.
        runtime.register_object_store(
            &location.store_url,
            Arc::new(LakeView::new(location.store.clone())),
        );
        let ctx = SessionContext::new_with_config_rt(config.clone(), runtime.clone());
        let mut tables: Vec<(&'static str, Arc<dyn TableProvider>)> = Vec::new();
        debug_assert_eq!(SQL_TABLES.len(), EventKind::ALL.len() + 7);
        for (name, folder) in SQL_TABLES {
            let schema = table_schema(folder)
                .ok_or_else(|| lake_error(format!("no schema for {folder}")))?;
            // Make sure the folder exists so an empty lake lists as empty tables.
            let url = ListingTableUrl::parse(location.folder_url(folder)).map_err(lake_error)?;
            let options = ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet")
                .with_table_partition_cols(vec![
                    ("date".into(), DataType::Utf8),
                    ("hour".into(), DataType::Utf8),
                ]);
            let table_config = ListingTableConfig::new(url)
                .with_listing_options(options)
                .with_schema(schema);
            let table: Arc<dyn TableProvider> =
                Arc::new(ListingTable::try_new(table_config).map_err(lake_error)?);
            ctx.register_table(name, table.clone())
                .map_err(lake_error)?;
            tables.push((name, table));
        }
        Ok(LakeSql {
            ctx,
            config,
            runtime,
            tables,
            location,
        })
    }

    /// Every lake writer's publication record (see
    /// [`somaflow_pipeline::publications`]), ordered by writer: what changed
    /// where, for readers that keep answers.
    pub async fn publications(&self) -> Result<Vec<(String, PublicationRecord)>, SqlError> {
        publications::read_all(&self.location)
            .await
            .map_err(lake_error)
    }

    /// A session in which every table name is a view of the lake table
    /// filtered on `tenant_id = tenant`. The lake tables themselves are not
    /// registered in it under any name, so no SQL written against it
    /// (joins, subqueries, UNION, information_schema) can reach another
    /// tenant's rows; URL tables (`FROM 'path.parquet'`) stay off and the
    /// only table functions are `range` and `generate_series`, which read
    /// nothing. Cheap: the tables, caches and object stores are shared.
    fn tenant_context(&self, tenant: &str) -> Result<SessionContext, SqlError> {
        let ctx = SessionContext::new_with_config_rt(self.config.clone(), self.runtime.clone());
        for (name, table) in &self.tables {
            let plan = LogicalPlanBuilder::scan(*name, provider_as_source(table.clone()), None)
                .and_then(|b| b.filter(col("tenant_id").eq(lit(tenant))))
                .and_then(|b| b.build())
                .map_err(lake_error)?;
            ctx.register_table(*name, Arc::new(ViewTable::new(plan, None)))
                .map_err(lake_error)?;
        }
        Ok(ctx)
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs one read-only statement over every tenant, without limits.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, SqlError> {
        self.query_scoped(sql, TenantScope::All, QueryLimits::NONE)
            .await
    }

    /// Runs one read-only statement over `scope`'s rows within `limits`.
    pub async fn query_scoped(
        &self,
        sql: &str,
        scope: TenantScope<'_>,
        limits: QueryLimits,
    ) -> Result<QueryResult, SqlError> {
        let tenant = match scope {
            TenantScope::All => None,
            TenantScope::Tenant(t) => Some(t),
        };
        let span = info_span!("sql", tenant, query = %sql.chars().take(200).collect::<String>());
        async {
            let ctx = match scope {
                TenantScope::All => self.ctx.clone(),
                TenantScope::Tenant(t) => self.tenant_context(t)?,
            };
            // On its own task, so the deadline fires even while the plan is
            // busy computing; aborting it (at the deadline, or when the
            // caller goes away and this future is dropped) stops the query.
            let run = AbortOnDrop(tokio::spawn(run_read_only(
                ctx,
                sql.to_string(),
                limits.max_rows,
            )));
            match tokio::time::timeout(limits.timeout, run).await {
                Ok(Ok(result)) => result,
                Ok(Err(join)) => Err(SqlError::Lake(format!("the query task failed: {join}"))),
                Err(_) => Err(SqlError::Timeout(limits.timeout)),
            }
        }
        .instrument(span)
        .await
    }
}

/// Plans `sql` as a read-only statement and collects at most `max_rows`.
async fn run_read_only(
    ctx: SessionContext,
    sql: String,
    max_rows: usize,
) -> Result<QueryResult, SqlError> {
    let read_only = SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx
        .sql_with_options(&sql, read_only)
        .await
        .map_err(classify)?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    let mut stream = df.execute_stream().await.map_err(classify)?;
    let mut batches = Vec::new();
    let mut rows = 0usize;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(classify)?;
        rows = rows.saturating_add(batch.num_rows());
        if rows > max_rows {
            return Err(SqlError::TooManyRows(max_rows));
        }
        batches.push(batch);
    }
    Ok(QueryResult { schema, batches })
}

/// A task aborted when its handle is dropped.
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = Result<T, tokio::task::JoinError>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx)
    }
}

/// Planning and SQL errors are the query's fault; I/O and object-store
/// errors are the lake's.
fn classify(e: DataFusionError) -> SqlError {
    match e.find_root() {
        DataFusionError::ObjectStore(_) | DataFusionError::IoError(_) => {
            SqlError::Lake(e.to_string())
        }
        root => {
            let msg = root.to_string();
            if msg.contains("not supported")
                && (msg.contains("DDL") || msg.contains("DML") || msg.contains("Statement"))
            {
                SqlError::Query(format!(
                    "only read queries (SELECT, WITH, EXPLAIN, SHOW) are allowed: {msg}"
                ))
            } else {
                SqlError::Query(msg)
            }
        }
    }
}
