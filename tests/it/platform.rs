//! The platform operators end to end (real tansu, ClickHouse and Redis):
//! token accounting exact to the cent in `usage_1m`, the lake's and
//! ClickHouse's rollups (usage and activity) through SIGKILLs and late
//! events; budgets crossed exactly once
//! across two workers and a Redis outage, with dispatch refused after.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::support::{
    ClusterScenario, FAST_CHECKPOINTS, PrivateRedis, close_all_windows, kafka_broker, kafka_serial,
    list_prices, nanos, producer_report, sql, sql_number, value_nanos,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_and_cost_are_exact_to_the_cent_through_sigkills_and_late_events() {
    let _serial = kafka_serial().await;
    let brokers = kafka_broker();
    let redis = PrivateRedis::start().await;
    let scenario = ClusterScenario::platform(&brokers, 4, &redis.url());
    scenario.import_tenants();
    let producer = scenario.produce(&[
        "--rate",
        "1500",
        "--duration",
        "40s",
        "--seed",
        "33",
        "--late-percent",
        "5",
    ]);
    let mut worker = scenario.worker("w1", &[FAST_CHECKPOINTS]);
    worker.wait_ready().await;
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_secs(9)).await;
        worker.restart();
        worker.wait_ready().await;
    }
    let report = producer_report(producer);
    let conversations = report.stats.kinds["conversations"].count as i128;
    assert!(conversations > 10_000, "a real stream: {conversations}");
    close_all_windows(&worker, chrono::Duration::minutes(3)).await;

    let base = worker.url();
    worker
        .wait_until(
            "every conversation counted in usage_1m",
            Duration::from_secs(180),
            || {
                let base = base.clone();
                async move {
                    sql_number(&base, "SELECT count(*) FROM conversations").await == conversations
                        && sql_number(&base, "SELECT sum(requests) FROM usage_1m").await
                            == conversations
                }
            },
        )
        .await;

    // The independent computation: tokens of the lake's raw rows × prices.
    let prices = list_prices();
    let raw = sql(
        &base,
        "SELECT tenant_id, model, sum(input_tokens - cached_input_tokens), sum(cached_input_tokens), \
         sum(output_tokens - reasoning_tokens), sum(reasoning_tokens), count(*) \
         FROM conversations GROUP BY tenant_id, model",
    )
    .await;
    let mut expected: BTreeMap<(String, String), (i128, i128)> = BTreeMap::new();
    for row in &raw {
        let (tenant, model) = (row[0].as_str().unwrap(), row[1].as_str().unwrap());
        let p = prices
            .get(model)
            .unwrap_or_else(|| panic!("no price for {model}"));
        let tokens: Vec<i128> = (2..6).map(|i| row[i].as_i64().unwrap() as i128).collect();
        let micro: i128 = (0..4).map(|i| tokens[i] * p[i]).sum();
        expected.insert(
            (tenant.to_string(), model.to_string()),
            (micro / 1_000_000, row[6].as_i64().unwrap() as i128),
        );
    }
    let usage = sql(
        &base,
        "SELECT tenant_id, model, CAST(sum(cost_usd) AS VARCHAR), sum(requests) FROM usage_1m \
         WHERE requests > 0 GROUP BY tenant_id, model",
    )
    .await;
    assert_eq!(usage.len(), expected.len(), "one group per tenant × model");
    const CENT: i128 = 10_000_000;
    for row in &usage {
        let key = (
            row[0].as_str().unwrap().to_string(),
            row[1].as_str().unwrap().to_string(),
        );
        let (cost, requests) = expected[&key];
        let got = value_nanos(&row[2]);
        assert!(
            (got - cost).abs() < CENT,
            "{key:?}: usage_1m {got} vs computed {cost} nano-USD"
        );
        assert_eq!(
            row[3].as_i64().unwrap() as i128,
            requests,
            "{key:?} requests"
        );
    }
    // Late events became additive corrections: some windows have several rows.
    let corrected = sql_number(
        &base,
        "SELECT count(*) FROM (SELECT tenant_id, window_start, model, capsule_id FROM usage_1m \
         WHERE requests > 0 GROUP BY tenant_id, window_start, model, capsule_id HAVING count(*) > 1)",
    )
    .await;
    assert!(corrected > 0, "5% late events produced correction rows");

    // The rollups in the lake: exactly usage_1m's sums, late events included.
    let by_group = |rows: &[Vec<Value>]| -> BTreeMap<(String, String), (i128, i64)> {
        rows.iter()
            .map(|row| {
                let key = (
                    row[0].as_str().unwrap().to_string(),
                    row[1].as_str().unwrap().to_string(),
                );
                let requests = row[3]
                    .as_i64()
                    .or_else(|| row[3].as_str()?.parse().ok())
                    .unwrap();
                (key, (value_nanos(&row[2]), requests))
            })
            .collect()
    };
    let usage_groups = by_group(&usage);
    for rollup in ["rollup_1h", "rollup_1d"] {
        let rows = sql(
            &base,
            &format!(
                "SELECT tenant_id, model, CAST(sum(cost_usd) AS VARCHAR), sum(requests) FROM {rollup} \
                 WHERE requests > 0 GROUP BY tenant_id, model"
            ),
        )
        .await;
        assert_eq!(by_group(&rows), usage_groups, "lake {rollup} = usage_1m");
    }

    // The activity rollups in the lake: the raw tables' counts and sums
    // per tenant × source (capsule runs, marketplace, billing).
    let raw_activity = activity(sql(&base, RAW_ACTIVITY).await);
    assert!(
        raw_activity.len() > 3,
        "every source has rows: {raw_activity:?}"
    );
    for rollup in ["activity_1h", "activity_1d"] {
        let mut got = Activity::new();
        for _ in 0..60 {
            got = activity(sql(&base, &activity_sql(rollup, false)).await);
            if got == raw_activity {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(got, raw_activity, "lake {rollup} = the raw tables");
    }

    // ClickHouse's hourly rollup: the same totals, once each.
    let ch = &scenario.clickhouse;
    let settled = async {
        for _ in 0..120 {
            if ch.number("SELECT sum(requests) FROM usage_1h").await == conversations {
                return true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        false
    }
    .await;
    assert!(
        settled,
        "usage_1h requests {} != {conversations}",
        ch.number("SELECT sum(requests) FROM usage_1h").await
    );
    let rollup = ch
        .query(
            "SELECT tenant_id, model, toString(sum(cost_usd)) FROM usage_1h WHERE requests > 0 \
             GROUP BY tenant_id, model FORMAT TSV",
        )
        .await;
    let mut seen = 0;
    for line in rollup.lines() {
        let cols: Vec<&str> = line.split('\t').collect();
        let key = (cols[0].to_string(), cols[1].to_string());
        let (cost, _) = expected[&key];
        let got = nanos(cols[2]);
        assert!(
            (got - cost).abs() < CENT,
            "{key:?}: usage_1h {got} vs computed {cost}"
        );
        seen += 1;
    }
    assert_eq!(seen, expected.len());

    // ClickHouse's rollups, copied at each commit: the same, once each.
    for rollup in ["rollup_1h", "rollup_1d"] {
        let total = format!("SELECT sum(requests) FROM {rollup} FINAL");
        let mut copied = 0;
        for _ in 0..120 {
            copied = ch.number(&total).await;
            if copied == conversations {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(copied, conversations, "ClickHouse {rollup} requests");
        let rows = ch
            .query(&format!(
                "SELECT tenant_id, model, toString(sum(cost_usd)), sum(requests) FROM {rollup} FINAL \
                 WHERE requests > 0 GROUP BY tenant_id, model FORMAT TSV"
            ))
            .await;
        let got: BTreeMap<(String, String), (i128, i64)> = rows
            .lines()
            .map(|line| {
                let cols: Vec<&str> = line.split('\t').collect();
                (
                    (cols[0].to_string(), cols[1].to_string()),
                    (nanos(cols[2]), cols[3].parse().unwrap()),
                )
            })
            .collect();
        assert_eq!(got, usage_groups, "ClickHouse {rollup} = usage_1m");
    }
    for rollup in ["activity_1h", "activity_1d"] {
        let query = format!("{} FORMAT TSV", activity_sql(rollup, true));
        let mut got = Activity::new();
        for _ in 0..120 {
            let rows = ch.query(&query).await;
            got = activity(
                rows.lines()
                    .map(|line| line.split('\t').map(Value::from).collect())
                    .collect(),
            );
            if got == raw_activity {
                break;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        assert_eq!(
            got, raw_activity,
            "ClickHouse {rollup} = the lake's raw tables"
        );
    }
}

/// Per tenant × source: events, cost, quantity and cents (nano units).
type Activity = BTreeMap<(String, String), (i64, i128, i128, i64)>;

/// The activity rollups' sums from the raw tables.
const RAW_ACTIVITY: &str = "\
    SELECT tenant_id, 'capsule_executions' AS source, CAST(count(*) AS VARCHAR) AS events, \
    CAST(sum(cost_usd) AS VARCHAR) AS cost, '0' AS quantity, '0' AS cents \
    FROM capsule_executions GROUP BY tenant_id \
    UNION ALL SELECT tenant_id, 'marketplace_transactions', CAST(count(*) AS VARCHAR), '0', '0', \
    CAST(sum(amount_cents) AS VARCHAR) FROM marketplace_transactions GROUP BY tenant_id \
    UNION ALL SELECT tenant_id, 'billing_events', CAST(count(*) AS VARCHAR), '0', \
    CAST(sum(quantity) AS VARCHAR), '0' FROM billing_events GROUP BY tenant_id";

/// The same sums from an activity rollup, in the lake's SQL or (with
/// `FINAL`) ClickHouse's.
fn activity_sql(rollup: &str, clickhouse: bool) -> String {
    let text = |expr: &str| {
        if clickhouse {
            format!("toString({expr})")
        } else {
            format!("CAST({expr} AS VARCHAR)")
        }
    };
    format!(
        "SELECT tenant_id, source, {}, {}, {}, {} FROM {rollup} {} GROUP BY tenant_id, source",
        text("sum(events)"),
        text("sum(cost_usd)"),
        text("sum(quantity)"),
        text("sum(amount_cents)"),
        if clickhouse { "FINAL" } else { "" },
    )
}

fn activity(rows: Vec<Vec<Value>>) -> Activity {
    let int = |v: &Value| -> i64 {
        v.as_i64()
            .or_else(|| v.as_str()?.parse().ok())
            .unwrap_or_else(|| panic!("not an integer: {v}"))
    };
    rows.iter()
        .map(|row| {
            let text = |i: usize| row[i].as_str().unwrap().to_string();
            let sums = (
                int(&row[2]),
                value_nanos(&row[3]),
                value_nanos(&row[4]),
                int(&row[5]),
            );
            ((text(0), text(1)), sums)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_cross_once_across_two_workers_and_a_redis_outage_then_dispatch_is_refused() {
    let _serial = kafka_serial().await;
    let brokers = kafka_broker();
    let redis = PrivateRedis::start().await;
    let scenario = ClusterScenario::platform(&brokers, 4, &redis.url());
    scenario.import_tenants();
    // The busiest tenant gets a small budget it crosses during the stream.
    let tenant = "tenant-0000";
    redis::cmd("HSET")
        .arg(format!("tenant:{tenant}"))
        .arg("monthly_budget_usd")
        .arg("3")
        .exec(&mut redis.connection())
        .expect("set the budget");
    let producer = scenario.produce(&["--rate", "1500", "--duration", "45s", "--seed", "34"]);
    let a = scenario.worker("a", &[FAST_CHECKPOINTS]);
    let b = scenario.worker("b", &[FAST_CHECKPOINTS]);
    a.wait_ready().await;
    b.wait_ready().await;
    tokio::time::sleep(Duration::from_secs(10)).await;

    // Redis stops answering for 20 s: the pipeline keeps flowing.
    let before = sql_number(&a.url(), "SELECT count(*) FROM conversations").await;
    redis.pause();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let during = sql_number(&a.url(), "SELECT count(*) FROM conversations").await;
    let ready = reqwest::get(format!("{}/ready", a.url()))
        .await
        .expect("GET /ready");
    assert_eq!(
        ready.status(),
        200,
        "Redis down does not make a worker unready"
    );
    let ready: Value = ready.json().await.expect("ready JSON");
    let warnings = ready["warnings"].as_array().cloned().unwrap_or_default();
    assert!(
        warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains("Redis"))),
        "/ready warns that Redis is down: {ready}"
    );
    redis.resume();
    assert!(
        during > before + 1000,
        "rows kept flowing while Redis was down: {before} → {during}"
    );

    let report = producer_report(producer);
    let conversations = report.stats.kinds["conversations"].count as i128;
    close_all_windows(&a, chrono::Duration::minutes(3)).await;
    let base = a.url();
    a.wait_until("every conversation in the lake", Duration::from_secs(180), || {
        let base = base.clone();
        async move { sql_number(&base, "SELECT count(*) FROM conversations").await == conversations }
    })
    .await;

    // Budgets stay exact: the shared counter = the tenant's billed spend.
    let month = chrono::Utc::now().format("%Y-%m").to_string();
    let spend = sql(
        &base,
        &format!(
            "SELECT CAST(sum(coalesce(cost_usd, rated_cost_usd)) AS VARCHAR) FROM conversations \
             WHERE tenant_id = '{tenant}' AND date_format(event_time, '%Y-%m') = '{month}'"
        ),
    )
    .await;
    let spend = value_nanos(&spend[0][0]);
    assert!(
        spend > 3_000_000_000,
        "the tenant spent past its $3 budget: {spend} nano-USD"
    );
    let key = format!("budget:{tenant}:{month}");
    let mut total = 0i128;
    for _ in 0..60 {
        let t: Option<String> = redis::cmd("HGET")
            .arg(&key)
            .arg("total")
            .query(&mut redis.connection())
            .expect("HGET total");
        total = t.map_or(0, |t| t.parse().expect("integer total"));
        if total == spend {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        total, spend,
        "Redis month-to-date spend = the lake's, to the nano-dollar"
    );

    // Exactly one soft and one hard crossing, in the lake and in ClickHouse.
    a.wait_until("both crossings committed", Duration::from_secs(60), || {
        let base = base.clone();
        async move {
            sql_number(
                &base,
                &format!("SELECT count(*) FROM budget_events WHERE tenant_id = '{tenant}'"),
            )
            .await
                >= 2
        }
    })
    .await;
    let levels = sql(
        &base,
        &format!("SELECT level, count(*) FROM budget_events WHERE tenant_id = '{tenant}' GROUP BY level ORDER BY level"),
    )
    .await;
    assert_eq!(
        levels,
        vec![
            vec![Value::from("hard"), Value::from(1)],
            vec![Value::from("soft"), Value::from(1)]
        ]
    );
    assert_eq!(
        sql_number(&base, "SELECT count(*) FROM budget_events").await,
        sql_number(&base, "SELECT count(DISTINCT event_id) FROM budget_events").await,
        "no crossing emitted twice for any tenant"
    );
    let ch = &scenario.clickhouse;
    for _ in 0..60 {
        if ch
            .number(&format!(
                "SELECT count() FROM budget_events FINAL WHERE tenant_id = '{tenant}'"
            ))
            .await
            == 2
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        ch.number(&format!(
            "SELECT count() FROM budget_events FINAL WHERE tenant_id = '{tenant}'"
        ))
        .await,
        2
    );

    // After the hard crossing the tenant's queued steps are refused.
    let refused = sql_number(
        &base,
        &format!(
            "SELECT count(*) FROM policy_decisions WHERE tenant_id = '{tenant}' AND reason = 'budget_exceeded'"
        ),
    )
    .await;
    assert!(
        refused > 0,
        "dispatch refused queued steps after the hard crossing"
    );
    let wrongly_refused = sql_number(
        &base,
        "SELECT count(*) FROM policy_decisions p WHERE reason = 'budget_exceeded' \
         AND tenant_id NOT IN (SELECT tenant_id FROM budget_events WHERE level = 'hard')",
    )
    .await;
    assert_eq!(
        wrongly_refused, 0,
        "only tenants over their hard budget are refused"
    );

    // GET /v1/budgets agrees with the ledger and the events, on both workers.
    let budget = |base: String, path: String| async move {
        let resp = reqwest::get(format!("{base}/v1/budgets/{path}"))
            .await
            .expect("GET /v1/budgets");
        let status = resp.status().as_u16();
        (status, resp.json::<Value>().await.expect("JSON answer"))
    };
    for node in [&a, &b] {
        let (status, body) = budget(node.url(), format!("{tenant}?month={month}")).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["tenant"], tenant);
        assert_eq!(body["month"], month.as_str());
        assert_eq!(body["status"], "hard_exceeded", "{body}");
        assert_eq!(value_nanos(&body["spend_usd"]), total, "{body}");
        assert_eq!(value_nanos(&body["budget_usd"]), 3_000_000_000, "{body}");
        assert!(body["soft_crossed_at_spend_usd"].is_string(), "{body}");
        assert!(body["hard_crossed_at_spend_usd"].is_string(), "{body}");
    }
    redis::cmd("HSET")
        .arg("tenant:tenant-idle")
        .arg("monthly_budget_usd")
        .arg("10")
        .exec(&mut redis.connection())
        .expect("an idle tenant");
    let (status, body) = budget(base.clone(), "tenant-idle".into()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(value_nanos(&body["spend_usd"]), 0, "{body}");
    let (status, body) = budget(base.clone(), "tenant-never-seen".into()).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "unknown_tenant", "{body}");
    let (status, body) = budget(base.clone(), format!("{tenant}?month=2026-13")).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "invalid_month", "{body}");
}
