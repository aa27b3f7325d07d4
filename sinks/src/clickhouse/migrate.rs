//! `sql/clickhouse/` migrations: numbered files applied in order and
//! recorded in `schema_migrations`. Each file has a variant for ClickHouse
//! 18.16 (the base folder) and may have one for current releases
//! (`current/`), picked by `SELECT version()`.

use tracing::info;

use super::ClickHouseError;
use super::client::{ServerVersion, client_error, connect, server_version};
use super::config::ClickHouseConfig;

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
    migration!(5, "005_rollups"),
    migration!(6, "006_activity"),
    migration!(7, "007_price_tiers"),
];

/// What [`migrate`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationReport {
    pub server: ServerVersion,
    pub applied: Vec<&'static str>,
    pub already: usize,
}

/// Creates the database when missing and applies every migration not yet
/// recorded. Statements are idempotent (`IF NOT EXISTS`, and column
/// additions skip the columns already there), so a run cut short is
/// finished by the next and two workers starting together both succeed.
pub async fn migrate(config: &ClickHouseConfig) -> Result<MigrationReport, ClickHouseError> {
    let err = client_error(config);
    let admin = connect(config, Some("system"));
    let server = server_version(&admin, config).await?;
    apply(
        &admin,
        config,
        &format!("CREATE DATABASE IF NOT EXISTS {}", config.database),
    )
    .await?;
    let client = connect(config, None);
    apply(
        &client,
        config,
        "CREATE TABLE IF NOT EXISTS schema_migrations \
         (version UInt32, name String, applied_at DateTime) \
         ENGINE = MergeTree ORDER BY version",
    )
    .await?;
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
            apply(&client, config, &statement).await.map_err(failed)?;
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

/// Runs one statement. `ALTER TABLE … ADD COLUMN` has no `IF NOT EXISTS`
/// on 18.16, so it is cut down to the columns still missing; when another
/// worker adds them between the check and the statement, its failure is
/// an already-applied migration, not an error.
async fn apply(
    client: &clickhouse::Client,
    config: &ClickHouseConfig,
    statement: &str,
) -> Result<(), ClickHouseError> {
    let err = client_error(config);
    let Some(alter) = ColumnAddition::parse(statement) else {
        return match client.query(statement).execute().await {
            Err(e) if statement.starts_with("CREATE") && already_exists(&e) => Ok(()),
            other => other.map_err(err),
        };
    };
    let existing = table_columns(client, config, &alter.table).await?;
    let Some(missing) = alter.without(&existing) else {
        return Ok(());
    };
    match client.query(&missing).execute().await {
        Ok(()) => Ok(()),
        Err(e) => {
            let existing = table_columns(client, config, &alter.table).await?;
            if alter.without(&existing).is_none() {
                Ok(())
            } else {
                Err(err(e))
            }
        }
    }
}

/// 18.16 answers a `CREATE … IF NOT EXISTS` that races another worker's
/// with "already exists" (codes 57 for tables and views, 82 for
/// databases); the object is there either way.
fn already_exists(error: &clickhouse::error::Error) -> bool {
    let text = error.to_string();
    (text.contains("Code: 57") || text.contains("Code: 82")) && text.contains("already exists")
}

async fn table_columns(
    client: &clickhouse::Client,
    config: &ClickHouseConfig,
    table: &str,
) -> Result<Vec<String>, ClickHouseError> {
    client
        .query("SELECT name FROM system.columns WHERE database = ? AND table = ?")
        .bind(config.database.as_str())
        .bind(table)
        .fetch_all::<String>()
        .await
        .map_err(client_error(config))
}

/// An `ALTER TABLE t ADD COLUMN a T, ADD COLUMN b U` statement, split into
/// its column clauses.
#[derive(Debug, PartialEq, Eq)]
struct ColumnAddition {
    table: String,
    /// `(column name, whole clause after ADD COLUMN)`.
    columns: Vec<(String, String)>,
}

impl ColumnAddition {
    fn parse(statement: &str) -> Option<ColumnAddition> {
        let rest = statement.trim().strip_prefix("ALTER TABLE")?;
        let mut pieces = rest.split("ADD COLUMN");
        let table = pieces.next()?.trim().to_string();
        let columns: Vec<(String, String)> = pieces
            .map(|clause| clause.trim().trim_end_matches(',').trim().to_string())
            .filter_map(|clause| {
                let name = clause.split_whitespace().next()?.to_string();
                Some((name, clause))
            })
            .collect();
        (!table.is_empty() && !columns.is_empty()).then_some(ColumnAddition { table, columns })
    }

    /// The statement for the columns not in `existing`, or `None` when
    /// every column is there.
    fn without(&self, existing: &[String]) -> Option<String> {
        let missing: Vec<String> = self
            .columns
            .iter()
            .filter(|(name, _)| !existing.contains(name))
            .map(|(_, clause)| format!("ADD COLUMN {clause}"))
            .collect();
        (!missing.is_empty()).then(|| format!("ALTER TABLE {} {}", self.table, missing.join(", ")))
    }
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

    #[test]
    fn column_additions_keep_only_the_missing_columns() {
        let alter = ColumnAddition::parse(
            "ALTER TABLE conversations\n    ADD COLUMN cost_usd Nullable(Decimal(38, 9)),\n    ADD COLUMN price_id Nullable(String)",
        )
        .unwrap();
        assert_eq!(alter.table, "conversations");
        assert_eq!(
            alter.columns,
            vec![
                (
                    "cost_usd".to_string(),
                    "cost_usd Nullable(Decimal(38, 9))".to_string()
                ),
                (
                    "price_id".to_string(),
                    "price_id Nullable(String)".to_string()
                ),
            ]
        );
        assert_eq!(
            alter.without(&["cost_usd".to_string()]).as_deref(),
            Some("ALTER TABLE conversations ADD COLUMN price_id Nullable(String)")
        );
        assert_eq!(
            alter.without(&["price_id".to_string(), "cost_usd".to_string()]),
            None
        );
        assert!(ColumnAddition::parse("DROP TABLE IF EXISTS usage_1h").is_none());
    }

    #[test]
    fn every_column_addition_in_the_migrations_parses() {
        for m in MIGRATIONS {
            for server in [
                ServerVersion {
                    major: 18,
                    minor: 16,
                },
                ServerVersion {
                    major: 24,
                    minor: 8,
                },
            ] {
                for statement in m.statements(server) {
                    if statement.starts_with("ALTER TABLE") {
                        let alter = ColumnAddition::parse(&statement)
                            .unwrap_or_else(|| panic!("{}: {statement}", m.name));
                        assert_eq!(
                            alter.columns.len(),
                            statement.matches("ADD COLUMN").count(),
                            "{}: {statement}",
                            m.name
                        );
                    }
                }
            }
        }
    }
}
