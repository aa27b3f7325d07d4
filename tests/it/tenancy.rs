//! Bearer tokens and tenant isolation against a real node: 401/403/429
//! answers, and SQL that tries every way out of a tenant's views.

use std::time::Duration;

use crate::support::{
    FAST_CHECKPOINTS, Somaflow, TEST_SECRET, conversation, rows_as, sql_as, token,
};

/// Starts a node with auth on, a low per-token rate and small SQL limits.
fn start_authed(dir: &std::path::Path) -> Somaflow {
    Somaflow::start(
        dir,
        &[
            FAST_CHECKPOINTS,
            ("SOMAFLOW_AUTH__SECRET", TEST_SECRET),
            ("SOMAFLOW_AUTH__REQUESTS_PER_SECOND", "1"),
            ("SOMAFLOW_AUTH__REQUEST_BURST", "5"),
            ("SOMAFLOW_SQL__MAX_ROWS", "100"),
            ("SOMAFLOW_SQL__TIMEOUT_MS", "1500"),
        ],
    )
}

async fn post_events(base: &str, token: Option<&str>, lines: &[String]) -> (u16, String) {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(lines.join("\n"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().await.expect("POST /v1/events");
    (
        resp.status().as_u16(),
        resp.text().await.unwrap_or_default(),
    )
}

fn error_code(body: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    v["error"]["code"].as_str().unwrap_or_default().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_and_rate_limited_per_token() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_authed(dir.path());
    node.wait_ready().await;
    let base = node.url();
    let event = vec![conversation("c-1", "acme", 5)];

    let resp = reqwest::Client::new()
        .post(format!("{base}/v1/sql"))
        .json(&serde_json::json!({"sql": "SELECT 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    assert_eq!(
        resp.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer")
    );
    assert_eq!(
        error_code(&resp.text().await.unwrap()),
        "missing_token",
        "the answer names what is missing"
    );

    let (status, body) = post_events(&base, None, &event).await;
    assert_eq!((status, error_code(&body).as_str()), (401, "missing_token"));
    let forged = format!("{}x", token(Some("acme"), &["events:write"]));
    let (status, body) = post_events(&base, Some(&forged), &event).await;
    assert_eq!((status, error_code(&body).as_str()), (401, "invalid_token"));
    let other_secret = somaflow_api::auth::mint(
        b"another-secret-another-secret-another-secret",
        "x",
        Some("acme"),
        somaflow_api::auth::Scopes::parse(["admin"]).unwrap(),
        Duration::from_secs(60),
    )
    .unwrap();
    let (status, _) = sql_as(&base, &other_secret, "SELECT 1").await;
    assert_eq!(status, 401, "a token signed with another secret is refused");

    // The scope is checked per route, and a tenant writes only its own events.
    let (status, body) =
        post_events(&base, Some(&token(Some("acme"), &["sql:read"])), &event).await;
    assert_eq!((status, error_code(&body).as_str()), (403, "missing_scope"));
    let writer = token(Some("acme"), &["events:write"]);
    let foreign = vec![
        conversation("c-2", "acme", 5),
        conversation("g-1", "globex", 5),
    ];
    let (status, body) = post_events(&base, Some(&writer), &foreign).await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "other_tenant"),
        "{body}"
    );
    let (status, body) = post_events(&base, Some(&writer), &event).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = sql_as(&base, &writer, "SELECT 1").await;
    assert_eq!((status, error_code(&body).as_str()), (403, "missing_scope"));
    let (status, body) = sql_as(&base, &token(None, &["sql:read"]), "SELECT 1").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "tenant_required"),
        "a token bound to no tenant must be an admin's"
    );

    // Burst of 5, then 429 with Retry-After; a second token is unaffected.
    let reader = token(Some("acme"), &["sql:read"]);
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..8 {
        let resp = reqwest::Client::new()
            .post(format!("{base}/v1/sql"))
            .bearer_auth(&reader)
            .json(&serde_json::json!({"sql": "SELECT 1"}))
            .send()
            .await
            .unwrap();
        statuses.push(resp.status().as_u16());
        if resp.status().as_u16() == 429 {
            retry_after = resp
                .headers()
                .get("retry-after")
                .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        }
    }
    assert!(statuses[..5].iter().all(|s| *s == 200), "{statuses:?}");
    assert!(statuses.contains(&429), "the burst is 5: {statuses:?}");
    assert!(
        matches!(retry_after, Some(1..=2)),
        "Retry-After: {retry_after:?}"
    );
    let (status, _) = sql_as(&base, &token(Some("acme"), &["sql:read"]), "SELECT 1").await;
    assert_eq!(status, 200, "another token has its own budget");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_sql_a_tenant_writes_reads_another_tenants_rows() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_authed(dir.path());
    node.wait_ready().await;
    let base = node.url();
    let admin = || token(None, &["admin"]);
    let acme: Vec<String> = (0..3)
        .map(|i| conversation(&format!("a-{i}"), "acme", 5))
        .collect();
    let globex: Vec<String> = (0..4)
        .map(|i| conversation(&format!("g-{i}"), "globex", 9))
        .collect();
    for (tenant, lines) in [("acme", &acme), ("globex", &globex)] {
        let t = token(Some(tenant), &["events:write"]);
        let (status, body) = post_events(&base, Some(&t), lines).await;
        assert_eq!(status, 202, "{body}");
    }
    node.wait_until(
        "7 conversations in the lake",
        Duration::from_secs(60),
        || {
            let base = base.clone();
            let t = admin();
            async move {
                let (status, body) =
                    sql_as(&base, &t, "SELECT count(*) AS n FROM conversations").await;
                status == 200 && body.contains("[[7]]")
            }
        },
    )
    .await;

    // A lake file's real path (the one batch holds globex's rows too), for
    // the path tricks below.
    let globex_file = walk(&dir.path().join("lake/conversations"))
        .into_iter()
        .find(|p| p.extension().is_some_and(|e| e == "parquet"))
        .expect("a committed parquet file")
        .display()
        .to_string();

    // Each query succeeds and sees acme's 3 rows only.
    let own: &[(&str, i64)] = &[
        ("SELECT count(*) FROM conversations", 3),
        ("SELECT count(*) FROM datafusion.public.conversations", 3),
        (
            "SELECT count(*) FROM conversations WHERE tenant_id = 'globex'",
            0,
        ),
        (
            "SELECT count(*) FROM conversations WHERE tenant_id <> 'acme' OR 1 = 1",
            3,
        ),
        (
            "SELECT count(*) FROM (SELECT * FROM conversations WHERE tenant_id IN (SELECT 'globex'))",
            0,
        ),
        (
            "SELECT count(*) FROM conversations a JOIN conversations b ON a.tenant_id <> b.tenant_id OR a.event_id <> b.event_id",
            6,
        ),
        (
            "SELECT count(*) FROM conversations c LEFT JOIN usage_1m u ON u.tenant_id = 'globex'",
            3,
        ),
        (
            "SELECT count(*) FROM (SELECT tenant_id FROM conversations UNION ALL SELECT tenant_id FROM conversations WHERE tenant_id = 'globex')",
            3,
        ),
        (
            "WITH x AS (SELECT * FROM conversations) SELECT count(*) FROM x",
            3,
        ),
        ("SELECT sum(input_tokens) FROM conversations", 15),
        ("SELECT count(*) FROM range(3)", 3),
    ];
    for (query, expected) in own {
        let rows = rows_as(&base, &token(Some("acme"), &["sql:read"]), query).await;
        assert_eq!(rows[0][0], serde_json::json!(expected), "{query}");
    }
    // Every tenant column anywhere says acme (or is empty).
    for query in [
        "SELECT DISTINCT tenant_id FROM conversations",
        "SELECT tenant_id FROM conversations UNION SELECT tenant_id FROM usage_1m UNION SELECT tenant_id FROM dead_letters UNION SELECT tenant_id FROM budget_events",
        "SELECT table_name FROM information_schema.tables",
        "SELECT * FROM information_schema.views",
        "SELECT table_name, column_name FROM information_schema.columns WHERE column_name = 'tenant_id'",
        "EXPLAIN SELECT * FROM conversations",
        "SHOW TABLES",
    ] {
        let (status, body) = sql_as(&base, &token(Some("acme"), &["sql:read"]), query).await;
        assert_eq!(status, 200, "{query}: {body}");
        assert!(!body.contains("globex"), "{query} leaked: {body}");
    }
    // Ways around the views are refused (and refusals echo nothing of globex's rows).
    for query in [
        format!("SELECT * FROM '{globex_file}'"),
        format!("SELECT * FROM 'file://{globex_file}'"),
        "SELECT * FROM '../lake/conversations'".to_string(),
        format!("SELECT * FROM read_parquet('{globex_file}')"),
        format!("SELECT * FROM parquet_scan('{globex_file}')"),
        format!(
            "CREATE EXTERNAL TABLE x STORED AS PARQUET LOCATION '{}'",
            dir.path().join("lake/conversations").display()
        ),
        "CREATE VIEW x AS SELECT 1".to_string(),
        format!("COPY (SELECT 1) TO '{}/x.parquet'", dir.path().display()),
        "SET datafusion.execution.batch_size = 1".to_string(),
        "SELECT * FROM somaflow_lake.conversations".to_string(),
    ] {
        let (status, body) = sql_as(&base, &token(Some("acme"), &["sql:read"]), &query).await;
        assert_eq!(status, 422, "{query} must be refused: {body}");
        assert!(!body.contains("g-1"), "{query} leaked: {body}");
    }

    // An admin sees both tenants; limits apply to every token.
    let rows = rows_as(
        &base,
        &admin(),
        "SELECT count(DISTINCT tenant_id) FROM conversations",
    )
    .await;
    assert_eq!(rows[0][0], serde_json::json!(2));
    let (status, body) = sql_as(&base, &admin(), "SELECT * FROM range(1000)").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (422, "too_many_rows"),
        "{body}"
    );
    let (status, body) = sql_as(
        &base,
        &admin(),
        "SELECT count(*) FROM range(100000000000) a WHERE a.value % 7 = 3",
    )
    .await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (422, "query_timeout"),
        "{body}"
    );
    assert!(
        crate::support::ready(&node).await,
        "a stopped query leaves the node healthy"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_auth_off_the_api_says_so_and_listens_on_localhost_only() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::support::free_port();
    let node = Somaflow::start(
        dir.path(),
        &[("SOMAFLOW_SERVER__LISTEN", &format!("0.0.0.0:{port}"))],
    );
    // The node took the requested port, on 127.0.0.1 instead of 0.0.0.0.
    let url = format!("http://127.0.0.1:{port}/ready");
    crate::support::wait_for(
        "the node on the requested port",
        Duration::from_secs(30),
        || {
            let url = url.clone();
            async move { matches!(reqwest::get(&url).await, Ok(r) if r.status().is_success()) }
        },
    )
    .await;
    let logs = node.logs();
    assert!(logs.contains("AUTH IS OFF"), "{logs}");
    assert!(
        logs.contains(&format!("listening=127.0.0.1:{port}")),
        "{logs}"
    );
    let listening = std::fs::read_to_string("/proc/net/tcp").unwrap();
    let hex_port = format!(":{port:04X} ");
    let wildcard = listening
        .lines()
        .any(|l| l.contains(&format!("00000000{hex_port}")) && l.contains(" 0A "));
    assert!(!wildcard, "nothing listens on 0.0.0.0:{port}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn identity_provider_tokens_are_checked_against_its_jwks() {
    let idp = crate::support::JwksServer::start().await;
    let issuer = "https://idp.test/realms/soma";
    let dir = tempfile::tempdir().unwrap();
    let node = Somaflow::start(
        dir.path(),
        &[
            ("SOMAFLOW_AUTH__JWKS_URL", &idp.url),
            ("SOMAFLOW_AUTH__ISSUER", issuer),
        ],
    );
    node.wait_ready().await;
    let base = node.url();
    use crate::support::idp_token;

    for (alg, kid) in [("RS256", "test-rsa-1"), ("ES256", "test-ec-1")] {
        let t = idp_token(alg, kid, issuer, "acme", "sql:read usage:read");
        let (status, body) = sql_as(&base, &t, "SELECT 1").await;
        assert_eq!(status, 200, "{alg}: {body}");
    }
    let fetched = idp.fetches.load(std::sync::atomic::Ordering::SeqCst);
    assert_eq!(fetched, 1, "the keys were fetched once and then reused");

    let refused = [
        (
            "an unknown key id",
            idp_token("RS256", "rotated-away", issuer, "acme", "sql:read"),
        ),
        (
            "another issuer",
            idp_token(
                "RS256",
                "test-rsa-1",
                "https://evil.test",
                "acme",
                "sql:read",
            ),
        ),
        (
            "a key used for the wrong algorithm",
            idp_token("ES256", "test-rsa-1", issuer, "acme", "sql:read"),
        ),
        (
            "an HS256 token with no secret set",
            token(Some("acme"), &["sql:read"]),
        ),
    ];
    for (what, t) in refused {
        let (status, body) = sql_as(&base, &t, "SELECT 1").await;
        assert_eq!(
            (status, error_code(&body).as_str()),
            (401, "invalid_token"),
            "{what}: {body}"
        );
    }
    // acme's signature on another token's claims (globex, admin).
    let tampered = {
        let own = idp_token("RS256", "test-rsa-1", issuer, "acme", "sql:read");
        let other = idp_token("RS256", "test-rsa-1", issuer, "globex", "admin");
        let (own, other): (Vec<&str>, Vec<&str>) =
            (own.split('.').collect(), other.split('.').collect());
        format!("{}.{}.{}", own[0], other[1], own[2])
    };
    let (status, _) = sql_as(&base, &tampered, "SELECT 1").await;
    assert_eq!(status, 401, "a payload changed after signing");
    let t = idp_token("ES256", "test-ec-1", issuer, "acme", "usage:read");
    let (status, body) = sql_as(&base, &t, "SELECT 1").await;
    assert_eq!(
        (status, error_code(&body).as_str()),
        (403, "missing_scope"),
        "Keycloak's scope string is read"
    );
}
