//! A repository's refs and a revision's files without a clone:
//! `/api/v1/repos/{owner}/{name}/refs`, `/raw/{path}` and `/tree/{path}`, for
//! whoever may read the repository; and ref updates without a push, for
//! whoever may push.

use axum::{
    extract::State,
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::{Deserialize, Serialize};

use super::{bad_query, caller, find_readable, if_none_match, ApiError};
use gitclaw_metadata::Repo;
use gitclaw_pack::ObjectId;
use gitclaw_protocol::receive_pack::{RefCommand, RefStatus};

use crate::{
    app::AppState,
    error::GitError,
    http::body::streamed_body,
    service::{
        advertise::advertised_refs,
        files::{self, TreeView},
        push, revision,
    },
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuery {
    /// The revision: a branch, tag or other ref name, `HEAD` (the default),
    /// or a full commit id a ref reaches.
    #[serde(rename = "ref")]
    pub revision: Option<String>,
    /// An LFS pointer file is answered with the content it points at.
    pub lfs: Option<bool>,
}

/// How much of a file decides whether it is sent as text (git's own
/// heuristic: a NUL in the first 8000 bytes makes it binary).
const TEXT_PROBE: usize = 8000;

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/raw/{path}", description = "One file of a revision, byte for byte what `git show REVISION:PATH` prints (a symbolic link's target, for a link). `text/plain; charset=utf-8` when its first 8000 bytes hold no NUL, else `application/octet-stream`, with `Content-Length`, `ETag` (the blob id; `304` to a matching `If-None-Match`) and `X-GitClaw-Commit`. Reading one takes a pack-generation turn: `503` when too many wait.", params(("owner" = String, Path), ("name" = String, Path), ("path" = String, Path, description = "the file's path in the tree, `/`-separated"), ("ref" = Option<String>, Query, description = "a branch, tag or other ref name (resolved as git resolves a short name), `HEAD` (the default), or a commit id (full or abbreviated) a ref reaches, with git's `~N`, `^N`, `^{…}` after it"), ("lfs" = Option<bool>, Query, description = "answer a Git LFS pointer file with the content it points at")), responses((status = 200, content_type = "application/octet-stream", description = "the file, streamed"), (status = 302, description = "with `lfs=true` on S3: the LFS content, at a presigned URL of the bucket"), (status = 304, description = "the file the If-None-Match names"), (status = 400, body = ApiError, description = "a bad path or revision"), (status = 401, body = ApiError), (status = 404, body = ApiError, description = "no such repository, revision or file, or the path is a directory or submodule"), (status = 503, body = ApiError, description = "too many packs, archives and files are being read")))]
pub async fn repo_raw(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name, path)): axum::extract::Path<(String, String, String)>,
    query: Result<axum::extract::Query<RawQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let axum::extract::Query(query) = query.map_err(bad_query)?;
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    let revision = query.revision.as_deref().unwrap_or("HEAD");
    let file = files::find(&state, &repo, revision, &path).await?;
    let lfs = query.lfs.unwrap_or(false);
    // With `lfs`, another representation: the blob decides it all the same.
    let etag = match lfs {
        true => format!("\"{}-lfs\"", file.id),
        false => file.etag(),
    };
    let commit = file.commit.to_string();
    let matches = if_none_match(&headers, &etag);
    let mut response = if matches {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let file = file.take_turn(&state).await?;
        let size = file.size;
        let (loaded, binary) = crate::metrics::spawn_blocking(move || file.load(TEXT_PROBE))
            .await
            .map_err(crate::error::GitError::from)??;
        let pointer = loaded
            .whole()
            .filter(|_| lfs && !loaded.is_link())
            .and_then(crate::service::lfs::pointer);
        match pointer {
            Some((oid, _)) => lfs_content(&state, &repo, &oid).await?,
            None => {
                let content_type = if binary {
                    "application/octet-stream"
                } else {
                    "text/plain; charset=utf-8"
                };
                let (mut writer, body) = streamed_body();
                crate::metrics::spawn_blocking(move || {
                    if let Err(err) = loaded.write(&mut writer) {
                        err.log("raw file");
                        writer.fail("the file could not be sent whole");
                    }
                });
                let mut response = Response::new(body);
                let headers = response.headers_mut();
                headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
                response
            }
        }
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if let Ok(value) = HeaderValue::from_str(&etag) {
        headers.insert(header::ETAG, value);
    }
    if let Ok(value) = HeaderValue::from_str(&commit) {
        headers.insert("x-gitclaw-commit", value);
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("private, no-cache"));
    Ok(response)
}

/// The content an LFS pointer names: streamed from the store's file, or a
/// redirect to a presigned URL of it (S3); `404` when the repository does not
/// have the object.
async fn lfs_content(state: &AppState, repo: &Repo, oid: &str) -> Result<Response, ApiError> {
    use crate::service::lfs::{transfer, LfsError};
    let named = |err: LfsError| match err {
        LfsError::NotFound(_) => LfsError::NotFound(format!(
            "the LFS object sha256:{oid} this pointer names is not stored here"
        )),
        other => other,
    };
    match transfer::content(state, repo, oid).await.map_err(named)? {
        transfer::Content::Local(path, size) => {
            Ok(crate::http::lfs::stream_object(state, &path, size)
                .await
                .map_err(named)?)
        }
        transfer::Content::Presigned(url) => {
            let mut response = StatusCode::FOUND.into_response();
            let location = HeaderValue::from_str(&url)
                .map_err(|_| GitError::Internal("a presigned URL is not a header value".into()))?;
            response.headers_mut().insert(header::LOCATION, location);
            response
                .headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TreeQuery {
    /// The revision (`HEAD` when left out).
    #[serde(rename = "ref")]
    pub revision: Option<String>,
    /// Every file under the directory, as `git ls-tree -r` lists them.
    pub recursive: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/tree", description = "The top directory of a revision, as `git ls-tree -l` lists it (with `recursive=true`, every file, as `git ls-tree -r -l` does), at most 100,000 entries (`truncated` beyond). Listing takes a pack-generation turn.", params(("owner" = String, Path), ("name" = String, Path), ("ref" = Option<String>, Query, description = "a ref name, `HEAD` (the default), or a commit id a ref reaches, with git's `~N`, `^N`, `^{…}` after it"), ("recursive" = Option<bool>, Query, description = "every file under it")), responses((status = 200, body = TreeView), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError, description = "no such repository or revision"), (status = 503, body = ApiError)))]
pub async fn repo_tree(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
    query: Result<axum::extract::Query<TreeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TreeView>, ApiError> {
    list_directory(state, headers, owner, name, None, query).await
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/tree/{path}", description = "A directory of a revision, as `git ls-tree -l REVISION PATH/` lists it (with `recursive=true`, every file under it), at most 100,000 entries (`truncated` beyond). Listing takes a pack-generation turn.", params(("owner" = String, Path), ("name" = String, Path), ("path" = String, Path, description = "the directory, `/`-separated"), ("ref" = Option<String>, Query, description = "a ref name, `HEAD` (the default), or a commit id a ref reaches, with git's `~N`, `^N`, `^{…}` after it"), ("recursive" = Option<bool>, Query, description = "every file under it")), responses((status = 200, body = TreeView), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError, description = "no such repository, revision or directory"), (status = 503, body = ApiError)))]
pub async fn repo_tree_path(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name, path)): axum::extract::Path<(String, String, String)>,
    query: Result<axum::extract::Query<TreeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TreeView>, ApiError> {
    let path = path.strip_suffix('/').unwrap_or(&path).to_string();
    list_directory(state, headers, owner, name, Some(path), query).await
}

async fn list_directory(
    state: AppState,
    headers: HeaderMap,
    owner: String,
    name: String,
    path: Option<String>,
    query: Result<axum::extract::Query<TreeQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<TreeView>, ApiError> {
    let axum::extract::Query(query) = query.map_err(bad_query)?;
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    let revision = query.revision.as_deref().unwrap_or("HEAD");
    let recursive = query.recursive.unwrap_or(false);
    let listing = files::tree(&state, &repo, revision, path.as_deref(), recursive).await?;
    Ok(Json(listing))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefsQuery {
    /// Only refs whose names start with this (`refs/heads/`, `refs/tags/`).
    pub prefix: Option<String>,
    /// Continue after this ref name (the `next` of the previous page).
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefView {
    pub name: String,
    /// The object the ref names.
    pub id: String,
    /// For a tag object, the object its chain ends at.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peeled: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefPage {
    /// The ref `HEAD` points at (it may not exist yet).
    pub head: String,
    /// Sorted by name.
    pub refs: Vec<RefView>,
    /// Pass as `after` to get the next page; absent on the last page.
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/refs", description = "The repository's refs, as `git ls-remote` shows them, sorted by name, a page at a time.", params(("owner" = String, Path), ("name" = String, Path), ("prefix" = Option<String>, Query, description = "only refs whose names start with this, e.g. `refs/heads/`"), ("after" = Option<String>, Query, description = "continue after this ref name"), ("limit" = Option<u32>, Query, description = "at most this many (default 1000, at most 10000)")), responses((status = 200, body = RefPage), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 404, body = ApiError)))]
pub async fn repo_refs(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
    query: Result<axum::extract::Query<RefsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RefPage>, ApiError> {
    let axum::extract::Query(query) = query.map_err(bad_query)?;
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    let limit = query.limit.unwrap_or(1000).clamp(1, 10_000) as usize;
    let refs = advertised_refs(&state, &repo).await?;
    let prefix = query.prefix.as_deref().unwrap_or("");
    let mut sorted: Vec<_> = refs
        .iter()
        .filter(|r| r.name.starts_with(prefix))
        .filter(|r| {
            query
                .after
                .as_deref()
                .is_none_or(|after| r.name.as_str() > after)
        })
        .collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let more = sorted.len() > limit;
    sorted.truncate(limit);
    let next = more
        .then(|| sorted.last().map(|r| r.name.clone()))
        .flatten();
    Ok(Json(RefPage {
        head: repo.head_ref.clone(),
        refs: sorted
            .into_iter()
            .map(|r| RefView {
                name: r.name.clone(),
                id: r.oid.to_string(),
                peeled: r.peeled.map(|p| p.to_string()),
            })
            .collect(),
        next,
    }))
}

/// The most ref updates one request may make.
pub const MAX_REF_UPDATES: usize = 1000;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefUpdateRequest {
    /// The full ref name, e.g. `refs/tags/v1.2.0`.
    pub name: String,
    /// The id the ref has now (compare-and-swap); absent or null to create it.
    pub old: Option<String>,
    /// The id to set, or a revision resolving to a commit a ref reaches (e.g.
    /// `main`, `main~1`); absent or null to delete the ref.
    pub new: Option<String>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRefs {
    pub updates: Vec<RefUpdateRequest>,
    /// All or none (as `git push --atomic`).
    #[serde(default)]
    pub atomic: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefUpdateResult {
    pub name: String,
    pub ok: bool,
    /// Why it was not made, in git's words (`stale info`, `protected by …`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RefUpdateResults {
    /// `REF_UPDATE_REJECTED` when some update was not made.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub results: Vec<RefUpdateResult>,
}

#[utoipa::path(post, path = "/api/v1/repos/{owner}/{name}/refs", description = "Create, move or delete refs without a push (a tag at a commit, a branch reset), each a compare-and-swap on its old value: checked, protected, audited and announced to webhooks exactly as `git push` of those refs would be. Needs write access. `200` when every update was made; `409` with the same `results` when some were not (none, with `atomic`).", params(("owner" = String, Path), ("name" = String, Path)), request_body = UpdateRefs, responses((status = 200, body = RefUpdateResults), (status = 400, body = ApiError, description = "a bad id, revision or body"), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError, description = "no such repository, or a revision that resolves to nothing"), (status = 409, body = RefUpdateResults, description = "some updates were not made"), (status = 503, body = ApiError, description = "too many pushes at once")))]
pub async fn update_refs(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
    body: Result<Json<UpdateRefs>, axum::extract::rejection::JsonRejection>,
) -> Result<Response, ApiError> {
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    crate::auth::check_write(&caller, &repo)?;
    let Json(request) = body?;
    if request.updates.is_empty() || request.updates.len() > MAX_REF_UPDATES {
        return Err(GitError::BadRequest(format!("give 1 to {MAX_REF_UPDATES} updates")).into());
    }
    let mut commands = Vec::with_capacity(request.updates.len());
    for update in &request.updates {
        let id = |value: &Option<String>, what: &str| match value.as_deref() {
            None => Ok(ObjectId::null(gix_hash::Kind::Sha1)),
            Some(hex) => ObjectId::from_hex(hex.as_bytes()).map_err(|_| {
                GitError::BadRequest(format!(
                    "{what} of {} is not a full object id: '{}'",
                    update.name,
                    hex.escape_default()
                ))
            }),
        };
        let old = id(&update.old, "old")?;
        let new = match update.new.as_deref() {
            Some(revision) if ObjectId::from_hex(revision.as_bytes()).is_err() => {
                revision::resolve(&state, &repo, revision).await?.commit
            }
            _ => id(&update.new, "new")?,
        };
        commands.push(RefCommand {
            old,
            new,
            name: update.name.clone(),
        });
    }
    let outcome =
        push::update_refs(&state, &repo, &caller.actor(), commands, request.atomic).await?;
    let results: Vec<RefUpdateResult> = outcome
        .into_iter()
        .map(|(name, status)| match status {
            RefStatus::Ok => RefUpdateResult {
                name,
                ok: true,
                reason: None,
            },
            RefStatus::Rejected(reason) => RefUpdateResult {
                name,
                ok: false,
                reason: Some(reason),
            },
        })
        .collect();
    let refused = results.iter().find(|r| !r.ok).map(|r| {
        format!(
            "{} was not updated: {}",
            r.name,
            r.reason.as_deref().unwrap_or("")
        )
    });
    let status = match refused {
        Some(_) => StatusCode::CONFLICT,
        None => StatusCode::OK,
    };
    let body = RefUpdateResults {
        code: refused.is_some().then_some("REF_UPDATE_REJECTED"),
        message: refused,
        results,
    };
    Ok((status, Json(body)).into_response())
}
