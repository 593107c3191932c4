//! OpenTelemetry traces: a `gitclaw serve` with `OTEL_EXPORTER_OTLP_ENDPOINT`
//! set sends a receiver here (OTLP/HTTP, decoded with the OTLP protobuf
//! definitions) one trace per request, the phases of a clone and of a push as
//! children of the request's span, with the repository path and request id as
//! attributes; an incoming `traceparent` is continued.

mod common;

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use common::wait::wait_until;
use common::*;
use opentelemetry_proto::tonic::{
    collector::trace::v1::ExportTraceServiceRequest, common::v1::any_value, trace::v1::Span,
};
use prost::Message;

/// An OTLP/HTTP trace receiver on loopback, keeping every span it is sent.
struct Receiver {
    addr: SocketAddr,
    spans: Arc<Mutex<Vec<Span>>>,
}

impl Receiver {
    /// A plain-HTTP receiver.
    fn start() -> Receiver {
        Receiver::serve(None)
    }

    /// An HTTPS receiver with the server certificate of `certs`.
    fn start_tls(certs: &common::tls::Certs) -> Receiver {
        Receiver::serve(Some(certs.acceptor()))
    }

    fn serve(tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
        let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
        let (send, recv) = std::sync::mpsc::channel();
        let kept = spans.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                send.send(listener.local_addr().unwrap()).unwrap();
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let kept = kept.clone();
                    let tls = tls.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(
                            move |req: hyper::Request<hyper::body::Incoming>| {
                                let kept = kept.clone();
                                async move {
                                    use http_body_util::BodyExt;
                                    let body = req.into_body().collect().await?.to_bytes();
                                    if let Ok(export) = ExportTraceServiceRequest::decode(body) {
                                        let mut kept = kept.lock().unwrap();
                                        for resource in export.resource_spans {
                                            for scope in resource.scope_spans {
                                                kept.extend(scope.spans);
                                            }
                                        }
                                    }
                                    Ok::<_, hyper::Error>(hyper::Response::new(
                                        http_body_util::Full::new(bytes::Bytes::new()),
                                    ))
                                }
                            },
                        );
                        let http = hyper::server::conn::http1::Builder::new();
                        let _ = match tls {
                            None => {
                                http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                    .await
                            }
                            Some(tls) => {
                                let Ok(stream) = tls.accept(stream).await else {
                                    return;
                                };
                                http.serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                                    .await
                            }
                        };
                    });
                }
            });
        });
        let addr = recv.recv_timeout(Duration::from_secs(10)).unwrap();
        Receiver { addr, spans }
    }

    fn spans(&self) -> Vec<Span> {
        self.spans.lock().unwrap().clone()
    }
}

fn attribute(span: &Span, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.clone()),
            other => Some(format!("{other:?}")),
        })
}

/// The spans of the trace whose root is the request span matching `root`.
fn trace_of<'a>(spans: &'a [Span], root: &Span) -> Vec<&'a Span> {
    spans
        .iter()
        .filter(|s| s.trace_id == root.trace_id)
        .collect()
}

#[test]
fn a_clone_and_a_push_arrive_as_traces_with_their_phases_and_a_traceparent_is_continued() {
    let receiver = Receiver::start();
    let server = ServerProcess::start(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", receiver.addr),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
    ]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    let url = server.create_repo("tia", "traced");
    push_everything(&src, &url);
    git(
        work.path(),
        &["clone", "-q", &url, work.path().join("c").to_str().unwrap()],
    );

    // A request carrying a W3C trace context joins that trace.
    let parent_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let traceparent = format!("00-{parent_trace}-00f067aa0ba902b7-01");
    let (status, _) = http(
        server.addr,
        "GET",
        "/tia/traced.git/info/refs?service=git-upload-pack",
        &[("traceparent", &traceparent), ("X-Request-Id", "traced-1")],
        b"",
    );
    assert_eq!(status, 200);

    let named = |spans: &[Span], name: &str| spans.iter().filter(|s| s.name == name).count();
    wait_until(
        Duration::from_secs(30),
        "the spans of a push and a clone",
        || {
            let spans = receiver.spans();
            named(&spans, "write_pack") >= 1 && named(&spans, "commit") >= 1 && {
                spans
                    .iter()
                    .any(|s| attribute(s, "request_id").as_deref() == Some("traced-1"))
            }
        },
    );
    let spans = receiver.spans();
    let by_id: HashMap<&[u8], &Span> = spans.iter().map(|s| (&s.span_id[..], s)).collect();
    let root_of = |span: &Span| -> Option<String> {
        let mut current = span;
        while !current.parent_span_id.is_empty() {
            current = by_id.get(&current.parent_span_id[..])?;
        }
        Some(current.name.clone())
    };

    // The clone: its pack was written under the upload-pack request's span.
    let write = spans.iter().find(|s| s.name == "write_pack").unwrap();
    let request = spans
        .iter()
        .find(|s| s.span_id == write.parent_span_id)
        .expect("write_pack's parent was exported");
    assert!(request.name.contains("git-upload-pack"), "{}", request.name);
    assert_eq!(
        attribute(request, "path").as_deref(),
        Some("/tia/traced.git/git-upload-pack")
    );
    assert_eq!(
        attribute(request, "request_id").map(|id| id.len()),
        Some(16),
        "a made-up request id"
    );
    let clone_trace = trace_of(&spans, request);
    for phase in ["negotiate", "choose_pack_source", "write_pack"] {
        let span = clone_trace
            .iter()
            .find(|s| s.name == phase)
            .unwrap_or_else(|| panic!("no {phase} span in the clone's trace"));
        assert_eq!(
            span.parent_span_id, request.span_id,
            "{phase} hangs off the request"
        );
    }

    // The push: spooling, indexing, storing and the commit, under receive-pack.
    let commit = spans.iter().find(|s| s.name == "commit").unwrap();
    let push = by_id[&commit.parent_span_id[..]];
    assert!(push.name.contains("git-receive-pack"), "{}", push.name);
    for phase in ["spool", "index_pack", "commit"] {
        assert!(
            trace_of(&spans, push).iter().any(|s| s.name == phase),
            "no {phase} span in the push's trace"
        );
    }
    assert_eq!(root_of(commit).as_deref(), Some(push.name.as_str()));
    // The database transaction is a span of its own, inside the commit phase.
    let transaction = spans
        .iter()
        .find(|s| attribute(s, "operation").as_deref() == Some("commit_push"))
        .expect("a span for the push's database transaction");
    assert_eq!(transaction.name, "db");
    assert_eq!(transaction.parent_span_id, commit.span_id);

    // The traceparent: the request joined the client's trace, under its span.
    let joined = spans
        .iter()
        .find(|s| attribute(s, "request_id").as_deref() == Some("traced-1"))
        .unwrap();
    assert_eq!(hex(&joined.trace_id), parent_trace);
    assert_eq!(hex(&joined.parent_span_id), "00f067aa0ba902b7");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_collector_that_is_down_costs_nothing_but_the_spans() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let server = ServerProcess::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{closed}")),
        ("OTEL_BSP_SCHEDULE_DELAY", "50".to_string()),
    ]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 2);
    let url = server.create_repo("tia", "untraced");
    push_everything(&src, &url);
    let dest = work.path().join("c");
    git(work.path(), &["clone", "-q", &url, dest.to_str().unwrap()]);
    assert_eq!(
        git(&dest, &["rev-parse", "HEAD"]),
        git(&src, &["rev-parse", "HEAD"])
    );
}

#[test]
fn traces_reach_a_collector_over_https_trusting_the_ca_the_environment_names() {
    let certs = common::tls::Certs::new();
    let receiver = Receiver::start_tls(&certs);
    let ca = certs.ca();
    let server = ServerProcess::start(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("https://{}", receiver.addr),
        ),
        (
            "OTEL_EXPORTER_OTLP_CERTIFICATE",
            ca.to_str().unwrap().to_string(),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".to_string()),
    ]);
    let (status, _) = http(
        server.addr,
        "GET",
        "/healthz",
        &[("X-Request-Id", "over-tls")],
        b"",
    );
    assert_eq!(status, 200);
    wait_until(
        Duration::from_secs(30),
        "the request's span over TLS",
        || {
            receiver
                .spans()
                .iter()
                .any(|s| attribute(s, "request_id").as_deref() == Some("over-tls"))
        },
    );
}

#[test]
fn an_otlp_protocol_gitclaw_cannot_speak_is_refused_with_a_warning_and_serving_goes_on() {
    let receiver = Receiver::start();
    let mut server = ServerProcess::start(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://{}", receiver.addr),
        ),
        ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc".to_string()),
    ]);
    let warning = server.log.wait_for(Duration::from_secs(10), |l| {
        l.contains("OpenTelemetry traces are off")
    });
    assert!(warning.contains("grpc"), "{warning}");
    assert_eq!(http(server.addr, "GET", "/healthz", &[], b"").0, 200);
}
