//! Protected refs: the rules a repository's admins set (see the metadata's
//! `protected`), managed here for the API; the push enforces them
//! (`push::checks::protection_checks`).

use gitclaw_metadata::{Error as MetadataError, ProtectedRef, Repo};

use crate::app::AppState;

/// Protected-ref rules one repository may have.
pub const MAX_RULES_PER_REPO: usize = 50;

/// Why a protected-ref request is refused.
#[derive(Debug, thiserror::Error)]
pub enum ProtectedError {
    /// The request is wrong; the text says how.
    #[error("{0}")]
    Invalid(String),
    /// The repository has a rule of that pattern.
    #[error("{0} already exists")]
    AlreadyExists(String),
    #[error("protected-ref rule {0} not found")]
    NotFound(String),
    #[error(transparent)]
    Metadata(MetadataError),
}

impl From<MetadataError> for ProtectedError {
    fn from(err: MetadataError) -> Self {
        match err {
            MetadataError::InvalidInput(m) => ProtectedError::Invalid(m),
            MetadataError::AlreadyExists(m) => ProtectedError::AlreadyExists(m),
            other => ProtectedError::Metadata(other),
        }
    }
}

/// Protect the refs `pattern` names in `repo`.
pub async fn create(
    state: &AppState,
    repo: &Repo,
    pattern: &str,
    (allow_force_push, allow_deletion): (bool, bool),
    actor: &str,
) -> Result<ProtectedRef, ProtectedError> {
    Ok(state
        .meta
        .create_protected_ref(
            &repo.id,
            pattern,
            allow_force_push,
            allow_deletion,
            actor,
            MAX_RULES_PER_REPO,
        )
        .await?)
}

/// Delete rule `id` of `repo`.
pub async fn delete(
    state: &AppState,
    repo: &Repo,
    id: &str,
    actor: &str,
) -> Result<(), ProtectedError> {
    match state.meta.delete_protected_ref(&repo.id, id, actor).await? {
        true => Ok(()),
        false => Err(ProtectedError::NotFound(id.to_owned())),
    }
}
