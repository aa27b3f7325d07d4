//! `GET /v1/billing/ledgers` and its export against data with known
//! amounts: equal from ClickHouse and the lake, and equal to the cent to
//! the test's own computation from config/prices.toml, with cache writes
//! (5-minute and 1-hour) and batch and priority service tiers.

use std::collections::BTreeMap;

use chrono::Utc;
use serde_json::{Value, json};

use crate::support::{
    ApiWorker, cents, cloud_event_at, divide_half_even, list_prices, nanos, post_ndjson_as, token,
};

const MODELS: [(&str, &str); 3] = [
    ("gpt-4o", "openai"),
    ("gpt-4o-mini", "openai"),
    ("claude-sonnet-4", "anthropic"),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ledgers_are_exact_to_the_cent_and_equal_from_either_store() {
    let api = ApiWorker::start().await;
    let base = api.url();
    let at = Utc::now() - chrono::Duration::minutes(30);
    let period = at.format("%Y-%m").to_string();
    let prices = list_prices();

    let mut lines = Vec::new();
    // Rated by somaflow: per tenant × model × rate card, tokens by type in
    // list_prices' order. Claude writes to its cache (a third of it for
    // 1 hour every other time); every fourth call is a batch (half price),
    // every fifth otherwise asks for priority, which no shipped price has:
    // billed as standard.
    let mut tokens: BTreeMap<(&str, &str, &str), [i128; 6]> = BTreeMap::new();
    for i in 0..40usize {
        let tenant = ["acme", "globex"][i % 2];
        let (model, provider) = MODELS[i % 3];
        let (input, cached, output, reasoning) = (
            1_000 + 37 * i as i64,
            100 + 11 * i as i64,
            300 + 13 * i as i64,
            if model == "gpt-4o-mini" {
                0
            } else {
                40 + i as i64
            },
        );
        let written = if provider == "anthropic" {
            50 + 7 * i as i64
        } else {
            0
        };
        let written_1h = if i % 2 == 0 { written / 3 } else { 0 };
        let (tier, card) = match (i % 4, i % 5) {
            (2, _) => (Some("batch"), "batch"),
            (_, 4) => (Some("priority"), "standard"),
            _ => (None, "standard"),
        };
        let t = tokens.entry((tenant, model, card)).or_default();
        let typed = [
            input - cached - written,
            cached,
            output - reasoning,
            reasoning,
            written - written_1h,
            written_1h,
        ];
        for (slot, v) in t.iter_mut().zip(typed) {
            *slot += i128::from(v);
        }
        let mut data = json!({
            "user_id": "u", "session_id": "s", "provider": provider, "model": model,
            "input_tokens": input, "cached_input_tokens": cached, "output_tokens": output,
            "reasoning_tokens": reasoning, "latency_ms": 5, "status": "ok"});
        if written > 0 {
            data["cache_creation_input_tokens"] = json!(written);
            data["cache_creation_1h_input_tokens"] = json!(written_1h);
        }
        if let Some(tier) = tier {
            data["service_tier"] = json!(tier);
        }
        lines.push(cloud_event_at(
            &format!("c{i}"),
            tenant,
            "soma.conversation.v1",
            at,
            data,
        ));
    }
    // The producer's own cost, billed as sent.
    for i in 0..5 {
        lines.push(cloud_event_at(
            &format!("r{i}"),
            "acme",
            "soma.conversation.v1",
            at,
            json!({
            "user_id": "u", "session_id": "s", "provider": "openai", "model": "gpt-4o",
            "input_tokens": 10, "cached_input_tokens": 0, "output_tokens": 10,
            "reasoning_tokens": 0, "latency_ms": 5, "status": "ok", "cost_usd": "0.123456789"}),
        ));
    }
    for i in 0..4 {
        lines.push(cloud_event_at(
            &format!("k{i}"),
            "acme",
            "soma.capsule_run.v1",
            at,
            json!({
            "capsule_id": "cap-1", "capsule_version": "1", "run_id": format!("run{i}"),
            "agent_id": "a", "status": "ok", "duration_ms": 10, "tokens": 5, "cost_usd": "0.0125"}),
        ));
    }
    for (i, (tx, cents)) in [
        ("purchase", 1999),
        ("purchase", 1999),
        ("purchase", 1999),
        ("refund", 1999),
        ("payout", 1399),
        ("install", 0),
    ]
    .into_iter()
    .enumerate()
    {
        lines.push(cloud_event_at(
            &format!("m{i}"),
            "acme",
            "soma.marketplace_tx.v1",
            at,
            json!({
            "capsule_id": "cap-1", "author_id": "author-1", "tx_type": tx,
            "amount_cents": cents, "currency": "USD"}),
        ));
    }
    for i in 0..2 {
        lines.push(cloud_event_at(
            &format!("b{i}"),
            "acme",
            "soma.billing.v1",
            at,
            json!({
            "meter": "storage", "quantity": "1.25", "unit": "GB-h"}),
        ));
    }
    let admin = token(None, &["admin"]);
    let records: Vec<bytes::Bytes> = lines.iter().map(|l| l.clone().into()).collect();
    let client = reqwest::Client::new();
    let (status, body) = post_ndjson_as(&client, &base, &records, Some(&admin))
        .await
        .unwrap();
    assert_eq!(status, 202, "{body}");
    api.wait_for_rows(
        &[
            "conversations",
            "capsule_executions",
            "marketplace_transactions",
            "billing_events",
        ],
        57,
    )
    .await;

    // The test's own figures for acme: each line priced once.
    let mut llm = 0i128;
    for ((tenant, model, card), t) in &tokens {
        if *tenant != "acme" {
            continue;
        }
        // Batch bills every token type at half the standard rate.
        let half = if *card == "batch" { 2 } else { 1 };
        llm += t
            .iter()
            .zip(prices[*model])
            .map(|(q, price)| divide_half_even(q * (price / half), 1_000_000))
            .sum::<i128>();
    }
    llm += 5 * nanos("0.123456789");
    let capsules = 4 * nanos("0.0125");
    let purchases = 3 * 1999 * 10_000_000;
    let refunds = 1999 * 10_000_000;
    let total = llm + capsules + purchases - refunds;

    let reader = token(Some("acme"), &["billing:read"]);
    let mut answers = Vec::new();
    for source in ["lake", "clickhouse"] {
        let resp = client
            .get(format!(
                "{base}/v1/billing/ledgers?tenant=acme&period={period}&source={source}"
            ))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let mut body: Value = resp.json().await.unwrap();
        assert_eq!(body["source"], json!(source));
        body["source"] = Value::Null;
        answers.push(body);
    }
    assert_eq!(
        answers[0], answers[1],
        "the lake and ClickHouse give one ledger"
    );
    let ledger = &answers[0];
    let totals = &ledger["totals"];
    let got = |k: &str| nanos(totals[k].as_str().unwrap());
    assert_eq!(
        cents(got("total_usd")),
        cents(total),
        "total to the cent: {ledger}"
    );
    assert_eq!(got("llm_usd"), llm, "LLM spend, line by line");
    assert_eq!(got("capsule_runs_usd"), capsules);
    assert_eq!(got("marketplace_purchases_usd"), purchases);
    assert_eq!(got("marketplace_refunds_usd"), refunds);
    assert_eq!(got("payouts_usd"), 1399 * 10_000_000);
    assert_eq!(ledger["reported_usage"][0]["quantity"], json!("2.5"));
    let line = |tier: &str, meter: &str| {
        ledger["lines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["price_tier"] == json!(tier) && l["meter"] == json!(meter))
    };
    assert!(line("batch", "cache_creation_1h_input_tokens"), "{ledger}");
    assert!(line("standard", "cache_creation_input_tokens"), "{ledger}");
    let line_sum: i128 = ledger["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| nanos(l["amount_usd"].as_str().unwrap()))
        .sum();
    assert_eq!(line_sum, got("total_usd"), "the lines add up to the total");
    assert!(!ledger.to_string().contains("globex"));

    // Another tenant's ledger is refused; the export needs billing:admin.
    let resp = client
        .get(format!(
            "{base}/v1/billing/ledgers?tenant=globex&period={period}"
        ))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let resp = client
        .get(format!("{base}/v1/billing/ledgers/export?period={period}"))
        .bearer_auth(&reader)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 403);
    let csv = client
        .get(format!(
            "{base}/v1/billing/ledgers/export?period={period}&format=csv&source=lake"
        ))
        .bearer_auth(token(None, &["billing:admin", "admin"]))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let amount = header.iter().position(|c| *c == "amount_usd").unwrap();
    assert!(header.contains(&"price_tier"), "{csv}");
    let mut csv_totals: BTreeMap<String, i128> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let cols: Vec<&str> = line.split(',').collect();
        *csv_totals.entry(cols[0].to_string()).or_default() += nanos(cols[amount]);
    }
    assert_eq!(csv_totals.get("acme"), Some(&got("total_usd")), "{csv}");
    assert!(
        csv_totals.contains_key("globex"),
        "the export holds every tenant"
    );
    let parquet = client
        .get(format!(
            "{base}/v1/billing/ledgers/export?period={period}&format=parquet"
        ))
        .bearer_auth(token(None, &["admin"]))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&parquet[..4], b"PAR1", "a parquet file");
    let ctx = datafusion::prelude::SessionContext::new();
    let path = scenario_file(&parquet);
    ctx.register_parquet("ledger", path.path().to_str().unwrap(), Default::default())
        .await
        .unwrap();
    let batches = ctx
        .sql("SELECT CAST(sum(amount_usd) AS VARCHAR) FROM ledger WHERE tenant = 'acme'")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let text = datafusion::arrow::util::pretty::pretty_format_batches(&batches)
        .unwrap()
        .to_string();
    assert!(
        text.contains(totals["total_usd"].as_str().unwrap()),
        "{text}"
    );
}

fn scenario_file(bytes: &[u8]) -> tempfile::NamedTempFile {
    let file = tempfile::Builder::new()
        .suffix(".parquet")
        .tempfile()
        .unwrap();
    std::fs::write(file.path(), bytes).unwrap();
    file
}
