//! What the window sums per group and window ([`Usage`]), shared by the
//! windows and their rollups, and the window's errors.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array};
use serde::{Deserialize, Serialize};

use crate::columns::decimal_array;

#[derive(Debug, thiserror::Error)]
pub enum WindowError {
    #[error("window state snapshot is corrupt: {0}")]
    CorruptState(String),
    #[error("usage rows: {0}")]
    Arrow(#[from] datafusion::arrow::error::ArrowError),
}

/// What is summed per group and window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub input_tokens: i64,
    pub output_tokens: i64,
    pub cached_input_tokens: i64,
    pub reasoning_tokens: i64,
    /// Billed cost in nano-USD (scale 9).
    pub cost_nanos: i128,
    pub requests: i64,
    pub capsule_runs: i64,
    pub workflow_steps: i64,
    /// Added after the first release: snapshots without them read as 0.
    #[serde(default)]
    pub cache_creation_input_tokens: i64,
    #[serde(default)]
    pub cache_creation_1h_input_tokens: i64,
}

impl Usage {
    pub(super) fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cached_input_tokens += other.cached_input_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cost_nanos += other.cost_nanos;
        self.requests += other.requests;
        self.capsule_runs += other.capsule_runs;
        self.workflow_steps += other.workflow_steps;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
        self.cache_creation_1h_input_tokens += other.cache_creation_1h_input_tokens;
    }
}

/// The summed columns `usage_1m` and the rollups end with (before
/// `row_id`), in their schemas' order.
pub fn sum_columns(usage: &[Usage]) -> Result<Vec<ArrayRef>, WindowError> {
    let ints = |f: fn(&Usage) -> i64| -> ArrayRef {
        Arc::new(Int64Array::from_iter_values(usage.iter().map(f)))
    };
    Ok(vec![
        ints(|u| u.input_tokens),
        ints(|u| u.output_tokens),
        ints(|u| u.cached_input_tokens),
        ints(|u| u.reasoning_tokens),
        decimal_array(usage.iter().map(|u| Some(u.cost_nanos)).collect())?,
        ints(|u| u.requests),
        ints(|u| u.capsule_runs),
        ints(|u| u.workflow_steps),
        ints(|u| u.cache_creation_input_tokens),
        ints(|u| u.cache_creation_1h_input_tokens),
    ])
}
