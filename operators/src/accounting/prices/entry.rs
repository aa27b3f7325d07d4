//! The price file's shape (`[[prices]]` with optional `[[prices.tiers]]`)
//! and its reading into [`Price`]s: every mistake names its key. The
//! importer writes entries of the same shape ([`PriceEntry`]).

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use somaflow_pipeline::events::decimal::parse_decimal;

use super::rates::{ServiceTier, Stated, StatedRates, resolve_cards};
use super::{Price, PriceError};

#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriceFile {
    #[serde(default)]
    pub prices: Vec<PriceEntry>,
}

/// One `[[prices]]` entry. Rates are USD per 1M tokens, as decimal text.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PriceEntry {
    pub id: String,
    pub provider: String,
    pub model: String,
    /// `YYYY-MM-DD` (UTC): the price applies to events from this day on.
    pub effective_from: String,
    /// Only this tenant's events (a negotiated price); absent = list price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default)]
    pub input: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_1h: Option<String>,
    #[serde(default)]
    pub output: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tiers: Vec<TierEntry>,
}

/// `[[prices.tiers]]`: rates of a service tier, above a prompt length, or
/// both; what it leaves out is resolved (docs/decisions/0105).
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TierEntry {
    /// `standard` (default), `batch`, `flex` or `priority`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// The rates apply when the prompt has more tokens than this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub above_input_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cached_input: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_creation_1h: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reasoning: Option<String>,
}

/// Every price of the file `text`, resolved, in file order.
pub fn parse(text: &str) -> Result<Vec<Price>, PriceError> {
    let file: PriceFile = toml::from_str(text).map_err(|e| PriceError::Syntax {
        path: Default::default(),
        reason: e.to_string(),
    })?;
    file.prices
        .into_iter()
        .enumerate()
        .map(|(i, entry)| price(&format!("prices[{i}]"), entry))
        .collect()
}

/// One entry as a [`Price`]; `at` names it in errors.
pub fn price(at: &str, entry: PriceEntry) -> Result<Price, PriceError> {
    let key = |field: &str| format!("{at}.{field}");
    let day = NaiveDate::parse_from_str(&entry.effective_from, "%Y-%m-%d").map_err(|e| {
        PriceError::Key {
            key: key("effective_from"),
            reason: format!("{:?} is not YYYY-MM-DD ({e})", entry.effective_from),
        }
    })?;
    for (field, value) in [("input", &entry.input), ("output", &entry.output)] {
        if value.is_empty() {
            return Err(PriceError::Key {
                key: key(field),
                reason: "is required (USD per 1M tokens)".into(),
            });
        }
    }
    let base = stated(
        &key(""),
        &[
            ("input", Some(&entry.input)),
            ("cached_input", entry.cached_input.as_ref()),
            ("cache_creation", entry.cache_creation.as_ref()),
            ("cache_creation_1h", entry.cache_creation_1h.as_ref()),
            ("output", Some(&entry.output)),
            ("reasoning", entry.reasoning.as_ref()),
        ],
    )?;
    let mut all: Stated = vec![((ServiceTier::Standard, 0), base)];
    for (j, tier) in entry.tiers.iter().enumerate() {
        let at = key(&format!("tiers[{j}]"));
        let service = match tier.service_tier.as_deref() {
            None => ServiceTier::Standard,
            Some(name) => ServiceTier::parse(name).ok_or_else(|| PriceError::Key {
                key: format!("{at}.service_tier"),
                reason: format!("{name:?} is not one of standard, batch, flex, priority"),
            })?,
        };
        let threshold = tier.above_input_tokens.unwrap_or(0);
        if service == ServiceTier::Standard && threshold == 0 {
            return Err(PriceError::Key {
                key: at,
                reason: "names neither a service tier nor above_input_tokens; \
                         standard rates belong on the entry itself"
                    .into(),
            });
        }
        if all.iter().any(|(k, _)| *k == (service, threshold)) {
            return Err(PriceError::Key {
                key: at,
                reason: format!(
                    "{} above {threshold} tokens is stated twice",
                    service.name()
                ),
            });
        }
        let rates = stated(
            &format!("{at}."),
            &[
                ("input", tier.input.as_ref()),
                ("cached_input", tier.cached_input.as_ref()),
                ("cache_creation", tier.cache_creation.as_ref()),
                ("cache_creation_1h", tier.cache_creation_1h.as_ref()),
                ("output", tier.output.as_ref()),
                ("reasoning", tier.reasoning.as_ref()),
            ],
        )?;
        if rates.is_empty() {
            return Err(PriceError::Key {
                key: at,
                reason: "states no rate".into(),
            });
        }
        all.push(((service, threshold), rates));
    }
    Ok(Price {
        effective_from_us: day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_micros())
            .unwrap_or_default(),
        cards: resolve_cards(&all),
        id: entry.id,
        provider: entry.provider,
        model: entry.model,
        tenant: entry.tenant,
    })
}

/// The rates `fields` state, each a non-negative decimal; `prefix` names them.
fn stated(prefix: &str, fields: &[(&str, Option<&String>)]) -> Result<StatedRates, PriceError> {
    let mut values = [None; 6];
    for (slot, (field, text)) in values.iter_mut().zip(fields) {
        let Some(text) = text else { continue };
        let key = format!("{prefix}{field}");
        let v = parse_decimal(text).map_err(|reason| PriceError::Key {
            key: key.clone(),
            reason,
        })?;
        if v < 0 {
            return Err(PriceError::Key {
                key,
                reason: format!("{text} is negative"),
            });
        }
        *slot = Some(v);
    }
    let [
        input,
        cached_input,
        cache_creation,
        cache_creation_1h,
        output,
        reasoning,
    ] = values;
    Ok(StatedRates {
        input,
        cached_input,
        cache_creation,
        cache_creation_1h,
        output,
        reasoning,
    })
}
