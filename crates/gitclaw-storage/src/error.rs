//! Errors of the object layer, with variants a caller can act on.

/// What can go wrong storing or reading bytes.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// No object under this key.
    #[error("object not found: {key}")]
    NotFound { key: String },
    /// The stored bytes do not match their id or their format.
    #[error("object {key} is corrupted: {detail}")]
    Corrupted { key: String, detail: String },
    /// The store cannot be reached.
    #[error("cannot reach the object store: {0}")]
    Connection(String),
    /// The bucket does not exist.
    #[error("bucket not found: {0}")]
    BucketNotFound(String),
    /// The credentials may not do this.
    #[error("access denied: {0}")]
    AccessDenied(String),
    /// The store asks us to slow down.
    #[error("rate limited by the object store: {0}")]
    RateLimited(String),
    /// An upload did not complete.
    #[error("upload of {key} failed: {detail}")]
    UploadFailed { key: String, detail: String },
    /// A key or prefix that the layout does not allow.
    #[error("invalid key: {0}")]
    InvalidKey(String),
    /// A local file operation failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// Anything else, described.
    #[error("{0}")]
    Other(String),
}

impl StorageError {
    /// The stable code of this kind of failure, sent as `code` in API error
    /// answers and logged, so clients and operators can match on it.
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::NotFound { .. } => "S3_OBJECT_NOT_FOUND",
            StorageError::Corrupted { .. } => "OBJECT_CORRUPTED",
            StorageError::Connection(_) => "S3_CONNECTION_ERROR",
            StorageError::BucketNotFound(_) => "S3_BUCKET_NOT_FOUND",
            StorageError::AccessDenied(_) => "S3_ACCESS_DENIED",
            StorageError::RateLimited(_) => "S3_RATE_LIMITED",
            StorageError::UploadFailed { .. } => "S3_UPLOAD_FAILED",
            StorageError::InvalidKey(_) => "INVALID_KEY",
            StorageError::Io { .. } | StorageError::Other(_) => "STORAGE_ERROR",
        }
    }

    /// Whether retrying the same call may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            StorageError::Connection(_) | StorageError::RateLimited(_)
        )
    }

    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> StorageError {
        let context = context.into();
        move |source| StorageError::Io { context, source }
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;
