//! Bearer-token authentication and authorization: HS256 JWTs carrying the
//! caller's `tenant` and `scopes`, checked against `[auth]`
//! ([`AuthConfig`]). A [`TokenVerifier`] turns an
//! `Authorization` header into a [`Principal`]; the principal answers
//! whether it holds a scope and which tenant it may see. `somaflow token`
//! mints tokens for local use with [`mint`].

mod claims;
mod config;
mod jwks;
mod scopes;

pub use claims::{Principal, TokenVerifier, bearer_token, mint};
pub use config::{AuthConfig, MIN_AUTH_SECRET_BYTES};
pub use jwks::JwksKeys;
pub use scopes::{Scope, Scopes};

/// Why a request is refused: 401 for the token, 403 for what it may do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token: send `Authorization: Bearer <jwt>` (mint one with `somaflow token`)")]
    MissingToken,
    #[error("the Authorization header is not `Bearer <jwt>`")]
    NotBearer,
    #[error("the token has expired; mint a new one")]
    Expired,
    #[error("the token is not valid: {0}")]
    Invalid(String),
    #[error("unknown scope `{0}`; known: {known}", known = Scope::names())]
    UnknownScope(String),
    #[error("the token lacks the `{0}` scope")]
    MissingScope(Scope),
    #[error("the token is for tenant `{token}` and cannot reach tenant `{requested}`")]
    OtherTenant { token: String, requested: String },
    #[error("name a tenant: this token is not bound to one")]
    TenantRequired,
    /// The identity provider's keys could not be fetched: not the caller's fault.
    #[error("the token's signing keys are not available: {0}")]
    KeysUnavailable(String),
}

impl AuthError {
    /// 401 when the caller is not known, 403 when it is but may not.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            AuthError::MissingToken
                | AuthError::NotBearer
                | AuthError::Expired
                | AuthError::Invalid(_)
                | AuthError::UnknownScope(_)
        )
    }

    pub fn code(&self) -> &'static str {
        match self {
            AuthError::MissingToken => "missing_token",
            AuthError::NotBearer => "not_bearer",
            AuthError::Expired => "token_expired",
            AuthError::Invalid(_) => "invalid_token",
            AuthError::UnknownScope(_) => "unknown_scope",
            AuthError::MissingScope(_) => "missing_scope",
            AuthError::OtherTenant { .. } => "other_tenant",
            AuthError::TenantRequired => "tenant_required",
            AuthError::KeysUnavailable(_) => "keys_unavailable",
        }
    }
}
