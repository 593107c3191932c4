//! Where a [`GitError`] becomes what a git client reads — the only place.
//!
//! Three channels, one message ([`GitError::client_message`]): an HTTP status
//! with a line of text (before the git conversation starts: a missing
//! repository, credentials, a body the server will not read), an `ERR` packet
//! (a bad upload-pack request), and git's push report (`unpack` and `ng`
//! lines). Messages on the sideband of a pack already under way are written by
//! the fetch itself, with the same message.

use axum::{
    body::Body,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use gitclaw_protocol::{pktline, receive_pack::push_response};

use crate::{
    auth::Denied,
    error::{Fault, GitError},
    service::push::PushReport,
};

/// A plain-text answer with `status`.
pub fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    let mut message = message.into();
    message.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

/// The headers that keep proxies from caching a git answer.
pub fn no_cache(headers: &mut HeaderMap) {
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::EXPIRES,
        HeaderValue::from_static("Fri, 01 Jan 1980 00:00:00 GMT"),
    );
}

/// A git protocol answer of `content_type`.
pub fn git_response(content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    no_cache(response.headers_mut());
    response
}

/// The HTTP status a failure is answered with before the git conversation starts.
pub fn status(err: &GitError) -> StatusCode {
    match err {
        GitError::RepoNotFound(_) | GitError::NotFound(_) => StatusCode::NOT_FOUND,
        GitError::Denied(Denied::Unauthenticated(_)) => StatusCode::UNAUTHORIZED,
        GitError::Denied(Denied::Forbidden(_)) => StatusCode::FORBIDDEN,
        GitError::UnsupportedEncoding(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        GitError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        GitError::Shared(inner) => status(inner),
        _ => match err.fault() {
            Fault::Client => StatusCode::BAD_REQUEST,
            Fault::Conflict => StatusCode::CONFLICT,
            Fault::Limit | Fault::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Fault::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        },
    }
}

impl IntoResponse for GitError {
    fn into_response(self) -> Response {
        self.log("git request");
        let status = status(&self);
        let mut response = plain(status, self.client_message());
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"GitClaw\""),
            );
        }
        response
    }
}

/// An upload-pack request that cannot be answered: an `ERR` packet git prints.
pub fn err_packet(err: GitError) -> Response {
    err.log("upload-pack");
    let mut body = Vec::new();
    pktline::write_err(&mut body, &format!("upload-pack: {}", err.client_message()));
    git_response("application/x-git-upload-pack-result", Body::from(body))
}

/// Git's report of a push (already logged by the push path).
pub fn push_report(report: Option<PushReport>) -> Response {
    let body = match report {
        None => Vec::new(),
        Some(report) => {
            let unpack = report
                .unpack
                .as_ref()
                .map(|_| ())
                .map_err(|e| e.client_message());
            push_response(
                unpack.as_ref().map(|_| ()).map_err(String::as_str),
                &report.refs,
                report.capabilities.as_ref(),
            )
        }
    };
    git_response("application/x-git-receive-pack-result", Body::from(body))
}
