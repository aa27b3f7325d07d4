//! Configuration machinery: one TOML file, `SOMAFLOW_…` environment
//! overrides, and startup errors that name the key and the reason.
//!
//! Each section is declared and validated beside the code it configures
//! (`[clickhouse]` in `sinks/src/clickhouse/config.rs`, `[kafka]` in
//! `sources/src/kafka/config.rs`, …); the binary's `src/config.rs` puts
//! the sections together. The core owns only its own sections: the engine's
//! (`[checkpoint]`, `[pipeline]`, [`engine`]) and the embedded log's
//! (`[log]`, [`crate::log::LogConfig`]).

mod engine;
mod env;

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;

pub use engine::{CheckpointConfig, EngineConfig, NodeConfig, PipelineConfig};
pub use env::apply_env_overrides;

/// A configuration mistake, reported at startup.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {reason}")]
    Syntax { path: PathBuf, reason: String },
    #[error("config key `{key}`: {reason}")]
    Key { key: String, reason: String },
}

impl ConfigError {
    pub fn key(key: impl Into<String>, reason: impl Into<String>) -> Self {
        ConfigError::Key {
            key: key.into(),
            reason: reason.into(),
        }
    }
}

/// The file at `path` (nothing when `None`) as a TOML table, with the
/// `SOMAFLOW_…` overrides of `vars` applied.
pub fn read_table(
    path: Option<&Path>,
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<toml::Table, ConfigError> {
    let mut table = match path {
        Some(p) => {
            let text = std::fs::read_to_string(p).map_err(|source| ConfigError::Read {
                path: p.to_path_buf(),
                source,
            })?;
            toml::from_str::<toml::Table>(&text).map_err(|e| ConfigError::Syntax {
                path: p.to_path_buf(),
                reason: e.to_string(),
            })?
        }
        None => toml::Table::new(),
    };
    apply_env_overrides(&mut table, vars)?;
    Ok(table)
}

/// `table` as `T`; a mistake names the dotted path of the key it is in.
pub fn deserialize<T: DeserializeOwned>(table: toml::Table) -> Result<T, ConfigError> {
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let key = e.path().to_string();
        ConfigError::key(
            if key == "." { String::new() } else { key },
            e.into_inner().to_string(),
        )
    })
}

/// Fails on the first `(key, value)` whose value is 0.
pub fn require_positive(values: &[(&str, u64)]) -> Result<(), ConfigError> {
    match values.iter().find(|(_, value)| *value == 0) {
        Some((key, _)) => Err(ConfigError::key(*key, "must be greater than 0")),
        None => Ok(()),
    }
}

/// An empty value, or an http(s) URL; `example` shows what one looks like.
pub fn optional_http_url(key: &str, url: &str, example: &str) -> Result<(), ConfigError> {
    if url.is_empty() || url.starts_with("http://") || url.starts_with("https://") {
        return Ok(());
    }
    Err(ConfigError::key(
        key,
        format!("{url:?} is not an http(s) URL ({example})"),
    ))
}

/// A map of pass-through settings whose values may be written as strings,
/// numbers or booleans (as `SOMAFLOW_…` overrides produce them); all are
/// kept as text. For `#[serde(deserialize_with = …)]`.
pub fn scalars_as_strings<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<std::collections::BTreeMap<String, String>, D::Error> {
    let raw = std::collections::BTreeMap::<String, toml::Value>::deserialize(d)?;
    raw.into_iter()
        .map(|(k, v)| match v {
            toml::Value::String(s) => Ok((k, s)),
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                Ok((k, v.to_string()))
            }
            other => Err(serde::de::Error::custom(format!(
                "`{k}` must be a string, number or boolean, got {}",
                other.type_str()
            ))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_zero_is_named() {
        require_positive(&[("a", 1), ("b", 2)]).unwrap();
        let e = require_positive(&[("a", 1), ("b", 0), ("c", 0)]).unwrap_err();
        assert_eq!(e.to_string(), "config key `b`: must be greater than 0");
    }
}
