//! Validation errors that name the offending field and say why it was refused.

use std::fmt;

/// Why one event was refused; `field` is a dotted path such as `data.input_tokens`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EventError {
    pub field: String,
    pub reason: String,
}

impl EventError {
    pub fn new(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// An error about the record as a whole (not valid JSON, not an object, ...).
    pub fn body(reason: impl Into<String>) -> Self {
        Self::new("", reason)
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.field, self.reason)
        }
    }
}
