//! The S3 backend: any S3-compatible store (AWS S3, MinIO, R2, Garage, Ceph RGW)
//! through aws-sdk-s3.
//!
//! Every request goes through [`S3Backend::call`], so one policy decides what is
//! retried, how long to wait, how to slow down when the store asks, and what is
//! logged ([`retry`]). The SDK's own retries are off so this is the one policy.
//!
//! This file holds the backend and its single-object calls; each other job has
//! its own module:
//! - [`client`]: the settings and the SDK client built from them;
//! - [`failure`]: an SDK error sorted into a [`StorageError`] the caller can act on;
//! - [`retry`]: the retry, backoff, throttle and logging policy of every call;
//! - [`upload`]: one PutObject, or above [`MULTIPART_THRESHOLD`] a multipart
//!   upload read part by part, so a pack is never held whole in memory;
//! - [`download`]: a whole object into a file, in parts side by side when its
//!   length is known and above one part;
//! - [`copy`]: server-side copies of a prefix;
//! - [`delete`]: deletes of a prefix in DeleteObjects batches;
//! - [`bucket`]: the start-up check of the bucket and the credentials.

mod bucket;
mod client;
mod copy;
mod delete;
mod download;
mod failure;
mod presign;
mod retry;
mod upload;

use std::{collections::BTreeMap, future::Future, ops::Range, path::Path, sync::Arc};

use async_trait::async_trait;
use aws_sdk_s3::Client;
use bytes::Bytes;

pub use client::S3Settings;
pub use retry::backoff_delay;
pub use upload::MULTIPART_THRESHOLD;

use self::{
    failure::{classify, Failure},
    retry::RetryPolicy,
    upload::PartSource,
};
use crate::{
    backend::{ObjectMeta, ObjectStorageBackend, PutOptions},
    error::{Result, StorageError},
    keys::{KeyPrefix, ObjectKey},
    Transfer,
};

/// Parts or copies in flight at once.
const CONCURRENCY: usize = 4;
/// The most a read sets aside before its bytes arrive, whatever length the
/// store announces (a longer answer grows its buffer as it comes).
const PREALLOCATE_AT_MOST: usize = 64 << 20;

/// An S3-compatible object store.
#[derive(Clone)]
pub struct S3Backend {
    client: Client,
    settings: Arc<S3Settings>,
    retry: Arc<RetryPolicy>,
}

impl std::fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Backend")
            .field("bucket", &self.settings.bucket)
            .field("endpoint", &self.settings.endpoint)
            .finish_non_exhaustive()
    }
}

impl S3Backend {
    /// Build the client. Nothing is sent yet; [`S3Backend::verify`] checks the store.
    pub async fn new(settings: S3Settings) -> Result<S3Backend> {
        S3Backend::build(settings, None).await
    }

    /// A backend that reports every request it sends (each attempt, each part)
    /// to `observer`.
    pub async fn observed(
        settings: S3Settings,
        observer: Arc<dyn crate::StoreObserver>,
    ) -> Result<S3Backend> {
        S3Backend::build(settings, Some(observer)).await
    }

    async fn build(
        settings: S3Settings,
        observer: Option<Arc<dyn crate::StoreObserver>>,
    ) -> Result<S3Backend> {
        let mut retry = RetryPolicy::new(&settings);
        if let Some(observer) = observer {
            retry = retry.observed_by(observer);
        }
        Ok(S3Backend {
            client: client::build_client(&settings).await?,
            retry: Arc::new(retry),
            settings: Arc::new(settings),
        })
    }

    /// Run one logical S3 call, `attempt_fn` being one try of it, under the
    /// backend's retry policy (see [`retry`]).
    async fn call<T, F, Fut>(&self, op: &'static str, key: &str, attempt_fn: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = std::result::Result<T, Failure>>,
    {
        self.retry.run(op, key, attempt_fn).await
    }

    pub fn bucket(&self) -> &str {
        &self.settings.bucket
    }

    async fn get_raw(&self, key: &str) -> Result<Bytes> {
        self.get_bytes(key, None).await
    }

    /// The object's bytes, or those of an HTTP `Range` (`bytes=a-b`).
    async fn get_bytes(&self, key: &str, range: Option<&str>) -> Result<Bytes> {
        // A ranged read is its own operation in logs and metrics.
        let op = if range.is_some() {
            "GetObjectRange"
        } else {
            "GetObject"
        };
        self.call(op, key, || async {
            let out = self
                .client
                .get_object()
                .bucket(self.bucket())
                .key(key)
                .set_range(range.map(str::to_string))
                .send()
                .await
                .map_err(|e| classify("GetObject", key, e))?;
            // One buffer of the announced length, each chunk copied in once:
            // collecting the chunks and joining them grows a buffer by copies,
            // a tenth of a fresh instance's CPU reading a large index by ranges.
            // The length is the store's, held to what one answer may be.
            let announced = out
                .content_length()
                .and_then(|len| usize::try_from(len).ok())
                .unwrap_or(0);
            let mut data = Vec::with_capacity(announced.min(PREALLOCATE_AT_MOST));
            let mut body = out.body;
            while let Some(chunk) = body.next().await {
                data.extend_from_slice(&chunk.map_err(|e| Failure::transfer(key, e))?);
            }
            Ok(Bytes::from(data))
        })
        .await
    }

    async fn delete_raw(&self, key: &str) -> Result<()> {
        self.call("DeleteObject", key, || async {
            self.client
                .delete_object()
                .bucket(self.bucket())
                .key(key)
                .send()
                .await
                .map(|_| ())
                .map_err(|e| classify("DeleteObject", key, e))
        })
        .await
    }

    async fn head_raw(&self, key: &str) -> Result<ObjectMeta> {
        self.call("HeadObject", key, || async {
            let out = self
                .client
                .head_object()
                .bucket(self.bucket())
                .key(key)
                .send()
                .await
                .map_err(|e| classify("HeadObject", key, e))?;
            Ok(ObjectMeta {
                key: key.to_string(),
                size: out.content_length().unwrap_or(0).max(0) as u64,
                content_type: out.content_type().map(str::to_string),
                metadata: out
                    .metadata()
                    .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default(),
                last_modified: out.last_modified().and_then(to_system_time),
            })
        })
        .await
    }

    /// Every key under `prefix` with its size and time, following pagination, sorted.
    async fn list_raw(&self, prefix: &str) -> Result<Vec<ObjectMeta>> {
        let mut all = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let page = self
                .call("ListObjectsV2", prefix, || async {
                    self.client
                        .list_objects_v2()
                        .bucket(self.bucket())
                        .prefix(prefix)
                        .set_continuation_token(token.clone())
                        .send()
                        .await
                        .map_err(|e| classify("ListObjectsV2", prefix, e))
                })
                .await?;
            for object in page.contents() {
                if let Some(key) = object.key() {
                    all.push(ObjectMeta {
                        key: key.to_string(),
                        size: object.size().unwrap_or(0).max(0) as u64,
                        content_type: None,
                        metadata: BTreeMap::new(),
                        last_modified: object.last_modified().and_then(to_system_time),
                    });
                }
            }
            match (page.is_truncated(), page.next_continuation_token()) {
                (Some(true), Some(next)) => token = Some(next.to_string()),
                _ => break,
            }
        }
        all.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(all)
    }
}

#[async_trait]
impl ObjectStorageBackend for S3Backend {
    fn name(&self) -> &'static str {
        "s3"
    }

    async fn put(&self, key: &ObjectKey, data: Bytes, opts: &PutOptions) -> Result<()> {
        let size = data.len() as u64;
        self.put_raw(key.as_str(), data, opts).await?;
        self.retry.transferred(Transfer::Written, size);
        Ok(())
    }

    async fn put_file(&self, key: &ObjectKey, path: &Path, opts: &PutOptions) -> Result<()> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(StorageError::io(format!("reading {}", path.display())))?
            .len();
        self.put_source(key.as_str(), &PartSource::File(path, size), opts)
            .await?;
        self.retry.transferred(Transfer::Written, size);
        Ok(())
    }

    async fn get(&self, key: &ObjectKey) -> Result<Bytes> {
        let data = self.get_raw(key.as_str()).await?;
        self.retry.transferred(Transfer::Read, data.len() as u64);
        Ok(data)
    }

    async fn get_range(&self, key: &ObjectKey, range: Range<u64>) -> Result<Bytes> {
        if range.start >= range.end {
            return Ok(Bytes::new());
        }
        let header = format!("bytes={}-{}", range.start, range.end - 1);
        let data = self.get_bytes(key.as_str(), Some(&header)).await?;
        self.retry.transferred(Transfer::Read, data.len() as u64);
        Ok(data)
    }

    async fn get_to_file(&self, key: &ObjectKey, dest: &Path, len: Option<u64>) -> Result<u64> {
        let size = self.download(key.as_str(), dest, len).await?;
        self.retry.transferred(Transfer::Read, size);
        Ok(size)
    }

    async fn head(&self, key: &ObjectKey) -> Result<ObjectMeta> {
        self.head_raw(key.as_str()).await
    }

    async fn delete(&self, key: &ObjectKey) -> Result<()> {
        self.delete_raw(key.as_str()).await
    }

    async fn list(&self, prefix: &KeyPrefix) -> Result<Vec<ObjectMeta>> {
        self.list_raw(prefix.as_str()).await
    }

    async fn delete_prefix(&self, prefix: &KeyPrefix) -> Result<u64> {
        self.delete_all(prefix).await
    }

    async fn copy_prefix(&self, from: &KeyPrefix, to: &KeyPrefix) -> Result<u64> {
        self.copy_all(from, to).await
    }

    async fn presign_get(
        &self,
        key: &ObjectKey,
        expires_in: std::time::Duration,
    ) -> Result<Option<crate::PresignedRequest>> {
        self.presign_get_raw(key.as_str(), expires_in)
            .await
            .map(Some)
    }

    async fn presign_put(
        &self,
        key: &ObjectKey,
        sha256: &crate::LfsOid,
        size: u64,
        expires_in: std::time::Duration,
    ) -> Result<Option<crate::PresignedRequest>> {
        self.presign_put_raw(key.as_str(), sha256, size, expires_in)
            .await
            .map(Some)
    }

    async fn stored_sha256(&self, key: &ObjectKey) -> Result<Option<crate::LfsOid>> {
        self.stored_sha256_raw(key.as_str()).await
    }
}

/// An S3 timestamp as a `SystemTime` (`None` before the epoch or out of range).
fn to_system_time(t: &aws_sdk_s3::primitives::DateTime) -> Option<std::time::SystemTime> {
    let secs = u64::try_from(t.secs()).ok()?;
    Some(std::time::UNIX_EPOCH + std::time::Duration::new(secs, t.subsec_nanos()))
}
