//! Why a question could not be answered, [`SqlError`] for a SQL query and
//! [`QueryError`] for the read endpoints' questions: the caller's mistake, a store
//! this node does not have, something unknown, or a store that does not
//! answer. The HTTP layer turns each into its status (400, 501, 404, 503,
//! 500). [`StoreError`] is what a store itself answers.

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// A parameter the caller must change; `code` names which rule it broke.
    #[error("{message}")]
    BadParam { code: &'static str, message: String },
    /// Parameters each well-formed that together ask what cannot be
    /// answered (`from` after `to`, too many windows, a day that does not
    /// exist): 422, where a malformed one is 400.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
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

    pub fn unprocessable(code: &'static str, message: impl Into<String>) -> Self {
        QueryError::Unprocessable {
            code,
            message: message.into(),
        }
    }
}

/// What went wrong in a store (the lake or ClickHouse) computing a sum.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("the lake: {0}")]
    Lake(String),
    /// The lake query ran past `sql.timeout_ms`: the node is busy.
    #[error(
        "the answer took longer than {0:?} to compute and was given up; the node is busy, retry shortly"
    )]
    Timeout(std::time::Duration),
    #[error("ClickHouse: {0}")]
    ClickHouse(String),
    #[error("the store answered a sum that is not a number: {0:?}")]
    BadValue(String),
}

impl StoreError {
    /// Whether the store may answer if asked again shortly (ClickHouse
    /// unreachable, the lake busy) rather than never.
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::ClickHouse(_) | StoreError::Timeout(_))
    }
}

/// Why a SQL query over the lake failed.
#[derive(Debug, thiserror::Error)]
pub enum SqlError {
    /// The query is wrong (syntax, unknown column, not read-only): the caller's to fix.
    #[error("{0}")]
    Query(String),
    /// The result has more rows than the limit.
    #[error(
        "the result has more than {0} rows; add LIMIT, filter on date/hour, or aggregate (the limit is sql.max_rows)"
    )]
    TooManyRows(usize),
    /// The query ran out of time and was stopped.
    #[error(
        "the query ran longer than {0:?} and was stopped; filter on the date/hour partitions or aggregate (the limit is sql.timeout_ms)"
    )]
    Timeout(std::time::Duration),
    /// The lake could not be opened or read.
    #[error("lake: {0}")]
    Lake(String),
}

impl SqlError {
    /// A short machine-readable name of the error.
    pub fn code(&self) -> &'static str {
        match self {
            SqlError::Query(_) => "invalid_query",
            SqlError::TooManyRows(_) => "too_many_rows",
            SqlError::Timeout(_) => "query_timeout",
            SqlError::Lake(_) => "lake",
        }
    }

    pub fn is_client_error(&self) -> bool {
        !matches!(self, SqlError::Lake(_))
    }
}
