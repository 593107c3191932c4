//! A fault-injecting HTTP proxy between GitClaw and the S3 server: requests pass
//! through untouched (so signatures stay valid) unless a fault is armed, and
//! every request is logged with its time, so tests can see retries and delays.

use std::{
    collections::VecDeque,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{Arc, Mutex},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::{
    body::{Body, Frame, Incoming},
    service::service_fn,
    Request, Response,
};
use hyper_util::rt::TokioIo;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the proxy does to a request instead of forwarding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `500 InternalError`.
    InternalError,
    /// `503 SlowDown`.
    SlowDown,
    /// Wait this long, then forward.
    Delay(Duration),
    /// Close the connection without answering.
    Drop,
    /// Forward, then send half of the answer's body and close the connection.
    TruncatedBody,
    /// Forward, and send the answer's body in ten pieces, this long apart.
    SlowBody(Duration),
}

/// Faults drawn at random: each request matched with probability `rate`,
/// then one of `kinds` with equal probability.
struct RandomFaults {
    rate: f64,
    kinds: Vec<Fault>,
    rng: fastrand::Rng,
}

#[derive(Debug, Clone)]
pub struct Seen {
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub fault: Option<Fault>,
}

#[derive(Default)]
struct Plan {
    fault: Option<Fault>,
    /// Matching requests to let through before faults start.
    skip: usize,
    /// Faulted requests left; `None` = every matching request until cleared.
    times: Option<usize>,
    /// Only requests with these methods match (empty = all).
    methods: Vec<String>,
    /// Drawn when no armed fault matches.
    random: Option<RandomFaults>,
    seen: Vec<Seen>,
}

type ProxyBody = BoxBody<Bytes, BoxError>;

/// A running proxy; it stops with the test process.
pub struct FaultProxy {
    pub addr: SocketAddr,
    plan: Arc<Mutex<Plan>>,
}

impl FaultProxy {
    /// Start a proxy in front of `upstream` (an `http://host:port` endpoint).
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream host:port");
        let plan = Arc::new(Mutex::new(Plan::default()));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("proxy addr");
        let shared = plan.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("proxy runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                loop {
                    let Ok((stream, _)) = listener.accept().await else {
                        continue;
                    };
                    let plan = shared.clone();
                    tokio::spawn(async move {
                        let service = service_fn(move |req| handle(req, upstream, plan.clone()));
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        FaultProxy { addr, plan }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn with<T>(&self, f: impl FnOnce(&mut Plan) -> T) -> T {
        f(&mut self.plan.lock().unwrap())
    }

    /// Arm `fault` for requests whose method is one of `methods` (all when empty),
    /// after letting `skip` of them through, `times` times (`None`: until cleared).
    pub fn inject(&self, fault: Fault, methods: &[&str], skip: usize, times: Option<usize>) {
        self.with(|p| {
            p.fault = Some(fault);
            p.methods = methods.iter().map(|m| m.to_string()).collect();
            p.skip = skip;
            p.times = times;
        })
    }

    /// Fault every request with probability `rate`, with one of `kinds` drawn
    /// at random (a generator seeded with `seed`), until cleared.
    pub fn inject_random(&self, rate: f64, kinds: &[Fault], seed: u64) {
        self.with(|p| {
            p.random = Some(RandomFaults {
                rate,
                kinds: kinds.to_vec(),
                rng: fastrand::Rng::with_seed(seed),
            })
        })
    }

    /// Forward everything again.
    pub fn clear(&self) {
        self.with(|p| {
            p.fault = None;
            p.random = None;
        })
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.with(|p| p.seen.clone())
    }

    pub fn forget(&self) {
        self.with(|p| p.seen.clear())
    }
}

fn decide(plan: &Mutex<Plan>, method: &str, path: &str) -> Option<Fault> {
    let mut p = plan.lock().unwrap();
    let matches =
        p.fault.is_some() && (p.methods.is_empty() || p.methods.iter().any(|m| m == method));
    let mut fault = None;
    if matches {
        if p.skip > 0 {
            p.skip -= 1;
        } else {
            fault = p.fault;
            if let Some(left) = p.times.as_mut() {
                *left -= 1;
                if *left == 0 {
                    p.fault = None;
                }
            }
        }
    }
    if let (None, Some(random)) = (fault, p.random.as_mut()) {
        if !random.kinds.is_empty() && random.rng.f64() < random.rate {
            fault = Some(random.kinds[random.rng.usize(..random.kinds.len())]);
        }
    }
    p.seen.push(Seen {
        at: Instant::now(),
        method: method.to_string(),
        path: path.to_string(),
        fault,
    });
    fault
}

fn error_response(status: u16, code: &str) -> Response<ProxyBody> {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code><Message>injected by the test proxy</Message><RequestId>proxy-{code}</RequestId></Error>"
    );
    Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .header("x-amz-request-id", format!("proxy-{code}"))
        .body(
            Full::new(Bytes::from(body))
                .map_err(|never| match never {})
                .boxed(),
        )
        .expect("response")
}

async fn handle(
    req: Request<Incoming>,
    upstream: SocketAddr,
    plan: Arc<Mutex<Plan>>,
) -> Result<Response<ProxyBody>, Box<dyn std::error::Error + Send + Sync>> {
    let method = req.method().to_string();
    let path = req.uri().to_string();
    match decide(&plan, &method, &path) {
        Some(Fault::InternalError) => return Ok(error_response(500, "InternalError")),
        Some(Fault::SlowDown) => return Ok(error_response(503, "SlowDown")),
        Some(Fault::Drop) => return Err("dropped by the test proxy".into()),
        // The fault itself: a store that answers late.
        Some(Fault::Delay(d)) => tokio::time::sleep(d).await,
        Some(Fault::TruncatedBody) => {
            let (parts, body) = forward(req, upstream).await?.into_parts();
            let mut body = body.collect().await?.to_bytes();
            body.truncate(body.len() / 2);
            let body = Scripted::new(vec![body], None, true);
            return Ok(Response::from_parts(parts, body.boxed()));
        }
        Some(Fault::SlowBody(pace)) => {
            let (parts, body) = forward(req, upstream).await?.into_parts();
            let body = body.collect().await?.to_bytes();
            let piece = body.len().div_ceil(10).max(1);
            let pieces = (0..body.len())
                .step_by(piece)
                .map(|at| body.slice(at..(at + piece).min(body.len())))
                .collect();
            let body = Scripted::new(pieces, Some(pace), false);
            return Ok(Response::from_parts(parts, body.boxed()));
        }
        None => {}
    }
    Ok(forward(req, upstream)
        .await?
        .map(|b| b.map_err(BoxError::from).boxed()))
}

async fn forward(
    req: Request<Incoming>,
    upstream: SocketAddr,
) -> Result<Response<Incoming>, BoxError> {
    let stream = tokio::net::TcpStream::connect(upstream).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender.send_request(req).await?)
}

/// A response body sent as given pieces, `pace` apart, and ending in an
/// error (the connection closes mid-body) when `then_fail`.
struct Scripted {
    pieces: VecDeque<Bytes>,
    pace: Option<Duration>,
    wait: Option<Pin<Box<tokio::time::Sleep>>>,
    then_fail: bool,
}

impl Scripted {
    fn new(pieces: Vec<Bytes>, pace: Option<Duration>, then_fail: bool) -> Scripted {
        Scripted {
            pieces: pieces.into(),
            pace,
            wait: None,
            then_fail,
        }
    }
}

impl Body for Scripted {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        if let Some(pace) = this.pace {
            let wait = this
                .wait
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(pace)));
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            this.wait = None;
        }
        match this.pieces.pop_front() {
            Some(piece) => Poll::Ready(Some(Ok(Frame::data(piece)))),
            None if this.then_fail => {
                this.then_fail = false;
                Poll::Ready(Some(Err("body cut short by the test proxy".into())))
            }
            None => Poll::Ready(None),
        }
    }
}
