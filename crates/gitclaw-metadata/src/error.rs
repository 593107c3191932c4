//! The crate's one error type.
//!
//! For: telling the caller what went wrong in terms it can act on —
//! a missing row (`NotFound`), a taken name (`AlreadyExists`), a bad argument
//! (`InvalidInput`), a row the code cannot make sense of (`InvalidData`), or
//! the database itself failing (`Database`, `Migration`).
//! Not for: ref-update rejections during a push. Those are ordinary outcomes,
//! reported per ref as [`crate::RefResult::Rejected`], not errors.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to the metadata database.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The row the operation needs does not exist (e.g. the repository was
    /// deleted). The string names it.
    #[error("not found: {0}")]
    NotFound(String),

    /// A row with the same unique key already exists (e.g. `owner/name`).
    /// The string names it.
    #[error("already exists: {0}")]
    AlreadyExists(String),

    /// A migration of the repository's legacy objects is running; the
    /// operation (deleting it) must wait for it. The string names it.
    #[error("a migration of {0} is in progress")]
    MigrationInProgress(String),

    /// The caller passed something this crate refuses before touching the
    /// database: an unsupported database URL, a number too large to store,
    /// an unknown object type.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// A value read from the database is not what the schema promises
    /// (a malformed object id, a negative size, bad JSON). Points at
    /// corruption or at a writer that bypassed this crate.
    #[error("invalid data in the metadata database: {0}")]
    InvalidData(String),

    /// The database failed: unreachable, timed out waiting for a lock or a
    /// pooled connection, or refused a statement.
    #[error("metadata database error: {0}")]
    Database(#[from] sqlx::Error),

    /// Applying the schema migrations at connect failed.
    #[error("metadata schema migration failed: {0}")]
    Migration(#[from] sqlx::migrate::MigrateError),
}

impl Error {
    /// True for failures that may succeed when retried unchanged: the pool
    /// timed out, the connection dropped, or SQLite stayed busy past its
    /// timeout.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Database(e) => match e {
                sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::WorkerCrashed => true,
                sqlx::Error::Database(db) => match db.code().as_deref() {
                    // PostgreSQL SQLSTATEs are five characters: serialization
                    // failure, deadlock, connection failures.
                    Some(code) if code.len() == 5 => {
                        matches!(code, "40001" | "40P01") || code.starts_with("08")
                    }
                    // SQLite extended result codes: the low byte is the
                    // primary code, SQLITE_BUSY (5) or SQLITE_LOCKED (6).
                    Some(code) => code
                        .parse::<i32>()
                        .map(|c| matches!(c & 0xff, 5 | 6))
                        .unwrap_or(false),
                    None => false,
                },
                _ => false,
            },
            _ => false,
        }
    }
}
