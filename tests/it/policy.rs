//! The policy operator end to end (real tansu, ClickHouse and Redis): each
//! default rule of `config/policies.toml` fires on a crafted event and not
//! on its clean twins, with the decision rows and the rows' verdicts the
//! same in the lake and in ClickHouse; personal data planted in message
//! text reaches neither store, while the text around it does.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{
    ClusterScenario, FAST_CHECKPOINTS, PrivateRedis, cloud_event, conversation, kafka_broker,
    kafka_serial, post_ndjson, repo, sql, sql_number,
};

/// Decision rows the policy operator writes carry this source.
const SOURCE: &str = "somaflow/policy";

/// The first tenant of `config/tenants.csv` (the file the scenario imports)
/// with this plan and region.
fn tenant(plan: &str, region: &str) -> String {
    let csv = std::fs::read_to_string(repo().join("config/tenants.csv")).expect("tenants.csv");
    csv.lines()
        .skip(1)
        .find_map(|line| {
            let cols: Vec<&str> = line.split(',').collect();
            (cols.get(1) == Some(&plan) && cols.get(2) == Some(&region))
                .then(|| cols[0].to_string())
        })
        .unwrap_or_else(|| panic!("config/tenants.csv has no {plan} tenant in {region}"))
}

/// The ids of the rules in `config/policies.toml`.
fn default_rule_ids() -> BTreeSet<String> {
    let text = std::fs::read_to_string(repo().join("config/policies.toml")).expect("policies.toml");
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("id = "))
        .map(|v| v.trim().trim_matches('"').to_string())
        .collect()
}

/// `conversation(...)` with some `data` fields replaced.
fn conversation_with(id: &str, tenant: &str, data: Value) -> String {
    let mut event: Value =
        serde_json::from_str(&conversation(id, tenant, 1200)).expect("conversation JSON");
    for (field, value) in data.as_object().expect("data fields") {
        event["data"][field] = value.clone();
    }
    event.to_string()
}

fn workflow_step(id: &str, tenant: &str, attempt: i64) -> String {
    cloud_event(
        id,
        tenant,
        "soma.workflow_step.v1",
        json!({
            "workflow_id": "wf-1", "run_id": format!("run-{id}"), "step_id": "step-2",
            "step_type": "tool_call", "status": "failed", "agent_pool": "general",
            "attempt": attempt, "duration_ms": 1500,
        }),
    )
}

fn marketplace_tx(id: &str, tenant: &str, tx_type: &str, amount_cents: i64) -> String {
    cloud_event(
        id,
        tenant,
        "soma.marketplace_tx.v1",
        json!({
            "capsule_id": "capsule-001", "author_id": "author-01", "tx_type": tx_type,
            "amount_cents": amount_cents, "currency": "USD",
        }),
    )
}

/// One posted event and the rule it must fire (with its decision), if any.
struct Case {
    table: &'static str,
    id: &'static str,
    tenant: String,
    event: String,
    fires: Option<(&'static str, &'static str)>,
}

/// A conversation whose message holds planted personal data, and the text
/// around it that must survive redaction.
struct Planted {
    id: &'static str,
    message: &'static str,
    survivors: &'static [&'static str],
}

/// Every planted e-mail, phone and card number, and for each a fragment
/// (local part, last digit group) that must not survive either.
const PII: &[&str] = &[
    "jane.doe@example.com",
    "jane.doe",
    "+1 415-555-0132",
    "415-555-0132",
    "0132",
    "(415) 555-0199",
    "555-0199",
    "0199",
    "+44 20 7946 0958",
    "7946 0958",
    "0958",
    "Ops.Team+alerts@mail.example.co.uk",
    "Ops.Team",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "1111",
    "5500-0000-0000-0004",
    "0004",
];

const PLANTED: &[Planted] = &[
    Planted {
        id: "pii-1",
        message: "Reach jane.doe@example.com or +1 415-555-0132 before 5pm.",
        survivors: &["Reach ", " or ", " before 5pm."],
    },
    Planted {
        id: "pii-2",
        message: "Office (415) 555-0199, London desk +44 20 7946 0958, cc Ops.Team+alerts@mail.example.co.uk.",
        survivors: &["Office ", ", London desk ", ", cc "],
    },
    Planted {
        id: "pii-3",
        // The order number is 16 digits grouped like a card, but fails Luhn.
        message: "Charge 4111 1111 1111 1111, refund to 5500-0000-0000-0004; order 1234 5678 9012 3456 stays.",
        survivors: &[
            "Charge ",
            ", refund to ",
            "; order 1234 5678 9012 3456 stays.",
        ],
    },
    Planted {
        id: "pii-4",
        // Numbers written right next to other numbers.
        message: "Call 415-555-0132 24/7 or use card 4111-1111-1111-1111 12/27 for ticket 2024-05-01.",
        survivors: &[
            "Call ",
            " 24/7 or use card ",
            " 12/27 for ticket 2024-05-01.",
        ],
    },
];

/// No PII, but numbers that look a little like it: kept as written.
const CLEAN_MESSAGE: &str =
    "Summarise ticket 1234 5678 9012 3456 opened 05-01-2024 10:30, about 150000 tokens.";

fn cases() -> Vec<Case> {
    let free_us = tenant("free", "us");
    let pro_us = tenant("pro", "us");
    let pro_eu = tenant("pro", "eu");
    let conv = |id: &'static str, tenant: &str, data: Value, fires| Case {
        table: "conversations",
        id,
        tenant: tenant.to_string(),
        event: conversation_with(id, tenant, data),
        fires,
    };
    let mut cases = vec![
        // A premium model on the free plan; a small model on it, and the
        // premium model on the pro plan, are fine.
        conv(
            "premium",
            &free_us,
            json!({"model": "gpt-4o"}),
            Some(("premium-model-on-free-plan", "deny")),
        ),
        conv(
            "premium-clean-small-model",
            &free_us,
            json!({"model": "gpt-4o-mini"}),
            None,
        ),
        conv(
            "premium-clean-pro-plan",
            &pro_us,
            json!({"model": "gpt-4o"}),
            None,
        ),
        // Anthropic for an EU tenant; OpenAI for it, and Anthropic for a US
        // tenant, are fine.
        conv(
            "residency",
            &pro_eu,
            json!({"provider": "anthropic", "model": "claude-3-5-haiku"}),
            Some(("eu-residency-anthropic", "deny")),
        ),
        conv(
            "residency-clean-openai",
            &pro_eu,
            json!({"provider": "openai", "model": "gpt-4o"}),
            None,
        ),
        conv(
            "residency-clean-us-tenant",
            &pro_us,
            json!({"provider": "anthropic", "model": "claude-3-5-haiku"}),
            None,
        ),
        // Over 100k input tokens; exactly 100k is not over.
        conv(
            "oversized",
            &pro_us,
            json!({"input_tokens": 150_000}),
            Some(("oversized-prompt", "flag")),
        ),
        conv(
            "oversized-clean",
            &pro_us,
            json!({"input_tokens": 100_000}),
            None,
        ),
        conv(
            "pii-clean",
            &pro_us,
            json!({"message": CLEAN_MESSAGE}),
            None,
        ),
    ];
    for p in PLANTED {
        cases.push(conv(
            p.id,
            &pro_us,
            json!({"message": p.message}),
            Some(("pii-in-message", "redact")),
        ));
    }
    let other = |table, id, event, fires| Case {
        table,
        id,
        tenant: pro_us.clone(),
        event,
        fires,
    };
    cases.extend([
        // A third attempt; a second one is fine.
        other(
            "workflow_executions",
            "retry",
            workflow_step("retry", &pro_us, 3),
            Some(("workflow-step-retry-storm", "flag")),
        ),
        other(
            "workflow_executions",
            "retry-clean",
            workflow_step("retry-clean", &pro_us, 2),
            None,
        ),
        // A $250 refund; a $99.99 refund and a $250 purchase are fine.
        other(
            "marketplace_transactions",
            "refund",
            marketplace_tx("refund", &pro_us, "refund", 25_000),
            Some(("large-marketplace-refund", "flag")),
        ),
        other(
            "marketplace_transactions",
            "refund-clean-small",
            marketplace_tx("refund-clean-small", &pro_us, "refund", 9_999),
            None,
        ),
        other(
            "marketplace_transactions",
            "refund-clean-purchase",
            marketplace_tx("refund-clean-purchase", &pro_us, "purchase", 25_000),
            None,
        ),
    ]);
    cases
}

/// The decision rows the cases must produce: `<event id>/<rule id>` →
/// (rule id, decision, tenant, resource).
fn expected_decisions(cases: &[Case]) -> BTreeMap<String, [String; 4]> {
    cases
        .iter()
        .filter_map(|c| {
            let (rule, decision) = c.fires?;
            Some((
                format!("{}/{rule}", c.id),
                [
                    rule.to_string(),
                    decision.to_string(),
                    c.tenant.clone(),
                    format!("{}/{}", c.table, c.id),
                ],
            ))
        })
        .collect()
}

/// Each case's expected `policy_verdict`, by table and event id.
fn expected_verdicts(cases: &[Case], table: &str) -> BTreeMap<String, Option<String>> {
    cases
        .iter()
        .filter(|c| c.table == table)
        .map(|c| (c.id.to_string(), c.fires.map(|(_, d)| d.to_string())))
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not text: {v}"))
        .to_string()
}

fn optional_text(v: &Value) -> Option<String> {
    (!v.is_null()).then(|| text(v))
}

/// A ClickHouse `FORMAT JSONEachRow` answer as rows of values.
fn json_rows(answer: &str, columns: &[&str]) -> Vec<Vec<Value>> {
    answer
        .lines()
        .map(|line| {
            let row: Value = serde_json::from_str(line).expect("JSONEachRow line");
            columns.iter().map(|c| row[*c].clone()).collect()
        })
        .collect()
}

/// Every planted item is gone from `message` and the text around it is there.
fn assert_redacted(store: &str, messages: &BTreeMap<String, String>) {
    for p in PLANTED {
        let message = messages
            .get(p.id)
            .unwrap_or_else(|| panic!("{store}: no message for {}", p.id));
        for pii in PII {
            assert!(
                !message.contains(pii),
                "{store}: {pii:?} survived in {}: {message:?}",
                p.id
            );
        }
        for kept in p.survivors {
            assert!(
                message.contains(kept),
                "{store}: {kept:?} was lost from {}: {message:?}",
                p.id
            );
        }
    }
    assert_eq!(
        messages.get("pii-clean").map(String::as_str),
        Some(CLEAN_MESSAGE),
        "{store}: a message without PII is kept as written"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_default_rule_fires_on_its_crafted_event_only_and_pii_never_reaches_a_store() {
    let _serial = kafka_serial().await;
    let brokers = kafka_broker();
    let redis = PrivateRedis::start().await;
    let scenario = ClusterScenario::platform(&brokers, 2, &redis.url());
    scenario.import_tenants();

    let cases = cases();
    let covered: BTreeSet<String> = cases
        .iter()
        .filter_map(|c| c.fires.map(|(rule, _)| rule.to_string()))
        .collect();
    assert_eq!(
        covered,
        default_rule_ids(),
        "every default rule has a crafted event (and only those rules)"
    );
    let decisions = expected_decisions(&cases);
    let tables = [
        "conversations",
        "workflow_executions",
        "marketplace_transactions",
    ];

    let worker = scenario.worker("w1", &[FAST_CHECKPOINTS]);
    worker.wait_ready().await;
    let base = worker.url();
    let records: Vec<bytes::Bytes> = cases.iter().map(|c| c.event.clone().into()).collect();
    let (status, answer) = post_ndjson(&reqwest::Client::new(), &base, &records)
        .await
        .expect("POST the crafted events");
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["accepted"], cases.len(), "{answer}");

    let counts: Vec<(&str, i128)> = tables
        .iter()
        .map(|&t| (t, cases.iter().filter(|c| c.table == t).count() as i128))
        .collect();
    let want_decisions = decisions.len() as i128;
    worker
        .wait_until(
            "every crafted event and its decisions in the lake",
            Duration::from_secs(120),
            || {
                let (base, counts) = (base.clone(), counts.clone());
                async move {
                    for (table, n) in counts {
                        if sql_number(&base, &format!("SELECT count(*) FROM {table}")).await < n {
                            return false;
                        }
                    }
                    sql_number(
                        &base,
                        &format!("SELECT count(*) FROM policy_decisions WHERE source = '{SOURCE}'"),
                    )
                    .await
                        >= want_decisions
                }
            },
        )
        .await;

    // The lake: one decision per firing (rule, event), none for a clean twin.
    let rows = sql(
        &base,
        &format!(
            "SELECT event_id, policy_id, decision, tenant_id, resource FROM policy_decisions \
             WHERE source = '{SOURCE}' ORDER BY event_id"
        ),
    )
    .await;
    let lake: BTreeMap<String, [String; 4]> = rows
        .iter()
        .map(|r| {
            (
                text(&r[0]),
                [text(&r[1]), text(&r[2]), text(&r[3]), text(&r[4])],
            )
        })
        .collect();
    assert_eq!(rows.len(), lake.len(), "one row per decision id");
    assert_eq!(lake, decisions, "lake policy_decisions");
    for table in tables {
        let rows = sql(
            &base,
            &format!("SELECT event_id, policy_verdict FROM {table} ORDER BY event_id"),
        )
        .await;
        let verdicts: BTreeMap<String, Option<String>> = rows
            .iter()
            .map(|r| (text(&r[0]), optional_text(&r[1])))
            .collect();
        assert_eq!(rows.len(), verdicts.len(), "{table}: one row per event");
        assert_eq!(
            verdicts,
            expected_verdicts(&cases, table),
            "lake {table}.policy_verdict"
        );
    }
    let messages: BTreeMap<String, String> = sql(
        &base,
        "SELECT event_id, message FROM conversations WHERE message IS NOT NULL",
    )
    .await
    .iter()
    .map(|r| (text(&r[0]), text(&r[1])))
    .collect();
    assert_redacted("lake", &messages);

    // ClickHouse: the same rows, read dedup-aware.
    let ch = &scenario.clickhouse;
    worker
        .wait_until(
            "every crafted event and its decisions in ClickHouse",
            Duration::from_secs(60),
            || {
                let counts = counts.clone();
                async move {
                    for (table, n) in counts {
                        if ch
                            .number(&format!("SELECT count() FROM {table} FINAL"))
                            .await
                            < n
                        {
                            return false;
                        }
                    }
                    ch.number(&format!(
                        "SELECT count() FROM policy_decisions FINAL WHERE source = '{SOURCE}'"
                    ))
                    .await
                        >= want_decisions
                }
            },
        )
        .await;
    let answer = ch
        .query(&format!(
            "SELECT event_id, policy_id, decision, tenant_id, resource FROM policy_decisions FINAL \
             WHERE source = '{SOURCE}' ORDER BY event_id FORMAT JSONEachRow"
        ))
        .await;
    let rows = json_rows(
        &answer,
        &["event_id", "policy_id", "decision", "tenant_id", "resource"],
    );
    let clickhouse: BTreeMap<String, [String; 4]> = rows
        .iter()
        .map(|r| {
            (
                text(&r[0]),
                [text(&r[1]), text(&r[2]), text(&r[3]), text(&r[4])],
            )
        })
        .collect();
    assert_eq!(rows.len(), clickhouse.len(), "one row per decision id");
    assert_eq!(clickhouse, decisions, "ClickHouse policy_decisions");
    for table in tables {
        let answer = ch
            .query(&format!(
                "SELECT event_id, policy_verdict FROM {table} FINAL ORDER BY event_id FORMAT JSONEachRow"
            ))
            .await;
        let rows = json_rows(&answer, &["event_id", "policy_verdict"]);
        let verdicts: BTreeMap<String, Option<String>> = rows
            .iter()
            .map(|r| (text(&r[0]), optional_text(&r[1])))
            .collect();
        assert_eq!(rows.len(), verdicts.len(), "{table}: one row per event");
        assert_eq!(
            verdicts,
            expected_verdicts(&cases, table),
            "ClickHouse {table}.policy_verdict"
        );
    }
    let answer = ch
        .query(
            "SELECT event_id, message FROM conversations FINAL WHERE message IS NOT NULL \
             FORMAT JSONEachRow",
        )
        .await;
    let messages: BTreeMap<String, String> = json_rows(&answer, &["event_id", "message"])
        .iter()
        .map(|r| (text(&r[0]), text(&r[1])))
        .collect();
    assert_redacted("ClickHouse", &messages);
}
