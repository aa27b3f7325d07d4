//! `[server]`: where the HTTP API listens and how large a request may be.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::{ConfigError, require_positive};
use somaflow_pipeline::log::MAX_PAYLOAD_BYTES;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub body_limit_bytes: usize,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            body_limit_bytes: 10 * 1024 * 1024,
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.listen.parse::<SocketAddr>().map_err(|e| {
            ConfigError::key(
                "server.listen",
                format!("{:?} is not host:port ({e})", self.listen),
            )
        })?;
        require_positive(&[("server.body_limit_bytes", self.body_limit_bytes as u64)])?;
        // One event must fit one log record (64 MiB).
        if self.body_limit_bytes > MAX_PAYLOAD_BYTES {
            return Err(ConfigError::key(
                "server.body_limit_bytes",
                "must be at most 67108856 (64 MiB, the largest log record)",
            ));
        }
        Ok(())
    }
}
