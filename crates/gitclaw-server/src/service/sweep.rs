//! Store hygiene: keys nothing records are removed. The deletion schedule
//! deletes what compaction replaced (after its grace period) and what a
//! repository deletion could not finish; the sweep deletes what failed and
//! killed pushes left (unrecorded keys older than the grace period that no
//! push holds). Both run in the background on every server, and `gitclaw gc`
//! runs them by hand.

use std::{
    collections::HashSet,
    time::{SystemTime, UNIX_EPOCH},
};

use gitclaw_metadata::Repo;
use gitclaw_pack::ObjectId;
use gitclaw_storage::{KeyKind, ObjectKey, RepoId, StorageError};

use crate::{
    app::AppState,
    service::{claims, repos::RepoError},
};

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// What a sweep of one repository's store keys found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepOutcome {
    /// Keys under the repository's prefix that no row records.
    pub unrecorded: usize,
    /// Of those, the keys deleted (older than the grace period, held by no push).
    pub deleted: usize,
    pub deleted_bytes: u64,
}

/// Delete the keys whose grace period is over; returns how many.
pub async fn run_due_deletions(state: &AppState) -> Result<usize, RepoError> {
    let mut done = 0;
    loop {
        let due = state.meta.due_deletions(now_secs(), 500).await?;
        if due.is_empty() {
            return Ok(done);
        }
        for item in &due {
            if let Some(repo) = item.key.strip_suffix('/') {
                // A whole repository whose deletion did not finish.
                let prefix = RepoId::new(repo)?.prefix();
                state.store.delete_prefix(&prefix).await?;
                if !state.store.list(&prefix).await?.is_empty() {
                    return Err(RepoError::Storage(StorageError::Other(format!(
                        "keys remain under {}",
                        prefix.as_str()
                    ))));
                }
            } else {
                match ObjectKey::parse(&item.key) {
                    Ok(key) => state.store.delete(&key).await?,
                    Err(err) => {
                        tracing::warn!(key = %item.key, error = %err, "dropping a malformed pending deletion")
                    }
                }
            }
            // Deleted from the store, still scheduled in the database.
            gitclaw_metadata::crash_point("gc:deleting");
            state.meta.finish_deletion(&item.repo_id, &item.key).await?;
            done += 1;
        }
    }
}

/// Run due deletions every `period` until the server shuts down.
pub fn spawn_deletion_loop(state: &AppState, period: std::time::Duration) {
    let start = tokio::time::Instant::now();
    state.spawn_periodic(
        start,
        period,
        "deleting replaced packs",
        |state| async move { run_due_deletions(&state).await.map(|_| ()) },
    );
}

/// What the store holds under one repository's prefix, against what the
/// metadata records.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct StoreUsage {
    /// Keys under the repository's prefix.
    pub keys: u64,
    /// Their bytes, as stored.
    pub bytes: u64,
    /// Keys that no row records (left by failed pushes until a sweep deletes
    /// them, or replaced by compaction and waiting for their grace period).
    pub unrecorded_keys: u64,
    pub unrecorded_bytes: u64,
}

/// List the repository's keys; returns the usage and the unrecorded keys.
async fn store_listing(
    state: &AppState,
    repo: &Repo,
) -> Result<(StoreUsage, Vec<(ObjectKey, gitclaw_storage::ObjectMeta)>), RepoError> {
    let repo_id = RepoId::new(&repo.id)?;
    let records = state.meta.list_packs(&repo.id).await?;
    let packs: HashSet<ObjectId> = records.iter().map(|p| p.pack_hash).collect();
    let graphs: HashSet<ObjectId> = records
        .iter()
        .filter(|p| p.graph_bytes.is_some())
        .map(|p| p.pack_hash)
        .collect();
    let loose: HashSet<ObjectId> = state
        .meta
        .list_loose(&repo.id)
        .await?
        .into_iter()
        .map(|l| l.oid)
        .collect();
    let lfs: HashSet<String> = state
        .meta
        .list_lfs_objects(&repo.id)
        .await?
        .into_iter()
        .map(|o| o.oid)
        .collect();
    let mut usage = StoreUsage::default();
    let mut unrecorded = Vec::new();
    for meta in state.store.list(&repo_id.prefix()).await? {
        usage.keys += 1;
        usage.bytes += meta.size;
        let recorded = match ObjectKey::parse(&meta.key) {
            Ok(key) => {
                let recorded = match key.kind() {
                    KeyKind::Loose { oid, .. } => loose.contains(&oid),
                    KeyKind::Pack { hash, .. } | KeyKind::PackIndex { hash, .. } => {
                        packs.contains(&hash)
                    }
                    KeyKind::PackGraph { hash, .. } => graphs.contains(&hash),
                    // An LFS upload never verified (or refused by verify).
                    KeyKind::Lfs { oid, .. } => lfs.contains(&oid.to_hex()),
                };
                if !recorded {
                    unrecorded.push((key, meta.clone()));
                }
                recorded
            }
            Err(_) => false,
        };
        if !recorded {
            usage.unrecorded_keys += 1;
            usage.unrecorded_bytes += meta.size;
        }
    }
    Ok((usage, unrecorded))
}

/// What the store holds for a repository (one listing of its prefix).
pub async fn store_usage(state: &AppState, repo: &Repo) -> Result<StoreUsage, RepoError> {
    Ok(store_listing(state, repo).await?.0)
}

/// Delete the keys under a repository's prefix that no row records, that were
/// written longer than the grace period ago and that no push holds — what
/// rejected, failed and killed pushes left. Keys a compaction replaced are left
/// to the deletion schedule; keys whose age the store does not tell are kept.
pub async fn sweep_repo(state: &AppState, repo: &Repo) -> Result<SweepOutcome, RepoError> {
    let (usage, unrecorded) = store_listing(state, repo).await?;
    let cutoff = SystemTime::now()
        .checked_sub(std::time::Duration::from_secs(state.config.gc.grace_secs))
        .unwrap_or(UNIX_EPOCH);
    let mut outcome = SweepOutcome {
        unrecorded: usage.unrecorded_keys as usize,
        ..Default::default()
    };
    let mut sizes = std::collections::HashMap::new();
    let mut candidates = Vec::new();
    for (key, meta) in unrecorded {
        if meta.last_modified.is_some_and(|written| written <= cutoff) {
            sizes.insert(meta.key, meta.size);
            candidates.push(claims::candidate(&key));
        }
    }
    if candidates.is_empty() {
        return Ok(outcome);
    }
    let claim_id = uuid::Uuid::new_v4().simple().to_string();
    let deleted = claims::delete_claimed(state, &repo.id, &claim_id, &candidates).await;
    state.meta.release_claim(&claim_id).await?;
    outcome.deleted = deleted.len();
    outcome.deleted_bytes = deleted.iter().filter_map(|k| sizes.get(k)).sum();
    if outcome.deleted > 0 {
        tracing::info!(
            repo = %format!("{}/{}", repo.owner, repo.name),
            keys = outcome.deleted,
            bytes = outcome.deleted_bytes,
            "deleted store keys no row records"
        );
    }
    Ok(outcome)
}

/// Sweep every repository every `sweep_interval_secs` (never when 0), the first
/// time one interval after start.
pub fn spawn_sweep_loop(state: &AppState) {
    let period = state.config.gc.sweep_interval_secs;
    if period == 0 {
        return;
    }
    let period = std::time::Duration::from_secs(period);
    let start = tokio::time::Instant::now() + period;
    state.spawn_periodic(
        start,
        period,
        "sweeping unrecorded keys",
        |state| async move { sweep_all(&state).await.map(|_| ()) },
    );
}

/// Sweep every repository, one page of them at a time.
pub async fn sweep_all(state: &AppState) -> Result<SweepOutcome, RepoError> {
    let mut total = SweepOutcome::default();
    let mut after: Option<(String, String)> = None;
    loop {
        let page = state
            .meta
            .list_repos(after.as_ref().map(|(o, n)| (o.as_str(), n.as_str())), 100)
            .await?;
        let Some(last) = page.last() else {
            return Ok(total);
        };
        after = Some((last.owner.clone(), last.name.clone()));
        for repo in &page {
            let swept = sweep_repo(state, repo).await?;
            total.unrecorded += swept.unrecorded;
            total.deleted += swept.deleted;
            total.deleted_bytes += swept.deleted_bytes;
        }
    }
}
