//! `[policy]`: the rule file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// The rule file (`[[rules]]` with id, table, when, decision, reason).
    pub rules: PathBuf,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            rules: PathBuf::from("config/policies.toml"),
        }
    }
}
