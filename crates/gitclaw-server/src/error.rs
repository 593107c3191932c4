//! The one error type of a git request, and the one place it becomes what the
//! client reads.
//!
//! Every failure on the git path — a bad request line, a pack that does not
//! index, the object store down, the database refusing a statement — is a
//! [`GitError`] that keeps its typed source and says whose fault it is
//! ([`Fault`]), using the classifiers the library crates already have
//! (`PackError::is_client_error`, `StorageError::is_retryable`,
//! `metadata::Error::is_transient`). [`GitError::client_message`] is the only
//! function that decides what a client is told: a client's own fault gets the
//! precise reason; an outage or an internal failure gets a short message and
//! the request id to quote, while the whole error goes to the log
//! ([`GitError::log`]). Compaction, which runs the same pack engine in the
//! background, fails with the same type. The HTTP layer then only chooses the channel: an HTTP
//! status, an `ERR` packet, an `unpack`/`ng` line or a sideband message.

use std::fmt;

use gitclaw_pack::PackError;
use gitclaw_protocol::ProtocolError;
use gitclaw_storage::StorageError;

use crate::auth::Denied;

/// Whose fault a failure is; it decides the HTTP status, what the client is
/// told and how loudly the server logs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request is wrong: the client is told exactly why.
    Client,
    /// The request lost a race with another change (already exists, moved).
    Conflict,
    /// The request is over a configured limit (size, concurrency).
    Limit,
    /// A service the server needs is down or overloaded: try again later.
    Unavailable,
    /// A bug or corruption on the server's side.
    Internal,
}

/// Why a git request failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitError {
    /// No such repository, or a private one the caller may not read (the
    /// same answer, so names do not leak). Holds `owner/name`.
    #[error("repository not found: {0}")]
    RepoNotFound(String),
    /// The caller may not do this (or must authenticate first).
    #[error("{}", denied_text(.0))]
    Denied(Denied),
    /// Something the repository does not have, that a request named (a
    /// bundle). Holds what it is.
    #[error("not found: {0}")]
    NotFound(String),
    /// A request the server refuses, with the reason in the client's terms.
    #[error("{0}")]
    BadRequest(String),
    /// The request body is compressed in a way the server does not read.
    #[error("{0}")]
    UnsupportedEncoding(String),
    /// The request does not follow the wire protocol.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),
    /// Indexing, reading or writing packs failed.
    #[error(transparent)]
    Pack(#[from] PackError),
    /// The object store failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The metadata database failed.
    #[error(transparent)]
    Metadata(#[from] gitclaw_metadata::Error),
    /// The request lost a race with another change; the reason says which.
    #[error("{0}")]
    Conflict(String),
    /// The request is larger than the server accepts.
    #[error("{0}")]
    TooLarge(String),
    /// Every slot for this kind of work is taken.
    #[error("server busy: {0}")]
    Busy(String),
    /// The client stopped taking the response (hung up, or stalled past the
    /// send timeout).
    #[error("the client went away: {0}")]
    ClientGone(#[source] std::io::Error),
    /// A local file operation failed.
    #[error("I/O error while {context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A worker thread died (a panic inside the pack engine).
    #[error("internal error: {0}")]
    Internal(String),
    /// One failure shared by several requests that waited on the same work
    /// (the first download of a pack).
    #[error(transparent)]
    Shared(std::sync::Arc<GitError>),
}

fn denied_text(denied: &Denied) -> &str {
    match denied {
        Denied::Unauthenticated(m) | Denied::Forbidden(m) | Denied::Unavailable(m) => m,
    }
}

impl From<tokio::task::JoinError> for GitError {
    fn from(err: tokio::task::JoinError) -> Self {
        GitError::Internal(format!("worker task failed: {err}"))
    }
}

impl From<std::sync::Arc<GitError>> for GitError {
    fn from(shared: std::sync::Arc<GitError>) -> Self {
        std::sync::Arc::try_unwrap(shared).unwrap_or_else(GitError::Shared)
    }
}

impl From<Denied> for GitError {
    fn from(denied: Denied) -> Self {
        GitError::Denied(denied)
    }
}

impl GitError {
    /// An I/O failure, naming what the server was doing.
    pub fn io(context: &'static str) -> impl FnOnce(std::io::Error) -> GitError {
        move |source| GitError::Io { context, source }
    }

    /// Whose fault this is, from the sources' own classifiers.
    pub fn fault(&self) -> Fault {
        match self {
            GitError::RepoNotFound(_)
            | GitError::NotFound(_)
            | GitError::BadRequest(_)
            | GitError::UnsupportedEncoding(_)
            | GitError::Protocol(_) => Fault::Client,
            GitError::Denied(Denied::Unavailable(_)) => Fault::Unavailable,
            GitError::Denied(_) => Fault::Client,
            GitError::Pack(err) => pack_fault(err),
            GitError::Storage(err) => storage_fault(err),
            GitError::Metadata(err) => metadata_fault(err),
            GitError::Conflict(_) => Fault::Conflict,
            GitError::TooLarge(_) | GitError::Busy(_) => Fault::Limit,
            GitError::ClientGone(_) => Fault::Client,
            GitError::Io { source, .. } if is_hang_up(source) => Fault::Client,
            GitError::Io { .. } | GitError::Internal(_) => Fault::Internal,
            GitError::Shared(err) => err.fault(),
        }
    }

    /// A stored object that was not there: what reading a repository deleted
    /// meanwhile fails with.
    pub fn is_missing_stored_object(&self) -> bool {
        let missing = |err: &StorageError| matches!(err, StorageError::NotFound { .. });
        match self {
            GitError::Storage(err) => missing(err),
            GitError::Pack(PackError::Backend(source)) => {
                source.downcast_ref::<StorageError>().is_some_and(missing)
            }
            GitError::Shared(err) => err.is_missing_stored_object(),
            _ => false,
        }
    }

    /// What the client is told. Its own faults precisely; anything else in
    /// a few words, with the request id to quote (the log has the rest).
    pub fn client_message(&self) -> String {
        match self.fault() {
            Fault::Client | Fault::Conflict | Fault::Limit => self.to_string(),
            Fault::Unavailable => format!(
                "{} is unavailable, try again later (request id {})",
                self.unavailable_service(),
                RequestId::current()
            ),
            Fault::Internal => format!(
                "internal server error (request id {})",
                RequestId::current()
            ),
        }
    }

    /// Log the whole error (sources included) at the level its fault deserves.
    pub fn log(&self, what: &str) {
        let error = chain(self);
        match self.fault() {
            Fault::Internal | Fault::Unavailable => {
                tracing::error!(error = %error, fault = ?self.fault(), "{what} failed")
            }
            Fault::Client | Fault::Conflict | Fault::Limit => {
                tracing::info!(error = %error, fault = ?self.fault(), "{what} refused")
            }
        }
    }

    fn unavailable_service(&self) -> &'static str {
        match self {
            GitError::Shared(err) => err.unavailable_service(),
            GitError::Storage(_) => "the object store",
            GitError::Pack(PackError::Backend(_)) => "the object store",
            GitError::Metadata(_) | GitError::Denied(_) => "the metadata database",
            _ => "a service the server needs",
        }
    }
}

fn pack_fault(err: &PackError) -> Fault {
    match err {
        PackError::ObjectTooLarge { .. } => Fault::Limit,
        _ if err.is_client_error() => Fault::Client,
        // The client hung up: nobody is left to tell.
        PackError::Cancelled => Fault::Client,
        PackError::Io { source, .. } if is_hang_up(source) => Fault::Client,
        PackError::Backend(source) => match source.downcast_ref::<StorageError>() {
            Some(err) => storage_fault(err),
            None => Fault::Internal,
        },
        _ => Fault::Internal,
    }
}

/// The error a response writer gets once the client is gone.
fn is_hang_up(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::BrokenPipe | ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
    )
}

fn storage_fault(err: &StorageError) -> Fault {
    if err.is_retryable() {
        Fault::Unavailable
    } else {
        Fault::Internal
    }
}

fn metadata_fault(err: &gitclaw_metadata::Error) -> Fault {
    use gitclaw_metadata::Error;
    match err {
        _ if err.is_transient() => Fault::Unavailable,
        Error::AlreadyExists(_) | Error::MigrationInProgress(_) => Fault::Conflict,
        // The repository went away while the request ran.
        Error::NotFound(_) => Fault::Conflict,
        Error::InvalidInput(_) => Fault::Client,
        _ => Fault::Internal,
    }
}

/// An error with its sources, `outer: inner: innermost`, for the log.
pub fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(next) = source {
        let next_text = next.to_string();
        // `#[error(transparent)]` and "…: {source}" messages repeat their source.
        if !text.contains(&next_text) {
            text.push_str(": ");
            text.push_str(&next_text);
        }
        source = next.source();
    }
    text
}

/// The id of the request being served: kept from a sane incoming
/// `X-Request-Id`, otherwise made up; sent back as a response header, carried
/// by the request's log lines and quoted in the errors a client sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

tokio::task_local! {
    static CURRENT: RequestId;
}

impl RequestId {
    /// A fresh id: 16 hex digits.
    pub fn generate() -> RequestId {
        let id = uuid::Uuid::new_v4().simple().to_string();
        RequestId(id[..16].to_string())
    }

    /// The client's own id if it is one a log line and a message can carry
    /// safely: 1 to 64 characters of letters, digits, `-`, `_`, `.`.
    pub fn from_client(value: &str) -> Option<RequestId> {
        let sane = !value.is_empty()
            && value.len() <= 64
            && value
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        sane.then(|| RequestId(value.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the request this task serves (`-` outside a request, as in
    /// the command line).
    pub fn current() -> RequestId {
        CURRENT
            .try_with(|id| id.clone())
            .unwrap_or_else(|_| RequestId("-".into()))
    }

    /// Run `work` (a request's handler) with this id as [`RequestId::current`].
    pub async fn scope<F: std::future::Future>(self, work: F) -> F::Output {
        CURRENT.scope(self, work).await
    }

    /// The same for blocking work handed to another thread.
    pub fn scope_sync<R>(self, work: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, work)
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_faults_are_told_precisely() {
        let err = GitError::Protocol(ProtocolError::DepthNotPositive);
        assert_eq!(err.fault(), Fault::Client);
        assert_eq!(err.client_message(), "deepen must be positive");
        let err = GitError::Pack(PackError::InvalidPack("truncated".into()));
        assert_eq!(err.client_message(), "invalid pack: truncated");
        // Over a configured limit: told precisely too.
        let err = GitError::Pack(PackError::ObjectTooLarge {
            offset: 12,
            size: 300,
            limit: 200,
        });
        assert_eq!(err.fault(), Fault::Limit);
        assert!(err.client_message().contains("object of 300 bytes"));
    }

    #[test]
    fn internal_detail_stays_in_the_log_and_the_client_gets_the_request_id() {
        let id = RequestId::from_client("abc-123").unwrap();
        let message = id.scope_sync(|| {
            GitError::Storage(StorageError::Corrupted {
                key: "r/objects/pack/secret-path".into(),
                detail: "bad crc".into(),
            })
            .client_message()
        });
        assert_eq!(message, "internal server error (request id abc-123)");
        let outage = GitError::Pack(PackError::Backend(Box::new(StorageError::Connection(
            "connect refused 10.0.0.7:9000".into(),
        ))));
        assert_eq!(outage.fault(), Fault::Unavailable);
        let message = RequestId::from_client("r1")
            .unwrap()
            .scope_sync(|| outage.client_message());
        assert_eq!(
            message,
            "the object store is unavailable, try again later (request id r1)"
        );
    }

    #[test]
    fn only_sane_client_request_ids_are_kept() {
        assert!(RequestId::from_client("0af7651916cd43dd").is_some());
        assert!(RequestId::from_client("").is_none());
        assert!(RequestId::from_client("a b").is_none());
        assert!(RequestId::from_client("line\nbreak").is_none());
        assert!(RequestId::from_client(&"x".repeat(65)).is_none());
        assert_eq!(RequestId::generate().as_str().len(), 16);
    }

    #[test]
    fn the_log_line_carries_every_source() {
        let err = GitError::Io {
            context: "spooling the pack",
            source: std::io::Error::other("disk full"),
        };
        assert_eq!(chain(&err), "I/O error while spooling the pack: disk full");
    }
}
