//! Repositories: create, find, fork (server-side copy of every object and pack,
//! then the metadata in one transaction, with its audit event) and delete (every
//! key under `{repo_id}/`, with a background retry when the store fails). The
//! REST API and the command line both call these.

use gitclaw_metadata::{Error as MetadataError, ForkRepo, Metadata, Repo};
use gitclaw_storage::RepoId;

use crate::{app::AppState, names};

/// Why an operation on repositories failed.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// An owner or repository name the server does not allow.
    #[error("{0}")]
    InvalidName(String),
    #[error("repository {0} not found")]
    NotFound(String),
    #[error("repository {0} already exists")]
    AlreadyExists(String),
    /// A default branch the repository does not have.
    #[error("{0}")]
    NoSuchBranch(String),
    /// A migration of the repository's legacy objects is running.
    #[error("a migration of {0} is in progress; delete it once `gitclaw migrate` has finished or stopped")]
    MigrationInProgress(String),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
    #[error(transparent)]
    Storage(#[from] gitclaw_storage::StorageError),
}

impl From<RepoError> for crate::error::GitError {
    fn from(err: RepoError) -> Self {
        use crate::error::GitError;
        match err {
            RepoError::InvalidName(m) | RepoError::NoSuchBranch(m) => GitError::BadRequest(m),
            RepoError::NotFound(name) => GitError::RepoNotFound(name),
            RepoError::AlreadyExists(_) | RepoError::MigrationInProgress(_) => {
                GitError::Conflict(err.to_string())
            }
            RepoError::Metadata(err) => err.into(),
            RepoError::Storage(err) => err.into(),
        }
    }
}

/// The URL `git clone` takes for `repo`: under `GITCLAW_PUBLIC_URL`, or the
/// listen address when that is unset.
pub fn clone_url(config: &crate::config::Config, repo: &Repo) -> String {
    let base = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{}://{}", config.scheme(), config.listen));
    format!("{base}/{}/{}.git", repo.owner, repo.name)
}

/// Check an `owner/name` pair against the naming rules.
pub fn validate(owner: &str, name: &str) -> Result<(), RepoError> {
    names::validate_name("owner", owner)
        .and_then(|_| names::validate_name("repository", name))
        .map_err(RepoError::InvalidName)
}

/// Create a repository.
pub async fn create_repo(
    state: &AppState,
    owner: &str,
    name: &str,
    private: bool,
    actor: &str,
) -> Result<Repo, RepoError> {
    validate(owner, name)?;
    state
        .meta
        .create_repo(owner, name, private, actor)
        .await
        .map_err(|err| match err {
            MetadataError::AlreadyExists(_) => RepoError::AlreadyExists(format!("{owner}/{name}")),
            other => other.into(),
        })
}

/// The repository called `owner/name` (names match ignoring letter case).
pub async fn find_repo(state: &AppState, owner: &str, name: &str) -> Result<Repo, RepoError> {
    validate(owner, name)?;
    state
        .meta
        .get_repo(owner, name)
        .await?
        .ok_or_else(|| RepoError::NotFound(format!("{owner}/{name}")))
}

/// Rename `repo` to `owner/name` (a new owner moves it). It keeps its id, so
/// its objects, refs, tokens and audit log; git URLs with its old name keep
/// leading to it until a repository is created under that name.
pub async fn rename_repo(
    state: &AppState,
    repo: &Repo,
    owner: &str,
    name: &str,
    actor: &str,
) -> Result<Repo, RepoError> {
    validate(owner, name)?;
    state
        .meta
        .rename_repo(&repo.id, owner, name, actor)
        .await
        .map_err(|err| match err {
            MetadataError::NotFound(_) => {
                RepoError::NotFound(format!("{}/{}", repo.owner, repo.name))
            }
            MetadataError::AlreadyExists(_) => RepoError::AlreadyExists(format!("{owner}/{name}")),
            MetadataError::InvalidInput(why) => RepoError::InvalidName(why),
            other => other.into(),
        })
}

/// Make `branch` (`main` or `refs/heads/main`), which the repository must
/// have, its default branch: what `HEAD` names, what a clone checks out, and
/// the branch no push may delete.
pub async fn set_default_branch(
    state: &AppState,
    repo: &Repo,
    branch: &str,
    actor: &str,
) -> Result<Repo, RepoError> {
    let head_ref = if branch.starts_with("refs/heads/") {
        branch.to_string()
    } else {
        format!("refs/heads/{branch}")
    };
    state
        .meta
        .set_head(&repo.id, &head_ref, actor)
        .await
        .map_err(|err| match err {
            MetadataError::NotFound(_) => {
                RepoError::NotFound(format!("{}/{}", repo.owner, repo.name))
            }
            MetadataError::InvalidInput(why) => RepoError::NoSuchBranch(why),
            other => other.into(),
        })
}

/// Delete a repository: gone from the API and from git at once (the metadata row
/// goes first, with its audit event), then every key under its prefix. If the
/// store does not let go of everything after retries, the prefix is scheduled
/// and the deletion loop finishes the job.
pub async fn delete_repo(state: &AppState, repo: &Repo, actor: &str) -> Result<(), RepoError> {
    state
        .meta
        .delete_repo(&repo.id, actor)
        .await
        .map_err(|err| match err {
            MetadataError::NotFound(_) => {
                RepoError::NotFound(format!("{}/{}", repo.owner, repo.name))
            }
            MetadataError::MigrationInProgress(name) => RepoError::MigrationInProgress(name),
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
) -> Result<Repo, RepoError> {
    validate(owner, name)?;
    // Read before the copy: every object it lists is in the store already.
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
        lfs: snapshot.lfs,
        actor: actor.to_string(),
    };
    match state.meta.fork_repo(fork).await {
        Ok(repo) => Ok(repo),
        Err(err) => {
            // The copy is unreachable garbage now; remove it.
            let _ = state.store.delete_prefix(&to).await;
            Err(match err {
                MetadataError::AlreadyExists(_) => {
                    RepoError::AlreadyExists(format!("{owner}/{name}"))
                }
                other => other.into(),
            })
        }
    }
}
