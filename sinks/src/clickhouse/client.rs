//! The HTTP client somaflow talks to ClickHouse with, and the server's
//! version (which picks the DDL variant and the insert settings).

use super::ClickHouseError;
use super::config::ClickHouseConfig;

/// `major.minor` of the server, from `SELECT version()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ServerVersion {
    pub major: u32,
    pub minor: u32,
}

impl ServerVersion {
    pub fn parse(text: &str) -> Result<ServerVersion, ClickHouseError> {
        let mut parts = text.trim().split('.').map(str::parse::<u32>);
        match (parts.next(), parts.next()) {
            (Some(Ok(major)), Some(Ok(minor))) => Ok(ServerVersion { major, minor }),
            _ => Err(ClickHouseError::Version(text.to_string())),
        }
    }

    /// 22.8 (an LTS release) and later: DateTime64, LowCardinality without
    /// a setting, and insert dedup tokens on non-replicated tables.
    pub fn is_current(self) -> bool {
        self >= ServerVersion {
            major: 22,
            minor: 8,
        }
    }
}

/// A client for `config`, in its database unless `database` overrides it.
/// Validation stays off: 18.16 cannot describe tables the way the crate's
/// validation asks.
pub fn connect(config: &ClickHouseConfig, database: Option<&str>) -> clickhouse::Client {
    let client = clickhouse::Client::default()
        .with_url(config.url.trim_end_matches('/'))
        .with_user(&config.user)
        .with_database(database.unwrap_or(&config.database))
        .with_validation(false)
        .with_compression(if config.compression {
            clickhouse::Compression::Lz4
        } else {
            clickhouse::Compression::None
        });
    if config.password.is_empty() {
        client
    } else {
        client.with_password(&config.password)
    }
}

pub fn client_error(
    config: &ClickHouseConfig,
) -> impl Fn(clickhouse::error::Error) -> ClickHouseError {
    let url = config.url.clone();
    move |source| ClickHouseError::Client {
        url: url.clone(),
        source,
    }
}

pub async fn server_version(
    client: &clickhouse::Client,
    config: &ClickHouseConfig,
) -> Result<ServerVersion, ClickHouseError> {
    let text = client
        .query("SELECT version()")
        .fetch_one::<String>()
        .await
        .map_err(client_error(config))?;
    ServerVersion::parse(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_order_and_pick_the_ddl() {
        assert!(!ServerVersion::parse("18.16.1").unwrap().is_current());
        assert!(ServerVersion::parse("24.3.2.23").unwrap().is_current());
        assert!(ServerVersion::parse("22.8.1").unwrap().is_current());
        assert!(!ServerVersion::parse("22.7.9").unwrap().is_current());
        assert!(ServerVersion::parse("dev").is_err());
    }
}
