//! The LiteLLM price map (`litellm/model_prices_and_context_window_backup.json`
//! in the `litellm` PyPI package, the community-kept list most platforms
//! price with) as somaflow price entries, and the merge that adds them to a
//! price file without touching what is there (docs/decisions/0105).
//!
//! Imported: every text model (`mode` chat, completion or responses) with an
//! input and an output price, and of its rates: input, cache read, cache
//! write (and its 1-hour variant), output, reasoning, each above a prompt
//! length and for the batch, flex and priority tiers. Not imported, and
//! counted in the report: other modes, range-tiered and off-peak pricing,
//! and rate keys somaflow has no dimension for (audio, image, per-second,
//! 12-hour cache writes, other service tiers).

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde_json::Value;
use somaflow_pipeline::events::decimal::{format_decimal, parse_decimal};

use super::prices::{PriceEntry, PriceError, PriceTable, ServiceTier, TierEntry, entry_price};

/// What an import found and did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ImportReport {
    /// Entries of the map read.
    pub read: usize,
    /// Text models converted to price entries.
    pub priced: usize,
    /// Of those, added to the file as new effective-dated prices.
    pub added: usize,
    /// Of those, already the newest list price with the same rates.
    pub unchanged: usize,
    /// Entries skipped, by reason.
    pub skipped: BTreeMap<&'static str, usize>,
    /// Rates with more than 9 decimal places per 1M tokens (prices
    /// converted from other currencies), rounded half to even to 9.
    pub rounded: usize,
    /// Price keys of converted models that somaflow does not import.
    pub ignored_keys: BTreeMap<String, usize>,
}

/// How an import names things.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The day the added prices apply from.
    pub effective_from: NaiveDate,
    /// LiteLLM provider → somaflow provider (e.g. `gemini` → `google`).
    pub provider_aliases: HashMap<String, String>,
}

/// The price file `existing` with the map's new prices appended (its text
/// is kept as it is), and what was done. A model whose newest list price
/// already has the map's rates gets nothing; any other gets a new entry
/// `{provider}/{model}/{effective_from}`, so prices events were rated with
/// stay as they were.
pub fn merge(
    existing: &str,
    map_json: &str,
    options: &ImportOptions,
) -> Result<(String, ImportReport), PriceError> {
    let table = PriceTable::parse(existing)?;
    let (entries, mut report) = convert(map_json, options)?;
    let day = options.effective_from.format("%Y-%m-%d").to_string();
    let day_us = options
        .effective_from
        .and_hms_opt(0, 0, 0)
        .map(|t| t.and_utc().timestamp_micros())
        .unwrap_or_default();
    let mut added = Vec::new();
    for mut entry in entries {
        entry.effective_from = day.clone();
        entry.id = format!("{}/{}/{day}", entry.provider, entry.model);
        let at = format!("import of {}", entry.id);
        let imported = entry_price(&at, entry.clone())?;
        let newest = table
            .candidates("", &entry.provider, &entry.model)
            .into_iter()
            .find(|p| p.tenant.is_none() && p.effective_from_us <= day_us);
        if newest.is_some_and(|p| p.cards == imported.cards) {
            report.unchanged += 1;
            continue;
        }
        added.push(entry);
    }
    report.added = added.len();
    let mut text = existing.to_string();
    if !added.is_empty() {
        let body = toml::to_string(&super::prices::PriceFile { prices: added }).map_err(|e| {
            PriceError::Syntax {
                path: Default::default(),
                reason: e.to_string(),
            }
        })?;
        if !text.ends_with('\n') && !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!(
            "\n# Imported from the LiteLLM price map: {} prices from {day}.\n\n{body}",
            report.added
        ));
        // The merged file must load; a model priced twice on one day means
        // this day's map was imported before.
        PriceTable::parse(&text).map_err(|e| match e {
            PriceError::Key { key, reason } if reason.contains("from the same day") => {
                PriceError::Key {
                    key,
                    reason: format!(
                        "{reason}: a map was imported on {day} already; \
                         import this one with a later --effective-from"
                    ),
                }
            }
            other => other,
        })?;
    }
    Ok((text, report))
}

/// Every text model of the map as a price entry (no id or date yet).
pub fn convert(
    map_json: &str,
    options: &ImportOptions,
) -> Result<(Vec<PriceEntry>, ImportReport), PriceError> {
    let map: serde_json::Map<String, Value> =
        serde_json::from_str(map_json).map_err(|e| PriceError::Syntax {
            path: Default::default(),
            reason: format!("the price map is not a JSON object: {e}"),
        })?;
    let mut report = ImportReport::default();
    let mut entries: Vec<PriceEntry> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for (key, spec) in &map {
        report.read += 1;
        let Some(spec) = spec.as_object() else {
            *report.skipped.entry("not an object").or_default() += 1;
            continue;
        };
        let skip = match spec.get("mode").and_then(Value::as_str) {
            _ if key == "sample_spec" => Some("the map's example entry"),
            Some("chat" | "completion" | "responses") => None,
            _ => Some("not a text model (mode)"),
        }
        .or_else(|| {
            (spec.get("input_cost_per_token").is_none()
                || spec.get("output_cost_per_token").is_none())
            .then_some("no input or output token price")
        })
        .or_else(|| {
            spec.contains_key("tiered_pricing")
                .then_some("range-tiered pricing")
        })
        .or_else(|| {
            spec.contains_key("off_peak_pricing")
                .then_some("off-peak pricing")
        });
        if let Some(reason) = skip {
            *report.skipped.entry(reason).or_default() += 1;
            continue;
        }
        let litellm_provider = spec
            .get("litellm_provider")
            .and_then(Value::as_str)
            .unwrap_or("unknown");
        let model = key
            .strip_prefix(litellm_provider)
            .and_then(|m| m.strip_prefix('/'))
            .unwrap_or(key);
        let provider = options
            .provider_aliases
            .get(litellm_provider)
            .map_or(litellm_provider, String::as_str);
        if !seen.insert((provider.to_string(), model.to_string())) {
            *report
                .skipped
                .entry("same provider and model twice")
                .or_default() += 1;
            continue;
        }
        match entry_of(litellm_provider, provider, model, spec, &mut report) {
            Ok(entry) => {
                report.priced += 1;
                entries.push(entry);
            }
            Err(reason) => {
                tracing::warn!(entry = %key, %reason, "price map entry not imported");
                *report
                    .skipped
                    .entry("a rate that is not a price")
                    .or_default() += 1;
            }
        }
    }
    Ok((entries, report))
}

/// The rate a map key names: dimension, prompt threshold, service tier.
struct RateKey {
    field: &'static str,
    above: u64,
    tier: ServiceTier,
}

/// The rate a LiteLLM key names, or None for keys somaflow does not import.
fn rate_key(key: &str) -> Option<RateKey> {
    let (rest, tier) = [
        ("_batches", ServiceTier::Batch),
        ("_flex", ServiceTier::Flex),
        ("_priority", ServiceTier::Priority),
    ]
    .iter()
    .find_map(|(suffix, tier)| key.strip_suffix(suffix).map(|r| (r, *tier)))
    .unwrap_or((key, ServiceTier::Standard));
    let (base, above) = match rest.rsplit_once("_above_") {
        Some((base, t)) if t.ends_with("_tokens") => {
            let t = t.trim_end_matches("_tokens");
            let (digits, scale) = match t.strip_suffix('k') {
                Some(d) => (d, 1000),
                None => (t, 1),
            };
            (base, digits.parse::<u64>().ok()? * scale)
        }
        _ => (rest, 0),
    };
    let field = match base {
        "input_cost_per_token" => "input",
        "cache_read_input_token_cost" => "cached_input",
        "cache_creation_input_token_cost" => "cache_creation",
        "cache_creation_input_token_cost_above_1hr" => "cache_creation_1h",
        "output_cost_per_token" => "output",
        "output_cost_per_reasoning_token" => "reasoning",
        _ => return None,
    };
    Some(RateKey { field, above, tier })
}

fn entry_of(
    litellm_provider: &str,
    provider: &str,
    model: &str,
    spec: &serde_json::Map<String, Value>,
    report: &mut ImportReport,
) -> Result<PriceEntry, String> {
    let mut tiers: BTreeMap<(ServiceTier, u64), TierEntry> = BTreeMap::new();
    for (key, value) in spec {
        let is_price = key.contains("cost") || key.contains("pricing");
        let Some(rate) = rate_key(key) else {
            if is_price {
                *report.ignored_keys.entry(key.clone()).or_default() += 1;
            }
            continue;
        };
        let (per_million, rounded) = per_million(value).map_err(|e| format!("{key}: {e}"))?;
        if rounded {
            report.rounded += 1;
        }
        let tier = tiers.entry((rate.tier, rate.above)).or_default();
        let slot = match rate.field {
            "input" => &mut tier.input,
            "cached_input" => &mut tier.cached_input,
            "cache_creation" => &mut tier.cache_creation,
            "cache_creation_1h" => &mut tier.cache_creation_1h,
            "output" => &mut tier.output,
            _ => &mut tier.reasoning,
        };
        *slot = Some(per_million);
    }
    let mut base = tiers
        .remove(&(ServiceTier::Standard, 0))
        .ok_or("no standard rates")?;
    // Fireworks bills cached prompt tokens at half the input rate where the
    // map states no cache price (as LiteLLM does for it).
    if litellm_provider == "fireworks_ai"
        && base.cached_input.is_none()
        && let Some(input) = &base.input
    {
        let nanos = parse_decimal(input).map_err(|e| format!("input_cost_per_token: {e}"))?;
        base.cached_input = Some(format_decimal(super::prices::divide_half_even(nanos, 2)));
    }
    Ok(PriceEntry {
        id: String::new(),
        provider: provider.to_string(),
        model: model.to_string(),
        effective_from: String::new(),
        tenant: None,
        input: base.input.ok_or("no input rate")?,
        cached_input: base.cached_input,
        cache_creation: base.cache_creation,
        cache_creation_1h: base.cache_creation_1h,
        output: base.output.ok_or("no output rate")?,
        reasoning: base.reasoning,
        tiers: tiers
            .into_iter()
            .map(|((tier, above), mut t)| {
                t.service_tier = (tier != ServiceTier::Standard).then(|| tier.name().to_string());
                t.above_input_tokens = (above > 0).then_some(above);
                t
            })
            .collect(),
    })
}

/// A per-token USD price as decimal text per 1M tokens: the JSON number's
/// shortest decimal form with the point moved six places, exact unless it
/// has more than 9 decimal places (then rounded half to even; `true`).
fn per_million(value: &Value) -> Result<(String, bool), String> {
    let number = match value {
        Value::Number(n) => n.as_f64().ok_or("not a finite number")?,
        Value::String(s) => s.parse::<f64>().map_err(|e| format!("{s:?}: {e}"))?,
        other => return Err(format!("expected a number, got {other}")),
    };
    if !number.is_finite() || number < 0.0 {
        return Err(format!("{number} is not a price"));
    }
    Ok(round_to_nanos(&shift_decimal(&format!("{number}"), 6)))
}

/// `text` with at most 9 decimal places, half to even; whether it changed.
fn round_to_nanos(text: &str) -> (String, bool) {
    let Some((whole, frac)) = text.split_once('.') else {
        return (text.to_string(), false);
    };
    if frac.len() <= 9 {
        return (text.to_string(), false);
    }
    let (kept, dropped) = frac.split_at(9);
    let digits = format!("{whole}{kept}");
    let Ok(mut scaled) = digits.parse::<u128>() else {
        return (text.to_string(), false);
    };
    let half = format!("5{}", "0".repeat(dropped.len() - 1));
    let up = match dropped.cmp(half.as_str()) {
        std::cmp::Ordering::Greater => true,
        std::cmp::Ordering::Equal => scaled % 2 == 1,
        std::cmp::Ordering::Less => false,
    };
    if up {
        scaled += 1;
    }
    (format_decimal(scaled as i128), true)
}

/// `text` (plain decimal, as Rust prints an f64) times 10^`places`.
fn shift_decimal(text: &str, places: usize) -> String {
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    let mut digits = format!("{int}{frac}");
    let point = int.len() + places;
    while digits.len() < point {
        digits.push('0');
    }
    let (whole, rest) = digits.split_at(point);
    let whole = match whole.trim_start_matches('0') {
        "" => "0",
        w => w,
    };
    match rest.trim_end_matches('0') {
        "" => whole.to_string(),
        rest => format!("{whole}.{rest}"),
    }
}

#[cfg(test)]
mod tests;
