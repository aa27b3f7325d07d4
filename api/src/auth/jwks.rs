//! RS256/ES256 tokens from an identity provider, checked against its JWKS
//! (Keycloak's `…/protocol/openid-connect/certs` format). Keys are fetched
//! on first use and again when a token names a key id not seen yet (the
//! provider rotated its keys), at most once per [`MIN_REFETCH`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode_header};
use tokio::sync::{Mutex, RwLock};

use super::claims::{LEEWAY_SECS, decode_principal};
use super::{AuthError, Principal};

/// Least time between two fetches: a flood of tokens with made-up key ids
/// must not turn into a flood of requests to the provider.
pub const MIN_REFETCH: Duration = Duration::from_secs(10);

/// The provider's keys, by key id.
pub struct JwksKeys {
    url: String,
    client: reqwest::Client,
    issuer: Option<String>,
    audience: Option<String>,
    keys: RwLock<HashMap<String, (DecodingKey, Algorithm)>>,
    /// When keys were last fetched; held while fetching, so one fetch runs.
    fetched: Mutex<Option<Instant>>,
}

impl JwksKeys {
    /// `issuer`/`audience`: when set, tokens must carry that `iss`/`aud`.
    pub fn new(url: &str, issuer: Option<String>, audience: Option<String>) -> JwksKeys {
        JwksKeys {
            url: url.to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            issuer,
            audience,
            keys: RwLock::new(HashMap::new()),
            fetched: Mutex::new(None),
        }
    }

    pub async fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let header = decode_header(token).map_err(|e| AuthError::Invalid(e.to_string()))?;
        let kid = header
            .kid
            .ok_or_else(|| AuthError::Invalid("the token names no key id (kid)".into()))?;
        let key = match self.key(&kid).await {
            Some(key) => key,
            None => {
                self.refetch().await?;
                self.key(&kid).await.ok_or_else(|| {
                    AuthError::Invalid(format!("key id {kid:?} is not in the provider's JWKS"))
                })?
            }
        };
        if key.1 != header.alg {
            return Err(AuthError::Invalid(format!(
                "the token is signed with {:?}, but key {kid:?} is for {:?}",
                header.alg, key.1
            )));
        }
        let mut validation = Validation::new(key.1);
        validation.leeway = LEEWAY_SECS;
        match &self.audience {
            Some(aud) => validation.set_audience(&[aud]),
            None => validation.validate_aud = false,
        }
        if let Some(iss) = &self.issuer {
            validation.set_issuer(&[iss]);
        }
        decode_principal(token, &key.0, &validation)
    }

    async fn key(&self, kid: &str) -> Option<(DecodingKey, Algorithm)> {
        self.keys.read().await.get(kid).cloned()
    }

    async fn refetch(&self) -> Result<(), AuthError> {
        let mut fetched = self.fetched.lock().await;
        if fetched.is_some_and(|at| at.elapsed() < MIN_REFETCH) {
            return Ok(());
        }
        let unavailable = |e: &dyn std::fmt::Display| {
            AuthError::KeysUnavailable(format!("fetching {}: {e}", self.url))
        };
        let set: JwkSet = self
            .client
            .get(&self.url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| unavailable(&e))?
            .json()
            .await
            .map_err(|e| unavailable(&e))?;
        *fetched = Some(Instant::now());
        let keys = usable_keys(&set);
        tracing::info!(url = %self.url, keys = keys.len(), "JWKS fetched");
        *self.keys.write().await = keys;
        Ok(())
    }
}

/// The signing keys of a set with a key id and an algorithm we accept:
/// the one the key names, else RS256 for RSA and ES256 for P-256.
fn usable_keys(set: &JwkSet) -> HashMap<String, (DecodingKey, Algorithm)> {
    let mut out = HashMap::new();
    for jwk in &set.keys {
        let Some(kid) = jwk.common.key_id.clone() else {
            continue;
        };
        let alg = match (jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(KeyAlgorithm::RS256), _) => Algorithm::RS256,
            (Some(KeyAlgorithm::RS384), _) => Algorithm::RS384,
            (Some(KeyAlgorithm::RS512), _) => Algorithm::RS512,
            (Some(KeyAlgorithm::ES256), _) => Algorithm::ES256,
            (Some(KeyAlgorithm::ES384), _) => Algorithm::ES384,
            (None, AlgorithmParameters::RSA(_)) => Algorithm::RS256,
            (None, AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => {
                Algorithm::ES256
            }
            // Encryption keys, HMAC secrets and unknown algorithms are not ours.
            _ => continue,
        };
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            out.insert(kid, (key, alg));
        }
    }
    out
}
