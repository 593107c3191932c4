//! Repository lifecycle: delete (every key under `{repo_id}/`, with a background
//! retry when the store fails) and fork (server-side copy of every object and pack,
//! then the metadata in one transaction, with its audit event).

use gitclaw_metadata::{Error as MetadataError, ForkRepo, Metadata, Repo};
use gitclaw_storage::RepoId;

use crate::app::AppState;

/// Why a lifecycle operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error("repository not found: {0}")]
    NotFound(String),
    #[error("repository {0} already exists")]
    AlreadyExists(String),
    #[error("{0}")]
    Metadata(#[from] MetadataError),
    #[error("{0}")]
    Storage(#[from] gitclaw_storage::StorageError),
}

/// Delete a repository: gone from the API and from git at once (the metadata row
/// goes first, with its audit event), then every key under its prefix. If the
/// store does not let go of everything after retries, the prefix is scheduled
/// and the deletion loop finishes the job.
pub async fn delete_repo(state: &AppState, repo: &Repo, actor: &str) -> Result<(), LifecycleError> {
    state
        .meta
        .delete_repo(&repo.id, actor)
        .await
        .map_err(|err| match err {
            MetadataError::NotFound(_) => {
                LifecycleError::NotFound(format!("{}/{}", repo.owner, repo.name))
            }
            other => other.into(),
        })?;
    let prefix = RepoId::new(&repo.id)?.prefix();
    let mut last_error = None;
    for attempt in 0..3u32 {
        match state.store.delete_prefix(&prefix).await {
            Ok(_) => {
                if state
                    .store
                    .list(&prefix)
                    .await
                    .map(|left| left.is_empty())
                    .unwrap_or(false)
                {
                    return Ok(());
                }
            }
            Err(err) => last_error = Some(err),
        }
        tokio::time::sleep(std::time::Duration::from_millis(200 << attempt)).await;
    }
    tracing::warn!(
        repo = %repo.id,
        error = %last_error.map(|e| e.to_string()).unwrap_or_else(|| "keys remain".into()),
        "repository keys not all deleted; scheduled for cleanup"
    );
    state
        .meta
        .schedule_deletion(&repo.id, prefix.as_str(), 0)
        .await?;
    Ok(())
}

/// Fork `source` into `owner/name`: copy every key server-side under a new id,
/// then record the repository, its refs, packs and loose objects in one
/// transaction. The two live apart afterwards.
pub async fn fork_repo(
    state: &AppState,
    source: &Repo,
    owner: &str,
    name: &str,
    actor: &str,
) -> Result<Repo, LifecycleError> {
    let snapshot = state.meta.snapshot(&source.id).await?;
    let id = Metadata::new_repo_id();
    let from = RepoId::new(&source.id)?.prefix();
    let to = RepoId::new(&id)?.prefix();
    state.store.copy_prefix(&from, &to).await?;
    let fork = ForkRepo {
        id: id.clone(),
        source_id: source.id.clone(),
        owner: owner.to_string(),
        name: name.to_string(),
        private: snapshot.repo.private,
        head_ref: snapshot.repo.head_ref.clone(),
        refs: snapshot.refs,
        packs: snapshot.packs,
        loose: snapshot.loose,
        actor: actor.to_string(),
    };
    match state.meta.fork_repo(fork).await {
        Ok(repo) => Ok(repo),
        Err(err) => {
            // The copy is unreachable garbage now; remove it.
            let _ = state.store.delete_prefix(&to).await;
            Err(match err {
                MetadataError::AlreadyExists(_) => {
                    LifecycleError::AlreadyExists(format!("{owner}/{name}"))
                }
                other => other.into(),
            })
        }
    }
}
