//! `[auth]`: how the API checks bearer tokens (an HS256 secret, an
//! identity provider's JWKS, or both) and the per-token rate limit.

use serde::{Deserialize, Serialize};
use somaflow_pipeline::config::{ConfigError, optional_http_url};

/// Bearer-token auth of the API (HS256 JWTs, `somaflow token` mints them).
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The HS256 signing secret, at least 32 bytes; empty turns auth off.
    /// Better set through `SOMAFLOW_AUTH__SECRET` than written in a file.
    pub secret: String,
    /// An identity provider's JWKS URL (Keycloak:
    /// `https://host/realms/R/protocol/openid-connect/certs`); RS256/ES256
    /// tokens are checked against its keys. Empty: none.
    pub jwks_url: String,
    /// When set, JWKS tokens must carry this `iss`.
    pub issuer: String,
    /// When set, JWKS tokens must carry this `aud`.
    pub audience: String,
    /// Requests a second each token may make on average (0: no limit);
    /// beyond it the API answers 429 with `Retry-After`.
    pub requests_per_second: u32,
    /// Requests a token may make at once above the average (0: the rate).
    pub request_burst: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            secret: String::new(),
            jwks_url: String::new(),
            issuer: String::new(),
            audience: String::new(),
            requests_per_second: 100,
            request_burst: 200,
        }
    }
}

/// The shortest HS256 secret accepted: the hash's own size (RFC 7518 §3.2).
pub const MIN_AUTH_SECRET_BYTES: usize = 32;

/// Never prints the secret (configs end up in logs).
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field(
                "secret",
                &if self.secret.is_empty() {
                    "<unset>"
                } else {
                    "<set>"
                },
            )
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("requests_per_second", &self.requests_per_second)
            .field("request_burst", &self.request_burst)
            .finish()
    }
}

impl AuthConfig {
    /// The checks of startup: a usable JWKS URL, a long enough secret.
    pub fn validate(&self) -> Result<(), ConfigError> {
        optional_http_url(
            "auth.jwks_url",
            &self.jwks_url,
            "Keycloak: https://host/realms/R/protocol/openid-connect/certs",
        )?;
        if !self.secret.is_empty() && self.secret.len() < MIN_AUTH_SECRET_BYTES {
            return Err(ConfigError::key(
                "auth.secret",
                format!(
                    "is {} bytes; an HS256 secret needs at least {MIN_AUTH_SECRET_BYTES} (generate one with `openssl rand -hex 32`)",
                    self.secret.len()
                ),
            ));
        }
        Ok(())
    }

    /// Whether tokens are checked at all.
    pub fn enabled(&self) -> bool {
        !self.secret.is_empty() || !self.jwks_url.is_empty()
    }
}
