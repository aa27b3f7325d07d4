//! Logging and tracing setup: `RUST_LOG` filters (default `info`), logs to
//! stderr, colored only on a terminal (files and CI logs stay greppable);
//! with `[otel] endpoint` set, spans (HTTP requests, batches through each
//! node, checkpoints) also go to an OpenTelemetry collector over OTLP/HTTP.

mod config;

use std::io::IsTerminal;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider;
use opentelemetry_http::{HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub use config::OtelConfig;

/// How long one export may take before it is given up (the batch is lost
/// to the collector, never to the pipeline).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Logs only, for the commands that export no traces.
pub fn init(default_level: &str) {
    let _ = tracing_subscriber::registry()
        .with(fmt_layer(default_level))
        .try_init();
}

/// Logs, plus trace export when `[otel] endpoint` is set. Keep the guard
/// for the life of the process: dropping it flushes the last spans.
/// `instance` names this process among the service's (`service.instance.id`:
/// the cluster worker id).
pub fn init_with(
    config: &OtelConfig,
    instance: &str,
    default_level: &str,
) -> anyhow::Result<TraceGuard> {
    if !config.enabled() {
        init(default_level);
        return Ok(TraceGuard(None));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(config.traces_url())
        .with_timeout(EXPORT_TIMEOUT)
        .with_http_client(TokioHttpClient::new()?)
        .build()
        .map_err(|e| anyhow::anyhow!("otel.endpoint {}: {e}", config.endpoint))?;
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            config.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .with_attribute(KeyValue::new("service.instance.id", instance.to_string()))
                .build(),
        )
        .build();
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let tracer = provider.tracer("somaflow");
    // Spans at info and above are exported whatever RUST_LOG says of logs;
    // the SDK's own diagnostics stay out of the traces it exports.
    let otel = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(EnvFilter::new(
            "info,opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,opentelemetry_http=off",
        ));
    let _ = tracing_subscriber::registry()
        .with(fmt_layer(default_level))
        .with(otel)
        .try_init();
    tracing::info!(endpoint = %config.traces_url(), "exporting traces over OTLP/HTTP");
    Ok(TraceGuard(Some(provider)))
}

fn fmt_layer<S>(default_level: &str) -> impl Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    // The OpenTelemetry SDK's routine chatter stays below the default; its
    // warnings and errors (a failed export, dropped spans) show.
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{default_level},opentelemetry=warn,opentelemetry_sdk=warn,opentelemetry_otlp=warn"
        ))
    });
    tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(std::io::stderr().is_terminal())
        .with_filter(filter)
}

/// Flushes and stops trace export when dropped.
pub struct TraceGuard(Option<SdkTracerProvider>);

impl TraceGuard {
    /// Exports the spans still buffered (the SDK waits up to 5 s for it).
    pub async fn shutdown(mut self) {
        if let Some(provider) = self.0.take() {
            // The provider blocks while its exporter thread drains, and the
            // exporter's requests run on this runtime: wait off its threads.
            let _ = tokio::task::spawn_blocking(move || provider.shutdown()).await;
        }
    }
}

impl Drop for TraceGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take() {
            let _ = std::thread::spawn(move || provider.shutdown()).join();
        }
    }
}

/// OTLP requests through the process's reqwest client, run as tasks on the
/// tokio runtime: the SDK's batch processor exports from its own thread,
/// which has no runtime of its own.
#[derive(Debug)]
struct TokioHttpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

impl TokioHttpClient {
    fn new() -> anyhow::Result<Self> {
        Ok(Self {
            client: reqwest::Client::builder().timeout(EXPORT_TIMEOUT).build()?,
            runtime: tokio::runtime::Handle::try_current()
                .map_err(|e| anyhow::anyhow!("trace export needs the tokio runtime: {e}"))?,
        })
    }
}

#[async_trait]
impl HttpClient for TokioHttpClient {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        let (parts, body) = request.into_parts();
        let task = self.runtime.spawn(async move {
            let response = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = response.status();
            let headers = response.headers().clone();
            let body = response.bytes().await?;
            let mut answer = Response::new(body);
            *answer.status_mut() = status;
            *answer.headers_mut() = headers;
            Ok::<_, reqwest::Error>(answer)
        });
        Ok(task.await??)
    }
}
