//! The ClickHouse connector: its `[clickhouse]` section, client, errors,
//! health probe, migrations, and the sink: one writer per table, batched RowBinary
//! inserts through the `clickhouse` crate, transient failures retried
//! forever with backoff while backpressure slows the source, permanent
//! refusals sent to the `dead_letters` table with the server's message.
//!
//! Rows are inserted as they arrive (at `batch_rows`, at the flush
//! interval, and at every barrier); a barrier completes only once every
//! insert before it was acknowledged or dead-lettered. A crash replays the
//! rows since the last checkpoint; the tables are `ReplacingMergeTree`s
//! keyed on `event_id` (dead letters on their source position), so the
//! replayed copies collapse and dedup-aware reads (`FINAL`) are exact.

mod client;
mod config;
mod encode;
mod error;
mod health;
mod layout;
mod migrate;
mod sink;
mod staged;
mod writer;

pub use client::{ServerVersion, connect, server_version};
pub use config::{ClickHouseConfig, is_identifier};
pub use encode::{EncodedBlock, encode};
pub use error::ClickHouseError;
pub use health::ClickHouseHealth;
pub use layout::TableLayout;
pub use migrate::{MIGRATIONS, Migration, MigrationReport, migrate};
pub use sink::ClickHouseSink;
pub use staged::{StagedUsage, staging_table};

/// The ClickHouse table of dead letters.
pub const DEAD_LETTERS: &str = "dead_letters";

/// The ClickHouse table rows of an engine table go to.
pub fn clickhouse_table(table: &str) -> &str {
    if table == somaflow_pipeline::events::schema::DEAD_LETTERS_TABLE {
        DEAD_LETTERS
    } else {
        table
    }
}
