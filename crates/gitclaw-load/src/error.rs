//! How a scenario run fails. Every failure has a kind, which the report counts,
//! and a one-line message, of which the report keeps the first per kind.

/// What went wrong, by whose fault and at which layer: the report's columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// No connection, or it broke before a complete answer.
    Connect,
    /// The scenario did not finish within `--timeout`.
    Timeout,
    /// The server answered with an HTTP status other than 200.
    HttpStatus(u16),
    /// The server said no in the protocol: an `ERR` packet or a sideband-3 message.
    ProtocolErr,
    /// The answer does not follow the protocol (framing, sections, ref lines).
    Malformed,
    /// The pack does not verify: header, an entry, a delta, the trailer, or an
    /// object that should be in it and is not.
    BadPack,
    /// The pack holds another number of objects than the first answer to the
    /// same request did.
    WrongObjectCount,
    /// A push's report-status says `ng` for a ref, or the unpack failed, or a
    /// pushed ref is not what the server lists after the run.
    PushRejected,
    /// The harness's own trouble: a temporary file it could not write.
    Local,
}

impl ErrorKind {
    /// The name the report uses.
    pub fn label(&self) -> String {
        match self {
            ErrorKind::Connect => "connect".into(),
            ErrorKind::Timeout => "timeout".into(),
            ErrorKind::HttpStatus(code) => format!("http {code}"),
            ErrorKind::ProtocolErr => "protocol ERR".into(),
            ErrorKind::Malformed => "malformed response".into(),
            ErrorKind::BadPack => "bad pack".into(),
            ErrorKind::WrongObjectCount => "wrong object count".into(),
            ErrorKind::PushRejected => "push rejected".into(),
            ErrorKind::Local => "local".into(),
        }
    }
}

/// One failed scenario run (or one failed step of setting up).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {}", .kind.label(), .message)]
pub struct RunError {
    pub kind: ErrorKind,
    pub message: String,
}

impl RunError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        RunError {
            kind,
            message: message.into(),
        }
    }

    pub fn malformed(message: impl Into<String>) -> Self {
        RunError::new(ErrorKind::Malformed, message)
    }

    pub fn bad_pack(message: impl Into<String>) -> Self {
        RunError::new(ErrorKind::BadPack, message)
    }
}

impl From<gitclaw_protocol::ProtocolError> for RunError {
    fn from(err: gitclaw_protocol::ProtocolError) -> Self {
        RunError::malformed(err.to_string())
    }
}

/// Why a load run could not start: the harness could not learn what it needs
/// about the repository, or the options do not fit together.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SetupError {
    #[error("{0}")]
    Options(String),
    #[error("{step}: {source}")]
    Server {
        step: String,
        #[source]
        source: RunError,
    },
    #[error("the server does not support {0}, which the mix asks for")]
    Unsupported(String),
}
