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
