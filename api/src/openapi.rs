//! `/openapi.json`: the API's OpenAPI 3.1 document, generated from the
//! handlers' `#[utoipa::path]` annotations and the request and answer types.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ErrorBody, ErrorDetail};
use crate::routes;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some(
            "A JWT with claims `tenant` and `scopes` (events:write, usage:read, billing:read, \
             billing:admin, sql:read, admin); `somaflow token` mints one"
                .into(),
        );
        components.add_security_scheme("bearer", SecurityScheme::Http(http));
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "somaflow", description = "Usage, billing, forecasts and SQL over the AI-agent platform's events"),
    paths(
        routes::events::post_events,
        routes::sql::post_sql,
        routes::usage::get_usage,
        routes::billing::post_billing_events,
        routes::ledgers::get_ledger,
        routes::ledgers::export_ledgers,
        routes::forecasts::get_forecast,
        routes::forecasts::post_scan,
        routes::kamachiq::get_summary,
        routes::budgets::get_budget,
        routes::budgets::put_budget,
        routes::capsules::get_top,
        routes::metadata::put_tenant,
        routes::metadata::put_capsule,
        routes::dispatch::fetch,
        routes::dispatch::commit,
        routes::health::health,
        routes::health::ready,
        routes::health::prometheus,
    ),
    components(schemas(ErrorBody, ErrorDetail)),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

pub async fn openapi_json() -> axum::Json<utoipa::openapi::OpenApi> {
    axum::Json(ApiDoc::openapi())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_documented_with_its_scope() {
        let doc = serde_json::to_value(ApiDoc::openapi()).unwrap();
        for path in [
            "/v1/events",
            "/v1/sql",
            "/v1/usage",
            "/v1/billing/events",
            "/v1/billing/ledgers",
            "/v1/billing/ledgers/export",
            "/v1/forecasts",
            "/v1/anomalies/scan",
            "/v1/kamachiq/summary",
            "/v1/budgets/{tenant}",
            "/v1/tenants/{tenant}/capsules/top",
            "/health",
            "/ready",
            "/metrics",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} is documented");
        }
        assert_eq!(
            doc["paths"]["/v1/usage"]["get"]["security"][0]["bearer"][0],
            "usage:read"
        );
        assert!(doc["paths"]["/v1/budgets/{tenant}"]["put"].is_object());
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let params: Vec<&str> = doc["paths"]["/v1/usage"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        assert!(
            params.contains(&"group_by") && params.contains(&"tz"),
            "{params:?}"
        );
    }
}
