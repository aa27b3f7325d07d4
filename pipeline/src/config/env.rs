//! `SOMAFLOW_SECTION__KEY=value` environment overrides. `__` separates
//! levels; values are read as TOML (numbers, booleans, arrays) and fall back
//! to a plain string.

use super::ConfigError;

const PREFIX: &str = "SOMAFLOW_";

/// `SOMAFLOW_…` variables that are not config keys: the config file path
/// and the bearer token (read by the CLI), and the settings of the scripts
/// (`scripts/services.sh`, `python-tools.sh`, `console-tools.sh`).
const NOT_CONFIG: &[&str] = &[
    "CONFIG",
    "TOKEN",
    "SERVICES_DIR",
    "KAFKA_PORT",
    "KAFKA_STORAGE",
    "REDIS_PORT",
    "CLICKHOUSE_PORT",
    "CLICKHOUSE_TCP_PORT",
    "TANSU_ROOT",
    "CACHE",
    "CHROMIUM",
];

pub fn apply_env_overrides(
    table: &mut toml::Table,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    for (name, raw) in vars {
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        if NOT_CONFIG.contains(&rest) {
            continue;
        }
        let path: Vec<String> = rest.split("__").map(|p| p.to_ascii_lowercase()).collect();
        if path.iter().any(|p| p.is_empty()) {
            return Err(ConfigError::key(
                name,
                "empty key segment; use SOMAFLOW_SECTION__KEY",
            ));
        }
        let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
            .ok()
            .and_then(|mut t| t.remove("v"))
            .unwrap_or_else(|| toml::Value::String(raw.clone()));
        let (last, parents) = path
            .split_last()
            .ok_or_else(|| ConfigError::key(&name, "no key"))?;
        let mut current = &mut *table;
        for (i, part) in parents.iter().enumerate() {
            let entry = current
                .entry(part.clone())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            current = entry.as_table_mut().ok_or_else(|| {
                ConfigError::key(
                    path[..=i].join("."),
                    format!("{name} sets a key inside a value that is not a table"),
                )
            })?;
        }
        current.insert(last.clone(), value);
    }
    Ok(())
}
