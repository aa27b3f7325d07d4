//! What a generator run produced, so tests and `somaflow produce` can check
//! the lake against it: counts and sums per kind of the distinct valid events.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Sums over the distinct valid events of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindStats {
    pub count: u64,
    /// Conversations: input tokens; capsule runs: tokens.
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub reasoning_tokens: i64,
    /// Capsule runs and conversations' shared token counter.
    pub tokens: i64,
    /// Marketplace transactions.
    pub amount_cents: i64,
    /// Billing quantity, scaled by 10^9.
    pub quantity_nanos: i128,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GeneratorStats {
    /// Records emitted, including duplicates and malformed ones.
    pub emitted: u64,
    /// Distinct valid events.
    pub valid: u64,
    /// Exact repeats of an earlier valid event (dedup must drop them).
    pub duplicates: u64,
    /// Records that validation must refuse (they belong in dead letters).
    pub malformed: u64,
    /// Per table.
    pub kinds: BTreeMap<String, KindStats>,
}
