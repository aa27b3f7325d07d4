//! Token and cost accounting (DESIGN §5): the price table and the exact
//! decimal cost of a conversation's usage. Cached input tokens are priced at
//! the cached rate and never also at the full rate; reasoning tokens at the
//! output rate unless the table names a reasoning rate.

mod prices;

pub use prices::{Price, PriceError, PriceTable, TokenUsage};
