//! `somaflow token`: mints a bearer token with the configured `[auth]`
//! secret, for local use and tests (production tokens come from the
//! platform's identity provider, signed with the same secret).

use std::time::Duration;

use anyhow::{Context, bail};
use somaflow_api::auth::{Scope, Scopes, mint};

use crate::config::Config;

/// Prints a token for `tenant` (none: every tenant, which needs `admin`).
pub fn run(
    config: &Config,
    tenant: Option<&str>,
    scopes: &[String],
    subject: &str,
    ttl: Duration,
) -> anyhow::Result<()> {
    if config.auth.secret.is_empty() {
        bail!(
            "no [auth] secret to sign with: set `[auth] secret` in the config or SOMAFLOW_AUTH__SECRET (at least 32 bytes, e.g. `openssl rand -hex 32`); tokens checked by a JWKS come from the identity provider"
        );
    }
    let scopes = Scopes::parse(scopes.iter().map(String::as_str)).context("--scopes")?;
    if tenant.is_none() && !scopes.grants(Scope::Admin) {
        bail!("a token without --tenant sees every tenant, so it needs the `admin` scope");
    }
    let token = mint(config.auth.secret.as_bytes(), subject, tenant, scopes, ttl)?;
    println!("{token}");
    Ok(())
}
