//! The DataFusion session over the lake.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::error::DataFusionError;
use datafusion::execution::cache::cache_manager::CacheManagerConfig;
use datafusion::execution::context::{SQLOptions, SessionConfig, SessionContext};
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::schema::{
    BUDGET_EVENTS_TABLE, DEAD_LETTERS_TABLE, USAGE_TABLE, table_schema,
};
use somaflow_pipeline::storage::StorageLocation;
use tracing::{Instrument, info_span};

use super::{QueryResult, SqlError};

/// SQL name → lake folder of every table a query can read.
pub const SQL_TABLES: [(&str, &str); 9] = [
    ("conversations", "conversations"),
    ("policy_decisions", "policy_decisions"),
    ("capsule_executions", "capsule_executions"),
    ("workflow_executions", "workflow_executions"),
    ("marketplace_transactions", "marketplace_transactions"),
    ("billing_events", "billing_events"),
    ("dead_letters", DEAD_LETTERS_TABLE),
    (USAGE_TABLE, USAGE_TABLE),
    (BUDGET_EVENTS_TABLE, BUDGET_EVENTS_TABLE),
];

pub struct LakeSql {
    ctx: SessionContext,
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
        let ctx = SessionContext::new_with_config_rt(config, runtime);
        ctx.register_object_store(&location.store_url, location.store.clone());
        debug_assert_eq!(SQL_TABLES.len(), EventKind::ALL.len() + 3);
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
            let table = ListingTable::try_new(table_config).map_err(lake_error)?;
            ctx.register_table(name, Arc::new(table))
                .map_err(lake_error)?;
        }
        Ok(LakeSql { ctx })
    }

    pub fn context(&self) -> &SessionContext {
        &self.ctx
    }

    /// Runs one read-only statement.
    pub async fn query(&self, sql: &str) -> Result<QueryResult, SqlError> {
        let span = info_span!("sql", query = %sql.chars().take(200).collect::<String>());
        async {
            let read_only = SQLOptions::new()
                .with_allow_ddl(false)
                .with_allow_dml(false)
                .with_allow_statements(false);
            let df = self
                .ctx
                .sql_with_options(sql, read_only)
                .await
                .map_err(classify)?;
            let schema = Arc::new(df.schema().as_arrow().clone());
            let batches = df.collect().await.map_err(classify)?;
            Ok(QueryResult { schema, batches })
        }
        .instrument(span)
        .await
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
