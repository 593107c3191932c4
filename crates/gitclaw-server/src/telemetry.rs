//! Logs on stderr and, when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, OpenTelemetry traces over
//! OTLP/HTTP (protobuf), plain or over TLS.
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
//! timing, headers, timeout, CA certificate).

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

/// An `OTEL_EXPORTER_OTLP_TRACES_*` variable, else its `OTEL_EXPORTER_OTLP_*`
/// fallback (`suffix` is e.g. `ENDPOINT`), when set and not empty.
fn otlp_env(suffix: &str) -> Option<String> {
    [
        format!("OTEL_EXPORTER_OTLP_TRACES_{suffix}"),
        format!("OTEL_EXPORTER_OTLP_{suffix}"),
    ]
    .iter()
    .find_map(|name| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

/// Whether the environment asks for traces.
fn traces_wanted() -> bool {
    otlp_env("ENDPOINT").is_some()
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

fn tracer_provider() -> Result<SdkTracerProvider, String> {
    use opentelemetry_otlp::{WithExportConfig, WithHttpConfig};
    if let Some(protocol) = otlp_env("PROTOCOL").filter(|p| p != "http/protobuf") {
        return Err(format!(
            "OTEL_EXPORTER_OTLP_PROTOCOL={protocol} is not supported: GitClaw sends http/protobuf"
        ));
    }
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(exporter_client()?)
        .build()
        .map_err(|err| err.to_string())?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name("gitclaw");
    }
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build())
        .build())
}

/// The exporter's HTTP client: plain HTTP or HTTPS (rustls with the system's
/// roots, plus the CA bundle `OTEL_EXPORTER_OTLP_CERTIFICATE` names), with
/// `OTEL_EXPORTER_OTLP_TIMEOUT` (milliseconds, default 10 s) per export.
fn exporter_client() -> Result<reqwest::blocking::Client, String> {
    // One process-wide TLS provider: ring, as the S3 client uses.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let timeout = match otlp_env("TIMEOUT") {
        Some(ms) => ms
            .parse()
            .map(std::time::Duration::from_millis)
            .map_err(|_| format!("OTEL_EXPORTER_OTLP_TIMEOUT: '{ms}' is not milliseconds"))?,
        None => std::time::Duration::from_secs(10),
    };
    let mut client = reqwest::blocking::Client::builder().timeout(timeout);
    if let Some(path) = otlp_env("CERTIFICATE") {
        let pem = std::fs::read(&path)
            .map_err(|err| format!("OTEL_EXPORTER_OTLP_CERTIFICATE: cannot read {path}: {err}"))?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem).map_err(|err| {
            format!("OTEL_EXPORTER_OTLP_CERTIFICATE: {path} is not a PEM bundle: {err}")
        })?;
        for root in roots {
            client = client.add_root_certificate(root);
        }
    }
    client.build().map_err(|err| err.to_string())
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
