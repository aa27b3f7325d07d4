//! `config/prices.toml`: list prices per model (USD per 1M tokens, by usage
//! type) with the date they apply from, and per-tenant overrides; loaded
//! once, checked with the key and the reason, looked up per row.

use std::path::{Path, PathBuf};

use chrono::NaiveDate;
use serde::Deserialize;
use somaflow_pipeline::events::decimal::parse_decimal;

/// A price-table mistake, reported at startup.
#[derive(Debug, thiserror::Error)]
pub enum PriceError {
    #[error("cannot read price table {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("price table {path} is not valid TOML: {reason}")]
    Syntax { path: PathBuf, reason: String },
    #[error("price table key `{key}`: {reason}")]
    Key { key: String, reason: String },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceFile {
    #[serde(default)]
    prices: Vec<PriceEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceEntry {
    id: String,
    provider: String,
    model: String,
    /// `YYYY-MM-DD` (UTC): the price applies to events from this day on.
    effective_from: String,
    /// Only this tenant's events (a negotiated price); absent = list price.
    tenant: Option<String>,
    input: String,
    cached_input: String,
    output: String,
    /// Defaults to `output`: reasoning tokens are output tokens.
    reasoning: Option<String>,
}

/// One row of the table, prices in nano-USD per 1M tokens (scale 9).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub id: String,
    pub provider: String,
    pub model: String,
    pub tenant: Option<String>,
    /// Microseconds since the epoch, midnight UTC of `effective_from`.
    pub effective_from_us: i64,
    pub input: i128,
    pub cached_input: i128,
    pub output: i128,
    pub reasoning: i128,
}

/// Token counts in the OpenAI convention: `input` includes `cached_input`,
/// `output` includes `reasoning`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: i64,
    pub output: i64,
    pub cached_input: i64,
    pub reasoning: i64,
}

impl Price {
    /// Cost in nano-USD (scale 9), exact before one final rounding (half to
    /// even) of the sub-nano remainder:
    /// `(input − cached)·p_in + cached·p_cached + (output − reasoning)·p_out
    /// + reasoning·p_reasoning`, prices per 1M tokens.
    pub fn cost(&self, usage: TokenUsage) -> i128 {
        let fresh_input = i128::from((usage.input - usage.cached_input).max(0));
        let plain_output = i128::from((usage.output - usage.reasoning).max(0));
        let micro = fresh_input * self.input
            + i128::from(usage.cached_input.max(0)) * self.cached_input
            + plain_output * self.output
            + i128::from(usage.reasoning.max(0)) * self.reasoning;
        divide_half_even(micro, 1_000_000)
    }
}

fn divide_half_even(value: i128, divisor: i128) -> i128 {
    let (q, r) = (value.div_euclid(divisor), value.rem_euclid(divisor));
    match (2 * r).cmp(&divisor) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// Every price, ready for lookups.
#[derive(Debug, Clone, Default)]
pub struct PriceTable {
    prices: Vec<Price>,
}

impl PriceTable {
    pub fn load(path: &Path) -> Result<PriceTable, PriceError> {
        let text = std::fs::read_to_string(path).map_err(|source| PriceError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        PriceTable::parse(&text).map_err(|e| match e {
            PriceError::Syntax { reason, .. } => PriceError::Syntax {
                path: path.to_path_buf(),
                reason,
            },
            other => other,
        })
    }

    pub fn parse(text: &str) -> Result<PriceTable, PriceError> {
        let file: PriceFile = toml::from_str(text).map_err(|e| PriceError::Syntax {
            path: PathBuf::new(),
            reason: e.to_string(),
        })?;
        let mut prices = Vec::with_capacity(file.prices.len());
        for (i, entry) in file.prices.into_iter().enumerate() {
            let key = |field: &str| format!("prices[{i}].{field}");
            let amount = |field: &str, text: &str| -> Result<i128, PriceError> {
                let v = parse_decimal(text).map_err(|reason| PriceError::Key {
                    key: key(field),
                    reason,
                })?;
                if v < 0 {
                    return Err(PriceError::Key {
                        key: key(field),
                        reason: format!("{text} is negative"),
                    });
                }
                Ok(v)
            };
            let day =
                NaiveDate::parse_from_str(&entry.effective_from, "%Y-%m-%d").map_err(|e| {
                    PriceError::Key {
                        key: key("effective_from"),
                        reason: format!("{:?} is not YYYY-MM-DD ({e})", entry.effective_from),
                    }
                })?;
            let output = amount("output", &entry.output)?;
            let price = Price {
                effective_from_us: day
                    .and_hms_opt(0, 0, 0)
                    .map(|t| t.and_utc().timestamp_micros())
                    .unwrap_or_default(),
                input: amount("input", &entry.input)?,
                cached_input: amount("cached_input", &entry.cached_input)?,
                reasoning: match &entry.reasoning {
                    Some(r) => amount("reasoning", r)?,
                    None => output,
                },
                output,
                id: entry.id,
                provider: entry.provider,
                model: entry.model,
                tenant: entry.tenant,
            };
            if prices.iter().any(|p: &Price| p.id == price.id) {
                return Err(PriceError::Key {
                    key: key("id"),
                    reason: format!("{:?} is used twice; every price needs its own id", price.id),
                });
            }
            if let Some(same) = prices.iter().find(|p: &&Price| {
                p.provider == price.provider
                    && p.model == price.model
                    && p.tenant == price.tenant
                    && p.effective_from_us == price.effective_from_us
            }) {
                return Err(PriceError::Key {
                    key: key("effective_from"),
                    reason: format!(
                        "{} {} already has price {:?} from the same day for the same tenant",
                        price.provider, price.model, same.id
                    ),
                });
            }
            prices.push(price);
        }
        Ok(PriceTable { prices })
    }

    /// The price of `provider`/`model` for `tenant` at `event_time_us`: the
    /// tenant's own price when it has one in effect, else the list price;
    /// of those, the one with the latest `effective_from` not after the event.
    pub fn lookup(
        &self,
        tenant: &str,
        provider: &str,
        model: &str,
        event_time_us: i64,
    ) -> Option<&Price> {
        let in_effect = |p: &&Price| {
            p.provider == provider && p.model == model && p.effective_from_us <= event_time_us
        };
        let newest = |own: bool| {
            self.prices
                .iter()
                .filter(in_effect)
                .filter(|p| match &p.tenant {
                    Some(t) => own && t == tenant,
                    None => !own,
                })
                .max_by_key(|p| p.effective_from_us)
        };
        newest(true).or_else(|| newest(false))
    }

    /// The prices that can apply to `tenant`'s use of `provider`/`model`,
    /// newest first, the tenant's own before the list prices: the first
    /// whose `effective_from` is not after an event is its price (the same
    /// answer as [`PriceTable::lookup`], for rows that share a model).
    pub fn candidates(&self, tenant: &str, provider: &str, model: &str) -> Vec<&Price> {
        let mut own: Vec<&Price> = Vec::new();
        let mut list: Vec<&Price> = Vec::new();
        for p in self
            .prices
            .iter()
            .filter(|p| p.provider == provider && p.model == model)
        {
            match &p.tenant {
                Some(t) if t == tenant => own.push(p),
                Some(_) => {}
                None => list.push(p),
            }
        }
        own.sort_by_key(|p| std::cmp::Reverse(p.effective_from_us));
        list.sort_by_key(|p| std::cmp::Reverse(p.effective_from_us));
        own.extend(list);
        own
    }

    /// The price with this `id` (rated rows keep it in `price_id`).
    pub fn get(&self, id: &str) -> Option<&Price> {
        self.prices.iter().find(|p| p.id == id)
    }

    pub fn len(&self) -> usize {
        self.prices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.prices.is_empty()
    }
}

/// The price in effect at `at` among `candidates` (see [`PriceTable::candidates`]).
pub fn in_effect<'a>(candidates: &[&'a Price], at: i64) -> Option<&'a Price> {
    candidates
        .iter()
        .copied()
        .find(|p| p.effective_from_us <= at)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
