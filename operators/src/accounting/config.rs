//! `[accounting]`: the price file.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountingConfig {
    /// The price file (`[[prices]]`, USD per 1M tokens by usage type).
    pub prices: PathBuf,
}

impl Default for AccountingConfig {
    fn default() -> Self {
        Self {
            prices: PathBuf::from("config/prices.toml"),
        }
    }
}
