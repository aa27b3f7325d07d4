//! API errors: `{"error": {"code", "message"}}` with the right status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use somaflow_sql::QueryError;
use somaflow_sql::store::StoreError;
use utoipa::ToSchema;

use crate::auth::AuthError;

/// Every error answer: `{"error": {"code", "message"}}`.
#[derive(Debug, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable name (e.g. `missing_scope`, `invalid_meter`).
    pub code: String,
    /// What went wrong and what to do next.
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    /// Well-formed parameters that together cannot be answered.
    #[error("{message}")]
    Unprocessable { code: &'static str, message: String },
    #[error(
        "the request body is larger than the limit of {limit} bytes; split it into smaller batches"
    )]
    TooLarge { limit: usize },
    /// One event larger than the log or the broker takes.
    #[error("{0}")]
    TooLargeEvent(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{message}")]
    NotFound { code: &'static str, message: String },
    /// The request disagrees with the state it acts on.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// The route exists but this node is not configured to serve it.
    #[error("{message}")]
    NotConfigured { code: &'static str, message: String },
    #[error("{message}")]
    Unavailable {
        message: String,
        retry_after_secs: u32,
    },
    /// 401 (no valid token) or 403 (the token may not).
    #[error(transparent)]
    Auth(AuthError),
    #[error("too many requests for this token; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u32 },
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::BadRequest { code, .. } => (StatusCode::BAD_REQUEST, code),
            ApiError::Unprocessable { code, .. } => (StatusCode::UNPROCESSABLE_ENTITY, code),
            ApiError::TooLarge { .. } => (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large"),
            ApiError::TooLargeEvent(_) => (StatusCode::PAYLOAD_TOO_LARGE, "event_too_large"),
            ApiError::UnsupportedMediaType(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            ApiError::NotFound { code, .. } => (StatusCode::NOT_FOUND, code),
            ApiError::Conflict { code, .. } => (StatusCode::CONFLICT, code),
            ApiError::NotConfigured { code, .. } => (StatusCode::NOT_IMPLEMENTED, code),
            ApiError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            ApiError::Auth(e @ AuthError::KeysUnavailable(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, e.code())
            }
            ApiError::Auth(e) if e.is_unauthenticated() => (StatusCode::UNAUTHORIZED, e.code()),
            ApiError::Auth(e) => (StatusCode::FORBIDDEN, e.code()),
            ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "rate_limited"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        if e.is_transient() {
            return ApiError::Unavailable {
                message: e.to_string(),
                retry_after_secs: 5,
            };
        }
        ApiError::Internal(e.to_string())
    }
}

impl From<QueryError> for ApiError {
    fn from(e: QueryError) -> Self {
        match e {
            QueryError::BadParam { code, message } => ApiError::BadRequest { code, message },
            QueryError::Unprocessable { code, message } => {
                ApiError::Unprocessable { code, message }
            }
            QueryError::NotConfigured { code, message } => {
                ApiError::NotConfigured { code, message }
            }
            QueryError::NotFound { code, message } => ApiError::NotFound { code, message },
            QueryError::Unavailable {
                message,
                retry_after_secs,
            } => ApiError::Unavailable {
                message,
                retry_after_secs,
            },
            QueryError::Store(e) => e.into(),
            QueryError::Internal(message) => ApiError::Internal(message),
        }
    }
}

/// The JSON body of an error.
pub fn error_body(code: &str, message: &str) -> serde_json::Value {
    json!({ "error": { "code": code, "message": message } })
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            tracing::error!(%code, error = %self, "request failed");
        }
        let mut response = (status, Json(error_body(code, &self.to_string()))).into_response();
        let retry_after = match &self {
            ApiError::Unavailable {
                retry_after_secs, ..
            }
            | ApiError::RateLimited { retry_after_secs } => Some(*retry_after_secs),
            _ => None,
        };
        if let Some(secs) = retry_after
            && let Ok(v) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 §3: say which scheme the server wants.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
