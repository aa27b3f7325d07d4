//! Bearer tokens for tests of a node started with an `[auth] secret`, and
//! requests that carry them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use serde_json::Value;
use somaflow_api::auth::{Scopes, mint};

/// The secret such a node is started with (`SOMAFLOW_AUTH__SECRET`).
pub const TEST_SECRET: &str = "test-secret-0123456789abcdef-0123456789";

/// A fresh token: each has its own subject, so its own rate-limit bucket.
pub fn token(tenant: Option<&str>, scopes: &[&str]) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let subject = format!("test-{}", NEXT.fetch_add(1, Ordering::Relaxed));
    mint(
        TEST_SECRET.as_bytes(),
        &subject,
        tenant,
        Scopes::parse(scopes.iter().copied()).expect("known scopes"),
        Duration::from_secs(3600),
    )
    .expect("mint")
}

/// `POST /v1/sql` with `token`: the status and the body as text.
pub async fn sql_as(base: &str, token: &str, query: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/sql"))
        .bearer_auth(token)
        .json(&serde_json::json!({ "sql": query }))
        .send()
        .await
        .expect("POST /v1/sql");
    (resp.status().as_u16(), resp.text().await.expect("body"))
}

/// The rows of a query that must succeed with `token`.
pub async fn rows_as(base: &str, token: &str, query: &str) -> Vec<Vec<Value>> {
    let (status, body) = sql_as(base, token, query).await;
    assert_eq!(status, 200, "query {query:?} failed: {body}");
    let body: Value = serde_json::from_str(&body).expect("JSON answer");
    serde_json::from_value(body["rows"].clone()).expect("rows")
}

/// A real HTTP server (on an ephemeral port) serving the test JWKS of
/// `tests/fixtures/jwks`, counting the fetches: the identity provider.
pub struct JwksServer {
    pub url: String,
    pub fetches: std::sync::Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start() -> JwksServer {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let body = std::fs::read(fixture("jwks.json")).expect("the test JWKS");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!(
            "http://{}/realms/soma/protocol/openid-connect/certs",
            listener.local_addr().unwrap()
        );
        let fetches = std::sync::Arc::new(AtomicU64::new(0));
        let counter = fetches.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                let body = body.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let _ = socket.read(&mut buf).await;
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        body.len()
                    );
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&body).await;
                });
            }
        });
        JwksServer { url, fetches, task }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/jwks")
        .join(name)
}

/// A token as an identity provider signs it: `alg` RS256 or ES256 with the
/// fixture key, Keycloak's space-separated `scope`, `iss` and `aud`.
pub fn idp_token(alg: &str, kid: &str, iss: &str, tenant: &str, scope: &str) -> String {
    use jsonwebtoken::{Algorithm, EncodingKey, Header, encode};
    let (algorithm, key) = match alg {
        "RS256" => (
            Algorithm::RS256,
            EncodingKey::from_rsa_der(&std::fs::read(fixture("rs256-test-key.der")).unwrap()),
        ),
        _ => (
            Algorithm::ES256,
            EncodingKey::from_ec_der(&std::fs::read(fixture("es256-test-key.der")).unwrap()),
        ),
    };
    let mut header = Header::new(algorithm);
    header.kid = Some(kid.to_string());
    let exp = chrono::Utc::now().timestamp() + 3600;
    let claims = serde_json::json!({
        "sub": "idp-user", "tenant": tenant, "scope": scope, "exp": exp, "iss": iss, "aud": "account",
    });
    encode(&header, &claims, &key).expect("sign")
}
