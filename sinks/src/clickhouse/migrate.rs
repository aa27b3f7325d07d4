//! `sql/clickhouse/` migrations: numbered files applied in order and
//! recorded in `schema_migrations`. Each file has a variant for ClickHouse
//! 18.16 (the base folder) and may have one for current releases
//! (`current/`), picked by `SELECT version()`.

use somaflow_pipeline::config::ClickHouseConfig;
use tracing::info;

use super::ClickHouseError;
use super::client::{ServerVersion, client_error, connect, server_version};

/// One numbered migration file.
pub struct Migration {
    pub version: u32,
    pub name: &'static str,
    /// For 18.16 and every release up to [`ServerVersion::is_current`].
    pub base: &'static str,
    /// For current releases, when their DDL differs.
    pub current: Option<&'static str>,
}

impl Migration {
    pub fn sql(&self, server: ServerVersion) -> &'static str {
        match self.current {
            Some(current) if server.is_current() => current,
            _ => self.base,
        }
    }

    /// The statements of the file: `;`-separated, `--` comments dropped.
    pub fn statements(&self, server: ServerVersion) -> Vec<String> {
        let text: String = self
            .sql(server)
            .lines()
            .filter(|l| !l.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        text.split(';')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

macro_rules! migration {
    ($version:expr, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            base: include_str!(concat!("../../../sql/clickhouse/", $name, ".sql")),
            current: Some(include_str!(concat!(
                "../../../sql/clickhouse/current/",
                $name,
                ".sql"
            ))),
        }
    };
}

pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "001_events"),
    migration!(2, "002_dead_letters"),
    migration!(3, "003_usage"),
    migration!(4, "004_platform"),
];

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub server: ServerVersion,
    pub applied: Vec<&'static str>,
    pub already: usize,
}

/// Creates the database when missing and applies every migration not yet
/// recorded. Statements are idempotent (`IF NOT EXISTS`), so a run cut
/// short is finished by the next.
pub async fn migrate(config: &ClickHouseConfig) -> Result<MigrationReport, ClickHouseError> {
    let err = client_error(config);
    let admin = connect(config, Some("system"));
    let server = server_version(&admin, config).await?;
    admin
        .query(&format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            config.database
        ))
        .execute()
        .await
        .map_err(&err)?;
    let client = connect(config, None);
    client
        .query(
            "CREATE TABLE IF NOT EXISTS schema_migrations \
             (version UInt32, name String, applied_at DateTime) \
             ENGINE = MergeTree ORDER BY version",
        )
        .execute()
        .await
        .map_err(&err)?;
    let done: Vec<u32> = client
        .query("SELECT version FROM schema_migrations")
        .fetch_all::<u32>()
        .await
        .map_err(&err)?;
    let mut report = MigrationReport {
        server,
        applied: Vec::new(),
        already: 0,
    };
    for migration in MIGRATIONS {
        if done.contains(&migration.version) {
            report.already += 1;
            continue;
        }
        let failed = |source| ClickHouseError::Migration {
            name: migration.name.to_string(),
            source: Box::new(source),
        };
        for statement in migration.statements(server) {
            client
                .query(&statement)
                .execute()
                .await
                .map_err(|e| failed(err(e)))?;
        }
        client
            .query(&format!(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES ({}, '{}', now())",
                migration.version, migration.name
            ))
            .execute()
            .await
            .map_err(|e| failed(err(e)))?;
        info!(migration = migration.name, database = %config.database, "ClickHouse migration applied");
        report.applied.push(migration.name);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_listed_once_in_order() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sql/clickhouse");
        let mut files: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| {
                let name = e.unwrap().file_name().into_string().unwrap();
                name.strip_suffix(".sql").map(str::to_string)
            })
            .collect();
        files.sort();
        let listed: Vec<&str> = MIGRATIONS.iter().map(|m| m.name).collect();
        assert_eq!(
            files, listed,
            "sql/clickhouse/*.sql and MIGRATIONS disagree"
        );
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(m.version as usize, i + 1);
            assert!(m.name.starts_with(&format!("{:03}_", m.version)));
        }
    }

    #[test]
    fn the_version_picks_the_variant() {
        let old = ServerVersion {
            major: 18,
            minor: 16,
        };
        let new = ServerVersion {
            major: 24,
            minor: 8,
        };
        let events = &MIGRATIONS[0];
        assert!(!events.statements(old).concat().contains("DateTime64"));
        assert!(events.statements(new).concat().contains("DateTime64"));
        let statements = events.statements(old);
        assert_eq!(statements.len(), 6);
        assert!(
            statements
                .iter()
                .all(|s| s.starts_with("CREATE TABLE IF NOT EXISTS"))
        );
    }
}
