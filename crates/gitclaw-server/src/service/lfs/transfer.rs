//! Object content: received and served by the server itself where the store
//! cannot sign requests for clients (the filesystem), and checked after a
//! client wrote it straight to the store (`verify`).
//!
//! An upload through the server is hashed as it arrives into a scratch file
//! and stored (renamed into place, on the filesystem) only when its SHA-256
//! and size match the oid and the length the client announced; anything else
//! is deleted with the scratch file. Nothing
//! is ever held whole in memory: the body and the download stream in chunks.

use std::path::PathBuf;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use gitclaw_metadata::Repo;
use gitclaw_storage::{LfsOid, ObjectKey, PutOptions, StorageError};
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::{object_key, parse_oid, size_refusal, LfsError};
use crate::{app::AppState, error::GitError, service::claims::StoreClaim};

/// How much of an object the content check reads at once.
const CHECK_CHUNK: u64 = 8 << 20;

fn put_options() -> PutOptions {
    PutOptions {
        content_type: Some("application/octet-stream".into()),
        metadata: Vec::new(),
    }
}

/// Receive the content of `oid` from `body` (of `declared` bytes, when the
/// client said), store it and record it. Returns its size.
pub async fn receive<S, E>(
    state: &AppState,
    repo: &Repo,
    oid: &str,
    declared: Option<u64>,
    body: S,
) -> Result<u64, LfsError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let oid = parse_oid(oid)?;
    let max = state.config.lfs.max_object_bytes;
    if let Some(message) = declared.and_then(|size| size_refusal(size, max, false)) {
        return Err(LfsError::TooLarge(message));
    }
    let key = object_key(&repo.id, &oid)?;
    let tmp = tempfile::Builder::new()
        .prefix("lfs-upload-")
        .tempfile_in(&state.scratch.dir)
        .map_err(GitError::io("creating a scratch file for an LFS upload"))?;
    let size = spool(state, tmp.path().to_path_buf(), &oid, declared, max, body).await?;
    let claim = hold(state, repo, &key).await?;
    let stored = async {
        state
            .store
            .put_owned_file(&key, tmp.path(), &put_options())
            .await?;
        state
            .meta
            .record_lfs_object(&repo.id, &oid.to_hex(), size)
            .await?;
        Ok::<_, LfsError>(())
    }
    .await;
    claim.release().await;
    stored.map(|()| size)
}

/// Hold `key` against the sweep while it is stored and recorded (waiting if
/// a deletion of it is under way), as a push holds the keys it writes.
async fn hold(state: &AppState, repo: &Repo, key: &ObjectKey) -> Result<StoreClaim, LfsError> {
    StoreClaim::upload(state, &repo.id, vec![key.clone()])
        .await
        .map_err(|err| LfsError::Server(err.into()))
}

/// Write the body to `path`, hashing it; fail unless it is exactly the
/// content of `oid` (and `declared` bytes long, when declared).
async fn spool<S, E>(
    state: &AppState,
    path: PathBuf,
    oid: &LfsOid,
    declared: Option<u64>,
    max: u64,
    mut body: S,
) -> Result<u64, LfsError>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::error::Error + Send + Sync + 'static,
{
    let mut file = tokio::fs::File::create(&path)
        .await
        .map_err(GitError::io("opening a scratch file for an LFS upload"))?;
    let mut hasher = Sha256::new();
    let mut size: u64 = 0;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|err| {
            LfsError::Invalid(format!(
                "the upload broke off: {}",
                crate::error::chain(&err)
            ))
        })?;
        size = size.saturating_add(chunk.len() as u64);
        if let Some(message) = size_refusal(size, max, false) {
            return Err(LfsError::TooLarge(message));
        }
        if declared.is_some_and(|d| size > d) {
            return Err(LfsError::Invalid(format!(
                "more bytes than the {} announced",
                declared.unwrap_or(0)
            )));
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(GitError::io("writing an LFS upload to scratch"))?;
        state
            .metrics
            .lfs_transfer_bytes
            .with_label_values(&["upload"])
            .inc_by(chunk.len() as u64);
    }
    file.flush()
        .await
        .map_err(GitError::io("writing an LFS upload to scratch"))?;
    if let Some(declared) = declared.filter(|d| *d != size) {
        return Err(LfsError::Invalid(format!(
            "the upload ended after {size} of {declared} bytes"
        )));
    }
    let digest = LfsOid::from_digest(hasher.finalize().into());
    if &digest != oid {
        return Err(LfsError::Invalid(format!(
            "the content's SHA-256 is {digest}, not the oid {oid}: refused"
        )));
    }
    Ok(size)
}

/// Where a recorded object's content is read from.
pub enum Content {
    /// The store's local file, and the size.
    Local(PathBuf, u64),
    /// A presigned GET a client may send to the store itself.
    Presigned(String),
}

/// Where the content of `oid` (hex), recorded for `repo`, is read from:
/// the store's file, or a presigned URL of it. `NotFound` unless the
/// repository has the object.
pub async fn content(state: &AppState, repo: &Repo, oid: &str) -> Result<Content, LfsError> {
    let parsed = parse_oid(oid)?;
    let key = object_key(&repo.id, &parsed)?;
    if state.store.local_path(&key).is_some() {
        let (path, size) = local_object(state, repo, oid).await?;
        return Ok(Content::Local(path, size));
    }
    let recorded = state
        .meta
        .lfs_objects(&repo.id, std::slice::from_ref(&parsed.to_hex()))
        .await?;
    if recorded.is_empty() {
        return Err(LfsError::NotFound("object not found".into()));
    }
    match state
        .store
        .presign_get(&key, state.config.lfs.url_expiry)
        .await?
    {
        Some(request) => Ok(Content::Presigned(request.url)),
        None => Err(LfsError::NotFound(
            "object not found on this server: ask the batch API for its URL".into(),
        )),
    }
}

/// The local file of a recorded object, with its size, for the server to
/// serve. `NotFound` unless the repository has the object.
pub async fn local_object(
    state: &AppState,
    repo: &Repo,
    oid: &str,
) -> Result<(PathBuf, u64), LfsError> {
    let oid = parse_oid(oid)?;
    let hex = oid.to_hex();
    let recorded = state
        .meta
        .lfs_objects(&repo.id, std::slice::from_ref(&hex))
        .await?;
    let Some(&size) = recorded.get(&hex) else {
        return Err(LfsError::NotFound("object not found".into()));
    };
    let key = object_key(&repo.id, &oid)?;
    match state.store.local_path(&key) {
        Some(path) => Ok((path, size)),
        // Recorded, yet the store has no file: served from the bucket, or lost.
        None => Err(LfsError::NotFound(
            "object not found on this server: ask the batch API for its URL".into(),
        )),
    }
}

/// `verify`: record `oid` of `size` bytes once the store holds exactly its
/// content. Content a client wrote straight to the store is checked against
/// the SHA-256 the store recorded for it, or else read back and hashed; an
/// object that does not match is deleted.
pub async fn verify(
    state: &AppState,
    repo: &Repo,
    oid: &str,
    size: &serde_json::Value,
) -> Result<(), LfsError> {
    let oid = parse_oid(oid)?;
    let Some(size) = size.as_u64() else {
        return Err(LfsError::Invalid(
            "invalid size: an LFS object's size is a whole number of bytes, 0 or more".into(),
        ));
    };
    let hex = oid.to_hex();
    let recorded = state
        .meta
        .lfs_objects(&repo.id, std::slice::from_ref(&hex))
        .await?;
    match recorded.get(&hex) {
        Some(&recorded) if recorded == size => return Ok(()),
        Some(&recorded) => {
            return Err(LfsError::Invalid(format!(
                "object {hex} is {recorded} bytes, not {size}"
            )))
        }
        None => {}
    }
    let key = object_key(&repo.id, &oid)?;
    let claim = hold(state, repo, &key).await?;
    let checked = check_and_record(state, repo, &oid, size, &key).await;
    claim.release().await;
    checked
}

/// The checks of [`verify`] on a stored object, then its row.
async fn check_and_record(
    state: &AppState,
    repo: &Repo,
    oid: &LfsOid,
    size: u64,
    key: &ObjectKey,
) -> Result<(), LfsError> {
    let hex = oid.to_hex();
    let stored = match state.store.head(key).await {
        Ok(meta) => meta,
        Err(StorageError::NotFound { .. }) => {
            return Err(LfsError::NotFound(format!("object {hex} was not uploaded")))
        }
        Err(err) => return Err(err.into()),
    };
    if stored.size != size {
        discard(state, key).await;
        return Err(LfsError::Invalid(format!(
            "object {hex} was uploaded with {} bytes, not {size}: refused and deleted",
            stored.size
        )));
    }
    let content = match state.store.stored_sha256(key).await? {
        Some(checksum) => checksum,
        None => hash_stored(state, key, size).await?,
    };
    if content != *oid {
        discard(state, key).await;
        return Err(LfsError::Invalid(format!(
            "the uploaded content's SHA-256 is {content}, not the oid {hex}: refused and deleted"
        )));
    }
    state.meta.record_lfs_object(&repo.id, &hex, size).await?;
    Ok(())
}

/// Delete content that failed its check (what is left, the sweep takes).
async fn discard(state: &AppState, key: &ObjectKey) {
    if let Err(err) = state.store.delete(key).await {
        tracing::warn!(key = %key, error = %err, "cannot delete a refused LFS upload");
    }
}

/// The SHA-256 of a stored object, read in ranges.
async fn hash_stored(state: &AppState, key: &ObjectKey, size: u64) -> Result<LfsOid, LfsError> {
    let mut hasher = Sha256::new();
    let mut at = 0;
    while at < size {
        let end = size.min(at + CHECK_CHUNK);
        let chunk = state.store.get_range(key, at..end).await?;
        if chunk.is_empty() {
            return Err(LfsError::Invalid(format!(
                "object {key} ended after {at} of {size} bytes"
            )));
        }
        at += chunk.len() as u64;
        hasher.update(&chunk);
    }
    Ok(LfsOid::from_digest(hasher.finalize().into()))
}
