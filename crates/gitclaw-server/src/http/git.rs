//! Git smart-HTTP routes: `info/refs`, `git-upload-pack`, `git-receive-pack`,
//! and the bundles `bundle-uri` offers (`info/bundles/pack-{hash}.bundle`).
//!
//! Each handler extracts what the request says, authorizes it, calls one
//! service (`service::advertise`, `service::fetch`, `service::push`) and
//! renders the outcome ([`super::render`]). A caller who may not read a private
//! repository gets the answer a missing one gets, so names do not leak.

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue, Method, StatusCode},
    response::Response,
};
use futures_util::TryStreamExt;
use gitclaw_metadata::Repo;
use serde::Deserialize;

use super::{
    body::{body_reader, read_limited, streamed_body},
    render::{err_packet, git_response, push_report},
};
use crate::{
    app::AppState,
    auth::{self, Caller, Denied},
    error::GitError,
    metrics::GitRequestTimer,
    names,
    service::{
        advertise::{self, Service},
        bundles,
        fetch::{self, Answer, MAX_NEGOTIATION_BYTES},
        push,
    },
};

#[derive(Debug, Deserialize)]
pub struct InfoRefsQuery {
    service: Option<String>,
}

/// Resolve the repository and check the caller may read (or write) it.
///
/// Without credentials, a repository the caller may not read is a 401 asking
/// for them (git's credential helper then runs, as it must for a private
/// repository); with credentials, a 404. Only a caller who may read it can
/// learn that a write is refused (401 without credentials, 403 with a token
/// lacking write).
pub(super) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    owner: &str,
    segment: &str,
    write: bool,
) -> Result<(Repo, Caller), GitError> {
    let name = names::strip_git_suffix(segment);
    names::validate_name("owner", owner)
        .and_then(|_| names::validate_name("repository", name))
        .map_err(GitError::BadRequest)?;
    let caller = auth::authenticate(state, headers).await?;
    // Also under a name it had before a rename.
    let repo = state.meta.find_repo(owner, name).await?;
    let Some(repo) = repo.filter(|r| auth::can_read(&caller, r)) else {
        return Err(match caller {
            Caller::Anonymous => GitError::Denied(Denied::Unauthenticated(format!(
                "authentication required for {owner}/{name}"
            ))),
            _ => GitError::RepoNotFound(format!("{owner}/{name}")),
        });
    };
    if write {
        auth::check_write(&caller, &repo)?;
    }
    Ok((repo, caller))
}

/// The protocol version the client asked for in `Git-Protocol` (0 when absent).
fn requested_version(headers: &HeaderMap) -> u8 {
    let Some(value) = headers.get("git-protocol").and_then(|v| v.to_str().ok()) else {
        return 0;
    };
    value
        .split(':')
        .filter_map(|p| p.trim().strip_prefix("version="))
        .filter_map(|v| v.parse::<u8>().ok())
        .max()
        .unwrap_or(0)
}

pub async fn info_refs(
    State(state): State<AppState>,
    Path((owner, segment)): Path<(String, String)>,
    Query(query): Query<InfoRefsQuery>,
    headers: HeaderMap,
) -> Result<Response, GitError> {
    let (service, content_type) = match query.service.as_deref() {
        Some("git-upload-pack") => (
            Service::UploadPack,
            "application/x-git-upload-pack-advertisement",
        ),
        Some("git-receive-pack") => (
            Service::ReceivePack,
            "application/x-git-receive-pack-advertisement",
        ),
        _ => {
            return Err(GitError::Denied(Denied::Forbidden(
                "only the smart HTTP protocol is supported: use a git client".into(),
            )))
        }
    };
    let version = requested_version(&headers);
    let timer = timer(&state, "info-refs", version, &owner, &segment);
    let answer = async {
        let write = service == Service::ReceivePack;
        let (repo, _) = authorize(&state, &headers, &owner, &segment, write).await?;
        if service == Service::UploadPack {
            crate::service::objects::warm_up(&state, &repo);
        }
        advertise::info_refs(&state, &repo, service, version).await
    };
    // Boxed: authorizing and advertising nest many database operations.
    let body = finish(Box::pin(timer.store_requests().scope(answer)).await, timer)?;
    Ok(git_response(content_type, Body::from(body)))
}

/// `GET /{owner}/{repo}/info/bundles/pack-{hash}.bundle`: a bundle the
/// repository offers (see [`bundles`]), read like a fetch. Its bytes never
/// change, so the pack's name is its entity tag (`If-None-Match` with it is
/// answered 304, `HEAD` with the headers alone); a store failure part-way
/// ends the connection short of `Content-Length`, which the client takes for
/// a failed download (and clones without the bundle).
pub async fn bundle(
    State(state): State<AppState>,
    Path((owner, segment, file)): Path<(String, String, String)>,
    method: Method,
    headers: HeaderMap,
) -> Result<Response, GitError> {
    let (repo, _) = authorize(&state, &headers, &owner, &segment, false).await?;
    let bundle = bundles::find(&state, &repo, &file).await?;
    let tag = format!("\"{}\"", bundle.pack.pack_hash);
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == tag || t.trim() == "*"));
    let (status, body) = if unchanged {
        (StatusCode::NOT_MODIFIED, Body::empty())
    } else if method == Method::HEAD {
        (StatusCode::OK, Body::empty())
    } else {
        state.metrics.bundle_downloads.inc();
        let name = format!("{owner}/{segment}");
        let content = bundles::content(&state, &repo, &bundle)?.inspect_err(move |err| {
            tracing::warn!(repo = %name, error = %err, "a bundle download ended early");
        });
        (StatusCode::OK, Body::from_stream(content))
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    if let Ok(tag) = HeaderValue::from_str(&tag) {
        headers.insert(header::ETAG, tag);
    }
    let cache = if repo.private {
        "private, max-age=86400, immutable"
    } else {
        "public, max-age=86400, immutable"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if status == StatusCode::OK {
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-git-bundle"),
        );
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(bundle.byte_len()));
    }
    Ok(response)
}

/// Start timing a git request for the metrics (and the slow-request warning).
fn timer(
    state: &AppState,
    service: &'static str,
    version: u8,
    owner: &str,
    segment: &str,
) -> GitRequestTimer {
    let repo = format!("{owner}/{}", names::strip_git_suffix(segment));
    GitRequestTimer::start(
        &state.metrics,
        service,
        version,
        repo,
        state.config.slow_request,
    )
}

/// Record how a request ended, passing its result on.
fn finish<T>(result: Result<T, GitError>, timer: GitRequestTimer) -> Result<T, GitError> {
    timer.finish(result.as_ref().err().map(GitError::fault));
    result
}

pub async fn upload_pack(
    State(state): State<AppState>,
    Path((owner, segment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GitError> {
    let version = match requested_version(&headers) {
        2 => 2,
        _ => 0,
    };
    let timer = timer(&state, "upload-pack", version, &owner, &segment);
    let counter = timer.store_requests();
    // Boxed: the whole request's state is large (clippy's large_futures).
    Box::pin(counter.scope(upload_pack_counted(
        state, owner, segment, headers, body, version, timer,
    )))
    .await
}

/// [`upload_pack`] with its object-store requests counted for its timer.
async fn upload_pack_counted(
    state: AppState,
    owner: String,
    segment: String,
    headers: HeaderMap,
    body: Body,
    version: u8,
    timer: GitRequestTimer,
) -> Result<Response, GitError> {
    let request = async {
        let (repo, _) = authorize(&state, &headers, &owner, &segment, false).await?;
        let mut reader = body_reader(&headers, body)?;
        let request = read_limited(&mut reader, MAX_NEGOTIATION_BYTES).await?;
        Ok((repo, request))
    };
    let (repo, request) = finish_failed(&timer, request.await)?;
    Ok(
        match fetch::upload_pack(&state, &repo, version, &request).await {
            Ok(Answer::Bytes(bytes)) => {
                timer.finish(None);
                git_response("application/x-git-upload-pack-result", Body::from(bytes))
            }
            Ok(Answer::Fetch(fetch)) => {
                let (mut writer, body) = streamed_body();
                let counter = timer.store_requests();
                tokio::task::spawn_blocking(move || {
                    counter.scope_sync(|| timer.finish(fetch.run(&mut writer)))
                });
                git_response("application/x-git-upload-pack-result", body)
            }
            Err(err) => {
                timer.finish(Some(err.fault()));
                err_packet(err)
            }
        },
    )
}

/// Record a request that failed before its answer began; pass a success on.
fn finish_failed<T>(timer: &GitRequestTimer, result: Result<T, GitError>) -> Result<T, GitError> {
    if let Err(err) = &result {
        timer.fail(err.fault());
    }
    result
}

pub async fn receive_pack(
    State(state): State<AppState>,
    Path((owner, segment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, GitError> {
    let timer = timer(&state, "receive-pack", 0, &owner, &segment);
    let counter = timer.store_requests();
    let request = async {
        let (repo, caller) = authorize(&state, &headers, &owner, &segment, true).await?;
        Ok((repo, caller, body_reader(&headers, body)?))
    };
    let (repo, caller, mut reader) = finish_failed(&timer, counter.scope(request).await)?;
    let actor = caller.actor();
    let push = push::receive_pack(&state, &repo, &actor, &mut reader);
    let report = Box::pin(counter.scope(push)).await;
    let fault = report
        .as_ref()
        .and_then(|r| r.unpack.as_ref().err().map(GitError::fault));
    timer.finish(fault);
    Ok(push_report(report))
}
