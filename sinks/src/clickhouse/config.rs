//! `[clickhouse]`: the server a `clickhouse` sink writes to (and the query
//! side reads), how it batches and how it retries.

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::{ConfigError, require_positive};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickHouseConfig {
    /// HTTP interface, e.g. `http://127.0.0.1:18123` (`scripts/services.sh start clickhouse`).
    pub url: String,
    /// Created by the migrations when missing.
    pub database: String,
    pub user: String,
    pub password: String,
    /// Apply `sql/clickhouse/` migrations at startup (also `somaflow migrate`).
    pub migrate: bool,
    /// A table's rows are inserted once this many are buffered…
    pub batch_rows: usize,
    /// …or once the oldest buffered row waited this long, and at every checkpoint barrier.
    pub flush_interval_ms: u64,
    /// Inserts in flight at once, over all tables of one sink.
    pub max_concurrent_inserts: usize,
    /// LZ4 compression of insert bodies.
    pub compression: bool,
    /// First retry delay after a transient failure; doubles up to `retry_max_ms`, with jitter.
    pub retry_initial_ms: u64,
    pub retry_max_ms: u64,
    /// An insert that gets no answer in this time is retried.
    pub insert_timeout_secs: u64,
}

impl Default for ClickHouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:18123".into(),
            database: "somaflow".into(),
            user: "default".into(),
            password: String::new(),
            migrate: true,
            batch_rows: 50_000,
            flush_interval_ms: 1_000,
            max_concurrent_inserts: 4,
            compression: true,
            retry_initial_ms: 100,
            retry_max_ms: 10_000,
            insert_timeout_secs: 60,
        }
    }
}

impl ClickHouseConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        let url = url::Url::parse(&self.url)
            .map_err(|e| ConfigError::key("clickhouse.url", format!("{:?}: {e}", self.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(ConfigError::key(
                "clickhouse.url",
                "must be the HTTP interface, http://host:port (ClickHouse listens on 8123 by default)",
            ));
        }
        if !is_identifier(&self.database) {
            return Err(ConfigError::key(
                "clickhouse.database",
                "letters, digits and `_` only, not starting with a digit",
            ));
        }
        require_positive(&[
            ("clickhouse.batch_rows", self.batch_rows as u64),
            ("clickhouse.flush_interval_ms", self.flush_interval_ms),
            (
                "clickhouse.max_concurrent_inserts",
                self.max_concurrent_inserts as u64,
            ),
            ("clickhouse.retry_initial_ms", self.retry_initial_ms),
            ("clickhouse.insert_timeout_secs", self.insert_timeout_secs),
        ])?;
        if self.retry_max_ms < self.retry_initial_ms {
            return Err(ConfigError::key(
                "clickhouse.retry_max_ms",
                "must be at least clickhouse.retry_initial_ms",
            ));
        }
        Ok(())
    }
}

/// A name that can be written into SQL without quoting.
pub fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_mistakes_are_named() {
        ClickHouseConfig::default().validate().unwrap();
        let bad = ClickHouseConfig {
            database: "x; DROP".into(),
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("clickhouse.database")
        );
        let bad = ClickHouseConfig {
            url: "tcp://h:9000".into(),
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("clickhouse.url")
        );
        let bad = ClickHouseConfig {
            batch_rows: 0,
            ..Default::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("batch_rows")
        );
    }
}
