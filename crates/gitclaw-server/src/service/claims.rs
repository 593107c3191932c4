//! Keys a push writes before its commit records them, held under a lease so
//! nothing deletes them meanwhile, and deleted again when the push records
//! nothing.
//!
//! For: the window between a push's first upload and its ref transaction, and the
//! cleanup of a push whose updates all failed (stale old value, lost race,
//! storage failure): its bytes would otherwise stay in the store with no row
//! naming them. A claim is renewed in the background while it is held; a process
//! that dies leaves leases that lapse, and the sweep (`gc`) collects their keys.
//!
//! Not for: deciding what a key is (`candidate`) beyond its layout, or sweeping
//! whole repositories (`gc::sweep_repo`).

use std::time::Duration;

use gitclaw_metadata::{DeleteCandidate, Recorded, UploadClaim};
use gitclaw_storage::{KeyKind, ObjectKey};

use crate::app::AppState;

/// How long an upload waits for a deletion of one of its keys to finish.
const DELETION_WAIT: Duration = Duration::from_secs(30);

/// What the metadata would record `key` under.
pub fn candidate(key: &ObjectKey) -> DeleteCandidate {
    DeleteCandidate {
        key: key.as_str().to_string(),
        recorded: match key.kind() {
            KeyKind::Loose { oid, .. } => Recorded::Loose(oid),
            KeyKind::Pack { hash, .. } | KeyKind::PackIndex { hash, .. } => Recorded::Pack(hash),
            KeyKind::PackGraph { hash, .. } => Recorded::PackGraph(hash),
            KeyKind::Lfs { oid, .. } => Recorded::Lfs(oid.to_hex()),
        },
    }
}

/// Why a claim could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    #[error("the repository was deleted during the push")]
    RepositoryGone,
    #[error("the store is still deleting an earlier copy of these objects; try again")]
    DeletionUnderWay,
    #[error(transparent)]
    Metadata(#[from] gitclaw_metadata::Error),
}

impl From<ClaimError> for crate::error::GitError {
    fn from(err: ClaimError) -> Self {
        match err {
            ClaimError::Metadata(err) => err.into(),
            other => crate::error::GitError::Conflict(other.to_string()),
        }
    }
}

/// Keys of one repository held for an upload; see the module docs.
pub struct StoreClaim {
    state: AppState,
    repo_id: String,
    id: String,
    keys: Vec<ObjectKey>,
    renewer: tokio::task::JoinHandle<()>,
    settled: bool,
}

impl StoreClaim {
    /// Claim `keys` before writing them; waits while an earlier deletion of one of
    /// them finishes.
    pub async fn upload(
        state: &AppState,
        repo_id: &str,
        keys: Vec<ObjectKey>,
    ) -> Result<StoreClaim, ClaimError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let names: Vec<String> = keys.iter().map(|k| k.as_str().to_string()).collect();
        let lease = state.config.gc.claim_lease_secs;
        let deadline = tokio::time::Instant::now() + DELETION_WAIT;
        loop {
            match state.meta.claim_upload(repo_id, &id, &names, lease).await? {
                UploadClaim::Taken => break,
                UploadClaim::NoRepository => return Err(ClaimError::RepositoryGone),
                UploadClaim::DeletionUnderWay if tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                UploadClaim::DeletionUnderWay => return Err(ClaimError::DeletionUnderWay),
            }
        }
        Ok(StoreClaim {
            renewer: spawn_renewer(state.clone(), id.clone(), lease),
            state: state.clone(),
            repo_id: repo_id.to_string(),
            id,
            keys,
            settled: false,
        })
    }

    /// The commit recorded the keys: let go of them.
    pub async fn release(mut self) {
        self.settled = true;
        self.renewer.abort();
        if let Err(err) = self.state.meta.release_claim(&self.id).await {
            tracing::warn!(repo = %self.repo_id, error = %err, "cannot release a push's claim; it lapses on its own");
        }
    }

    /// Nothing recorded the keys: delete those that no row records and no other
    /// push holds, then let go. Returns how many keys were deleted. A failure here
    /// leaves the keys to the sweep.
    pub async fn discard(mut self) -> usize {
        self.settled = true;
        self.renewer.abort();
        discard_keys(&self.state, &self.repo_id, &self.id, &self.keys).await
    }
}

impl Drop for StoreClaim {
    /// Dropped without a verdict (the push failed on the way): discard the keys in
    /// the background, as [`StoreClaim::discard`] does.
    fn drop(&mut self) {
        self.renewer.abort();
        if self.settled {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let state = self.state.clone();
        let repo_id = std::mem::take(&mut self.repo_id);
        let id = std::mem::take(&mut self.id);
        let keys = std::mem::take(&mut self.keys);
        runtime.spawn(async move {
            discard_keys(&state, &repo_id, &id, &keys).await;
        });
    }
}

/// Delete the claimed `keys` that nothing records and nobody else holds, then
/// release the claim; returns how many keys were deleted.
async fn discard_keys(state: &AppState, repo_id: &str, id: &str, keys: &[ObjectKey]) -> usize {
    let candidates: Vec<DeleteCandidate> = keys.iter().map(candidate).collect();
    let deleted = delete_claimed(state, repo_id, id, &candidates).await.len();
    if let Err(err) = state.meta.release_claim(id).await {
        tracing::warn!(repo = %repo_id, error = %err, "cannot release a push's claim; it lapses on its own");
    }
    deleted
}

/// Claim `candidates` for deletion under `claim_id`, delete what was granted from
/// the store; returns the keys deleted. Errors are logged, not returned: what
/// stays is the sweep's.
pub async fn delete_claimed(
    state: &AppState,
    repo_id: &str,
    claim_id: &str,
    candidates: &[DeleteCandidate],
) -> Vec<String> {
    let lease = state.config.gc.claim_lease_secs;
    let granted = match state
        .meta
        .claim_delete(repo_id, claim_id, candidates, lease)
        .await
    {
        Ok(granted) => granted,
        Err(err) => {
            tracing::warn!(repo = %repo_id, error = %err, "cannot claim unrecorded keys for deletion");
            return Vec::new();
        }
    };
    let mut deleted = Vec::new();
    for key in &granted {
        let result = match ObjectKey::parse(key) {
            Ok(key) => state.store.delete(&key).await,
            Err(err) => Err(err),
        };
        match result {
            Ok(()) => deleted.push(key.clone()),
            Err(err) => {
                tracing::warn!(repo = %repo_id, key = %key, error = %err, "cannot delete an unrecorded key");
            }
        }
    }
    deleted
}

/// Renew the lease at a third of its length until aborted.
fn spawn_renewer(state: AppState, id: String, lease: u64) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let period = Duration::from_secs((lease / 3).max(1));
        loop {
            tokio::time::sleep(period).await;
            if let Err(err) = state.meta.renew_claim(&id, lease).await {
                tracing::warn!(error = %err, "cannot renew a push's claim");
            }
        }
    })
}
