//! What a backend tells an observer about each request it sends to the store,
//! for metrics. The S3 backend reports every HTTP request it makes — each
//! attempt of a retried call, each multipart part — so a caller can count
//! exactly what the store saw, and time it.

use std::time::Duration;

use crate::StorageError;

/// Receives one report per request the backend sends. Called on the request's
/// own task: keep it cheap (counters, histograms), never block.
pub trait StoreObserver: Send + Sync {
    /// One request finished after `elapsed`: `error` is `None` when it succeeded.
    /// `operation` is the store's own name for it (`GetObject`, `UploadPart`, …).
    fn request(&self, operation: &'static str, elapsed: Duration, error: Option<&StorageError>);

    /// A failed `operation` is about to be tried again.
    fn retry(&self, operation: &'static str);

    /// A call moved `bytes` of object data to or from the store (reported
    /// once per successful call, not per attempt).
    fn transferred(&self, _direction: Transfer, _bytes: u64) {}
}

/// Which way object data went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    /// Read from the store.
    Read,
    /// Written to the store.
    Written,
}

/// A backend whose every call is reported to an observer as one request
/// (`get`, `put_file`, `list`, …) — for a store that makes no requests of its
/// own to report, like the filesystem. (The S3 backend reports each HTTP
/// request itself, retries and parts included; do not wrap it.)
#[derive(Debug)]
pub struct Observed<B> {
    inner: B,
    observer: ObserverHandle,
}

/// The observer, behind a `Debug` the trait object does not have.
struct ObserverHandle(std::sync::Arc<dyn StoreObserver>);

impl std::fmt::Debug for ObserverHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreObserver")
    }
}

impl<B> Observed<B> {
    pub fn new(inner: B, observer: std::sync::Arc<dyn StoreObserver>) -> Self {
        Observed {
            inner,
            observer: ObserverHandle(observer),
        }
    }

    async fn call<T>(
        &self,
        operation: &'static str,
        work: impl std::future::Future<Output = crate::Result<T>>,
    ) -> crate::Result<T> {
        let started = std::time::Instant::now();
        let result = work.await;
        self.observer
            .0
            .request(operation, started.elapsed(), result.as_ref().err());
        result
    }

    fn moved(&self, direction: Transfer, bytes: u64) {
        self.observer.0.transferred(direction, bytes);
    }
}

#[async_trait::async_trait]
impl<B: crate::ObjectStorageBackend> crate::ObjectStorageBackend for Observed<B> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn put(
        &self,
        key: &crate::ObjectKey,
        data: bytes::Bytes,
        opts: &crate::PutOptions,
    ) -> crate::Result<()> {
        let size = data.len() as u64;
        self.call("put", self.inner.put(key, data, opts)).await?;
        self.moved(Transfer::Written, size);
        Ok(())
    }

    async fn put_file(
        &self,
        key: &crate::ObjectKey,
        path: &std::path::Path,
        opts: &crate::PutOptions,
    ) -> crate::Result<()> {
        self.call("put_file", self.inner.put_file(key, path, opts))
            .await?;
        if let Ok(meta) = tokio::fs::metadata(path).await {
            self.moved(Transfer::Written, meta.len());
        }
        Ok(())
    }

    async fn put_owned_file(
        &self,
        key: &crate::ObjectKey,
        path: &std::path::Path,
        opts: &crate::PutOptions,
    ) -> crate::Result<()> {
        let size = tokio::fs::metadata(path).await.map(|m| m.len()).ok();
        self.call("put_file", self.inner.put_owned_file(key, path, opts))
            .await?;
        if let Some(size) = size {
            self.moved(Transfer::Written, size);
        }
        Ok(())
    }

    async fn get(&self, key: &crate::ObjectKey) -> crate::Result<bytes::Bytes> {
        let data = self.call("get", self.inner.get(key)).await?;
        self.moved(Transfer::Read, data.len() as u64);
        Ok(data)
    }

    async fn get_range(
        &self,
        key: &crate::ObjectKey,
        range: std::ops::Range<u64>,
    ) -> crate::Result<bytes::Bytes> {
        let data = self
            .call("get_range", self.inner.get_range(key, range))
            .await?;
        self.moved(Transfer::Read, data.len() as u64);
        Ok(data)
    }

    async fn get_to_file(
        &self,
        key: &crate::ObjectKey,
        dest: &std::path::Path,
        len: Option<u64>,
    ) -> crate::Result<u64> {
        let size = self
            .call("get_to_file", self.inner.get_to_file(key, dest, len))
            .await?;
        self.moved(Transfer::Read, size);
        Ok(size)
    }

    async fn head(&self, key: &crate::ObjectKey) -> crate::Result<crate::ObjectMeta> {
        self.call("head", self.inner.head(key)).await
    }

    async fn delete(&self, key: &crate::ObjectKey) -> crate::Result<()> {
        self.call("delete", self.inner.delete(key)).await
    }

    async fn list(&self, prefix: &crate::KeyPrefix) -> crate::Result<Vec<crate::ObjectMeta>> {
        self.call("list", self.inner.list(prefix)).await
    }

    async fn delete_prefix(&self, prefix: &crate::KeyPrefix) -> crate::Result<u64> {
        self.call("delete_prefix", self.inner.delete_prefix(prefix))
            .await
    }

    async fn copy_prefix(
        &self,
        from: &crate::KeyPrefix,
        to: &crate::KeyPrefix,
    ) -> crate::Result<u64> {
        self.call("copy_prefix", self.inner.copy_prefix(from, to))
            .await
    }

    async fn presign_get(
        &self,
        key: &crate::ObjectKey,
        expires_in: std::time::Duration,
    ) -> crate::Result<Option<crate::PresignedRequest>> {
        self.inner.presign_get(key, expires_in).await
    }

    async fn presign_put(
        &self,
        key: &crate::ObjectKey,
        sha256: &crate::LfsOid,
        size: u64,
        expires_in: std::time::Duration,
    ) -> crate::Result<Option<crate::PresignedRequest>> {
        self.inner.presign_put(key, sha256, size, expires_in).await
    }

    async fn stored_sha256(&self, key: &crate::ObjectKey) -> crate::Result<Option<crate::LfsOid>> {
        self.call("head", self.inner.stored_sha256(key)).await
    }

    fn local_path(&self, key: &crate::ObjectKey) -> Option<std::path::PathBuf> {
        self.inner.local_path(key)
    }
}
