//! The HTTP side of smart HTTP: `GET …/info/refs?service=…` and
//! `POST …/<service>`, with credentials, status and content-type checks, and a
//! count of what went over the wire for the report.

use std::time::Duration;

use bytes::Bytes;
use reqwest::{header, Client, Response, StatusCode, Url};

use crate::{
    config::{Config, Credentials},
    error::{ErrorKind, RunError, SetupError},
    pkt_stream::ChunkSource,
};

/// What one scenario run sent and received: HTTP requests, and body bytes
/// (headers are not counted).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    pub requests: u64,
    pub received: u64,
    pub sent: u64,
}

/// The two git services.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    UploadPack,
    ReceivePack,
}

impl Service {
    fn name(self) -> &'static str {
        match self {
            Service::UploadPack => "git-upload-pack",
            Service::ReceivePack => "git-receive-pack",
        }
    }
}

/// Largest answer read whole (advertisements, ref lists, push reports).
const MAX_SMALL_ANSWER: usize = 64 << 20;

/// A client for one repository.
#[derive(Clone)]
pub struct GitHttp {
    client: Client,
    /// The repository URL without a trailing slash or credentials.
    base: String,
    credentials: Option<Credentials>,
}

impl GitHttp {
    /// A client for `config.url`; credentials in the URL count when the
    /// configuration names none.
    pub fn new(config: &Config) -> Result<GitHttp, SetupError> {
        let mut url = Url::parse(config.url.trim())
            .map_err(|err| SetupError::Options(format!("--url `{}`: {err}", config.url)))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(SetupError::Options(format!(
                "--url `{}`: only http and https URLs",
                config.url
            )));
        }
        let mut credentials = config.credentials.clone();
        if !url.username().is_empty() || url.password().is_some() {
            if credentials.is_none() {
                credentials = Some(Credentials {
                    user: url.username().to_string(),
                    password: url.password().unwrap_or_default().to_string(),
                });
            }
            let _ = url.set_username("");
            let _ = url.set_password(None);
        }
        // reqwest's rustls leaves the choice of crypto to the program, and
        // needs one to build any client, for http URLs too.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client = Client::builder()
            .user_agent(crate::wire::AGENT)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(config.concurrency.max(1))
            .build()
            .map_err(|err| SetupError::Options(format!("HTTP client: {err}")))?;
        Ok(GitHttp {
            client,
            base: url.as_str().trim_end_matches('/').to_string(),
            credentials,
        })
    }

    /// The repository URL, without credentials.
    pub fn url(&self) -> &str {
        &self.base
    }

    fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match &self.credentials {
            Some(c) => request.basic_auth(&c.user, Some(&c.password)),
            None => request,
        }
    }

    /// The advertisement of `service`, read whole; `v2` asks for protocol v2.
    pub async fn info_refs(
        &self,
        service: Service,
        v2: bool,
        traffic: &mut Traffic,
    ) -> Result<Bytes, RunError> {
        let url = format!("{}/info/refs?service={}", self.base, service.name());
        let mut request = self.authorize(self.client.get(url));
        if v2 {
            request = request.header("Git-Protocol", "version=2");
        }
        traffic.requests += 1;
        let response = send(request).await?;
        let response = check(
            response,
            &format!("application/x-{}-advertisement", service.name()),
            traffic,
        )
        .await?;
        read_all(response, traffic).await
    }

    /// `POST …/<service>` of `body`; the answer's status and type are checked,
    /// its body is the caller's to read.
    pub async fn post(
        &self,
        service: Service,
        v2: bool,
        body: Vec<u8>,
        traffic: &mut Traffic,
    ) -> Result<Body, RunError> {
        let url = format!("{}/{}", self.base, service.name());
        traffic.requests += 1;
        traffic.sent += body.len() as u64;
        let mut request = self
            .authorize(self.client.post(url))
            .header(
                header::CONTENT_TYPE,
                format!("application/x-{}-request", service.name()),
            )
            .header(
                header::ACCEPT,
                format!("application/x-{}-result", service.name()),
            )
            .body(body);
        if v2 {
            request = request.header("Git-Protocol", "version=2");
        }
        let response = send(request).await?;
        let response = check(
            response,
            &format!("application/x-{}-result", service.name()),
            traffic,
        )
        .await?;
        Ok(Body { response })
    }

    /// [`GitHttp::post`], its answer read whole.
    pub async fn post_read(
        &self,
        service: Service,
        v2: bool,
        body: Vec<u8>,
        traffic: &mut Traffic,
    ) -> Result<Bytes, RunError> {
        let body = self.post(service, v2, body, traffic).await?;
        read_all(body.response, traffic).await
    }
}

fn transport_error(err: reqwest::Error) -> RunError {
    let kind = if err.is_timeout() {
        ErrorKind::Timeout
    } else {
        ErrorKind::Connect
    };
    // The source chain says what failed (refused, reset, DNS).
    let mut message = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    RunError::new(kind, message)
}

async fn send(request: reqwest::RequestBuilder) -> Result<Response, RunError> {
    request.send().await.map_err(transport_error)
}

/// A 200 with the content type smart HTTP answers with; anything else is an
/// error carrying the start of the body.
async fn check(
    response: Response,
    content_type: &str,
    traffic: &mut Traffic,
) -> Result<Response, RunError> {
    let status = response.status();
    if status != StatusCode::OK {
        let body = read_all(response, traffic).await.unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(200)]);
        let text = text.trim();
        return Err(RunError::new(
            ErrorKind::HttpStatus(status.as_u16()),
            if text.is_empty() {
                status.to_string()
            } else {
                format!("{status}: {text}")
            },
        ));
    }
    let got = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if got.split(';').next().map(str::trim) != Some(content_type) {
        return Err(RunError::malformed(format!(
            "content type `{got}`, not `{content_type}` (not a smart HTTP server?)"
        )));
    }
    Ok(response)
}

async fn read_all(mut response: Response, traffic: &mut Traffic) -> Result<Bytes, RunError> {
    let mut out = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        traffic.received += chunk.len() as u64;
        if out.len() + chunk.len() > MAX_SMALL_ANSWER {
            return Err(RunError::malformed(format!(
                "an answer larger than {MAX_SMALL_ANSWER} bytes where a small one was expected"
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(out))
}

/// A response body read piece by piece.
pub struct Body {
    response: Response,
}

impl ChunkSource for Body {
    async fn next_chunk(&mut self) -> Result<Option<Bytes>, RunError> {
        self.response.chunk().await.map_err(transport_error)
    }
}
