//! Tests of the policy operator end to end: the shipped rule file, the
//! decisions rows, verdicts and redaction.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::datatypes::{Int32Type, Int64Type, TimestampMicrosecondType};
use somaflow_pipeline::events::EventKind;
use somaflow_pipeline::events::schema::kind_schema;

use super::testkit::{V, batch};
use super::*;

fn default_rules() -> PolicyRules {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/policies.toml");
    PolicyRules::load(&path).unwrap()
}

fn rules(text: &str) -> PolicyRules {
    PolicyRules::parse(text).unwrap()
}

/// Runs one batch; returns (main output, decisions) — `None` when absent.
async fn run(policy: &mut Policy, input: Batch) -> (Option<Batch>, Option<Batch>) {
    let mut out = Emitter::default();
    policy.process(input, &mut out).await.unwrap();
    let mut main = None;
    let mut decisions = None;
    for (name, b) in out.take() {
        match name {
            OUT => main = Some(b),
            DECISIONS => decisions = Some(b),
            other => panic!("unexpected output {other}"),
        }
    }
    (main, decisions)
}

fn strings(rows: &RecordBatch, column: &str) -> Vec<Option<String>> {
    rows.column_by_name(column)
        .unwrap()
        .as_string::<i32>()
        .iter()
        .map(|v| v.map(str::to_string))
        .collect()
}

fn some(values: &[&str]) -> Vec<Option<String>> {
    values.iter().map(|v| Some(v.to_string())).collect()
}

/// (event id, rule id) of every decision row.
fn fired(decisions: &Option<Batch>) -> Vec<(String, String)> {
    let Some(d) = decisions else {
        return Vec::new();
    };
    let resources = strings(&d.rows, "resource");
    let rules = strings(&d.rows, "policy_id");
    resources
        .into_iter()
        .zip(rules)
        .map(|(res, rule)| {
            let res = res.unwrap();
            let event = res.rsplit('/').next().unwrap().to_string();
            (event, rule.unwrap())
        })
        .collect()
}

/// A row each default rule must fire on. A new rule in the file without an
/// entry here fails the test: every shipped rule is exercised.
fn crafted(rule: &str) -> (EventKind, Vec<(&'static str, V)>) {
    use EventKind::*;
    use V::*;
    match rule {
        "premium-model-on-free-plan" => (
            Conversation,
            vec![("tenant_plan", S("free")), ("model", S("o3"))],
        ),
        "eu-residency-anthropic" => (
            Conversation,
            vec![
                ("tenant_region", S("eu")),
                ("provider", S("anthropic")),
                ("model", S("claude-3-5-haiku")),
            ],
        ),
        "oversized-prompt" => (Conversation, vec![("input_tokens", I(150_000))]),
        "pii-in-message" => (
            Conversation,
            vec![(
                "message",
                S("Call me back at +1 415 555 0132 about the invoice."),
            )],
        ),
        "workflow-step-retry-storm" => (WorkflowStep, vec![("attempt", I(3))]),
        "large-marketplace-refund" => (
            MarketplaceTx,
            vec![("tx_type", S("refund")), ("amount_cents", I(25_000))],
        ),
        other => panic!("add a crafted row for the new rule `{other}` to this test"),
    }
}

#[tokio::test]
async fn every_default_rule_fires_on_its_crafted_row_and_not_on_a_clean_row() {
    let set = default_rules();
    assert!((5..=10).contains(&set.len()), "{} rules", set.len());
    let mut policy = Policy::new("policy", set.clone());
    for rule in set.rules() {
        let (kind, row) = crafted(&rule.id);
        assert_eq!(kind.table(), rule.table, "rule `{}`", rule.id);
        // Row 0 is clean, row 1 crafted.
        let (main, decisions) = run(&mut policy, batch(kind, &[&[], &row])).await;
        let fired = fired(&decisions);
        assert!(
            fired.contains(&("evt-1".into(), rule.id.clone())),
            "rule `{}` did not fire on {row:?}: {fired:?}",
            rule.id
        );
        assert!(
            fired.iter().all(|(event, _)| event == "evt-1"),
            "a rule fired on the clean row: {fired:?}"
        );
        let verdicts = strings(&main.unwrap().rows, "policy_verdict");
        assert_eq!(verdicts[0], None);
        assert!(verdicts[1].is_some());
    }
    // A clean row of every kind passes every rule untouched.
    for kind in EventKind::ALL {
        let input = batch(kind, &[&[], &[]]);
        let before = input.rows.clone();
        let (main, decisions) = run(&mut policy, input).await;
        assert!(decisions.is_none(), "{kind:?}: {:?}", fired(&decisions));
        assert_eq!(main.unwrap().rows, before);
    }
}

#[tokio::test]
async fn decisions_have_deterministic_ids_and_the_rows_provenance() {
    let set = rules(
        r#"
        [[rules]]
        id = "big"
        when = "input_tokens > 1000"
        decision = "flag"
        reason = "big prompt"
        [[rules]]
        id = "o3"
        when = "model = 'o3'"
        decision = "deny"
        reason = "no o3"
        "#,
    );
    let mut policy = Policy::new("policy", set);
    let input = || {
        batch(
            EventKind::Conversation,
            &[
                &[("input_tokens", V::I(10))],
                &[
                    ("input_tokens", V::I(5000)),
                    ("model", V::S("o3")),
                    ("user_id", V::S("user-7")),
                    ("tenant_plan", V::S("enterprise")),
                    ("tenant_region", V::S("eu")),
                    ("tenant_monthly_budget_usd", V::I(2500)),
                ],
            ],
        )
    };
    let (_, decisions) = run(&mut policy, input()).await;
    let d = decisions.unwrap();
    assert_eq!(d.table, "policy_decisions");
    assert_eq!(d.rows.schema(), kind_schema(EventKind::PolicyDecision));
    assert_eq!(d.rows.num_rows(), 2);
    assert_eq!(
        strings(&d.rows, "event_id"),
        some(&["evt-1/big", "evt-1/o3"])
    );
    assert_eq!(strings(&d.rows, "policy_id"), some(&["big", "o3"]));
    assert_eq!(strings(&d.rows, "decision"), some(&["flag", "deny"]));
    assert_eq!(strings(&d.rows, "reason"), some(&["big prompt", "no o3"]));
    assert_eq!(strings(&d.rows, "source"), some(&["somaflow/policy"; 2]));
    assert_eq!(strings(&d.rows, "user_id"), some(&["user-7"; 2]));
    assert_eq!(
        strings(&d.rows, "action"),
        some(&["ingest:conversations"; 2])
    );
    assert_eq!(
        strings(&d.rows, "resource"),
        some(&["conversations/evt-1"; 2])
    );
    assert_eq!(strings(&d.rows, "tenant_id"), some(&["tenant-1"; 2]));
    assert_eq!(strings(&d.rows, "source_topic"), some(&["soma.test"; 2]));
    assert_eq!(strings(&d.rows, "tenant_plan"), some(&["enterprise"; 2]));
    assert_eq!(strings(&d.rows, "tenant_region"), some(&["eu"; 2]));
    assert_eq!(strings(&d.rows, "policy_verdict"), vec![None, None]);
    let col = |name: &str| d.rows.column_by_name(name).unwrap().clone();
    assert_eq!(
        col("source_offset").as_primitive::<Int64Type>().values(),
        &[101, 101]
    );
    assert_eq!(
        col("source_partition").as_primitive::<Int32Type>().values(),
        &[1, 1]
    );
    let times = col("event_time");
    assert_eq!(
        times.as_primitive::<TimestampMicrosecondType>().value(0),
        1_750_000_000_000_000
    );
    assert!(
        col("eval_us")
            .as_primitive::<Int64Type>()
            .values()
            .iter()
            .all(|&v| v >= 0)
    );
    let budget = col("tenant_monthly_budget_usd");
    assert_eq!(
        budget
            .as_primitive::<datafusion::arrow::datatypes::Decimal128Type>()
            .value(0),
        2_500_000_000_000
    );

    // A replay re-creates the same ids.
    let (_, again) = run(&mut policy, input()).await;
    assert_eq!(
        strings(&again.unwrap().rows, "event_id"),
        some(&["evt-1/big", "evt-1/o3"])
    );
}

#[tokio::test]
async fn tables_without_user_id_record_an_empty_user() {
    let mut policy = Policy::new("policy", default_rules());
    let (_, decisions) = run(
        &mut policy,
        batch(EventKind::WorkflowStep, &[&[("attempt", V::I(4))]]),
    )
    .await;
    let d = decisions.unwrap();
    assert_eq!(strings(&d.rows, "user_id"), some(&[""]));
    assert_eq!(
        strings(&d.rows, "event_id"),
        some(&["evt-0/workflow-step-retry-storm"])
    );
    assert_eq!(
        strings(&d.rows, "resource"),
        some(&["workflow_executions/evt-0"])
    );
}

#[tokio::test]
async fn verdict_is_the_strongest_decision_and_a_stronger_incoming_one_stays() {
    let set = rules(
        r#"
        [[rules]]
        id = "f"
        when = "input_tokens > 2000"
        decision = "flag"
        reason = "r"
        [[rules]]
        id = "r"
        when = "contains_pii(message)"
        decision = "redact"
        reason = "r"
        [[rules]]
        id = "d"
        when = "model = 'o3'"
        decision = "deny"
        reason = "r"
        "#,
    );
    let mut policy = Policy::new("policy", set);
    let pii = ("message", V::S("cc jane.doe@example.com"));
    let big = ("input_tokens", V::I(5000));
    let o3 = ("model", V::S("o3"));
    let input = batch(
        EventKind::Conversation,
        &[
            &[],                                       // nothing fires
            &[big],                                    // flag
            &[big, pii],                               // redact > flag
            &[big, pii, o3],                           // deny > redact
            &[big, ("policy_verdict", V::S("deny"))],  // incoming deny kept
            &[pii, ("policy_verdict", V::S("flag"))],  // redact replaces flag
            &[("policy_verdict", V::S("allow"))],      // untouched
            &[big, ("policy_verdict", V::S("allow"))], // flag beats allow
        ],
    );
    let (main, _) = run(&mut policy, input).await;
    let verdicts = strings(&main.unwrap().rows, "policy_verdict");
    let want: Vec<Option<String>> = [
        None,
        Some("flag"),
        Some("redact"),
        Some("deny"),
        Some("deny"),
        Some("redact"),
        Some("allow"),
        Some("flag"),
    ]
    .iter()
    .map(|v| v.map(str::to_string))
    .collect();
    assert_eq!(verdicts, want);
}

#[tokio::test]
async fn redact_masks_only_the_rows_it_fired_on() {
    let mut policy = Policy::new("policy-redact-test", default_rules());
    let messages = [
        "Draft a reply to the customer and cc jane.doe@example.com.",
        "Call me back at +1 415 555 0132 about the invoice.",
        "Charge card 4111 1111 1111 1111 for the renewal.",
        "Ship order 1234 5678 9012 3456 today.",
    ];
    let rows: Vec<Vec<(&str, V)>> = messages
        .iter()
        .map(|m| vec![("message", V::S(m))])
        .chain([vec![("message", V::Null)]])
        .collect();
    let rows: Vec<&[(&str, V)]> = rows.iter().map(Vec::as_slice).collect();
    let before = metrics()
        .pii_redacted
        .get_or_create(&node("policy-redact-test"))
        .get();
    let (main, decisions) = run(&mut policy, batch(EventKind::Conversation, &rows)).await;
    let main = main.unwrap();
    assert_eq!(
        strings(&main.rows, "message"),
        vec![
            Some("Draft a reply to the customer and cc [email].".into()),
            Some("Call me back at [phone] about the invoice.".into()),
            Some("Charge card [card] for the renewal.".into()),
            // Not Luhn-valid, not phone-shaped: no PII, so nothing fired.
            Some("Ship order 1234 5678 9012 3456 today.".into()),
            None,
        ]
    );
    assert_eq!(
        strings(&main.rows, "policy_verdict"),
        vec![
            Some("redact".into()),
            Some("redact".into()),
            Some("redact".into()),
            None,
            None
        ]
    );
    assert_eq!(fired(&decisions).len(), 3);
    let after = metrics()
        .pii_redacted
        .get_or_create(&node("policy-redact-test"))
        .get();
    assert_eq!(after - before, 3);
}

#[tokio::test]
async fn a_batch_nothing_fires_on_is_passed_on_as_is() {
    let mut policy = Policy::new("policy", default_rules());
    let input = batch(EventKind::Conversation, &[&[], &[]]);
    let column = input.rows.column(0).clone();
    let (main, decisions) = run(&mut policy, input).await;
    assert!(decisions.is_none());
    // Same buffers: the batch was not copied.
    assert!(Arc::ptr_eq(main.unwrap().rows.column(0), &column));
}

#[tokio::test]
async fn null_does_not_fire_and_columns_are_found_by_name() {
    let set = rules(
        r#"
        [[rules]]
        id = "free"
        when = "tenant_plan = 'free'"
        decision = "flag"
        reason = "r"
        "#,
    );
    let mut policy = Policy::new("policy", set);
    let input = batch(
        EventKind::Conversation,
        &[
            &[("tenant_plan", V::Null)],
            &[("tenant_plan", V::S("free"))],
        ],
    );
    // Reverse the column order: the rule must still read `tenant_plan`.
    let n = input.rows.num_columns();
    let reversed = input
        .rows
        .project(&(0..n).rev().collect::<Vec<_>>())
        .unwrap();
    let (main, decisions) = run(&mut policy, Batch::new(input.table, reversed)).await;
    assert_eq!(
        fired(&decisions),
        [("evt-1".to_string(), "free".to_string())]
    );
    let main = main.unwrap();
    assert_eq!(
        main.rows.schema().field(0).name(),
        "price_tier",
        "order kept"
    );
    assert_eq!(
        strings(&main.rows, "policy_verdict"),
        vec![None, Some("flag".into())]
    );
}

#[tokio::test]
async fn a_row_the_rule_cannot_evaluate_does_not_stop_the_batch() {
    let set = rules(
        r#"
        [[rules]]
        id = "ratio"
        when = "input_tokens / output_tokens > 2"
        decision = "flag"
        reason = "r"
        "#,
    );
    let mut policy = Policy::new("policy", set);
    let input = batch(
        EventKind::Conversation,
        &[
            &[("input_tokens", V::I(100)), ("output_tokens", V::I(10))],
            &[("input_tokens", V::I(100)), ("output_tokens", V::I(0))],
            &[("input_tokens", V::I(100)), ("output_tokens", V::I(100))],
        ],
    );
    let (_, decisions) = run(&mut policy, input).await;
    assert_eq!(
        fired(&decisions),
        [("evt-0".to_string(), "ratio".to_string())]
    );
}

#[tokio::test]
async fn tables_without_rules_and_empty_batches_pass() {
    let mut policy = Policy::new("policy", default_rules());
    let (main, decisions) = run(&mut policy, batch(EventKind::Billing, &[&[]])).await;
    assert_eq!(main.unwrap().num_rows(), 1);
    assert!(decisions.is_none());
    let (main, decisions) = run(&mut policy, batch(EventKind::Conversation, &[])).await;
    assert!(main.is_none() && decisions.is_none());
    assert_eq!(policy.outputs(), &[OUT, DECISIONS]);
}

#[tokio::test]
async fn decisions_are_counted_per_rule() {
    let mut policy = Policy::new("policy-count-test", default_rules());
    let labels = PolicyLabels {
        node: "policy-count-test".into(),
        rule: "oversized-prompt".into(),
        decision: "flag".into(),
    };
    let before = metrics().policy_decisions.get_or_create(&labels).get();
    let big: &[(&str, V)] = &[("input_tokens", V::I(200_000))];
    run(
        &mut policy,
        batch(EventKind::Conversation, &[big, &[], big]),
    )
    .await;
    assert_eq!(
        metrics().policy_decisions.get_or_create(&labels).get() - before,
        2
    );
}
