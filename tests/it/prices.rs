//! somaflow's prices checked against a peer (issue 22): the LiteLLM price
//! map, imported with `somaflow prices import`, prices ≥ 10,000 generated
//! conversations over ≥ 100 models and every rate dimension (cache reads,
//! cache writes and 1-hour writes, reasoning, prompt-length tiers, batch,
//! flex and priority), and each cost is compared with what `litellm` (from
//! PyPI) computes for the same usage. Every difference must be one that
//! docs/pricing.md lists, with the provider's rule that decides it.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::Command;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use somaflow_operators::accounting::{Price, PriceTable, ServiceTier, TokenUsage};

use crate::support::{BIN, repo, tool_path};

const CONVERSATIONS: usize = 12_000;
const MODELS: usize = 400;

struct Case {
    price: usize,
    usage: TokenUsage,
    tier: ServiceTier,
}

/// The models the check draws from: every price with tiers or cache-write
/// rates (where mistakes hide), then plain ones, `MODELS` in all.
fn pick_models(table: &PriceTable) -> Vec<usize> {
    let prices = table.prices();
    let rich = |p: &Price| p.cards.len() > 2 || p.cards[0].cache_creation != p.cards[0].input;
    let mut picked: Vec<usize> = (0..prices.len()).filter(|i| rich(&prices[*i])).collect();
    picked.truncate(MODELS * 3 / 4);
    let step = (prices.len() / MODELS).max(1);
    picked.extend(
        (0..prices.len())
            .step_by(step)
            .filter(|i| !rich(&prices[*i]))
            .take(MODELS - picked.len()),
    );
    picked
}

fn case(rng: &mut ChaCha8Rng, table: &PriceTable, models: &[usize]) -> Case {
    let price = models[rng.random_range(0..models.len())];
    let p = &table.prices()[price];
    let thresholds: Vec<u64> = p
        .cards
        .iter()
        .map(|c| c.above_input_tokens)
        .filter(|t| *t > 0)
        .collect();
    let input = match thresholds.first() {
        // Around a threshold half the time: both sides of it.
        Some(t) if rng.random_bool(0.5) => (*t as f64 * rng.random_range(0.8..1.2)) as i64,
        _ => rng.random_range(1..60_000),
    };
    let some = |rng: &mut ChaCha8Rng, p: f64, of: i64, max: f64| {
        if rng.random_bool(p) {
            (of as f64 * rng.random_range(0.0..max)) as i64
        } else {
            0
        }
    };
    let cached = some(rng, 0.6, input, 0.6);
    let written = some(rng, 0.5, input - cached, 0.5);
    let written_1h = some(rng, 0.4, written, 1.0);
    let output = rng.random_range(0..4_000);
    let reasoning = some(rng, 0.4, output, 0.9);
    let tier = ServiceTier::ALL[rng.random_range(0..4)];
    Case {
        price,
        usage: TokenUsage {
            input,
            output,
            cached_input: cached,
            reasoning,
            cache_creation: written,
            cache_creation_1h: written_1h,
        },
        tier,
    }
}

#[test]
fn costs_match_litellm_for_ten_thousand_conversations_over_every_rate_dimension() {
    let python = tool_path("python-tools.sh", "litellm from PyPI");
    let script = repo().join("tests/fixtures/litellm_costs.py");
    let out = Command::new(&python)
        .arg(&script)
        .arg("map")
        .output()
        .expect("python");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let map = String::from_utf8_lossy(&out.stdout).trim().to_string();

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prices.toml");
    let import = Command::new(BIN)
        .args([
            "prices",
            "import",
            &map,
            "--effective-from",
            "2026-01-01",
            "--into",
        ])
        .arg(&file)
        .output()
        .expect("somaflow prices import");
    let report = String::from_utf8_lossy(&import.stdout).to_string();
    assert!(
        import.status.success(),
        "{}{}",
        report,
        String::from_utf8_lossy(&import.stderr)
    );
    let table = PriceTable::load(&file).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        table.len() > 3_000,
        "the map's text models are imported: {report}"
    );

    let models = pick_models(&table);
    let mut rng = ChaCha8Rng::seed_from_u64(22);
    let cases: Vec<Case> = (0..CONVERSATIONS)
        .map(|_| case(&mut rng, &table, &models))
        .collect();
    let usages = dir.path().join("usage.jsonl");
    let mut w = std::io::BufWriter::new(std::fs::File::create(&usages).unwrap());
    for (i, c) in cases.iter().enumerate() {
        let p = &table.prices()[c.price];
        let u = c.usage;
        let line = json!({
            "i": i, "provider": p.provider, "model": p.model, "input": u.input,
            "cached": u.cached_input, "written": u.cache_creation,
            "written_1h": u.cache_creation_1h, "output": u.output,
            "reasoning": u.reasoning, "tier": c.tier.name(),
        });
        writeln!(w, "{line}").unwrap();
    }
    drop(w);
    let costs = dir.path().join("litellm.jsonl");
    let run = Command::new(&python)
        .arg(&script)
        .arg(&usages)
        .arg(&costs)
        .output()
        .expect("python");
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Every dimension, tier and length is exercised.
    let count = |f: &dyn Fn(&Case) -> bool| cases.iter().filter(|c| f(c)).count();
    let long = |c: &Case| {
        table.prices()[c.price]
            .card(c.tier, c.usage.input)
            .above_input_tokens
            > 0
    };
    for (what, n) in [
        ("cache reads", count(&|c| c.usage.cached_input > 0)),
        (
            "cache writes",
            count(&|c| c.usage.cache_creation > c.usage.cache_creation_1h),
        ),
        (
            "1-hour cache writes",
            count(&|c| c.usage.cache_creation_1h > 0),
        ),
        ("reasoning", count(&|c| c.usage.reasoning > 0)),
        ("prompts above a tier's length", count(&|c| long(c))),
        ("batch", count(&|c| c.tier == ServiceTier::Batch)),
        ("flex", count(&|c| c.tier == ServiceTier::Flex)),
        ("priority", count(&|c| c.tier == ServiceTier::Priority)),
    ] {
        assert!(n >= 200, "only {n} conversations with {what}");
    }
    let distinct: std::collections::HashSet<usize> = cases.iter().map(|c| c.price).collect();
    assert!(distinct.len() >= 100, "{} models", distinct.len());

    // The differences docs/pricing.md explains, each with the provider's
    // rule; anything else fails the test.
    let explained = |c: &Case| -> Option<&'static str> {
        let card = table.prices()[c.price].card(c.tier, c.usage.input);
        let cache = c.usage.cached_input > 0 || c.usage.cache_creation > 0;
        match c.tier {
            ServiceTier::Batch if cache => Some("batch cache reads and writes"),
            ServiceTier::Batch if card.above_input_tokens > 0 => Some("batch above a length"),
            ServiceTier::Flex | ServiceTier::Priority
                if card.above_input_tokens > 0 && c.usage.cache_creation_1h > 0 =>
            {
                Some("1-hour writes above a length, flex and priority")
            }
            _ => None,
        }
    };
    let mut differences: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut unexplained: Vec<String> = Vec::new();
    let mut same = 0usize;
    for line in std::fs::read_to_string(&costs).unwrap().lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        let i = v["i"].as_u64().unwrap() as usize;
        let c = &cases[i];
        let p = &table.prices()[c.price];
        let (card, ours) = p.quote(c.usage, c.tier);
        let Some(theirs) = v["usd"].as_str() else {
            unexplained.push(format!("{}: litellm failed: {}", p.id, v["error"]));
            continue;
        };
        let theirs = (theirs.parse::<f64>().unwrap() * 1e9).round() as i128;
        // LiteLLM adds floats: a nano-dollar, or a billionth of the cost.
        if (ours - theirs).abs() <= 1 + ours.abs() / 1_000_000_000 {
            same += 1;
            continue;
        }
        match explained(c) {
            Some(why) => *differences.entry(why).or_default() += 1,
            None => unexplained.push(format!(
                "{} {} {:?}: somaflow {ours} nano-USD, litellm {theirs}",
                p.id, card.label, c.usage
            )),
        }
    }
    println!("{same} of {CONVERSATIONS} equal; explained differences: {differences:?}");
    assert!(
        unexplained.is_empty(),
        "{} differences docs/pricing.md does not explain, e.g.\n{}",
        unexplained.len(),
        unexplained
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(same * 10 >= CONVERSATIONS * 9, "only {same} equal");
}
