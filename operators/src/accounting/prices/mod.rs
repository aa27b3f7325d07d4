//! `config/prices.toml`: list prices per model (USD per 1M tokens, by usage
//! type, service tier and prompt length) with the date they apply from, and
//! per-tenant overrides; loaded once, checked with the key and the reason,
//! looked up per row. [`entry`] reads the file, [`rates`] resolves a price's
//! rate cards.

mod entry;
mod rates;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

pub(crate) use entry::price as entry_price;
pub use entry::{PriceEntry, PriceFile, TierEntry};
pub use rates::{Dimension, RateCard, ServiceTier, StatedRates, card_label};

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

/// One entry of the table: a model's rates from a day on, for every tenant
/// or one. Rates are nano-USD per 1M tokens (scale 9), one [`RateCard`]
/// per service tier and prompt length.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Price {
    pub id: String,
    pub provider: String,
    pub model: String,
    pub tenant: Option<String>,
    /// Microseconds since the epoch, midnight UTC of `effective_from`.
    pub effective_from_us: i64,
    /// The standard base card first.
    pub cards: Vec<RateCard>,
}

/// Token counts in the OpenAI convention: `input` includes `cached_input`
/// and `cache_creation`, `cache_creation` includes `cache_creation_1h`,
/// `output` includes `reasoning`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    pub input: i64,
    pub output: i64,
    pub cached_input: i64,
    pub reasoning: i64,
    pub cache_creation: i64,
    pub cache_creation_1h: i64,
}

impl TokenUsage {
    /// How many tokens of the usage each rate applies to, each counted once.
    pub fn billed(&self, d: Dimension) -> i64 {
        let u = self;
        match d {
            Dimension::Input => u.input - u.cached_input.max(0) - u.cache_creation.max(0),
            Dimension::CachedInput => u.cached_input,
            Dimension::CacheCreation => u.cache_creation - u.cache_creation_1h.max(0),
            Dimension::CacheCreation1h => u.cache_creation_1h,
            Dimension::Output => u.output - u.reasoning.max(0),
            Dimension::Reasoning => u.reasoning,
        }
        .max(0)
    }

    /// A usage of `tokens` tokens billed at `d` only.
    pub fn only(d: Dimension, tokens: i64) -> TokenUsage {
        let mut u = TokenUsage::default();
        match d {
            Dimension::Input => u.input = tokens,
            Dimension::CachedInput => (u.input, u.cached_input) = (tokens, tokens),
            Dimension::CacheCreation => (u.input, u.cache_creation) = (tokens, tokens),
            Dimension::CacheCreation1h => {
                (u.input, u.cache_creation, u.cache_creation_1h) = (tokens, tokens, tokens)
            }
            Dimension::Output => u.output = tokens,
            Dimension::Reasoning => (u.output, u.reasoning) = (tokens, tokens),
        }
        u
    }
}

impl RateCard {
    /// Cost in nano-USD (scale 9), exact before one final rounding (half to
    /// even) of the sub-nano remainder: each token counted once
    /// ([`TokenUsage::billed`]) times its rate per 1M tokens.
    pub fn cost(&self, usage: TokenUsage) -> i128 {
        let micro: i128 = Dimension::ALL
            .iter()
            .map(|d| i128::from(usage.billed(*d)) * self.rate(*d))
            .sum();
        divide_half_even(micro, 1_000_000)
    }
}

impl Price {
    /// The card a request of `tier` with `prompt_tokens` is billed with:
    /// the tier's card with the highest threshold the prompt exceeds; the
    /// standard cards when the price has none for the tier.
    pub fn card(&self, tier: ServiceTier, prompt_tokens: i64) -> &RateCard {
        let has_tier = self.cards.iter().any(|c| c.tier == tier);
        let tier = if has_tier {
            tier
        } else {
            ServiceTier::Standard
        };
        let prompt = u64::try_from(prompt_tokens).unwrap_or(0);
        self.cards
            .iter()
            .filter(|c| {
                c.tier == tier && (c.above_input_tokens == 0 || prompt > c.above_input_tokens)
            })
            .max_by_key(|c| c.above_input_tokens)
            .unwrap_or(&self.cards[0])
    }

    /// The card named `label` (a rated row's `price_tier`; '' = standard).
    pub fn card_labelled(&self, label: &str) -> Option<&RateCard> {
        let label = if label.is_empty() { "standard" } else { label };
        self.cards.iter().find(|c| c.label == label)
    }

    /// The card used and the cost of `usage` served under `tier`.
    pub fn quote(&self, usage: TokenUsage, tier: ServiceTier) -> (&RateCard, i128) {
        let card = self.card(tier, usage.input);
        (card, card.cost(usage))
    }

    /// The cost of `usage` served on the standard tier (the card of its
    /// prompt's length).
    pub fn cost(&self, usage: TokenUsage) -> i128 {
        self.quote(usage, ServiceTier::Standard).1
    }
}

pub(crate) fn divide_half_even(value: i128, divisor: i128) -> i128 {
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
    by_id: HashMap<String, usize>,
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
        PriceTable::from_prices(entry::parse(text)?)
    }

    /// A table of `prices`, checked: ids unique, one price per model,
    /// tenant and day.
    pub fn from_prices(prices: Vec<Price>) -> Result<PriceTable, PriceError> {
        let mut by_id = HashMap::with_capacity(prices.len());
        let mut by_day: HashMap<(&str, &str, Option<&str>, i64), &str> = HashMap::new();
        for (i, price) in prices.iter().enumerate() {
            let key = |field: &str| format!("prices[{i}].{field}");
            if by_id.insert(price.id.clone(), i).is_some() {
                return Err(PriceError::Key {
                    key: key("id"),
                    reason: format!("{:?} is used twice; every price needs its own id", price.id),
                });
            }
            let day = (
                price.provider.as_str(),
                price.model.as_str(),
                price.tenant.as_deref(),
                price.effective_from_us,
            );
            if let Some(same) = by_day.insert(day, &price.id) {
                return Err(PriceError::Key {
                    key: key("effective_from"),
                    reason: format!(
                        "{} {} already has price {:?} from the same day for the same tenant",
                        price.provider, price.model, same
                    ),
                });
            }
        }
        Ok(PriceTable { prices, by_id })
    }

    /// Every price, in file order.
    pub fn prices(&self) -> &[Price] {
        &self.prices
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
        self.by_id.get(id).map(|&i| &self.prices[i])
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
mod tests;
