//! The storage trait every backend implements.

use std::{collections::BTreeMap, ops::Range, path::Path, path::PathBuf};

use async_trait::async_trait;
use bytes::Bytes;

use crate::{
    error::Result,
    keys::{KeyPrefix, LfsOid, ObjectKey},
};

/// Content type and user metadata of a stored object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PutOptions {
    pub content_type: Option<String>,
    /// User metadata; S3 backends send these as `x-amz-meta-{name}`.
    pub metadata: Vec<(String, String)>,
}

impl PutOptions {
    /// A loose object: Git's zlib format, with its type and inflated size.
    pub fn loose(kind: gix_object::Kind, size: u64) -> Self {
        PutOptions {
            content_type: Some("application/x-git-loose-object".into()),
            metadata: vec![
                ("git-type".into(), kind.to_string()),
                ("git-size".into(), size.to_string()),
            ],
        }
    }

    pub fn pack() -> Self {
        PutOptions {
            content_type: Some("application/x-git-packfile".into()),
            metadata: Vec::new(),
        }
    }

    /// A pack's commit-graph (git's format).
    pub fn pack_graph() -> Self {
        PutOptions {
            content_type: Some("application/octet-stream".into()),
            metadata: Vec::new(),
        }
    }

    pub fn pack_index() -> Self {
        PutOptions {
            content_type: Some("application/octet-stream".into()),
            metadata: Vec::new(),
        }
    }
}

/// What a `head` or `list` tells about a stored object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub key: String,
    pub size: u64,
    pub content_type: Option<String>,
    pub metadata: BTreeMap<String, String>,
    /// When the bytes under the key were last written, where the store tells.
    pub last_modified: Option<std::time::SystemTime>,
}

/// A request a client may send straight to the store, signed by the backend:
/// its method, URL and the headers the signature covers, which the client must
/// send exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresignedRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
}

/// An object store holding bytes under [`ObjectKey`]s.
///
/// Contract, for every backend:
/// - `put`/`put_file` replace the whole object atomically: a reader sees the old
///   bytes or the new, never a mix; `put_file` streams and never holds the file whole.
/// - `get` of a missing key is `NotFound`; `delete` of a missing key is `Ok`.
/// - `get_range` returns the bytes of `range` clamped to the object's end, and
///   `InvalidKey`-free `Other` error when the range starts at or past the end of a
///   non-empty object (as S3 answers 416).
/// - `list` returns every key under the prefix, sorted, following pagination,
///   each with its size and last-modified time.
/// - `delete_prefix` removes every key under the prefix and returns how many;
///   `copy_prefix` copies every key under `from` to the same suffix under `to`,
///   with content type and metadata, server-side where the store allows.
/// - Prefixes are [`KeyPrefix`]es, so no call can reach outside one repository.
/// - `presign_get`/`presign_put` return `None` where clients cannot reach the
///   store themselves (the filesystem); a presigned upload names the content's
///   SHA-256 so that a store which checks it refuses other bytes, and
///   `stored_sha256` tells what the store recorded for an object, where it
///   records one (`None` says nothing about the content: hash it to know).
#[async_trait]
pub trait ObjectStorageBackend: Send + Sync + std::fmt::Debug + 'static {
    /// `"filesystem"`, `"s3"`.
    fn name(&self) -> &'static str;
    async fn put(&self, key: &ObjectKey, data: Bytes, opts: &PutOptions) -> Result<()>;
    async fn put_file(&self, key: &ObjectKey, path: &Path, opts: &PutOptions) -> Result<()>;
    /// `put_file` of a file the caller gives up: a store on the same local
    /// disk may rename it into place instead of copying it (the path is gone
    /// afterwards, or still there; the caller must not use it either way).
    async fn put_owned_file(&self, key: &ObjectKey, path: &Path, opts: &PutOptions) -> Result<()> {
        self.put_file(key, path, opts).await
    }
    async fn get(&self, key: &ObjectKey) -> Result<Bytes>;
    async fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes>;
    /// Download into `dest`, written atomically (temp file + rename); returns the size.
    /// `len` is the object's length when the caller knows it (the metadata
    /// records packs' lengths): a store may then fetch a large object in parts
    /// side by side. A `len` that is not the object's costs time, never bytes.
    async fn get_to_file(&self, key: &ObjectKey, dest: &Path, len: Option<u64>) -> Result<u64>;
    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta>;
    async fn delete(&self, key: &ObjectKey) -> Result<()>;
    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<ObjectMeta>>;
    async fn delete_prefix(&self, prefix: &KeyPrefix) -> Result<u64>;
    async fn copy_prefix(&self, from: &KeyPrefix, to: &KeyPrefix) -> Result<u64>;
    /// A GET of `key` that a client may send within `expires_in`.
    async fn presign_get(
        &self,
        _key: &ObjectKey,
        _expires_in: std::time::Duration,
    ) -> Result<Option<PresignedRequest>> {
        Ok(None)
    }

    /// A PUT of exactly `size` bytes whose SHA-256 is `sha256` to `key`, that a
    /// client may send within `expires_in`.
    async fn presign_put(
        &self,
        _key: &ObjectKey,
        _sha256: &LfsOid,
        _size: u64,
        _expires_in: std::time::Duration,
    ) -> Result<Option<PresignedRequest>> {
        Ok(None)
    }

    /// The SHA-256 the store recorded for the object's whole content, where it
    /// keeps one; `NotFound` for a missing key.
    async fn stored_sha256(&self, key: &ObjectKey) -> Result<Option<LfsOid>> {
        self.head(key).await.map(|_| None)
    }

    /// Where the bytes already lie in a local file (the filesystem backend), so
    /// pack readers can map them instead of downloading.
    fn local_path(&self, _key: &ObjectKey) -> Option<PathBuf> {
        None
    }
}
