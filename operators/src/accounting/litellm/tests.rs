//! The map's keys become the right rates, and a merge only ever appends.

use super::*;

const MAP: &str = r#"{
  "sample_spec": {"mode": "chat", "input_cost_per_token": 0.0, "output_cost_per_token": 0.0},
  "gemini/gemini-2.5-pro": {
    "litellm_provider": "gemini", "mode": "chat",
    "input_cost_per_token": 1.25e-06, "output_cost_per_token": 1e-05,
    "cache_read_input_token_cost": 1.25e-07,
    "input_cost_per_token_above_200k_tokens": 2.5e-06,
    "output_cost_per_token_above_200k_tokens": 1.5e-05,
    "cache_read_input_token_cost_above_200k_tokens": 2.5e-07,
    "input_cost_per_token_priority": 2.25e-06,
    "input_cost_per_token_above_200k_tokens_priority": 4.5e-06,
    "input_cost_per_token_batches": 6.25e-07,
    "input_cost_per_audio_token": 1e-06,
    "search_context_cost_per_query": {"search_context_size_low": 0.035}
  },
  "claude-sonnet-4-5": {
    "litellm_provider": "anthropic", "mode": "chat",
    "input_cost_per_token": 3e-06, "output_cost_per_token": 1.5e-05,
    "cache_read_input_token_cost": 3e-07,
    "cache_creation_input_token_cost": 3.75e-06,
    "cache_creation_input_token_cost_above_1hr": 6e-06
  },
  "dall-e-3": {"litellm_provider": "openai", "mode": "image_generation", "output_cost_per_image": 0.04},
  "tiny": {"litellm_provider": "x", "mode": "chat", "input_cost_per_token": 3.75e-08, "output_cost_per_token": 0}
}"#;

fn options() -> ImportOptions {
    ImportOptions {
        effective_from: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
        provider_aliases: HashMap::from([("gemini".to_string(), "google".to_string())]),
    }
}

#[test]
fn per_token_prices_become_exact_per_million_decimals() {
    assert_eq!(shift_decimal("0.00000125", 6), "1.25");
    assert_eq!(shift_decimal("0.0000000375", 6), "0.0375");
    assert_eq!(shift_decimal("0", 6), "0");
    assert_eq!(shift_decimal("0.04", 6), "40000");
    assert_eq!(
        per_million(&serde_json::json!(1.5e-05)).unwrap(),
        ("15".into(), false)
    );
    assert_eq!(
        round_to_nanos("1.1428571428571428"),
        ("1.142857143".into(), true)
    );
    assert_eq!(round_to_nanos("0.0000000025"), ("0.000000002".into(), true));
    assert_eq!(round_to_nanos("0.0000000035"), ("0.000000004".into(), true));
    assert!(per_million(&serde_json::json!(-1.0)).is_err());
}

#[test]
fn keys_map_to_dimensions_thresholds_and_tiers() {
    let (entries, report) = convert(MAP, &options()).unwrap();
    assert_eq!(report.read, 5);
    assert_eq!(report.priced, 3);
    assert_eq!(report.skipped.values().sum::<usize>(), 2);
    assert_eq!(
        report.ignored_keys.get("input_cost_per_audio_token"),
        Some(&1)
    );
    let gemini = entries
        .iter()
        .find(|e| e.model == "gemini-2.5-pro")
        .unwrap();
    assert_eq!(gemini.provider, "google");
    assert_eq!(
        (gemini.input.as_str(), gemini.cached_input.as_deref()),
        ("1.25", Some("0.125"))
    );
    let tier = |service: Option<&str>, above: Option<u64>| {
        gemini
            .tiers
            .iter()
            .find(|t| t.service_tier.as_deref() == service && t.above_input_tokens == above)
            .cloned()
    };
    let long = tier(None, Some(200_000)).unwrap();
    assert_eq!(long.input.as_deref(), Some("2.5"));
    assert_eq!(long.cached_input.as_deref(), Some("0.25"));
    assert_eq!(
        tier(Some("priority"), Some(200_000))
            .unwrap()
            .input
            .as_deref(),
        Some("4.5")
    );
    assert_eq!(
        tier(Some("batch"), None).unwrap().input.as_deref(),
        Some("0.625")
    );
    let claude = entries
        .iter()
        .find(|e| e.model == "claude-sonnet-4-5")
        .unwrap();
    assert_eq!(claude.cache_creation.as_deref(), Some("3.75"));
    assert_eq!(claude.cache_creation_1h.as_deref(), Some("6"));
}

#[test]
fn a_merge_appends_new_prices_and_keeps_unchanged_ones() {
    let existing = r#"# hand-kept
[[prices]]
id = "google/gemini-2.5-pro/2025-06-17"
provider = "google"
model = "gemini-2.5-pro"
effective_from = "2025-06-17"
input = "1.25"
cached_input = "0.31"
output = "10.00"

[[prices]]
id = "x/tiny/2026-01-01"
provider = "x"
model = "tiny"
effective_from = "2026-01-01"
input = "0.0375"
output = "0"
"#;
    let (text, report) = merge(existing, MAP, &options()).unwrap();
    assert!(
        text.starts_with(existing),
        "the existing text is kept as it is"
    );
    assert_eq!((report.added, report.unchanged), (2, 1));
    let table = PriceTable::parse(&text).unwrap();
    assert!(table.get("google/gemini-2.5-pro/2025-06-17").is_some());
    let new = table.get("google/gemini-2.5-pro/2026-12-07").unwrap();
    assert_eq!(new.cards[0].cached_input, 125_000_000);
    assert!(table.get("x/tiny/2026-12-07").is_none());
    // Importing the same map again adds nothing.
    let (again, report) = merge(&text, MAP, &options()).unwrap();
    assert_eq!((report.added, report.unchanged), (0, 3));
    assert_eq!(again, text);
}
