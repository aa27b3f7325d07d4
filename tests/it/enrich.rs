//! The enrich operator and `somaflow tenants import` against a real Redis
//! (Debian's redis-server): imported metadata lands in rows, absent
//! metadata is null, and while Redis is down batches still come out at
//! once, with stale values for known ids and nulls for new ones, until it
//! is back.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::Decimal128Type;
use somaflow_operators::enrich::Enrich;
use somaflow_operators::redis::RedisLink;
use somaflow_pipeline::events::decimal::parse_decimal;
use somaflow_pipeline::events::{EventKind, KindBatchBuilder, SourcePosition, parse_event};
use somaflow_pipeline::metrics::{metrics, outcome};
use somaflow_pipeline::runtime::{Batch, Emitter, Operator};

use crate::support::{BIN, cloud_event, free_port, repo, shared_redis};

async fn connect(url: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(url).expect("Redis URL");
    tokio::time::timeout(
        Duration::from_secs(5),
        client.get_multiplexed_async_connection(),
    )
    .await
    .unwrap_or_else(|_| panic!("Redis at {url} did not answer (scripts/services.sh start redis)"))
    .unwrap_or_else(|e| panic!("Redis at {url}: {e} (scripts/services.sh start redis)"))
}

async fn hset(url: &str, key: &str, fields: &[(&str, &str)]) {
    let mut c = connect(url).await;
    let mut cmd = redis::cmd("HSET");
    cmd.arg(key);
    for (f, v) in fields {
        cmd.arg(*f).arg(*v);
    }
    let _: i64 = cmd.query_async(&mut c).await.expect("HSET");
}

async fn del(url: &str, keys: &[String]) {
    let mut c = connect(url).await;
    let _: i64 = redis::cmd("DEL")
        .arg(keys)
        .query_async(&mut c)
        .await
        .expect("DEL");
}

/// Ids no other test (or earlier run) uses.
fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("it-{prefix}-{}-{nanos}", std::process::id())
}

/// A batch of `kind` as decode builds it, from `(tenant, data JSON)`.
fn batch(kind: EventKind, events: &[(&str, String)]) -> Batch {
    let now = chrono::Utc::now();
    let now_us = now.timestamp_micros();
    let mut builder = KindBatchBuilder::new(kind);
    for (i, (tenant, data)) in events.iter().enumerate() {
        let data = serde_json::from_str(data).expect("test data JSON");
        let raw = cloud_event(&format!("e{i}"), tenant, kind.type_name(), data);
        let event = parse_event(raw.as_bytes(), now_us, &Default::default())
            .unwrap_or_else(|e| panic!("test event {raw}: {e}"));
        let pos = SourcePosition {
            topic: "it",
            partition: 0,
            offset: i as i64,
        };
        builder.append(&event, now_us, &pos);
    }
    Batch::new(kind.table(), builder.finish().expect("batch"))
}

fn conversation(capsule: Option<&str>) -> String {
    let capsule = capsule.map_or(String::new(), |c| format!(r#""capsule_id":"{c}","#));
    format!(
        r#"{{"user_id":"u","session_id":"s",{capsule}"provider":"openai","model":"gpt-4o","input_tokens":10,"output_tokens":5,"cached_input_tokens":0,"reasoning_tokens":0,"latency_ms":1,"status":"ok"}}"#
    )
}

fn capsule_run(capsule: &str) -> String {
    format!(
        r#"{{"capsule_id":"{capsule}","capsule_version":"1.0.0","run_id":"r","agent_id":"a","status":"ok","duration_ms":5,"tokens":9}}"#
    )
}

fn policy_decision() -> String {
    r#"{"user_id":"u","policy_id":"p","action":"a","resource":"r","decision":"allow","eval_us":3}"#
        .to_string()
}

/// Runs the operator on one batch, bounded: Redis must never stall it.
async fn enrich(op: &mut Enrich, batch: Batch) -> RecordBatch {
    let started = Instant::now();
    let mut out = Emitter::default();
    tokio::time::timeout(Duration::from_secs(2), op.process(batch, &mut out))
        .await
        .unwrap_or_else(|_| panic!("enrich took more than 2 s on one batch"))
        .expect("enrich never fails because of Redis");
    assert!(started.elapsed() < Duration::from_secs(2));
    let mut emitted = out.take();
    assert_eq!(emitted.len(), 1, "one batch out per batch in");
    emitted.remove(0).1.rows
}

fn strings(rows: &RecordBatch, column: &str) -> Vec<Option<String>> {
    rows.column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn decimals(rows: &RecordBatch, column: &str) -> Vec<Option<i128>> {
    let array = rows
        .column_by_name(column)
        .unwrap_or_else(|| panic!("no column {column}"))
        .as_primitive::<Decimal128Type>();
    (0..array.len())
        .map(|i| array.is_valid(i).then(|| array.value(i)))
        .collect()
}

/// `id`'s fields in one of the shipped CSV files.
fn csv_row(file: &str, id: &str) -> Vec<String> {
    let text = std::fs::read_to_string(repo().join(file)).expect(file);
    let line = text
        .lines()
        .find(|l| l.starts_with(&format!("{id},")))
        .unwrap_or_else(|| panic!("{id} is not in {file}"));
    line.split(',').map(str::to_string).collect()
}

fn lookups(node: &str, what: &str) -> u64 {
    metrics()
        .enrich_lookups
        .get_or_create(&outcome(node, what))
        .get()
}

fn import(url: &str, dir: &Path, args: &[&Path]) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["tenants", "import"]);
    cmd.arg(args[0]);
    if let Some(capsules) = args.get(1) {
        cmd.arg("--capsules").arg(capsules);
    }
    // A folder without config/local.toml: built-in defaults plus the URL.
    cmd.current_dir(dir)
        .env("SOMAFLOW_REDIS__URL", url)
        .env_remove("SOMAFLOW_CONFIG")
        .output()
        .expect("run somaflow tenants import")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_metadata_fills_rows_and_absent_metadata_is_null() {
    let url = shared_redis();
    let dir = tempfile::tempdir().expect("scratch folder");

    // A file with one bad line is refused whole, naming FILE:LINE.
    let refused = unique("refused");
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        format!("tenant_id,plan,region,monthly_budget_usd\n{refused},pro,us,10\nx,gold,us,1\n"),
    )
    .expect("write bad.csv");
    let out = import(&url, dir.path(), &[&bad]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a bad file must fail: {stderr}");
    assert!(
        stderr.contains(&format!("{}:3: plan \"gold\"", bad.display())),
        "{stderr}"
    );
    let mut c = connect(&url).await;
    let exists: i64 = redis::cmd("EXISTS")
        .arg(format!("tenant:{refused}"))
        .query_async(&mut c)
        .await
        .expect("EXISTS");
    assert_eq!(exists, 0, "nothing is written from a bad file");

    // The shipped demo metadata.
    let tenants_csv: PathBuf = repo().join("config/tenants.csv");
    let capsules_csv: PathBuf = repo().join("config/capsules.csv");
    let out = import(&url, dir.path(), &[&tenants_csv, &capsules_csv]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("imported 300 tenants and 60 capsules into {url}")),
        "{stdout}"
    );

    // Cases of this test only: a tenant Redis has never heard of, one with
    // a malformed budget, a capsule that does not exist.
    let missing = unique("missing");
    let malformed = unique("malformed");
    let no_capsule = unique("no-capsule");
    hset(
        &url,
        &format!("tenant:{malformed}"),
        &[
            ("plan", "pro"),
            ("region", "eu"),
            ("monthly_budget_usd", "lots"),
        ],
    )
    .await;

    let node = unique("enrich");
    let link = RedisLink::new(&url, Duration::from_millis(500)).expect("link");
    let mut op = Enrich::new(&node, Some(link), Duration::from_secs(60));
    let conversations = || {
        batch(
            EventKind::Conversation,
            &[
                ("tenant-0000", conversation(Some("capsule-003"))),
                (&missing, conversation(None)),
                ("tenant-0001", conversation(Some(&no_capsule))),
                (&malformed, conversation(Some("capsule-000"))),
                ("tenant-0000", conversation(None)),
            ],
        )
    };
    let rows = enrich(&mut op, conversations()).await;

    let t0 = csv_row("config/tenants.csv", "tenant-0000");
    let t1 = csv_row("config/tenants.csv", "tenant-0001");
    let c3 = csv_row("config/capsules.csv", "capsule-003");
    let c0 = csv_row("config/capsules.csv", "capsule-000");
    let s = |v: &str| Some(v.to_string());
    let d = |v: &str| Some(parse_decimal(v).expect("decimal in the CSV"));
    assert_eq!(
        strings(&rows, "tenant_plan"),
        [s(&t0[1]), None, s(&t1[1]), s("pro"), s(&t0[1])]
    );
    assert_eq!(
        strings(&rows, "tenant_region"),
        [s(&t0[2]), None, s(&t1[2]), s("eu"), s(&t0[2])]
    );
    assert_eq!(
        decimals(&rows, "tenant_monthly_budget_usd"),
        [d(&t0[3]), None, d(&t1[3]), None, d(&t0[3])],
        "a malformed budget is null, the rest of its tenant is kept"
    );
    assert_eq!(
        strings(&rows, "capsule_author_id"),
        [s(&c3[1]), None, None, s(&c0[1]), None]
    );
    assert_eq!(
        decimals(&rows, "capsule_price_usd"),
        [d(&c3[2]), None, None, d(&c0[2]), None]
    );
    assert_eq!(rows.schema(), conversations().rows.schema());
    // Distinct ids: 4 tenants and 3 capsules, of which 2 do not exist.
    assert_eq!(lookups(&node, "fetched"), 5);
    assert_eq!(lookups(&node, "absent"), 2);

    // The same ids again come from the cache, absent ones included.
    let again = enrich(&mut op, conversations()).await;
    for column in ["tenant_plan", "tenant_region", "capsule_author_id"] {
        assert_eq!(strings(&again, column), strings(&rows, column), "{column}");
    }
    for column in ["tenant_monthly_budget_usd", "capsule_price_usd"] {
        assert_eq!(
            decimals(&again, column),
            decimals(&rows, column),
            "{column}"
        );
    }
    assert_eq!(lookups(&node, "hit"), 5);
    assert_eq!(lookups(&node, "absent"), 4);
    assert_eq!(lookups(&node, "fetched"), 5, "no second read");

    // Other kinds: capsule runs carry capsule metadata, policy decisions
    // only tenant metadata.
    let runs = enrich(
        &mut op,
        batch(
            EventKind::CapsuleRun,
            &[("tenant-0002", capsule_run("capsule-059"))],
        ),
    )
    .await;
    let t2 = csv_row("config/tenants.csv", "tenant-0002");
    let c59 = csv_row("config/capsules.csv", "capsule-059");
    assert_eq!(strings(&runs, "tenant_plan"), [s(&t2[1])]);
    assert_eq!(strings(&runs, "capsule_author_id"), [s(&c59[1])]);
    assert_eq!(decimals(&runs, "capsule_price_usd"), [d(&c59[2])]);
    let decisions = enrich(
        &mut op,
        batch(
            EventKind::PolicyDecision,
            &[("tenant-0299", policy_decision())],
        ),
    )
    .await;
    let t299 = csv_row("config/tenants.csv", "tenant-0299");
    assert_eq!(strings(&decisions, "tenant_region"), [s(&t299[2])]);
    assert!(decisions.column_by_name("capsule_author_id").is_none());

    del(&url, &[format!("tenant:{malformed}")]).await;
}

/// A redis-server of the test's own, on a free port, that it can pause,
/// stop and start again on the same port.
struct StoppableRedis {
    port: u16,
    child: Option<Child>,
}

impl StoppableRedis {
    fn start() -> StoppableRedis {
        shared_redis(); // installs redis-server if needed, fails clearly without it
        let mut redis = StoppableRedis {
            port: free_port(),
            child: None,
        };
        redis.spawn();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn redis-server (scripts/services.sh start redis installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "redis-server did not listen on {} within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGSTOP (`true`) or SIGCONT: a hung server, commands time out.
    fn pause(&self, paused: bool) {
        if let Some(c) = &self.child {
            let signal = if paused { "-STOP" } else { "-CONT" };
            let _ = Command::new("kill")
                .args([signal, &c.id().to_string()])
                .status();
        }
    }

    fn stop(&mut self) {
        self.pause(false);
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for StoppableRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_never_stalls_batches_and_metadata_returns_with_it() {
    let mut redis = StoppableRedis::start();
    let url = redis.url();
    let meta = |plan: &'static str| {
        [
            ("plan", plan),
            ("region", "us"),
            ("monthly_budget_usd", "100"),
        ]
    };
    hset(&url, "tenant:warm", &meta("pro")).await;
    hset(
        &url,
        "capsule:cap-warm",
        &[("author_id", "author-warm"), ("price_usd", "4.99")],
    )
    .await;

    let node = unique("enrich-outage");
    let ttl = Duration::from_millis(500);
    let link = RedisLink::new(&url, Duration::from_millis(300)).expect("link");
    let mut op = Enrich::new(&node, Some(link), ttl);
    let rows_of = |tenants: &[&str]| {
        let events: Vec<(&str, String)> = tenants
            .iter()
            .map(|t| (*t, conversation(Some("cap-warm"))))
            .collect();
        batch(EventKind::Conversation, &events)
    };
    let warm = enrich(&mut op, rows_of(&["warm"])).await;
    assert_eq!(strings(&warm, "tenant_plan"), [Some("pro".into())]);
    assert_eq!(
        strings(&warm, "capsule_author_id"),
        [Some("author-warm".into())]
    );

    // Hung (commands time out), then gone (connections refused).
    for hung in [true, false] {
        if hung {
            redis.pause(true);
        } else {
            redis.stop();
        }
        tokio::time::sleep(ttl * 2).await; // every cached entry is stale now
        let outage = Instant::now();
        while outage.elapsed() < Duration::from_secs(3) {
            let rows = enrich(&mut op, rows_of(&["warm", "cold"])).await;
            assert_eq!(
                strings(&rows, "tenant_plan"),
                [Some("pro".into()), None],
                "known tenants keep their stale metadata, new ones get nulls (hung: {hung})"
            );
            assert_eq!(
                strings(&rows, "capsule_author_id"),
                [Some("author-warm".into()), Some("author-warm".into())]
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(lookups(&node, "stale") > 0);
    assert!(
        lookups(&node, "unavailable") > 0,
        "cold is looked up each time"
    );

    // Back, empty (no persistence): the new tenant is fetched on a later
    // batch, the known one refreshed in the background.
    redis.restart();
    hset(&url, "tenant:cold", &meta("free")).await;
    hset(&url, "tenant:warm", &meta("enterprise")).await;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let rows = enrich(&mut op, rows_of(&["warm", "cold"])).await;
        let plans = strings(&rows, "tenant_plan");
        if plans == [Some("enterprise".into()), Some("free".into())] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "metadata did not come back within 15 s of Redis restarting: {plans:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The capsule, gone from the restarted Redis, is now known to be absent.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = enrich(&mut op, rows_of(&["warm"])).await;
        if strings(&rows, "capsule_author_id") == [None] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a deleted capsule stays cached after its refresh"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
