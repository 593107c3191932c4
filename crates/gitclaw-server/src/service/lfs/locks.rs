//! Git LFS file locks: create, list, verify (what a push checks) and unlock.
//!
//! A lock belongs to the identity that created it (a token, the admin, or
//! everyone alike on an open server). Anyone who may write may lock a free
//! path; removing someone else's lock takes `force`. Who may write is decided
//! before these are called.

use gitclaw_metadata::{LfsLock, LockCreated, LockFilter, Repo};

use super::LfsError;
use crate::app::AppState;

/// The longest path a lock may name, in bytes.
pub const MAX_LOCK_PATH: usize = 4096;
/// Locks listed per page when the client does not say.
pub const DEFAULT_PAGE: u32 = 100;
/// The most locks one page lists.
pub const MAX_PAGE: u32 = 1000;

/// Who holds (or asks for) a lock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOwner {
    /// Compared to tell one's own locks from others'.
    pub id: String,
    /// Shown to clients.
    pub name: String,
}

fn check_path(path: &str) -> Result<(), LfsError> {
    if path.is_empty() || path.len() > MAX_LOCK_PATH || path.contains('\0') {
        return Err(LfsError::Invalid(format!(
            "a lock's path is 1 to {MAX_LOCK_PATH} bytes without NUL"
        )));
    }
    Ok(())
}

/// A page size from the client: 1 to [`MAX_PAGE`], [`DEFAULT_PAGE`] when absent.
pub fn page_size(limit: Option<u64>) -> Result<u32, LfsError> {
    match limit {
        None | Some(0) => Ok(DEFAULT_PAGE),
        Some(n) => Ok(u32::try_from(n).unwrap_or(MAX_PAGE).min(MAX_PAGE)),
    }
}

fn check_cursor(cursor: Option<&str>) -> Result<(), LfsError> {
    // Cursors are lock ids: 32 hex digits.
    if let Some(cursor) = cursor {
        if cursor.len() > 64 || !cursor.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(LfsError::Invalid("invalid cursor".into()));
        }
    }
    Ok(())
}

/// Lock `path` for `owner`: the new lock, or the lock already on it.
pub async fn create(
    state: &AppState,
    repo: &Repo,
    path: &str,
    owner: &LockOwner,
) -> Result<LockCreated, LfsError> {
    check_path(path)?;
    Ok(state
        .meta
        .create_lfs_lock(&repo.id, path, &owner.id, &owner.name)
        .await?)
}

/// One page of the repository's locks (all, on one path, or one id), and the
/// cursor of the next page if there is one.
pub async fn list(
    state: &AppState,
    repo: &Repo,
    path: Option<&str>,
    id: Option<&str>,
    cursor: Option<&str>,
    limit: u32,
) -> Result<(Vec<LfsLock>, Option<String>), LfsError> {
    if let Some(path) = path {
        check_path(path)?;
    }
    check_cursor(cursor)?;
    if id.is_some_and(|id| id.len() > 64) {
        return Ok((Vec::new(), None));
    }
    let filter = LockFilter {
        path,
        id,
        after: cursor,
        limit: limit.saturating_add(1),
    };
    let mut locks = state.meta.list_lfs_locks(&repo.id, &filter).await?;
    let next = if locks.len() > limit as usize {
        locks.truncate(limit as usize);
        locks.last().map(|lock| lock.id.clone())
    } else {
        None
    };
    Ok((locks, next))
}

/// One page of the repository's locks split into the owner's and others'.
pub async fn verify(
    state: &AppState,
    repo: &Repo,
    owner: &LockOwner,
    cursor: Option<&str>,
    limit: u32,
) -> Result<(Vec<LfsLock>, Vec<LfsLock>, Option<String>), LfsError> {
    let (locks, next) = list(state, repo, None, None, cursor, limit).await?;
    let (ours, theirs) = locks
        .into_iter()
        .partition(|lock| lock.owner_id == owner.id);
    Ok((ours, theirs, next))
}

/// Remove lock `id`: the owner may, anyone else (who may write) only with
/// `force`. Returns the removed lock.
pub async fn unlock(
    state: &AppState,
    repo: &Repo,
    id: &str,
    owner: &LockOwner,
    force: bool,
) -> Result<LfsLock, LfsError> {
    let not_found = || {
        LfsError::NotFound(format!(
            "no lock with id {:?}",
            id.escape_default().to_string()
        ))
    };
    if id.is_empty() || id.len() > 64 {
        return Err(not_found());
    }
    let (found, _) = list(state, repo, None, Some(id), None, 1).await?;
    let Some(lock) = found.into_iter().next() else {
        return Err(not_found());
    };
    if lock.owner_id != owner.id && !force {
        return Err(LfsError::Forbidden(format!(
            "{} is locked by {}; unlock it with --force to remove their lock",
            lock.path, lock.owner_name
        )));
    }
    state
        .meta
        .delete_lfs_lock(&repo.id, id)
        .await?
        .ok_or_else(not_found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_sizes_are_bounded() {
        assert_eq!(page_size(None).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_size(Some(0)).unwrap(), DEFAULT_PAGE);
        assert_eq!(page_size(Some(5)).unwrap(), 5);
        assert_eq!(page_size(Some(u64::MAX)).unwrap(), MAX_PAGE);
    }

    #[test]
    fn lock_paths_and_cursors_are_checked() {
        assert!(check_path("a/b.bin").is_ok());
        assert!(check_path("").is_err());
        assert!(check_path("a\0b").is_err());
        assert!(check_path(&"x".repeat(MAX_LOCK_PATH + 1)).is_err());
        assert!(check_cursor(Some("0123abcd")).is_ok());
        assert!(check_cursor(Some("' OR 1=1")).is_err());
    }
}
