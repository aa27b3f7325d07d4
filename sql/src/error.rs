//! Why a question could not be answered: the caller's mistake, a store
//! this node does not have, something unknown, or a store that does not
//! answer. The HTTP layer turns each into its status (400, 501, 404, 503,
//! 500).

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A parameter the caller must change; `code` names which rule it broke.
    #[error("{message}")]
    BadParam { code: &'static str, message: String },
    /// The question needs a store or file this node is not configured with.
    #[error("{message}")]
    NotConfigured { code: &'static str, message: String },
    /// What was asked about does not exist (a tenant nobody knows).
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// A server the answer needs does not answer right now.
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u32,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A store answered something this code cannot read: a bug or a
    /// store changed under it.
    #[error("{0}")]
    Internal(String),
}

impl QueryError {
    pub fn bad_param(code: &'static str, message: impl Into<String>) -> Self {
        QueryError::BadParam {
            code,
            message: message.into(),
        }
    }
}
