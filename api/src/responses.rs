//! The error answers every authenticated route can give, documented once
//! and listed in each `#[utoipa::path(responses(…))]`.

use utoipa::IntoResponses;

use crate::error::ErrorBody;

#[derive(IntoResponses)]
#[allow(dead_code)] // Read by the OpenAPI derive only.
pub enum Refusals {
    #[response(
        status = 400,
        description = "A parameter or body field breaks its documented format; `code` names it"
    )]
    BadRequest(ErrorBody),
    #[response(status = 401, description = "No valid bearer token")]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "The token lacks the scope or the tenant, or is bound to no tenant and \
                       names none (`tenant_required`)"
    )]
    Forbidden(ErrorBody),
    #[response(status = 429, description = "The token's rate limit; see Retry-After")]
    TooManyRequests(ErrorBody),
    #[response(
        status = 503,
        description = "A store or the identity provider's keys do not answer; see Retry-After"
    )]
    Unavailable(ErrorBody),
}
