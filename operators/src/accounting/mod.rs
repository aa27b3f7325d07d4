//! Token and cost accounting (docs/architecture.md, "Operators"): the price table, the exact
//! decimal cost of a conversation's usage, and the operator rating rows. Cached input tokens are priced at
//! the cached rate and never also at the full rate; reasoning tokens at the
//! output rate unless the table names a reasoning rate.

mod config;
mod operator;
mod prices;

pub use config::AccountingConfig;
pub use operator::{TokenAccounting, billed_cost};
pub use prices::{Price, PriceError, PriceTable, TokenUsage};
