//! Git LFS routes, under `/{owner}/{repo}/info/lfs/` (the repository segment
//! with or without `.git`, as git-lfs derives it from the remote URL):
//!
//! - `POST objects/batch`: the batch API;
//! - `GET|PUT objects/{oid}`: object content through the server, for stores
//!   that cannot sign URLs for clients (the filesystem);
//! - `POST verify`: an upload is done, check and record it;
//! - `GET|POST locks`, `POST locks/verify`, `POST locks/{id}/unlock`: locks.
//!
//! Authorization is the git routes' ([`super::git::authorize`]): public
//! repositories are readable by anyone, private ones need a read token, and
//! uploads, verify and locking need write; a 401 asks for Basic credentials
//! (also as `LFS-Authenticate`, which git-lfs reads). The server's own object
//! URLs are authorized the same way: the batch answer repeats the caller's
//! `Authorization` header in their actions. Answers are
//! `application/vnd.git-lfs+json`, errors `{"message", "request_id"}`.

use axum::{
    body::Body,
    extract::{Path, Query, State},
    http::{header, HeaderMap, HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use futures_util::StreamExt;
use gitclaw_metadata::{LfsLock, LockCreated, Repo};
use serde::{Deserialize, Serialize};

use super::{
    body::{body_reader, read_limited},
    git::authorize,
    render,
};
use crate::{
    app::AppState,
    auth::{self, Caller},
    error::{GitError, RequestId},
    service::lfs::{
        batch::{self, BatchRequest, Links, Operation},
        locks, transfer, LfsError,
    },
};

/// The media type of every LFS answer.
const LFS_JSON: &str = "application/vnd.git-lfs+json";

/// The largest batch request body read (1000 objects take about 100 KiB).
const MAX_BATCH_BODY: usize = 512 * 1024;
/// The largest body of the other JSON requests (a lock path is at most 4 KiB).
const MAX_SMALL_BODY: usize = 16 * 1024;

fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = (status, body).into_response();
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(LFS_JSON));
            response
        }
        Err(err) => LfsError::Server(GitError::Internal(format!("encoding an LFS answer: {err}")))
            .into_response(),
    }
}

#[derive(Serialize)]
struct ErrorBody {
    message: String,
    request_id: String,
}

impl IntoResponse for LfsError {
    fn into_response(self) -> Response {
        let (status, message) = match &self {
            LfsError::Invalid(m) => (StatusCode::UNPROCESSABLE_ENTITY, m.clone()),
            LfsError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, m.clone()),
            LfsError::NotFound(m) => (StatusCode::NOT_FOUND, m.clone()),
            LfsError::Forbidden(m) => (StatusCode::FORBIDDEN, m.clone()),
            LfsError::Unsupported(m) => (StatusCode::CONFLICT, m.clone()),
            LfsError::Server(err) => {
                err.log("LFS request");
                (render::status(err), err.client_message())
            }
        };
        if !matches!(self, LfsError::Server(_)) {
            tracing::info!(error = %message, status = status.as_u16(), "LFS request refused");
        }
        let mut response = json_response(
            status,
            &ErrorBody {
                message,
                request_id: RequestId::current().to_string(),
            },
        );
        if status == StatusCode::UNAUTHORIZED {
            let challenge = HeaderValue::from_static("Basic realm=\"GitClaw\"");
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, challenge.clone());
            response.headers_mut().insert("lfs-authenticate", challenge);
        }
        response
    }
}

/// Read a JSON request body of at most `limit` bytes.
async fn read_json<T: serde::de::DeserializeOwned>(
    headers: &HeaderMap,
    body: Body,
    limit: usize,
    what: &str,
) -> Result<T, LfsError> {
    let mut reader = body_reader(headers, body)?;
    let bytes = read_limited(&mut reader, limit)
        .await
        .map_err(|err| match err {
            GitError::TooLarge(_) => LfsError::TooLarge(format!(
                "the {what} is larger than {limit} bytes; send fewer objects per batch"
            )),
            other => LfsError::Server(other),
        })?;
    serde_json::from_slice(&bytes)
        .map_err(|err| LfsError::Invalid(format!("malformed {what}: {err}")))
}

/// Where this repository's LFS URLs are, as the client addressed it.
fn links(state: &AppState, headers: &HeaderMap, owner: &str, segment: &str) -> Links {
    links_at(
        state.config.public_url.as_deref(),
        state.config.scheme(),
        state.config.listen,
        headers,
        owner,
        segment,
    )
}

/// The links under `GITCLAW_PUBLIC_URL` when set, else under the `Host` the
/// client sent (a sane one; else the listen address).
fn links_at(
    public_url: Option<&str>,
    scheme: &str,
    listen: std::net::SocketAddr,
    headers: &HeaderMap,
    owner: &str,
    segment: &str,
) -> Links {
    let origin = match public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .filter(|h| {
                    !h.is_empty()
                        && h.len() <= 255
                        && h.bytes().all(|b| {
                            b.is_ascii_alphanumeric()
                                || matches!(b, b'.' | b'-' | b':' | b'[' | b']')
                        })
                })
                .map(str::to_string)
                .unwrap_or_else(|| listen.to_string());
            format!("{scheme}://{host}")
        }
    };
    Links {
        base: format!("{origin}/{owner}/{segment}/info/lfs"),
        authorization: headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
    }
}

/// `POST /{owner}/{repo}/info/lfs/objects/batch`
pub async fn batch(
    State(state): State<AppState>,
    Path((owner, segment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, LfsError> {
    let (repo, caller) = authorize(&state, &headers, &owner, &segment, false).await?;
    let request: BatchRequest = read_json(&headers, body, MAX_BATCH_BODY, "batch request").await?;
    let operation = batch::check_request(&request)?;
    if operation == Operation::Upload {
        auth::check_write(&caller, &repo).map_err(GitError::from)?;
    }
    let links = links(&state, &headers, &owner, &segment);
    let answer = batch::answer(&state, &repo, operation, &request.objects, &links).await?;
    Ok(json_response(StatusCode::OK, &answer))
}

/// `GET /{owner}/{repo}/info/lfs/objects/{oid}`: an object's content, streamed
/// from the store's local file.
pub async fn download(
    State(state): State<AppState>,
    Path((owner, segment, oid)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Result<Response, LfsError> {
    let (repo, _) = authorize(&state, &headers, &owner, &segment, false).await?;
    let (path, size) = transfer::local_object(&state, &repo, &oid).await?;
    stream_object(&state, &path, size).await
}

/// An object's content streamed from the store's local file `path` of
/// `size` bytes, counted as downloaded.
pub(crate) async fn stream_object(
    state: &AppState,
    path: &std::path::Path,
    size: u64,
) -> Result<Response, LfsError> {
    let file = match tokio::fs::File::open(path).await {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(LfsError::NotFound("object not found".into()))
        }
        Err(err) => {
            return Err(LfsError::Server(GitError::Io {
                context: "opening an LFS object",
                source: err,
            }))
        }
    };
    let counter = state
        .metrics
        .lfs_transfer_bytes
        .with_label_values(&["download"]);
    let stream = tokio_util::io::ReaderStream::with_capacity(file, 64 * 1024).map(move |chunk| {
        if let Ok(bytes) = &chunk {
            counter.inc_by(bytes.len() as u64);
        }
        chunk
    });
    let mut response = Response::new(Body::from_stream(stream));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    headers.insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    Ok(response)
}

/// `PUT /{owner}/{repo}/info/lfs/objects/{oid}`: an object's content, hashed
/// as it arrives and stored only if it is the oid's.
pub async fn upload(
    State(state): State<AppState>,
    Path((owner, segment, oid)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, LfsError> {
    let (repo, _) = authorize(&state, &headers, &owner, &segment, true).await?;
    if state.store.name() != "filesystem" {
        return Err(LfsError::NotFound(
            "objects are uploaded to the object store: ask the batch API for the URL".into(),
        ));
    }
    let declared = match headers.get(header::CONTENT_LENGTH) {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| LfsError::Invalid("malformed Content-Length".into()))?,
        ),
    };
    transfer::receive(&state, &repo, &oid, declared, body.into_data_stream()).await?;
    Ok(json_response(StatusCode::OK, &serde_json::json!({})))
}

#[derive(Deserialize)]
struct VerifyRequest {
    oid: String,
    #[serde(default)]
    size: serde_json::Value,
}

/// `POST /{owner}/{repo}/info/lfs/verify`: the client finished an upload.
pub async fn verify(
    State(state): State<AppState>,
    Path((owner, segment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, LfsError> {
    let (repo, _) = authorize(&state, &headers, &owner, &segment, true).await?;
    let request: VerifyRequest =
        read_json(&headers, body, MAX_SMALL_BODY, "verify request").await?;
    transfer::verify(&state, &repo, &request.oid, &request.size).await?;
    Ok(json_response(StatusCode::OK, &serde_json::json!({})))
}

/// A lock as LFS shows it.
#[derive(Serialize)]
struct LockView {
    id: String,
    path: String,
    locked_at: String,
    owner: OwnerView,
}

#[derive(Serialize)]
struct OwnerView {
    name: String,
}

impl From<LfsLock> for LockView {
    fn from(lock: LfsLock) -> Self {
        LockView {
            id: lock.id,
            path: lock.path,
            locked_at: crate::time::rfc3339(lock.locked_at),
            owner: OwnerView {
                name: lock.owner_name,
            },
        }
    }
}

#[derive(Deserialize)]
pub struct LocksQuery {
    path: Option<String>,
    id: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

fn page_size(limit: Option<&str>) -> Result<u32, LfsError> {
    let limit = limit
        .filter(|l| !l.is_empty())
        .map(|l| {
            l.parse::<u64>()
                .map_err(|_| LfsError::Invalid("limit must be a whole number".into()))
        })
        .transpose()?;
    locks::page_size(limit)
}

#[derive(Serialize)]
struct LockList {
    locks: Vec<LockView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `GET /{owner}/{repo}/info/lfs/locks`
pub async fn list_locks(
    State(state): State<AppState>,
    Path((owner, segment)): Path<(String, String)>,
    Query(query): Query<LocksQuery>,
    headers: HeaderMap,
) -> Result<Response, LfsError> {
    let (repo, _) = authorize(&state, &headers, &owner, &segment, false).await?;
    let limit = page_size(query.limit.as_deref())?;
    let (found, next_cursor) = locks::list(
        &state,
        &repo,
        query.path.as_deref(),
        query.id.as_deref(),
        query.cursor.as_deref(),
        limit,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &LockList {
            locks: found.into_iter().map(LockView::from).collect(),
            next_cursor,
        },
    ))
}

#[derive(Deserialize)]
struct CreateLock {
    path: String,
}

#[derive(Serialize)]
struct LockAnswer {
    lock: LockView,
    #[serde(skip_serializing_if = "Option::is_none")]
    message: Option<String>,
}

/// Authorize a lock operation: it needs write access.
async fn lock_caller(
    state: &AppState,
    headers: &HeaderMap,
    owner: &str,
    segment: &str,
) -> Result<(Repo, Caller), LfsError> {
    Ok(authorize(state, headers, owner, segment, true).await?)
}

/// `POST /{owner}/{repo}/info/lfs/locks`: 201 with the new lock, or 409 with
/// the lock already on the path.
pub async fn create_lock(
    State(state): State<AppState>,
    Path((owner, segment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, LfsError> {
    let (repo, caller) = lock_caller(&state, &headers, &owner, &segment).await?;
    let request: CreateLock = read_json(&headers, body, MAX_SMALL_BODY, "lock request").await?;
    Ok(
        match locks::create(&state, &repo, &request.path, &caller.lock_owner()).await? {
            LockCreated::Created(lock) => json_response(
                StatusCode::CREATED,
                &LockAnswer {
                    lock: lock.into(),
                    message: None,
                },
            ),
            LockCreated::Exists(lock) => {
                let message = format!("{} is already locked by {}", lock.path, lock.owner_name);
                json_response(
                    StatusCode::CONFLICT,
                    &LockAnswer {
                        lock: lock.into(),
                        message: Some(message),
                    },
                )
            }
        },
    )
}

#[derive(Deserialize)]
struct VerifyLocks {
    cursor: Option<String>,
    #[serde(default)]
    limit: serde_json::Value,
}

#[derive(Serialize)]
struct VerifiedLocks {
    ours: Vec<LockView>,
    theirs: Vec<LockView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

/// `POST /{owner}/{repo}/info/lfs/locks/verify`: the repository's locks, the
/// caller's apart from everyone else's (what a push checks).
pub async fn verify_locks(
    State(state): State<AppState>,
    Path((owner, segment)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, LfsError> {
    let (repo, caller) = lock_caller(&state, &headers, &owner, &segment).await?;
    let request: VerifyLocks =
        read_json(&headers, body, MAX_SMALL_BODY, "lock verify request").await?;
    let limit = match &request.limit {
        serde_json::Value::Null => locks::page_size(None)?,
        value => {
            locks::page_size(Some(value.as_u64().ok_or_else(|| {
                LfsError::Invalid("limit must be a whole number".into())
            })?))?
        }
    };
    let (ours, theirs, next_cursor) = locks::verify(
        &state,
        &repo,
        &caller.lock_owner(),
        request.cursor.as_deref().filter(|c| !c.is_empty()),
        limit,
    )
    .await?;
    Ok(json_response(
        StatusCode::OK,
        &VerifiedLocks {
            ours: ours.into_iter().map(LockView::from).collect(),
            theirs: theirs.into_iter().map(LockView::from).collect(),
            next_cursor,
        },
    ))
}

#[derive(Deserialize)]
struct Unlock {
    #[serde(default)]
    force: bool,
}

/// `POST /{owner}/{repo}/info/lfs/locks/{id}/unlock`
pub async fn unlock(
    State(state): State<AppState>,
    Path((owner, segment, id)): Path<(String, String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, LfsError> {
    let (repo, caller) = lock_caller(&state, &headers, &owner, &segment).await?;
    let request: Unlock = read_json(&headers, body, MAX_SMALL_BODY, "unlock request").await?;
    let lock = locks::unlock(&state, &repo, &id, &caller.lock_owner(), request.force).await?;
    Ok(json_response(
        StatusCode::OK,
        &LockAnswer {
            lock: lock.into(),
            message: None,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_the_public_url_or_a_sane_host_and_carry_the_credentials() {
        let listen: std::net::SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::HOST,
            HeaderValue::from_static("git.example.com:8443"),
        );
        let links = links_at(None, "http", listen, &headers, "acme", "media.git");
        assert_eq!(
            links.base,
            "http://git.example.com:8443/acme/media.git/info/lfs"
        );
        assert_eq!(links.authorization, None);
        let public = links_at(
            Some("https://git.example.com/"),
            "http",
            listen,
            &headers,
            "acme",
            "media",
        );
        assert_eq!(public.base, "https://git.example.com/acme/media/info/lfs");
        headers.insert(header::HOST, HeaderValue::from_static("evil.com/x?y"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Bearer t"));
        let links = links_at(None, "http", listen, &headers, "acme", "media");
        assert_eq!(links.base, "http://127.0.0.1:8080/acme/media/info/lfs");
        assert_eq!(links.authorization.as_deref(), Some("Bearer t"));
        let oid = gitclaw_storage::LfsOid::from_digest([0xab; 32]);
        let action = links.object(&oid);
        assert_eq!(
            action.href,
            format!("http://127.0.0.1:8080/acme/media/info/lfs/objects/{oid}")
        );
        assert_eq!(action.header["Authorization"], "Bearer t");
        assert!(!action.presigned);
    }
}
