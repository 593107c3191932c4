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

/// Why one attempt failed. Whether another attempt may succeed is the error's
/// own [`StorageError::is_retryable`], so the retry policy and every caller
/// above it agree on what is worth retrying.
pub(super) struct Failure {
    pub(super) error: StorageError,
    /// The store's id for the failed request, for the logs.
    pub(super) request_id: Option<String>,
}

impl From<StorageError> for Failure {
    fn from(error: StorageError) -> Failure {
        Failure {
            error,
            request_id: None,
        }
    }
}

impl Failure {
    /// The connection broke while a body was on its way.
    pub(super) fn transfer(key: &str, err: impl std::fmt::Display) -> Failure {
        Failure::from(StorageError::Connection(format!(
            "transfer of {key} broke off: {err}"
        )))
    }

    pub(super) fn local_io(context: String, source: std::io::Error) -> Failure {
        Failure::from(StorageError::Io { context, source })
    }

    /// Whether another attempt may succeed.
    pub(super) fn is_retryable(&self) -> bool {
        self.error.is_retryable()
    }

    /// The store asked us to slow down (`503 SlowDown`).
    pub(super) fn is_throttled(&self) -> bool {
        matches!(self.error, StorageError::RateLimited(_))
    }
}

/// Sort an SDK error into what the caller can act on: timeouts, dropped
/// connections, cut-off answers and HTTP 500/502/503/504 are `Connection`,
/// `SlowDown` is `RateLimited` (both retryable); a missing bucket or key, a
/// refusal and anything else are not retried.
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
    let error = match &err {
        SdkError::TimeoutError(_) => StorageError::Connection(format!("{op} {key} timed out")),
        SdkError::DispatchFailure(failure) if !failure.is_user() => {
            StorageError::Connection(format!("{op} {key}: {detail}"))
        }
        SdkError::ResponseError(_) => {
            StorageError::Connection(format!("{op} {key}: answer cut off: {detail}"))
        }
        SdkError::ServiceError(service) => {
            let status = service.raw().status().as_u16();
            let code = service.err().code().unwrap_or("");
            let message = service.err().message().unwrap_or("");
            let what = format!("{op} {key}: HTTP {status} {code} {message}")
                .trim_end()
                .to_string();
            match (status, code) {
                (_, "SlowDown") => StorageError::RateLimited(what),
                (_, "NoSuchBucket") => StorageError::BucketNotFound(what),
                (404, _) | (_, "NoSuchKey") => StorageError::NotFound {
                    key: key.to_string(),
                },
                (401 | 403, _) => StorageError::AccessDenied(what),
                (500 | 502 | 503 | 504, _) => StorageError::Connection(what),
                _ => StorageError::Other(what),
            }
        }
        _ => StorageError::Other(format!("{op} {key}: {detail}")),
    };
    Failure { error, request_id }
}

#[cfg(test)]
mod tests {
    use aws_sdk_s3::{
        config::http::HttpResponse,
        error::{ConnectorError, ErrorMetadata},
        operation::get_object::GetObjectError,
    };
    use aws_smithy_types::body::SdkBody;

    use super::*;

    type GetError = SdkError<GetObjectError, HttpResponse>;

    fn answer(status: u16, code: &str) -> GetError {
        let metadata = ErrorMetadata::builder()
            .code(code)
            .message("said the store")
            .build();
        SdkError::service_error(
            GetObjectError::generic(metadata),
            HttpResponse::new(status.try_into().unwrap(), SdkBody::empty()),
        )
    }

    fn sorted(err: GetError) -> Failure {
        classify("GetObject", "r/objects/ab/cd", err)
    }

    #[test]
    fn server_faults_and_broken_connections_are_retryable_connection_errors() {
        for status in [500, 502, 503, 504] {
            let failure = sorted(answer(status, "InternalError"));
            assert!(
                matches!(failure.error, StorageError::Connection(_)),
                "HTTP {status}: {}",
                failure.error
            );
            assert!(failure.is_retryable() && !failure.is_throttled());
        }
        let broken: [GetError; 3] = [
            SdkError::timeout_error("no answer"),
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into())),
            SdkError::response_error(
                "body cut off",
                HttpResponse::new(200.try_into().unwrap(), SdkBody::empty()),
            ),
        ];
        for err in broken {
            let failure = sorted(err);
            assert!(
                matches!(failure.error, StorageError::Connection(_)),
                "{}",
                failure.error
            );
            assert!(failure.is_retryable());
        }
    }

    #[test]
    fn slow_down_is_a_retryable_rate_limit_that_throttles() {
        let failure = sorted(answer(503, "SlowDown"));
        assert!(
            matches!(failure.error, StorageError::RateLimited(_)),
            "{}",
            failure.error
        );
        assert!(failure.is_retryable() && failure.is_throttled());
    }

    #[test]
    fn missing_things_refusals_and_client_errors_are_not_retried() {
        let cases = [
            (answer(404, "NoSuchBucket"), "S3_BUCKET_NOT_FOUND"),
            (answer(404, "NoSuchKey"), "S3_OBJECT_NOT_FOUND"),
            (answer(404, ""), "S3_OBJECT_NOT_FOUND"),
            (answer(403, "AccessDenied"), "S3_ACCESS_DENIED"),
            (answer(401, "Unauthorized"), "S3_ACCESS_DENIED"),
            (answer(400, "InvalidRange"), "STORAGE_ERROR"),
            (
                SdkError::dispatch_failure(ConnectorError::user("bad request".into())),
                "STORAGE_ERROR",
            ),
        ];
        for (err, code) in cases {
            let failure = sorted(err);
            assert_eq!(failure.error.code(), code, "{}", failure.error);
            assert!(!failure.is_retryable(), "{}", failure.error);
        }
    }
}
