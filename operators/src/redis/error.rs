//! Why a Redis command did not answer, without the URL's password.

/// Why a Redis command did not answer.
#[derive(Debug, thiserror::Error)]
pub enum RedisLinkError {
    #[error("Redis URL {url:?} is not valid: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("Redis at {url} is unavailable (retrying in the background): {reason}")]
    Unavailable { url: String, reason: String },
}
