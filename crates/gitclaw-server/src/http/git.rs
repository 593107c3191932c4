//! Git smart-HTTP routes: `info/refs`, `git-upload-pack`, `git-receive-pack`.
//!
//! Failures reach git in terms it prints: HTTP 404 "repository not found" for an
//! unknown repository (or a private one the caller may not read; a 401 asking
//! for credentials instead when none were sent and authentication is on),
//! `ERR` packets for a bad upload-pack request, `unpack`/`ng` lines for a
//! failed push.

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use gitclaw_metadata::Repo;
use gitclaw_protocol::{pktline, refs, v0, v2};
use serde::Deserialize;

use crate::{
    app::AppState,
    auth::{self, Caller, Denied},
    http::body::{body_reader, read_limited, streamed_body},
    names,
    service::{
        receive_pack,
        upload_pack::{self, peel_refs, FetchJob, PeeledRef},
    },
};

/// Upload-pack request bodies (wants and haves) larger than this are refused.
pub const MAX_NEGOTIATION_BYTES: usize = 32 * 1024 * 1024;

#[derive(Debug, Deserialize)]
pub struct InfoRefsQuery {
    service: Option<String>,
}

fn plain(status: StatusCode, message: impl Into<String>) -> Response {
    let mut message = message.into();
    message.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        message,
    )
        .into_response()
}

fn no_cache(headers: &mut HeaderMap) {
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

fn git_response(content_type: &'static str, body: Body) -> Response {
    let mut response = Response::new(body);
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    no_cache(response.headers_mut());
    response
}

/// The answer to a request that may not proceed, in terms git understands.
pub fn denied(d: Denied) -> Response {
    match d {
        Denied::Unauthenticated(message) => {
            let mut response = plain(StatusCode::UNAUTHORIZED, message);
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"GitClaw\""),
            );
            response
        }
        Denied::Forbidden(message) => plain(StatusCode::FORBIDDEN, message),
        Denied::Unavailable(message) => plain(StatusCode::SERVICE_UNAVAILABLE, message),
    }
}

/// Resolve the repository and check the caller may read (or write) it.
///
/// A caller who may not read a private repository gets the answer a missing
/// one gets, so names do not leak: without credentials a 401 asking for them
/// (git's credential helper then runs, as it must for a private repository),
/// with credentials a 404. Only a caller who may read it can learn that a
/// write is refused (401 without credentials, 403 with a token lacking write).
async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    owner: &str,
    segment: &str,
    write: bool,
) -> Result<(Repo, Caller), Response> {
    let name = names::strip_git_suffix(segment);
    if let Err(message) =
        names::validate_name("owner", owner).and_then(|_| names::validate_name("repository", name))
    {
        return Err(plain(StatusCode::BAD_REQUEST, message));
    }
    let caller = auth::authenticate(state, headers).await.map_err(denied)?;
    let repo = match state.meta.get_repo(owner, name).await {
        Ok(repo) => repo,
        Err(err) => {
            tracing::error!(error = %err, "metadata lookup failed");
            return Err(plain(
                StatusCode::SERVICE_UNAVAILABLE,
                "metadata database unavailable",
            ));
        }
    };
    let Some(repo) = repo.filter(|r| auth::can_read(&caller, r)) else {
        return Err(match caller {
            Caller::Anonymous => denied(Denied::Unauthenticated(format!(
                "authentication required for {owner}/{name}"
            ))),
            _ => plain(
                StatusCode::NOT_FOUND,
                format!("repository not found: {owner}/{name}"),
            ),
        });
    };
    if write {
        auth::check_write(&caller, &repo).map_err(denied)?;
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

fn wants_v2(headers: &HeaderMap) -> bool {
    requested_version(headers) == 2
}

/// Refs with their peeled values, from the database alone when it knows what
/// every tag ref peels to; otherwise the objects are read once and what they peel
/// to is recorded for every later advertisement (on any server).
async fn advertised_refs(state: &AppState, repo: &Repo) -> anyhow::Result<Vec<PeeledRef>> {
    let records = state.meta.list_refs(&repo.id).await?;
    let known = state.meta.peeled_refs(&repo.id).await?;
    let is_tag = |r: &gitclaw_metadata::RefRecord| r.name.starts_with("refs/tags/");
    if records
        .iter()
        .filter(|r| is_tag(r))
        .all(|r| known.contains_key(&r.oid))
    {
        return Ok(records
            .into_iter()
            .map(|r| {
                let peeled = known.get(&r.oid).filter(|p| **p != r.oid).copied();
                PeeledRef {
                    name: r.name,
                    oid: r.oid,
                    peeled,
                }
            })
            .collect());
    }
    let db = state.object_db(repo).await?;
    let refs = tokio::task::spawn_blocking(move || peel_refs(&db, records)).await?;
    let learned: Vec<_> = refs
        .iter()
        .filter(|r| r.name.starts_with("refs/tags/") && !known.contains_key(&r.oid))
        .map(|r| (r.oid, r.peeled.unwrap_or(r.oid)))
        .collect();
    if let Err(err) = state.meta.record_peeled(&repo.id, &learned).await {
        tracing::warn!(repo = %repo.id, error = %err, "cannot record peeled tags");
    }
    Ok(refs)
}

fn head_of<'a>(repo: &'a Repo, refs: &[PeeledRef]) -> Option<(gitclaw_pack::ObjectId, &'a str)> {
    refs.iter()
        .find(|r| r.name == repo.head_ref)
        .map(|r| (r.oid, repo.head_ref.as_str()))
}

pub async fn info_refs(
    State(state): State<AppState>,
    Path((owner, segment)): Path<(String, String)>,
    Query(query): Query<InfoRefsQuery>,
    headers: HeaderMap,
) -> Response {
    let service = match query.service.as_deref() {
        Some(s @ ("git-upload-pack" | "git-receive-pack")) => s.to_string(),
        _ => {
            return plain(
                StatusCode::FORBIDDEN,
                "only the smart HTTP protocol is supported: use a git client",
            )
        }
    };
    let write = service == "git-receive-pack";
    let repo = match authorize(&state, &headers, &owner, &segment, write).await {
        Ok((repo, _)) => repo,
        Err(response) => return response,
    };
    if service == "git-upload-pack" && wants_v2(&headers) {
        return match refs::advertise_v2_capabilities(&upload_pack::v2_capabilities()) {
            Ok(body) => git_response(
                "application/x-git-upload-pack-advertisement",
                Body::from(body),
            ),
            Err(err) => plain(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()),
        };
    }
    let upload = service == "git-upload-pack";
    let refs = if upload {
        advertised_refs(&state, &repo).await
    } else {
        // Push needs no peeled values.
        state
            .meta
            .list_refs(&repo.id)
            .await
            .map_err(Into::into)
            .map(|records| {
                records
                    .into_iter()
                    .map(|r| PeeledRef {
                        name: r.name,
                        oid: r.oid,
                        peeled: None,
                    })
                    .collect()
            })
    };
    let refs = match refs {
        Ok(refs) => refs,
        Err(err) => {
            tracing::error!(error = %err, repo = %repo.id, "cannot read refs");
            return plain(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("cannot read refs: {err}"),
            );
        }
    };
    let mut body = refs::http_service_header(if upload {
        refs::Service::UploadPack
    } else {
        refs::Service::ReceivePack
    });
    // Version 1 is version 0 behind a "version 1" line; push has no version 2 and
    // answers a v2 request in version 0.
    if requested_version(&headers) == 1 {
        body.extend(refs::version1_line());
    }
    let advertisement = if upload {
        let head = head_of(&repo, &refs);
        let mut caps: Vec<String> = upload_pack::V0_CAPABILITIES
            .iter()
            .map(|s| s.to_string())
            .collect();
        caps.push(upload_pack::agent());
        let advertised: Vec<refs::AdvertisedRef> = refs
            .iter()
            .map(|r| refs::AdvertisedRef {
                name: r.name.clone(),
                oid: r.oid,
                peeled: r.peeled,
            })
            .collect();
        refs::advertise_v0(&advertised, head, &caps)
    } else {
        let advertised: Vec<refs::AdvertisedRef> = refs
            .iter()
            .map(|r| refs::AdvertisedRef {
                name: r.name.clone(),
                oid: r.oid,
                peeled: None,
            })
            .collect();
        refs::advertise_v0(&advertised, None, &receive_pack::capabilities())
    };
    match advertisement {
        Ok(bytes) => body.extend(bytes),
        Err(err) => {
            tracing::error!(error = %err, repo = %repo.id, "cannot advertise refs");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot advertise refs: {err}"),
            );
        }
    }
    let content_type = if upload {
        "application/x-git-upload-pack-advertisement"
    } else {
        "application/x-git-receive-pack-advertisement"
    };
    git_response(content_type, Body::from(body))
}

fn err_packet(message: &str) -> Response {
    let mut body = Vec::new();
    pktline::write_err(&mut body, message);
    git_response("application/x-git-upload-pack-result", Body::from(body))
}

pub async fn upload_pack(
    State(state): State<AppState>,
    Path((owner, segment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let repo = match authorize(&state, &headers, &owner, &segment, false).await {
        Ok((repo, _)) => repo,
        Err(response) => return response,
    };
    let mut reader = match body_reader(&headers, body) {
        Ok(reader) => reader,
        Err(message) => return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, message),
    };
    let request = match read_limited(&mut reader, MAX_NEGOTIATION_BYTES).await {
        Ok(bytes) => bytes,
        Err(message) => return plain(StatusCode::PAYLOAD_TOO_LARGE, message),
    };
    let refs = match advertised_refs(&state, &repo).await {
        Ok(refs) => refs,
        Err(err) => {
            tracing::error!(error = %err, repo = %repo.id, "cannot read refs");
            return err_packet(&format!("upload-pack: cannot read repository: {err}"));
        }
    };
    let job = if wants_v2(&headers) {
        let command = match v2::parse_command_request(&request) {
            Ok(Some(command)) => command,
            Ok(None) => return git_response("application/x-git-upload-pack-result", Body::empty()),
            Err(err) => return err_packet(&format!("upload-pack: {err}")),
        };
        match command.command.as_str() {
            "ls-refs" => {
                let args = match v2::LsRefsArgs::parse(&command.args) {
                    Ok(args) => args,
                    Err(err) => return err_packet(&format!("ls-refs: {err}")),
                };
                return git_response(
                    "application/x-git-upload-pack-result",
                    Body::from(ls_refs(&repo, &refs, &args)),
                );
            }
            "fetch" => match v2::FetchArgs::parse(&command.args) {
                Ok(args) => fetch_job_v2(args),
                Err(err) => return err_packet(&format!("fetch: {err}")),
            },
            other => return err_packet(&format!("upload-pack: unknown command '{other}'")),
        }
    } else {
        match v0::parse_upload_request(&request) {
            Ok(parsed) => {
                match unknown_capability(&parsed.capabilities, upload_pack::V0_CAPABILITIES) {
                    Some(name) => {
                        return err_packet(&format!("upload-pack: unknown capability '{name}'"))
                    }
                    None => fetch_job_v0(parsed),
                }
            }
            Err(err) => return err_packet(&format!("upload-pack: {err}")),
        }
    };
    let db = match state.object_db(&repo).await {
        Ok(db) => db,
        Err(err) => {
            tracing::error!(error = %err, repo = %repo.id, "cannot open repository");
            return err_packet(&format!("upload-pack: cannot read repository: {err}"));
        }
    };
    let mut job = job;
    job.cache = Some((state.responses.clone(), repo.id.clone()));
    job.pack = state.config.write_options();
    if job.is_full_clone() {
        if let Some((_, pack)) = db.closure_packs().last() {
            match state.meta.closure_tips(&repo.id, pack.hash()).await {
                Ok(tips) => job.closure = Some((pack.clone(), tips)),
                Err(err) => {
                    tracing::warn!(error = %err, repo = %repo.id, "cannot read a pack's closure tips; walking instead")
                }
            }
        }
    }
    let (mut writer, body) = streamed_body();
    let repo_name = format!("{}/{}", repo.owner, repo.name);
    tokio::task::spawn_blocking(move || {
        if let Err(err) = upload_pack::run_fetch(&db, &refs, &job, &mut writer) {
            tracing::warn!(repo = %repo_name, error = %err.0, "fetch failed");
        }
    });
    git_response("application/x-git-upload-pack-result", body)
}

fn ls_refs(repo: &Repo, refs: &[PeeledRef], args: &v2::LsRefsArgs) -> Vec<u8> {
    let matches = |name: &str| {
        args.ref_prefixes.is_empty()
            || args
                .ref_prefixes
                .iter()
                .any(|p| name.starts_with(p.as_str()))
    };
    let mut out = Vec::new();
    let mut line = |text: String| {
        let _ = pktline::write_text(&mut out, &text);
    };
    if matches("HEAD") {
        match refs.iter().find(|r| r.name == repo.head_ref) {
            Some(head) => {
                let mut text = format!("{} HEAD", head.oid);
                if args.symrefs {
                    text.push_str(&format!(" symref-target:{}", repo.head_ref));
                }
                text.push('\n');
                line(text);
            }
            None if args.unborn => line(format!("unborn HEAD symref-target:{}\n", repo.head_ref)),
            None => {}
        }
    }
    for r in refs.iter().filter(|r| matches(&r.name)) {
        let mut text = format!("{} {}", r.oid, r.name);
        if let (true, Some(peeled)) = (args.peel, r.peeled) {
            text.push_str(&format!(" peeled:{peeled}"));
        }
        text.push('\n');
        line(text);
    }
    out.extend_from_slice(pktline::FLUSH);
    out
}

/// The first capability the client asked for that the server did not advertise.
pub fn unknown_capability<'a>(
    caps: &'a gitclaw_protocol::capabilities::Capabilities,
    advertised: &[&str],
) -> Option<&'a str> {
    caps.iter().map(|(name, _)| name).find(|name| {
        *name != "agent"
            && *name != "session-id"
            && !advertised
                .iter()
                .any(|a| a.split('=').next() == Some(*name))
    })
}

fn fetch_job_v2(args: v2::FetchArgs) -> FetchJob {
    FetchJob {
        v2: true,
        wants: args.wants,
        haves: args.haves,
        done: args.done,
        deepen: gitclaw_pack::walk::DeepenRequest {
            client_shallow: args.shallow,
            depth: args.deepen,
            relative: args.deepen_relative,
            since: args.deepen_since,
            not: Vec::new(),
        },
        deepen_not_refs: args.deepen_not,
        filter: args.filter,
        sideband: Some(gitclaw_protocol::sideband::SIDEBAND_64K_MAX),
        no_progress: args.no_progress,
        ofs_delta: args.ofs_delta,
        thin_pack: args.thin_pack,
        include_tag: args.include_tag,
        multi_ack: false,
        multi_ack_detailed: false,
        no_done: false,
        wait_for_done: args.wait_for_done,
        cache: None,
        closure: None,
        pack: Default::default(),
    }
}

fn fetch_job_v0(req: v0::UploadRequest) -> FetchJob {
    let caps = &req.capabilities;
    let sideband = if caps.has("side-band-64k") {
        Some(gitclaw_protocol::sideband::SIDEBAND_64K_MAX)
    } else if caps.has("side-band") {
        Some(gitclaw_protocol::sideband::SIDEBAND_MAX)
    } else {
        None
    };
    FetchJob {
        v2: false,
        multi_ack: caps.has("multi_ack"),
        multi_ack_detailed: caps.has("multi_ack_detailed"),
        no_done: caps.has("no-done"),
        no_progress: caps.has("no-progress"),
        ofs_delta: caps.has("ofs-delta"),
        thin_pack: caps.has("thin-pack"),
        include_tag: caps.has("include-tag"),
        sideband,
        deepen: gitclaw_pack::walk::DeepenRequest {
            client_shallow: req.shallow,
            depth: req.deepen,
            relative: req.deepen_relative,
            since: req.deepen_since,
            not: Vec::new(),
        },
        deepen_not_refs: req.deepen_not,
        filter: req.filter,
        wants: req.wants,
        haves: req.haves,
        done: req.done,
        wait_for_done: false,
        cache: None,
        closure: None,
        pack: Default::default(),
    }
}

pub async fn receive_pack(
    State(state): State<AppState>,
    Path((owner, segment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (repo, caller) = match authorize(&state, &headers, &owner, &segment, true).await {
        Ok(found) => found,
        Err(response) => return response,
    };
    let reader = match body_reader(&headers, body) {
        Ok(reader) => reader,
        Err(message) => return plain(StatusCode::UNSUPPORTED_MEDIA_TYPE, message),
    };
    let report = receive_pack::receive_pack(&state, &repo, &caller.actor(), reader).await;
    git_response("application/x-git-receive-pack-result", Body::from(report))
}
