//! `[window]`: the usage window's length.

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::ConfigError;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WindowConfig {
    /// Tumbling window length in event time.
    pub size_secs: u64,
}

impl Default for WindowConfig {
    fn default() -> Self {
        Self { size_secs: 60 }
    }
}

impl WindowConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.size_secs == 0 || 3_600 % self.size_secs != 0 {
            return Err(ConfigError::key(
                "window.size_secs",
                format!(
                    "{} must be greater than 0 and divide an hour (60, 300, 3600…), so windows line up with the hourly rollup",
                    self.size_secs
                ),
            ));
        }
        Ok(())
    }
}
