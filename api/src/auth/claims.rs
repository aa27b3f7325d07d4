//! The token's claims, checking a token ([`TokenVerifier`]) and minting one
//! ([`mint`]).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use super::{AuthError, Scope, Scopes};

/// `scopes` as a list, or as one space-separated string (Keycloak and other
/// OAuth servers write `scope` that way).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
enum ScopeClaim {
    List(Vec<String>),
    Text(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    #[serde(default)]
    sub: String,
    /// Absent for an operator's token (with `admin`), which sees every tenant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    tenant: Option<String>,
    #[serde(default, alias = "scope")]
    scopes: Option<ScopeClaim>,
    exp: u64,
    #[serde(default)]
    iat: u64,
}

/// Who is calling, and what it may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub subject: String,
    pub tenant: Option<String>,
    pub scopes: Scopes,
}

impl Principal {
    pub fn require(&self, scope: Scope) -> Result<(), AuthError> {
        if self.scopes.grants(scope) {
            Ok(())
        } else {
            Err(AuthError::MissingScope(scope))
        }
    }

    /// The tenant a request may read: the token's own (a request naming
    /// another is refused, never silently narrowed), or, for `admin`, the
    /// one requested (`None`: all).
    pub fn visible_tenant(&self, requested: Option<&str>) -> Result<Option<String>, AuthError> {
        match (&self.tenant, requested) {
            (Some(own), Some(asked)) if own != asked => Err(AuthError::OtherTenant {
                token: own.clone(),
                requested: asked.to_string(),
            }),
            (Some(own), _) => Ok(Some(own.clone())),
            (None, asked) if self.scopes.grants(Scope::Admin) => Ok(asked.map(str::to_string)),
            (None, _) => Err(AuthError::TenantRequired),
        }
    }
}

/// Accepted clock difference between the minting host and this one.
pub(super) const LEEWAY_SECS: u64 = 30;

/// Checks HS256 tokens signed with one shared secret.
pub struct TokenVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl TokenVerifier {
    pub fn hs256(secret: &[u8]) -> Self {
        let mut validation = Validation::new(Algorithm::HS256);
        // A clock a little off between the minting host and this one must
        // not refuse fresh tokens.
        validation.leeway = LEEWAY_SECS;
        Self {
            key: DecodingKey::from_secret(secret),
            validation,
        }
    }

    /// The principal of an `Authorization` header's value.
    pub fn verify_header(&self, header: Option<&str>) -> Result<Principal, AuthError> {
        self.verify(bearer_token(header)?)
    }

    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        decode_principal(token, &self.key, &self.validation)
    }
}

/// The token of an `Authorization: Bearer <jwt>` header value.
pub fn bearer_token(header: Option<&str>) -> Result<&str, AuthError> {
    let header = header.ok_or(AuthError::MissingToken)?;
    let (scheme, token) = header.trim().split_once(' ').ok_or(AuthError::NotBearer)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::NotBearer);
    }
    Ok(token.trim())
}

/// The principal of a token signed with `key`, checked by `validation`.
pub(super) fn decode_principal(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<Principal, AuthError> {
    let data = decode::<Claims>(token, key, validation).map_err(|e| match e.kind() {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        _ => AuthError::Invalid(e.to_string()),
    })?;
    let claims = data.claims;
    let scopes = match &claims.scopes {
        None => Scopes::default(),
        Some(ScopeClaim::Text(text)) => Scopes::parse([text.as_str()])?,
        Some(ScopeClaim::List(list)) => Scopes::parse(list.iter().map(String::as_str))?,
    };
    Ok(Principal {
        subject: claims.sub,
        tenant: claims.tenant.filter(|t| !t.is_empty()),
        scopes,
    })
}

/// A token for `tenant` (or every tenant, with `admin`) with `scopes`,
/// valid for `ttl`.
pub fn mint(
    secret: &[u8],
    subject: &str,
    tenant: Option<&str>,
    scopes: Scopes,
    ttl: Duration,
) -> Result<String, AuthError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = Claims {
        sub: subject.to_string(),
        tenant: tenant.map(str::to_string),
        scopes: Some(ScopeClaim::List(
            scopes.names().into_iter().map(str::to_string).collect(),
        )),
        exp: now.saturating_add(ttl.as_secs()),
        iat: now,
    };
    encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret),
    )
    .map_err(|e| AuthError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"a test secret of at least thirty-two bytes";
    const HOUR: Duration = Duration::from_secs(3600);

    fn scopes(names: &str) -> Scopes {
        Scopes::parse([names]).unwrap()
    }

    #[test]
    fn a_minted_token_verifies_to_its_tenant_and_scopes() {
        let token = mint(SECRET, "alice", Some("t1"), scopes("usage:read"), HOUR).unwrap();
        let verifier = TokenVerifier::hs256(SECRET);
        let p = verifier
            .verify_header(Some(&format!("Bearer {token}")))
            .unwrap();
        assert_eq!(p.subject, "alice");
        assert_eq!(p.tenant.as_deref(), Some("t1"));
        assert_eq!(p.require(Scope::UsageRead), Ok(()));
        assert_eq!(
            p.require(Scope::BillingRead),
            Err(AuthError::MissingScope(Scope::BillingRead))
        );
        assert_eq!(p.visible_tenant(None), Ok(Some("t1".into())));
        assert_eq!(p.visible_tenant(Some("t1")), Ok(Some("t1".into())));
        assert!(matches!(
            p.visible_tenant(Some("t2")),
            Err(AuthError::OtherTenant { .. })
        ));
        assert_eq!(
            verifier.verify_header(Some(&format!("bearer  {token} "))),
            Ok(p)
        );
    }

    #[test]
    fn bad_tokens_are_refused_with_their_reason() {
        let verifier = TokenVerifier::hs256(SECRET);
        let other = mint(
            b"another secret, also long enough!!",
            "a",
            Some("t1"),
            scopes("admin"),
            HOUR,
        )
        .unwrap();
        assert!(matches!(
            verifier.verify(&other),
            Err(AuthError::Invalid(_))
        ));
        let expired = {
            let claims = Claims {
                sub: "a".into(),
                tenant: Some("t1".into()),
                scopes: None,
                exp: 1_000,
                iat: 0,
            };
            encode(
                &Header::new(Algorithm::HS256),
                &claims,
                &EncodingKey::from_secret(SECRET),
            )
            .unwrap()
        };
        assert_eq!(verifier.verify(&expired), Err(AuthError::Expired));
        assert_eq!(verifier.verify_header(None), Err(AuthError::MissingToken));
        assert_eq!(
            verifier.verify_header(Some("Basic abc")),
            Err(AuthError::NotBearer)
        );
        assert!(matches!(
            verifier.verify("not.a.jwt"),
            Err(AuthError::Invalid(_))
        ));
        // `alg: none` must never pass.
        let unsigned = format!(
            "{}.{}.",
            "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0",
            "eyJzdWIiOiJhIiwidGVuYW50IjoidDEiLCJzY29wZXMiOlsiYWRtaW4iXSwiZXhwIjo5OTk5OTk5OTk5fQ"
        );
        assert!(matches!(
            verifier.verify(&unsigned),
            Err(AuthError::Invalid(_))
        ));
        assert!(AuthError::Expired.is_unauthenticated());
        assert!(!AuthError::MissingScope(Scope::Admin).is_unauthenticated());
    }

    #[test]
    fn scopes_may_be_one_oauth_string_and_admin_sees_every_tenant() {
        let claims = Claims {
            sub: "ops".into(),
            tenant: None,
            scopes: Some(ScopeClaim::Text("admin sql:read".into())),
            exp: u64::MAX / 2,
            iat: 0,
        };
        let token = encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(SECRET),
        )
        .unwrap();
        let p = TokenVerifier::hs256(SECRET).verify(&token).unwrap();
        assert!(p.scopes.grants(Scope::BillingAdmin));
        assert_eq!(p.visible_tenant(None), Ok(None));
        assert_eq!(p.visible_tenant(Some("t9")), Ok(Some("t9".into())));
        let unbound = Principal {
            subject: "x".into(),
            tenant: None,
            scopes: scopes("usage:read"),
        };
        assert_eq!(
            unbound.visible_tenant(Some("t1")),
            Err(AuthError::TenantRequired)
        );
    }
}
