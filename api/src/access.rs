//! Who may call: the [`Caller`] extractor every `/v1` handler takes, and
//! the [`Access`] rules behind it. With `[auth] secret` (HS256) and/or
//! `[auth] jwks_url` (RS256/ES256 from an identity provider) set, it
//! verifies the bearer token (`crate::auth`) and charges the token's rate
//! limit; with neither (the embedded demo), every caller is an anonymous
//! admin and the server binds to localhost only (see `crate::server`).

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use somaflow_sql::checks::check_id;

use crate::auth::{
    AuthConfig, AuthError, JwksKeys, Principal, Scope, Scopes, TokenVerifier, bearer_token,
};
use crate::error::ApiError;

/// How requests are authenticated.
pub enum Access {
    /// Bearer tokens checked, each with its own rate limit (`None`: no limit).
    Enforced {
        /// HS256 tokens (`somaflow token`), when a secret is set.
        secret: Option<Box<TokenVerifier>>,
        /// RS256/ES256 tokens, when a JWKS URL is set.
        jwks: Option<Box<JwksKeys>>,
        limiter: Option<DefaultKeyedRateLimiter<u64>>,
    },
    /// Auth is off: everyone is an anonymous admin.
    Open,
}

impl Access {
    pub fn from_config(config: &AuthConfig) -> Arc<Access> {
        if !config.enabled() {
            return Arc::new(Access::Open);
        }
        let limiter = NonZeroU32::new(config.requests_per_second).map(|rate| {
            let burst = NonZeroU32::new(config.request_burst).unwrap_or(rate);
            RateLimiter::keyed(Quota::per_second(rate).allow_burst(burst))
        });
        let nonempty = |s: &str| (!s.is_empty()).then(|| s.to_string());
        Arc::new(Access::Enforced {
            secret: nonempty(&config.secret).map(|s| Box::new(TokenVerifier::hs256(s.as_bytes()))),
            jwks: nonempty(&config.jwks_url).map(|url| {
                Box::new(JwksKeys::new(
                    &url,
                    nonempty(&config.issuer),
                    nonempty(&config.audience),
                ))
            }),
            limiter,
        })
    }

    pub fn is_open(&self) -> bool {
        matches!(self, Access::Open)
    }

    /// The caller of a request with this `Authorization` header value.
    pub async fn authenticate(&self, header: Option<&str>) -> Result<Principal, ApiError> {
        let Access::Enforced {
            secret,
            jwks,
            limiter,
        } = self
        else {
            return Ok(Principal {
                subject: "anonymous".into(),
                tenant: None,
                scopes: Scopes::parse([Scope::Admin.as_str()]).map_err(ApiError::Auth)?,
            });
        };
        let token = bearer_token(header).map_err(ApiError::Auth)?;
        let principal = verify(token, secret.as_deref(), jwks.as_deref())
            .await
            .map_err(ApiError::Auth)?;
        if let (Some(limiter), Some(header)) = (limiter, header) {
            // Keyed by the token itself: two tokens of one subject are two
            // budgets, as the issuer meant them.
            let key = xxhash_rust::xxh3::xxh3_64(header.trim().as_bytes());
            if let Err(not_until) = limiter.check_key(&key) {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                return Err(ApiError::RateLimited {
                    retry_after_secs: retry_after_secs(wait),
                });
            }
        }
        Ok(principal)
    }
}

/// HS256 tokens go to the secret, others to the JWKS: each verifier only
/// ever sees the algorithms it was configured for.
async fn verify(
    token: &str,
    secret: Option<&TokenVerifier>,
    jwks: Option<&JwksKeys>,
) -> Result<Principal, AuthError> {
    let alg = jsonwebtoken::decode_header(token)
        .map_err(|e| AuthError::Invalid(e.to_string()))?
        .alg;
    match (alg, secret, jwks) {
        (jsonwebtoken::Algorithm::HS256, Some(secret), _) => secret.verify(token),
        (jsonwebtoken::Algorithm::HS256, None, _) => Err(AuthError::Invalid(
            "HS256 tokens are not accepted here: no [auth] secret is set".into(),
        )),
        (_, _, Some(jwks)) => jwks.verify(token).await,
        (alg, _, None) => Err(AuthError::Invalid(format!(
            "{alg:?} tokens are not accepted here: no [auth] jwks_url is set"
        ))),
    }
}

/// `Retry-After` is whole seconds; round up so a client that waits that
/// long is let through.
fn retry_after_secs(wait: Duration) -> u32 {
    u32::try_from(wait.as_millis().div_ceil(1000))
        .unwrap_or(u32::MAX)
        .max(1)
}

/// The authenticated caller of a request.
pub struct Caller(pub Principal);

impl Caller {
    /// The principal, if it holds `scope` (403 otherwise).
    pub fn require(&self, scope: Scope) -> Result<&Principal, ApiError> {
        self.0.require(scope).map_err(ApiError::Auth)?;
        Ok(&self.0)
    }

    /// The tenant the request may read (see [`Principal::visible_tenant`]);
    /// a named one must be a well-formed id (400).
    pub fn tenant(&self, requested: Option<&str>) -> Result<Option<String>, ApiError> {
        if let Some(tenant) = requested {
            check_id("tenant", tenant)?;
        }
        self.0.visible_tenant(requested).map_err(ApiError::Auth)
    }

    /// [`Caller::tenant`] for a question about one tenant: a token bound
    /// to no tenant must name it (403 `tenant_required`, since what the
    /// request must say depends on the token).
    pub fn one_tenant(&self, requested: Option<&str>) -> Result<String, ApiError> {
        self.tenant(requested)?
            .ok_or(ApiError::Auth(AuthError::TenantRequired))
    }
}

/// Any state that holds the [`Access`] rules (the server's `AppState`).
impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<Access>: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let header = parts
            .headers
            .get(AUTHORIZATION)
            .map(|v| v.to_str().map_err(|_| ApiError::Auth(AuthError::NotBearer)))
            .transpose()?;
        let access = Arc::<Access>::from_ref(state);
        access.authenticate(header).await.map(Caller)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::mint;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    fn enforced(rate: u32, burst: u32) -> Arc<Access> {
        Access::from_config(&AuthConfig {
            secret: SECRET.into(),
            requests_per_second: rate,
            request_burst: burst,
            ..AuthConfig::default()
        })
    }

    fn bearer(tenant: &str) -> String {
        let scopes = Scopes::parse(["usage:read"]).unwrap();
        let token = mint(
            SECRET.as_bytes(),
            "t",
            Some(tenant),
            scopes,
            Duration::from_secs(60),
        )
        .unwrap();
        format!("Bearer {token}")
    }

    #[tokio::test]
    async fn open_access_is_an_anonymous_admin() {
        let access = Access::from_config(&AuthConfig::default());
        let p = access.authenticate(None).await.unwrap();
        assert!(p.tenant.is_none() && p.scopes.grants(Scope::SqlRead));
    }

    #[tokio::test]
    async fn each_token_has_its_own_burst_then_gets_retry_after() {
        let access = enforced(1, 3);
        let (a, b) = (bearer("a"), bearer("b"));
        for _ in 0..3 {
            access.authenticate(Some(&a)).await.unwrap();
        }
        match access.authenticate(Some(&a)).await {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 1),
            other => panic!("expected 429, got {other:?}"),
        }
        // Another token is not charged for the first one's requests.
        access.authenticate(Some(&b)).await.unwrap();
    }

    #[tokio::test]
    async fn a_missing_or_forged_token_is_refused_before_any_limit() {
        let access = enforced(1, 1);
        assert!(matches!(
            access.authenticate(None).await,
            Err(ApiError::Auth(AuthError::MissingToken))
        ));
        let forged = format!("{}x", bearer("a"));
        assert!(matches!(
            access.authenticate(Some(&forged)).await,
            Err(ApiError::Auth(AuthError::Invalid(_)))
        ));
    }
}
