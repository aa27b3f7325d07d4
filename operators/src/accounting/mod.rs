//! Token and cost accounting (docs/architecture.md, "Operators"): the price
//! table, the exact decimal cost of a conversation's usage, the operator
//! rating rows, and the import of the LiteLLM price map. Every token is
//! billed once, at its dimension's rate (fresh input, cache read, cache
//! write, 1-hour cache write, output, reasoning) on the rate card of its
//! service tier and prompt length (docs/decisions/0105).

mod config;
pub mod litellm;
mod operator;
mod prices;

pub use config::AccountingConfig;
pub use operator::{TokenAccounting, billed_cost};
pub use prices::{
    Dimension, Price, PriceEntry, PriceError, PriceFile, PriceTable, RateCard, ServiceTier,
    StatedRates, TierEntry, TokenUsage, card_label,
};
