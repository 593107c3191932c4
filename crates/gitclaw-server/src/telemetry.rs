//! Logs on stderr and, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, OpenTelemetry traces over
//! OTLP/HTTP (protobuf).
//!
//! Every span the server opens at INFO or above becomes an OpenTelemetry span
//! whatever `RUST_LOG` says (that filter is the log's alone): one trace per
//! request (`request`, continuing a W3C `traceparent` the client sent), with
//! children for a fetch's negotiation, pack source choice and pack writing, a
//! push's spooling, indexing, storing and commit, and each object-store call.
//! Spans leave through a batch processor on its own thread: a collector that
//! is down costs dropped spans, never a slower or failed request. The standard
//! `OTEL_*` variables apply (service name — `gitclaw` unless
//! `OTEL_SERVICE_NAME` says otherwise —, resource attributes, sampler, batch
//! timing).

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::{trace::SdkTracerProvider, Resource};
use tracing_subscriber::{filter::LevelFilter, layer::SubscriberExt, Layer};

use crate::config::LogFormat;

/// Keeps the trace exporter alive; dropping it flushes the spans still queued.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take() {
            let _ = provider.shutdown();
        }
    }
}

/// Whether the environment asks for traces.
fn traces_wanted() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()))
}

/// Install the process's subscriber: the log, and traces when asked for. Call
/// before starting the async runtime (the exporter's HTTP client has its own).
pub fn init(format: LogFormat) -> Telemetry {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let log = match format {
        LogFormat::Json => fmt.json().with_filter(filter).boxed(),
        LogFormat::Text => fmt.with_filter(filter).boxed(),
    };
    let (provider, problem) = if traces_wanted() {
        match tracer_provider() {
            Ok(provider) => (Some(provider), None),
            Err(err) => (None, Some(err)),
        }
    } else {
        (None, None)
    };
    let traces = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("gitclaw"))
            .with_filter(LevelFilter::INFO)
    });
    let subscriber = tracing_subscriber::registry().with(log).with(traces);
    let _ = tracing::subscriber::set_global_default(subscriber);
    if let Some(err) = problem {
        tracing::warn!(error = %err, "OpenTelemetry traces are off: the exporter cannot be built");
    }
    Telemetry { provider }
}

fn tracer_provider() -> Result<SdkTracerProvider, opentelemetry_otlp::ExporterBuildError> {
    use opentelemetry_otlp::WithExportConfig;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .build()?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("gitclaw");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The W3C trace context a request carries (`traceparent`, `tracestate`).
pub fn remote_context(headers: &axum::http::HeaderMap) -> opentelemetry::Context {
    use opentelemetry::propagation::{Extractor, TextMapPropagator};
    struct Headers<'a>(&'a axum::http::HeaderMap);
    impl Extractor for Headers<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }
        fn keys(&self) -> Vec<&str> {
            self.0.keys().map(|k| k.as_str()).collect()
        }
    }
    opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&Headers(headers))
}
