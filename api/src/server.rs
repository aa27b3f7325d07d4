//! The axum router and server: routes, body limit, request spans and
//! HTTP metrics, graceful shutdown.

use std::net::SocketAddr;
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::HeaderExtractor;
use somaflow_pipeline::metrics::{HttpLabels, metrics};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tower_http::trace::{DefaultOnFailure, TraceLayer};
use tracing::{Level, Span, info_span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::ServerConfig;
use crate::error::{ApiError, error_body};
use crate::routes::{
    alerts, billing, budgets, capsules, dispatch, events, forecasts, health, kamachiq, ledgers, me,
    metadata, sql, usage,
};
use crate::state::AppState;

pub fn router(state: AppState) -> Router {
    let limit = state.body_limit;
    Router::new()
        .route("/v1/events", post(events::post_events))
        .route("/v1/events/recent", get(events::get_recent))
        .route("/v1/me", get(me::get_me))
        .route("/v1/sql", post(sql::post_sql))
        .route("/v1/usage", get(usage::get_usage))
        .route("/v1/forecasts", get(forecasts::get_forecast))
        .route("/v1/kamachiq/summary", get(kamachiq::get_summary))
        .route("/v1/tenants/{tenant}/capsules/top", get(capsules::get_top))
        .route("/v1/anomalies/scan", post(forecasts::post_scan))
        .route("/v1/billing/events", post(billing::post_billing_events))
        .route("/v1/billing/ledgers", get(ledgers::get_ledger))
        .route("/v1/billing/ledgers/export", get(ledgers::export_ledgers))
        .route(
            "/v1/budgets/{tenant}",
            get(budgets::get_budget).put(budgets::put_budget),
        )
        .route(
            "/v1/tenants/{tenant}",
            axum::routing::put(metadata::put_tenant),
        )
        .route(
            "/v1/capsules/{capsule}",
            axum::routing::put(metadata::put_capsule),
        )
        .route("/v1/alerts", get(alerts::get_alerts))
        .route("/v1/dispatch/{pool}", get(dispatch::fetch))
        .route("/v1/dispatch/{pool}/commit", post(dispatch::commit))
        .route("/", get(crate::console::index))
        .route("/console/{*path}", get(crate::console::file))
        .route("/openapi.json", get(crate::openapi::openapi_json))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .route("/metrics", get(health::prometheus))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(limit))
        .layer(middleware::from_fn(record_metrics))
        // A 503 from /ready or a refused request is an answer, not a server
        // fault: log it as a warning.
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(request_span)
                .on_response(record_status)
                .on_failure(DefaultOnFailure::new().level(Level::WARN)),
        )
        .with_state(state)
}

async fn not_found(uri: axum::http::Uri) -> Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::NOT_FOUND,
        axum::Json(error_body(
            "not_found",
            &format!("no route for {uri}; see /openapi.json or docs/api.md for the API"),
        )),
    )
        .into_response()
}

/// 405 in the one error shape; axum adds the `Allow` header.
async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    use axum::response::IntoResponse;
    (
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(error_body(
            "method_not_allowed",
            &format!("{uri} does not take {method}; see /openapi.json for its methods"),
        )),
    )
        .into_response()
}

async fn record_metrics(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let labels = HttpLabels {
        route,
        method,
        status: response.status().as_u16().to_string(),
    };
    let m = metrics();
    m.http_duration
        .get_or_create(&labels)
        .observe(started.elapsed().as_secs_f64());
    m.http_requests.get_or_create(&labels).inc();
    response
}

/// A method as a metric label: the standard ones by name, any extension
/// method as `other`, so a client cannot mint series.
fn method_label(method: &axum::http::Method) -> String {
    use axum::http::Method;
    let known = [
        Method::GET,
        Method::POST,
        Method::PUT,
        Method::DELETE,
        Method::HEAD,
        Method::OPTIONS,
        Method::PATCH,
    ];
    if known.contains(method) {
        method.as_str().to_string()
    } else {
        "other".to_string()
    }
}

/// The span of one request, named by its route, child of the caller's
/// trace when the request carries a W3C `traceparent` header.
fn request_span(request: &Request) -> Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    let method = request.method();
    let span = info_span!(
        "http request",
        otel.name = %format_args!("{method} {route}"),
        otel.kind = "server",
        http.request.method = %method,
        http.route = route,
        url.path = request.uri().path(),
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let parent = opentelemetry::global::get_text_map_propagator(|p| {
        p.extract(&HeaderExtractor(request.headers()))
    });
    if parent.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer records spans.
        let _ = span.set_parent(parent);
    }
    span
}

/// The answer's status on the request span; a 5xx marks the span as an
/// error (a 4xx is the caller's mistake, not the server's).
fn record_status(response: &Response, _latency: std::time::Duration, span: &Span) {
    span.record("http.response.status_code", response.status().as_u16());
    if response.status().is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}

/// Binds `listen`; fails with the address and reason when it cannot.
pub async fn bind(listen: &str) -> Result<(TcpListener, SocketAddr), ApiError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot listen on {listen}: {e}; is another somaflow running? set server.listen or SOMAFLOW_SERVER__LISTEN")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    Ok((listener, addr))
}

/// A running HTTP server: the router served on its listener until stopped.
pub struct HttpServer {
    pub addr: SocketAddr,
    stop: oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl HttpServer {
    /// Serves `state` on `server.listen`, or, with auth off, on the same
    /// port on localhost only (see [`listen_address`]).
    pub async fn start(
        state: AppState,
        server: &ServerConfig,
        auth_enabled: bool,
    ) -> Result<HttpServer, ApiError> {
        let listen = listen_address(&server.listen, auth_enabled);
        let (listener, addr) = bind(&listen).await?;
        let (stop, stopped) = oneshot::channel::<()>();
        let app = router(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
        });
        Ok(HttpServer { addr, stop, task })
    }

    /// Stops taking requests; in-flight ones finish first.
    pub async fn stop(self) -> std::io::Result<()> {
        let _ = self.stop.send(());
        self.task.await.map_err(std::io::Error::other)?
    }

    /// Stops taking requests without waiting (the process is failing).
    pub fn abort(self) {
        let _ = self.stop.send(());
    }
}

/// `listen`, or, with auth off, the same port on localhost: an
/// unauthenticated API must not be reachable from other hosts.
fn listen_address(listen: &str, auth_enabled: bool) -> String {
    if auth_enabled {
        return listen.to_string();
    }
    let requested: Option<SocketAddr> = listen.parse().ok();
    let local = match requested {
        Some(addr) if addr.ip().is_loopback() => addr,
        Some(addr) => {
            let local = SocketAddr::from(([127, 0, 0, 1], addr.port()));
            tracing::warn!(
                requested = %addr, listening = %local,
                "auth is off, so the API listens on localhost only, not on server.listen"
            );
            local
        }
        None => return listen.to_string(),
    };
    tracing::warn!(
        "AUTH IS OFF: every request to http://{local} is an anonymous admin. \
         Set `[auth] secret` (or SOMAFLOW_AUTH__SECRET, at least 32 bytes) before \
         serving anyone but yourself; `somaflow token` then mints tokens"
    );
    eprintln!(
        "warning: auth is off; the API answers anyone on {local} as admin. Set [auth] secret to turn it on."
    );
    local.to_string()
}
