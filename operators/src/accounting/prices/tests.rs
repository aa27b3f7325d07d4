//! The price table: lookups, costs, rate cards and the file's mistakes.

use super::*;
use chrono::NaiveDate;

const TABLE: &str = r#"
[[prices]]
id = "openai/gpt-4o/2024-08-06"
provider = "openai"
model = "gpt-4o"
effective_from = "2024-08-06"
input = "2.50"
cached_input = "1.25"
output = "10.00"

[[prices]]
id = "openai/gpt-4o/2026-01-01"
provider = "openai"
model = "gpt-4o"
effective_from = "2026-01-01"
input = "2.00"
cached_input = "1.00"
output = "8.00"

[[prices]]
id = "openai/o3/2025-06-10"
provider = "openai"
model = "o3"
effective_from = "2025-06-10"
input = "2.00"
cached_input = "0.50"
output = "8.00"
reasoning = "9.00"

[[prices]]
id = "acme/openai/gpt-4o"
tenant = "acme"
provider = "openai"
model = "gpt-4o"
effective_from = "2025-01-01"
input = "1.00"
cached_input = "0.10"
output = "4.00"
"#;

fn us(day: &str) -> i64 {
    NaiveDate::parse_from_str(day, "%Y-%m-%d")
        .unwrap()
        .and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_micros()
}

#[test]
fn cached_tokens_are_priced_once_at_the_cached_rate() {
    let table = PriceTable::parse(TABLE).unwrap();
    let p = table
        .lookup("t1", "openai", "gpt-4o", us("2025-03-01"))
        .unwrap();
    assert_eq!(p.id, "openai/gpt-4o/2024-08-06");
    // 1M input of which 400k cached, 100k output:
    // 600k × 2.50 + 400k × 1.25 + 100k × 10.00 per 1M = 1.5 + 0.5 + 1.0 = $3.00
    let usage = TokenUsage {
        input: 1_000_000,
        cached_input: 400_000,
        output: 100_000,
        reasoning: 0,
        ..Default::default()
    };
    assert_eq!(p.cost(usage), 3_000_000_000);
}

#[test]
fn reasoning_tokens_take_the_reasoning_rate_or_the_output_rate() {
    let table = PriceTable::parse(TABLE).unwrap();
    let usage = TokenUsage {
        input: 0,
        cached_input: 0,
        output: 1_000_000,
        reasoning: 250_000,
        ..Default::default()
    };
    // o3 names a reasoning rate: 750k × 8 + 250k × 9 = 6.00 + 2.25
    let o3 = table
        .lookup("t1", "openai", "o3", us("2026-01-01"))
        .unwrap();
    assert_eq!(o3.cost(usage), 8_250_000_000);
    // gpt-4o does not: reasoning is output, $8.00 per 1M since 2026.
    let gpt = table
        .lookup("t1", "openai", "gpt-4o", us("2026-02-01"))
        .unwrap();
    assert_eq!(gpt.cost(usage), 8_000_000_000);
}

#[test]
fn tenant_overrides_and_effective_dates_pick_the_price() {
    let table = PriceTable::parse(TABLE).unwrap();
    let at = |tenant, day| {
        table
            .lookup(tenant, "openai", "gpt-4o", us(day))
            .map(|p| p.id.as_str())
    };
    assert_eq!(at("acme", "2025-06-01"), Some("acme/openai/gpt-4o"));
    assert_eq!(at("acme", "2024-12-01"), Some("openai/gpt-4o/2024-08-06"));
    assert_eq!(at("other", "2026-06-01"), Some("openai/gpt-4o/2026-01-01"));
    assert_eq!(at("other", "2024-01-01"), None);
    assert!(
        table
            .lookup("t", "openai", "unknown", us("2026-01-01"))
            .is_none()
    );
}

#[test]
fn sub_nano_remainders_round_half_to_even_once() {
    let p = PriceTable::parse(TABLE).unwrap();
    let p = p.lookup("t", "openai", "gpt-4o", us("2025-01-01")).unwrap();
    // 1 token at $2.50 / 1M = 2,500 nano-USD exactly.
    let one = TokenUsage {
        input: 1,
        ..Default::default()
    };
    assert_eq!(p.cost(one), 2_500);
    assert_eq!(divide_half_even(5, 10), 0);
    assert_eq!(divide_half_even(15, 10), 2);
    assert_eq!(divide_half_even(16, 10), 2);
}

#[test]
fn mistakes_name_the_key() {
    let bad = TABLE.replace("input = \"2.50\"", "input = \"two\"");
    let err = PriceTable::parse(&bad).unwrap_err().to_string();
    assert!(err.contains("prices[0].input"), "{err}");
    let bad = TABLE.replace("2024-08-06\"\ninput", "2024-13-06\"\ninput");
    let err = PriceTable::parse(&bad).unwrap_err().to_string();
    assert!(err.contains("prices[0].effective_from"), "{err}");
    let twice = TABLE.replace("openai/gpt-4o/2026-01-01", "openai/gpt-4o/2024-08-06");
    let err = PriceTable::parse(&twice).unwrap_err().to_string();
    assert!(err.contains("prices[1].id"), "{err}");
}

#[test]
fn the_shipped_table_prices_every_generated_model() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config/prices.toml");
    let table = PriceTable::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(!table.is_empty());
    for (provider, model) in [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("openai", "o3"),
        ("openai", "o4-mini"),
        ("anthropic", "claude-sonnet-4"),
        ("anthropic", "claude-3-5-haiku"),
        ("google", "gemini-2.5-pro"),
        ("google", "gemini-2.5-flash"),
    ] {
        assert!(
            table
                .lookup("any", provider, model, us("2026-11-21"))
                .is_some(),
            "{provider}/{model} has no price"
        );
    }
}

const TIERED: &str = r#"
[[prices]]
id = "gemini/gemini-2.5-pro/2026-12-07"
provider = "gemini"
model = "gemini-2.5-pro"
effective_from = "2026-12-07"
input = "1.25"
cached_input = "0.125"
output = "10.00"

[[prices.tiers]]
above_input_tokens = 200000
input = "2.50"
cached_input = "0.25"
output = "15.00"

[[prices.tiers]]
service_tier = "priority"
input = "2.25"
output = "18.00"

[[prices.tiers]]
service_tier = "priority"
above_input_tokens = 200000
input = "4.50"

[[prices]]
id = "anthropic/claude-sonnet-4-5/2026-12-07"
provider = "anthropic"
model = "claude-sonnet-4-5"
effective_from = "2026-12-07"
input = "3.00"
cached_input = "0.30"
cache_creation = "3.75"
cache_creation_1h = "6.00"
output = "15.00"
"#;

fn usd(text: &str) -> i128 {
    somaflow_pipeline::events::decimal::parse_decimal(text).unwrap()
}

#[test]
fn long_prompts_take_the_tier_above_their_length_for_every_token() {
    let table = PriceTable::parse(TIERED).unwrap();
    let p = table.get("gemini/gemini-2.5-pro/2026-12-07").unwrap();
    let at = |prompt: i64| {
        let usage = TokenUsage {
            input: prompt,
            cached_input: 100_000,
            output: 1_000_000,
            ..Default::default()
        };
        p.quote(usage, ServiceTier::Standard)
    };
    // Exactly 200k is not above 200k.
    let (card, cost) = at(200_000);
    assert_eq!(card.label, "standard");
    // 100k × 1.25 + 100k × 0.125 + 1M × 10 per 1M.
    assert_eq!(cost, usd("10.1375"));
    let (card, cost) = at(300_000);
    assert_eq!(card.label, "standard_above_200k");
    // 200k × 2.50 + 100k × 0.25 + 1M × 15.
    assert_eq!(cost, usd("15.525"));
}

#[test]
fn service_tiers_resolve_unstated_rates_as_documented() {
    let table = PriceTable::parse(TIERED).unwrap();
    let p = table.get("gemini/gemini-2.5-pro/2026-12-07").unwrap();
    let card = |tier, prompt| p.card(tier, prompt).clone();
    // Priority states input and output; its cache read is standard's.
    let priority = card(ServiceTier::Priority, 1_000);
    assert_eq!(
        (priority.input, priority.cached_input, priority.output),
        (usd("2.25"), usd("0.125"), usd("18.00"))
    );
    // Above 200k it states input; output and cache read come from the
    // standard tier above 200k (stated there), not from the priority base.
    let long = card(ServiceTier::Priority, 250_000);
    assert_eq!(long.label, "priority_above_200k");
    assert_eq!(
        (long.input, long.cached_input, long.output),
        (usd("4.50"), usd("0.25"), usd("15.00"))
    );
    // Batch states nothing: half of standard, at each length.
    let batch = card(ServiceTier::Batch, 250_000);
    assert_eq!(batch.label, "batch_above_200k");
    assert_eq!(
        (batch.input, batch.cached_input, batch.output),
        (usd("1.25"), usd("0.125"), usd("7.50"))
    );
    // Flex is not offered: standard's card, and its label says so.
    assert_eq!(card(ServiceTier::Flex, 1_000).label, "standard");
    // No cache write price: writes are input.
    assert_eq!(priority.cache_creation, priority.input);
    assert_eq!(priority.reasoning, priority.output);
}

#[test]
fn batch_halves_the_long_prompt_rates_unless_it_states_its_own() {
    let with_batch = TIERED.replace(
        "[[prices.tiers]]\nservice_tier = \"priority\"\ninput = \"2.25\"",
        "[[prices.tiers]]\nservice_tier = \"batch\"\ninput = \"0.625\"\n\n\
         [[prices.tiers]]\nservice_tier = \"priority\"\ninput = \"2.25\"",
    );
    let table = PriceTable::parse(&with_batch).unwrap();
    let p = table.get("gemini/gemini-2.5-pro/2026-12-07").unwrap();
    let short = p.card(ServiceTier::Batch, 1_000);
    assert_eq!((short.input, short.output), (usd("0.625"), usd("5.00")));
    // Above 200k: half of the long standard card, not the short batch rate.
    let long = p.card(ServiceTier::Batch, 250_000);
    assert_eq!(long.label, "batch_above_200k");
    assert_eq!(
        (long.input, long.cached_input, long.output),
        (usd("1.25"), usd("0.125"), usd("7.50"))
    );
}

#[test]
fn cache_writes_are_billed_once_at_their_lifetime_rate() {
    let table = PriceTable::parse(TIERED).unwrap();
    let p = table.get("anthropic/claude-sonnet-4-5/2026-12-07").unwrap();
    // 1M prompt: 500k fresh, 200k read, 300k written of which 100k for 1 h.
    let usage = TokenUsage {
        input: 1_000_000,
        cached_input: 200_000,
        cache_creation: 300_000,
        cache_creation_1h: 100_000,
        output: 0,
        reasoning: 0,
    };
    // 0.5 × 3 + 0.2 × 0.30 + 0.2 × 3.75 + 0.1 × 6.00 = 1.5 + 0.06 + 0.75 + 0.6
    assert_eq!(p.cost(usage), usd("2.91"));
    let billed: i64 = Dimension::ALL.iter().map(|d| usage.billed(*d)).sum();
    assert_eq!(billed, usage.input + usage.output);
    for d in Dimension::ALL {
        let card = &p.cards[0];
        assert_eq!(card.cost(TokenUsage::only(d, 1_000_000)), card.rate(d));
    }
}

#[test]
fn tier_mistakes_name_the_key() {
    let bad = TIERED.replace(
        "service_tier = \"priority\"\ninput",
        "service_tier = \"gold\"\ninput",
    );
    let err = PriceTable::parse(&bad).unwrap_err().to_string();
    assert!(err.contains("prices[0].tiers[1].service_tier"), "{err}");
    let bad = TIERED.replace("input = \"4.50\"", "input = \"-1\"");
    let err = PriceTable::parse(&bad).unwrap_err().to_string();
    assert!(err.contains("prices[0].tiers[2].input"), "{err}");
    let bad = TIERED.replace(
        "above_input_tokens = 200000\ninput = \"2.50\"",
        "input = \"2.50\"",
    );
    let err = PriceTable::parse(&bad).unwrap_err().to_string();
    assert!(err.contains("prices[0].tiers[0]"), "{err}");
}
