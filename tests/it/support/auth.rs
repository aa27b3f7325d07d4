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
