//! What one failed attempt of an S3 call means.
//!
//! The SDK reports failures in its own terms (timeouts, dispatch failures, cut-off
//! answers, service errors with a status and a code). [`classify`] sorts them
//! into the [`StorageError`] a caller can act on, keeping the request id for the
//! logs, so the retry policy and every caller branch on meaning, never on text.

use aws_sdk_s3::{
    error::{DisplayErrorContext, ProvideErrorMetadata, SdkError},
    operation::RequestId,
};

use crate::error::StorageError;

/// Why one attempt failed, and whether another may succeed.
pub(super) struct Failure {
    pub(super) error: StorageError,
    pub(super) retryable: bool,
    /// The store asked us to slow down.
    pub(super) throttled: bool,
    pub(super) request_id: Option<String>,
}

impl Failure {
    pub(super) fn fatal(error: StorageError) -> Failure {
        Failure {
            error,
            retryable: false,
            throttled: false,
            request_id: None,
        }
    }

    /// The connection broke while a body was on its way.
    pub(super) fn transfer(key: &str, err: impl std::fmt::Display) -> Failure {
        Failure {
            error: StorageError::Connection(format!("transfer of {key} broke off: {err}")),
            retryable: true,
            throttled: false,
            request_id: None,
        }
    }

    pub(super) fn local_io(context: String, source: std::io::Error) -> Failure {
        Failure::fatal(StorageError::Io { context, source })
    }
}

/// Sort an SDK error into what the caller can act on.
pub(super) fn classify<E>(
    op: &str,
    key: &str,
    err: SdkError<E, aws_sdk_s3::config::http::HttpResponse>,
) -> Failure
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let request_id = err.request_id().map(str::to_string);
    let detail = DisplayErrorContext(&err).to_string();
    let (error, retryable, throttled) = match &err {
        SdkError::TimeoutError(_) => (
            StorageError::Connection(format!("{op} {key} timed out")),
            true,
            false,
        ),
        SdkError::DispatchFailure(failure) if !failure.is_user() => (
            StorageError::Connection(format!("{op} {key}: {detail}")),
            true,
            false,
        ),
        SdkError::ResponseError(_) => (
            StorageError::Connection(format!("{op} {key}: answer cut off: {detail}")),
            true,
            false,
        ),
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            let message = service.err().message().unwrap_or("");
            let what = format!("{op} {key}: HTTP {status} {code} {message}")
                .trim_end()
                .to_string();
            match (status, code) {
                (_, "SlowDown") => (StorageError::RateLimited(what), true, true),
                (_, "NoSuchBucket") => (StorageError::BucketNotFound(what), false, false),
                (404, _) | (_, "NoSuchKey") => (
                    StorageError::NotFound {
                        key: key.to_string(),
                    },
                    false,
                    false,
                ),
                (401 | 403, _) => (StorageError::AccessDenied(what), false, false),
                (500 | 502 | 503 | 504, _) => (StorageError::Connection(what), true, false),
                _ => (StorageError::Other(what), false, false),
            }
        }
        _ => (
            StorageError::Other(format!("{op} {key}: {detail}")),
            false,
            false,
        ),
    };
    Failure {
        error,
        retryable,
        throttled,
        request_id,
    }
}
