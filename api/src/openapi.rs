//! `/openapi.json`: the API's OpenAPI 3.1 document, generated from the
//! handlers' `#[utoipa::path]` annotations and the request and answer types,
//! then fitted to the node that serves it: `source` lists the stores this
//! node reads, and the events' schema is the decoder's own
//! ([`event_json_schema`]).

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use somaflow_pipeline::events::event_json_schema;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::{ApiError, ErrorBody, ErrorDetail};
use crate::routes;
use crate::state::AppState;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut http = Http::new(HttpAuthScheme::Bearer);
        http.bearer_format = Some("JWT".into());
        http.description = Some(
            "A JWT with claims `tenant` and `scopes` (events:write, usage:read, billing:read, \
             billing:admin, sql:read, dispatch:consume, admin); `somaflow token` mints one"
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
        routes::events::get_recent,
        routes::me::get_me,
        routes::sql::post_sql,
        routes::usage::get_usage,
        routes::billing::post_billing_events,
        routes::ledgers::get_ledger,
        routes::ledgers::export_ledgers,
        routes::forecasts::get_forecast,
        routes::forecasts::post_scan,
        routes::kamachiq::get_summary,
        routes::alerts::get_alerts,
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

pub async fn openapi_json(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    node_document(&state.stores.sources()).map(Json)
}

/// The media types `POST /v1/events` reads in structured mode.
const EVENT_BODIES: [&str; 3] = [
    "application/cloudevents+json",
    "application/cloudevents-batch+json",
    "application/x-ndjson",
];

/// The document for a node that reads `sources`.
pub fn node_document(sources: &[&str]) -> Result<Value, ApiError> {
    let mut doc = serde_json::to_value(ApiDoc::openapi())
        .map_err(|e| ApiError::Internal(format!("rendering the OpenAPI document: {e}")))?;
    let sources = json!(sources);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for operation in paths.values_mut().filter_map(Value::as_object_mut) {
            for op in operation.values_mut() {
                let params = op.get_mut("parameters").and_then(Value::as_array_mut);
                let params = params.into_iter().flatten();
                for p in params.filter(|p| p["name"] == "source") {
                    p["schema"]["enum"] = sources.clone();
                }
            }
        }
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        for schema in schemas.values_mut() {
            if schema["properties"]["source"].is_object() {
                schema["properties"]["source"]["enum"] = sources.clone();
            }
        }
        schemas.insert("CloudEvent".into(), event_json_schema());
    }
    let event = json!({"$ref": "#/components/schemas/CloudEvent"});
    let bodies = [
        event.clone(),
        json!({"type": "array", "items": event}),
        json!({"type": "string", "description": "One structured-mode event per line"}),
    ];
    let body = &mut doc["paths"]["/v1/events"]["post"]["requestBody"];
    body["required"] = json!(true);
    for (media_type, schema) in EVENT_BODIES.into_iter().zip(bodies) {
        body["content"][media_type]["schema"] = schema;
    }
    Ok(doc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_node_document_names_its_stores_and_the_decoders_events() {
        let doc = node_document(&["lake"]).unwrap();
        let usage = &doc["paths"]["/v1/usage"]["get"]["parameters"];
        let source = usage
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "source")
            .unwrap();
        assert_eq!(source["schema"]["enum"], json!(["lake"]));
        assert_eq!(
            doc["components"]["schemas"]["ScanRequest"]["properties"]["source"]["enum"],
            json!(["lake"])
        );
        let body = &doc["paths"]["/v1/events"]["post"]["requestBody"]["content"];
        assert_eq!(
            body["application/cloudevents+json"]["schema"]["$ref"],
            "#/components/schemas/CloudEvent"
        );
        assert!(doc["components"]["schemas"]["CloudEvent"]["oneOf"].is_array());
    }

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
            "/v1/alerts",
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
