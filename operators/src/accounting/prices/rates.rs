//! Rate cards: what one token of each kind costs under one service tier
//! and prompt length, and how a price's cards are resolved from the rates
//! its entry states (docs/decisions/0105). Amounts are nano-USD per 1M
//! tokens (scale 9).

use serde::Serialize;

/// How the provider served a request (`service_tier` on a conversation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceTier {
    Standard,
    /// Asynchronous batch APIs (OpenAI, Anthropic, Google: half price).
    Batch,
    /// Slower, cheaper synchronous processing (OpenAI flex).
    Flex,
    /// Faster processing at a premium (OpenAI and Google priority).
    Priority,
}

impl ServiceTier {
    pub const ALL: [ServiceTier; 4] = [
        ServiceTier::Standard,
        ServiceTier::Batch,
        ServiceTier::Flex,
        ServiceTier::Priority,
    ];
    pub fn name(self) -> &'static str {
        match self {
            ServiceTier::Standard => "standard",
            ServiceTier::Batch => "batch",
            ServiceTier::Flex => "flex",
            ServiceTier::Priority => "priority",
        }
    }

    /// The tier an event names; absent, `default`, `auto` and `scale`
    /// (OpenAI's names for its default processing and its prepaid scale
    /// tier, billed by the unit outside the token rates) are standard.
    pub fn from_event(value: Option<&str>) -> ServiceTier {
        match value {
            Some("batch") => ServiceTier::Batch,
            Some("flex") => ServiceTier::Flex,
            Some("priority") => ServiceTier::Priority,
            _ => ServiceTier::Standard,
        }
    }

    pub fn parse(text: &str) -> Option<ServiceTier> {
        ServiceTier::ALL.into_iter().find(|t| t.name() == text)
    }
}

/// The rates an entry (or one of its tiers) states; absent ones are
/// resolved by [`resolve_cards`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatedRates {
    pub input: Option<i128>,
    pub cached_input: Option<i128>,
    pub cache_creation: Option<i128>,
    pub cache_creation_1h: Option<i128>,
    pub output: Option<i128>,
    pub reasoning: Option<i128>,
}

/// One rate dimension of a card.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dimension {
    Input,
    CachedInput,
    CacheCreation,
    CacheCreation1h,
    Output,
    Reasoning,
}

impl Dimension {
    pub const ALL: [Dimension; 6] = [
        Dimension::Input,
        Dimension::CachedInput,
        Dimension::CacheCreation,
        Dimension::CacheCreation1h,
        Dimension::Output,
        Dimension::Reasoning,
    ];

    /// The ledger meter billed at this rate.
    pub fn meter(self) -> &'static str {
        match self {
            Dimension::Input => "input_tokens",
            Dimension::CachedInput => "cached_input_tokens",
            Dimension::CacheCreation => "cache_creation_input_tokens",
            Dimension::CacheCreation1h => "cache_creation_1h_input_tokens",
            Dimension::Output => "output_tokens",
            Dimension::Reasoning => "reasoning_tokens",
        }
    }

    /// The dimension a rate falls back to when no entry states it: cache
    /// reads and writes are ordinary input where a provider publishes no
    /// cache price, a 1-hour write the 5-minute one, reasoning is output.
    fn fallback(self) -> Option<Dimension> {
        match self {
            Dimension::CachedInput | Dimension::CacheCreation => Some(Dimension::Input),
            Dimension::CacheCreation1h => Some(Dimension::CacheCreation),
            Dimension::Reasoning => Some(Dimension::Output),
            Dimension::Input | Dimension::Output => None,
        }
    }
}

impl StatedRates {
    pub fn get(&self, d: Dimension) -> Option<i128> {
        match d {
            Dimension::Input => self.input,
            Dimension::CachedInput => self.cached_input,
            Dimension::CacheCreation => self.cache_creation,
            Dimension::CacheCreation1h => self.cache_creation_1h,
            Dimension::Output => self.output,
            Dimension::Reasoning => self.reasoning,
        }
    }

    pub fn is_empty(&self) -> bool {
        Dimension::ALL.iter().all(|d| self.get(*d).is_none())
    }
}

/// Every rate of one service tier above one prompt length, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateCard {
    pub tier: ServiceTier,
    /// The card applies when the prompt (`input_tokens`, cached and
    /// cache writes included) has more tokens than this; 0 for the base.
    pub above_input_tokens: u64,
    /// `standard`, `batch`, `priority_above_200k`, …: what `price_tier`
    /// and ledger lines name.
    pub label: String,
    pub input: i128,
    pub cached_input: i128,
    pub cache_creation: i128,
    pub cache_creation_1h: i128,
    pub output: i128,
    pub reasoning: i128,
}

impl RateCard {
    pub fn rate(&self, d: Dimension) -> i128 {
        match d {
            Dimension::Input => self.input,
            Dimension::CachedInput => self.cached_input,
            Dimension::CacheCreation => self.cache_creation,
            Dimension::CacheCreation1h => self.cache_creation_1h,
            Dimension::Output => self.output,
            Dimension::Reasoning => self.reasoning,
        }
    }
}

/// The label of the card for `tier` above `threshold` prompt tokens.
pub fn card_label(tier: ServiceTier, threshold: u64) -> String {
    if threshold == 0 {
        return tier.name().to_string();
    }
    if threshold.is_multiple_of(1000) {
        format!("{}_above_{}k", tier.name(), threshold / 1000)
    } else {
        format!("{}_above_{threshold}", tier.name())
    }
}

/// What an entry states: its base rates and its tiers, keyed by service
/// tier and prompt-length threshold (0 = no threshold).
pub type Stated = Vec<((ServiceTier, u64), StatedRates)>;

/// Every card a price has, from what its entry states (the standard base
/// must state input and output). For a tier `S` above threshold `T` (`T`
/// ascending), each rate is, first found:
/// 1. what the entry states for `S` above `T`;
/// 2. for flex and priority, what it states for standard above `T`; for
///    batch, half the standard card's rate above `T` where the entry states
///    that rate for standard at `T` or below (every provider bills batch at
///    half of every token type, long prompts and cache reads and writes
///    included);
/// 3. the same rate of `S`'s card at the next lower threshold;
/// 4. the card's own fallback dimension ([`Dimension::fallback`]).
///
/// Flex and priority have cards only where the entry states one of their
/// rates; batch always has them. Thresholds apply to a tier when the entry
/// states them for standard or for that tier.
pub fn resolve_cards(stated: &Stated) -> Vec<RateCard> {
    let get = |tier: ServiceTier, threshold: u64| {
        stated
            .iter()
            .find(|((t, at), _)| *t == tier && *at == threshold)
            .map(|(_, r)| *r)
            .unwrap_or_default()
    };
    let thresholds_of = |tier: ServiceTier| {
        let mut at: Vec<u64> = stated
            .iter()
            .filter(|((t, a), _)| *a > 0 && (*t == tier || *t == ServiceTier::Standard))
            .map(|((_, a), _)| *a)
            .collect();
        at.insert(0, 0);
        at.sort_unstable();
        at.dedup();
        at
    };
    let mut cards: Vec<RateCard> = Vec::new();
    // The standard tier's stated-or-inherited rates per threshold (it is
    // resolved first): what batch halves.
    let mut standard_chain: Vec<(u64, StatedRates)> = Vec::new();
    for tier in ServiceTier::ALL {
        let states_any = stated.iter().any(|((t, _), _)| *t == tier);
        if matches!(tier, ServiceTier::Flex | ServiceTier::Priority) && !states_any {
            continue;
        }
        let thresholds = thresholds_of(tier);
        // The stated-or-inherited rates (steps 1–3), lowest threshold first.
        let mut chain: Vec<StatedRates> = Vec::with_capacity(thresholds.len());
        for (i, &at) in thresholds.iter().enumerate() {
            let own = get(tier, at);
            let standard = get(ServiceTier::Standard, at);
            let below = i.checked_sub(1).map(|j| chain[j]).unwrap_or_default();
            // Batch leaves a rate standard states unresolved here, so that
            // it is halved from the standard card of this length (step 2).
            let halved = standard_stated(&standard_chain, at).unwrap_or_default();
            let pick = |d: Dimension| match tier {
                ServiceTier::Batch if halved.get(d).is_some() => own.get(d),
                ServiceTier::Batch => own.get(d).or_else(|| below.get(d)),
                _ => own
                    .get(d)
                    .or_else(|| standard.get(d))
                    .or_else(|| below.get(d)),
            };
            chain.push(StatedRates {
                input: pick(Dimension::Input),
                cached_input: pick(Dimension::CachedInput),
                cache_creation: pick(Dimension::CacheCreation),
                cache_creation_1h: pick(Dimension::CacheCreation1h),
                output: pick(Dimension::Output),
                reasoning: pick(Dimension::Reasoning),
            });
        }
        if tier == ServiceTier::Standard {
            standard_chain = thresholds
                .iter()
                .copied()
                .zip(chain.iter().copied())
                .collect();
        }
        for (&at, rates) in thresholds.iter().zip(&chain) {
            let standard = (tier == ServiceTier::Batch)
                .then(|| standard_card(&cards, at).zip(standard_stated(&standard_chain, at)))
                .flatten();
            let rate = |d: Dimension| resolve(rates, d, standard);
            cards.push(RateCard {
                tier,
                above_input_tokens: at,
                label: card_label(tier, at),
                input: rate(Dimension::Input),
                cached_input: rate(Dimension::CachedInput),
                cache_creation: rate(Dimension::CacheCreation),
                cache_creation_1h: rate(Dimension::CacheCreation1h),
                output: rate(Dimension::Output),
                reasoning: rate(Dimension::Reasoning),
            });
        }
    }
    cards
}

/// The standard card in effect above `at` prompt tokens.
fn standard_card(cards: &[RateCard], at: u64) -> Option<&RateCard> {
    cards
        .iter()
        .filter(|c| c.tier == ServiceTier::Standard && c.above_input_tokens <= at)
        .max_by_key(|c| c.above_input_tokens)
}

/// The standard tier's stated-or-inherited rates above `at` prompt tokens.
fn standard_stated(chain: &[(u64, StatedRates)], at: u64) -> Option<StatedRates> {
    chain
        .iter()
        .filter(|(t, _)| *t <= at)
        .max_by_key(|(t, _)| *t)
        .map(|(_, r)| *r)
}

/// Batch's halving (step 2) and the fallback (step 4) of [`resolve_cards`]
/// for one rate; `half_of` is the standard card and what the entry states
/// for it, for batch.
fn resolve(rates: &StatedRates, d: Dimension, half_of: Option<(&RateCard, StatedRates)>) -> i128 {
    if let Some(v) = rates.get(d) {
        return v;
    }
    if let Some((card, stated)) = half_of
        && stated.get(d).is_some()
    {
        return super::divide_half_even(card.rate(d), 2);
    }
    match d.fallback() {
        Some(f) => resolve(rates, f, half_of),
        None => 0,
    }
}
