//! Compaction ("gc"): merge a repository's loose objects and packs into one pack
//! of what its refs reach (and one of what they do not),
//! swap the pack list in one transaction, and delete the replaced keys only after a
//! grace period so clones in flight never lose a pack under them.
//!
//! Safe while the server runs: a push landing during compaction records its own
//! pack or loose objects, which this compaction neither lists nor removes; two
//! compactions of one repository (on one server or on two) race in the metadata
//! transaction, and the loser changes nothing, deletes the packs it uploaded
//! and reports a conflict.

use std::{
    collections::HashSet,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

use gitclaw_metadata::{Compaction, CompactionApplied, NewPack, PackClosure, Repo};
use gitclaw_pack::{
    ingest::IngestedPack,
    repack::{closure_key, repack},
    ObjectId,
};
use gitclaw_storage::{ObjectKey, PutOptions, RepoId};

use crate::{
    app::AppState,
    error::GitError,
    metrics::Raised,
    service::{
        claims::StoreClaim,
        objects::listed_object_db,
        sweep::{sweep_repo, SweepOutcome},
    },
};

/// What one compaction did.
#[derive(Debug, Clone, Default)]
pub struct GcOutcome {
    pub packs_before: usize,
    pub loose_before: usize,
    /// The pack of everything the refs reach (or of everything, when no ref exists).
    pub new_pack: Option<ObjectId>,
    /// The pack of the objects no ref reaches, when there were any.
    pub cruft_pack: Option<ObjectId>,
    /// Objects in the new packs.
    pub objects: usize,
    /// A pack is now recorded as holding exactly what the refs reach.
    pub closure_recorded: bool,
    /// What the sweep of unrecorded keys found and deleted.
    pub swept: SweepOutcome,
}

/// Repositories being compacted by this process.
#[derive(Default)]
pub struct GcLocks(Mutex<HashSet<String>>);

struct GcGuard<'a> {
    locks: &'a GcLocks,
    repo_id: String,
}

impl Drop for GcGuard<'_> {
    fn drop(&mut self) {
        self.locks
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.repo_id);
    }
}

impl GcLocks {
    fn try_lock(&self, repo_id: &str) -> Option<GcGuard<'_>> {
        let mut set = self.0.lock().unwrap_or_else(|p| p.into_inner());
        set.insert(repo_id.to_string()).then(|| GcGuard {
            locks: self,
            repo_id: repo_id.to_string(),
        })
    }
}

fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Compact one repository now: every pack and loose object goes into one pack of
/// what the refs reach — recorded as their closure, so a full clone streams it
/// without a walk — and one pack of what they do not (kept: a push may be about
/// to reference it). Does nothing when the repository is already in that shape,
/// or when another compaction of it runs in this process. A repository whose one
/// pack already is the closure of its refs is left as it is and the fact recorded.
/// Then sweep: delete the keys of the repository that no row records and that
/// are older than the grace period (what failed and crashed pushes left).
pub async fn gc_repo(state: &AppState, repo: &Repo) -> Result<GcOutcome, GitError> {
    let Some(_guard) = state.gc_locks.try_lock(&repo.id) else {
        return Ok(GcOutcome::default());
    };
    // Compacting would pull the legacy table's objects into a pack behind the
    // migration's back; it compacts the repository itself when done.
    if let Some(why) = crate::service::migrate::unfinished(state, repo).await? {
        return Err(GitError::Conflict(why));
    }
    // Each compaction holds memory in proportion to its repository: how many
    // run at once is what bounds it.
    let _turn = {
        let _waiting = Raised::new(&state.metrics.compactions_waiting);
        state
            .compaction_slots
            .acquire()
            .await
            // Never closed: only a bug could fail this.
            .map_err(|_| GitError::Busy("no compaction can start now".into()))?
    };
    let _running = Raised::new(&state.metrics.compactions_running);
    // Boxed: compaction holds claims and uploads across awaits, a large future.
    let mut outcome = Box::pin(compact_repo(state, repo)).await?;
    outcome.swept = sweep_repo(state, repo).await?;
    Ok(outcome)
}

/// A closure pack recorded before the names of its refs were kept has them
/// recorded now (the refs of now are the ones it was taken of: their closure
/// key is its), so it can be offered as a bundle. Whether it had to be.
async fn record_closure_refs(
    state: &AppState,
    repo: &Repo,
    pack: ObjectId,
    key: ObjectId,
    tips: Vec<ObjectId>,
    refs: Vec<gitclaw_metadata::RefRecord>,
) -> Result<bool, GitError> {
    if !state.meta.closure_refs(&repo.id, &pack).await?.is_empty() {
        return Ok(false);
    }
    let closure = PackClosure { key, tips, refs };
    state
        .meta
        .record_closure(&repo.id, &pack, &closure, None)
        .await?;
    tracing::info!(repo = %repo.id, pack = %pack, "recorded the names of the refs a compacted pack holds");
    Ok(true)
}

async fn compact_repo(state: &AppState, repo: &Repo) -> Result<GcOutcome, GitError> {
    let repo_id = RepoId::new(&repo.id)?;
    // Refs, packs and loose objects of one moment, and the objects of exactly
    // those lists: what is pushed meanwhile stays as it was recorded, for the
    // next compaction, instead of being filed as unreachable from older refs.
    let snapshot = state.meta.object_snapshot(&repo.id).await?;
    let (packs, loose) = (snapshot.packs, snapshot.loose);
    let mut outcome = GcOutcome {
        packs_before: packs.len(),
        loose_before: loose.len(),
        ..Default::default()
    };
    // The branch heads, the default one first, get tip entries: a shallow
    // clone of one is then copied from stored bytes, with no delta search.
    let mut shallow_tips: Vec<ObjectId> = Vec::new();
    if state.config.gc.tip_entries {
        let heads = snapshot
            .refs
            .iter()
            .filter(|r| r.name.starts_with("refs/heads/"));
        let (default, others): (Vec<_>, Vec<_>) = heads.partition(|r| r.name == repo.head_ref);
        shallow_tips.extend(default.iter().chain(others.iter()).map(|r| r.oid));
    }
    let tips: Vec<ObjectId> = snapshot.refs.iter().map(|r| r.oid).collect();
    let compacted = loose.is_empty()
        && if tips.is_empty() {
            packs.len() <= 1
        } else {
            // A pack a push recorded as the closure still wants its commit-graph
            // (and tip entries): only one with a graph is compacted.
            let key = closure_key(&tips);
            packs.len() <= 2
                && packs
                    .iter()
                    .any(|p| p.closure_of == Some(key) && p.graph_bytes.is_some())
        };
    if compacted {
        if !tips.is_empty() {
            let key = closure_key(&tips);
            if let Some(pack) = packs.iter().find(|p| p.closure_of == Some(key)) {
                outcome.closure_recorded =
                    record_closure_refs(state, repo, pack.pack_hash, key, tips, snapshot.refs)
                        .await?;
            }
        }
        return Ok(outcome);
    }
    let db = listed_object_db(state, repo, &packs, &loose).await?;
    let work = tempfile::Builder::new()
        .prefix("gc-")
        .tempdir_in(&state.scratch.dir)
        .map_err(GitError::io("creating a work directory"))?;
    let work_path = work.path().to_owned();
    let walked = tips.clone();
    let options = state.config.write_options();
    let repacked = tokio::task::spawn_blocking(move || {
        repack(&db, &walked, &shallow_tips, &work_path, &options)
    })
    .await??;
    let name = format!("{}/{}", repo.owner, repo.name);
    // The tips the closure was taken of (those the store has), and the refs
    // that pointed at them.
    let closure = repacked.closure_of.map(|key| {
        let tips = repacked.closure_tips.clone();
        let taken: HashSet<&ObjectId> = tips.iter().collect();
        let refs = snapshot
            .refs
            .iter()
            .filter(|r| taken.contains(&r.oid))
            .cloned()
            .collect();
        PackClosure { key, tips, refs }
    });
    let graph = repacked.commit_graph.clone();
    if let (Some(pack), Some(closure)) = (repacked.already_closed, &closure) {
        // The pack is recorded already; its commit-graph goes up beside it.
        let (claim, graph_bytes) = match &graph {
            Some(path) => {
                let graph_key = ObjectKey::pack_graph(&repo_id, &pack);
                let claim = StoreClaim::upload(state, &repo.id, vec![graph_key.clone()]).await?;
                state
                    .store
                    .put_file(&graph_key, path, &PutOptions::pack_graph())
                    .await?;
                (
                    Some(claim),
                    Some(file_size(path, "sizing the commit-graph").await?),
                )
            }
            None => (None, None),
        };
        state
            .meta
            .record_closure(&repo.id, &pack, closure, graph_bytes)
            .await?;
        if let Some(claim) = claim {
            claim.release().await;
        }
        tracing::info!(repo = %name, pack = %pack, "the one pack holds exactly what the refs reach");
        outcome.closure_recorded = true;
        return Ok(outcome);
    }
    let (main, closure, cruft) = match (repacked.reachable, repacked.cruft) {
        (Some(reachable), cruft) => (reachable, closure, cruft),
        (None, Some(cruft)) => (cruft, None, None),
        (None, None) => return Ok(outcome),
    };
    let closure_recorded = closure.is_some();
    let new_hashes: Vec<ObjectId> = std::iter::once(&main)
        .chain(cruft.as_ref())
        .map(|p| *p.pack.hash())
        .collect();
    // Held until the compaction records the new packs; deleted again if it does not.
    let claim = StoreClaim::upload(
        state,
        &repo.id,
        new_hashes
            .iter()
            .flat_map(|h| {
                [
                    ObjectKey::pack(&repo_id, h),
                    ObjectKey::pack_index(&repo_id, h),
                ]
            })
            .chain(
                graph
                    .as_ref()
                    .map(|_| ObjectKey::pack_graph(&repo_id, &new_hashes[0])),
            )
            .collect(),
    )
    .await?;
    let recorded = async {
        for pack in std::iter::once(&main).chain(cruft.as_ref()) {
            let hash = pack.pack.hash();
            state
                .store
                .put_file(
                    &ObjectKey::pack(&repo_id, hash),
                    &pack.pack_path,
                    &PutOptions::pack(),
                )
                .await?;
            state
                .store
                .put_file(
                    &ObjectKey::pack_index(&repo_id, hash),
                    &pack.index_path,
                    &PutOptions::pack_index(),
                )
                .await?;
        }
        if let Some(path) = &graph {
            state
                .store
                .put_file(
                    &ObjectKey::pack_graph(&repo_id, &new_hashes[0]),
                    path,
                    &PutOptions::pack_graph(),
                )
                .await?;
        }
        let mut replaced_keys = Vec::new();
        for pack in packs.iter().filter(|p| !new_hashes.contains(&p.pack_hash)) {
            replaced_keys.push(
                ObjectKey::pack(&repo_id, &pack.pack_hash)
                    .as_str()
                    .to_string(),
            );
            replaced_keys.push(
                ObjectKey::pack_index(&repo_id, &pack.pack_hash)
                    .as_str()
                    .to_string(),
            );
            if pack.graph_bytes.is_some() {
                replaced_keys.push(
                    ObjectKey::pack_graph(&repo_id, &pack.pack_hash)
                        .as_str()
                        .to_string(),
                );
            }
        }
        for record in &loose {
            replaced_keys.push(ObjectKey::loose(&repo_id, &record.oid).as_str().to_string());
        }
        let compaction = Compaction {
            repo_id: repo.id.clone(),
            removed_packs: packs.iter().map(|p| p.pack_hash).collect(),
            removed_loose: loose.iter().map(|l| l.oid).collect(),
            new_pack: NewPack {
                graph_bytes: match &graph {
                    Some(path) => Some(file_size(path, "sizing the commit-graph").await?),
                    None => None,
                },
                ..new_pack(&main).await?
            },
            closure,
            cruft_pack: match &cruft {
                Some(pack) => Some(new_pack(pack).await?),
                None => None,
            },
            replaced_keys,
            delete_after: now_secs() + state.config.gc.grace_secs as i64,
        };
        gitclaw_metadata::crash_point("gc:written");
        Ok::<_, GitError>(state.meta.apply_compaction(&compaction).await?)
    };
    // Whatever did not get recorded is deleted now, not left to the claim's
    // drop: a `gitclaw gc` process ends right after it returns.
    match recorded.await {
        Ok(CompactionApplied::Applied) => {
            // Swapped, with the new packs' claim still held.
            gitclaw_metadata::crash_point("gc:swapped");
            claim.release().await
        }
        Ok(CompactionApplied::Superseded(why)) => {
            claim.discard().await;
            tracing::info!(repo = %name, "another compaction recorded first ({why}); nothing changed");
            return Err(GitError::Conflict(format!(
                "another compaction of it finished first ({why})"
            )));
        }
        Err(err) => {
            claim.discard().await;
            return Err(err);
        }
    }
    outcome.new_pack = Some(new_hashes[0]);
    outcome.cruft_pack = cruft.as_ref().map(|p| *p.pack.hash());
    outcome.objects = main.object_count() + cruft.as_ref().map_or(0, |p| p.object_count());
    outcome.closure_recorded = closure_recorded;
    tracing::info!(
        repo = %name,
        packs_before = outcome.packs_before,
        loose_before = outcome.loose_before,
        objects = outcome.objects,
        pack = %new_hashes[0],
        unreachable = cruft.as_ref().map_or(0, |p| p.object_count()),
        "compacted"
    );
    Ok(outcome)
}

async fn file_size(path: &std::path::Path, context: &'static str) -> Result<u64, GitError> {
    Ok(tokio::fs::metadata(path)
        .await
        .map_err(GitError::io(context))?
        .len())
}

async fn new_pack(pack: &IngestedPack) -> Result<NewPack, GitError> {
    Ok(NewPack {
        pack_hash: *pack.pack.hash(),
        object_count: pack.object_count() as u64,
        pack_bytes: file_size(&pack.pack_path, "sizing the new pack").await?,
        index_bytes: file_size(&pack.index_path, "sizing the new pack index").await?,
        graph_bytes: None,
    })
}

/// Whether `repo`, as it stands, is to be compacted after a push: it passed a
/// threshold, or it is one pack of more than the closure threshold's objects
/// and nothing loose (a first push of a whole history: a later push adds a
/// pack or loose objects) without a commit-graph — compaction then finds it
/// the closure and writes only its graph.
pub async fn auto_gc_due(state: &AppState, repo: &Repo) -> Result<bool, GitError> {
    let settings = &state.config.gc;
    let stats = state.meta.repo_stats(&repo.id).await?;
    let loose_over =
        settings.loose_threshold > 0 && stats.loose_objects as usize > settings.loose_threshold;
    let packs_over = settings.pack_threshold > 0 && stats.packs as usize > settings.pack_threshold;
    if loose_over || packs_over {
        return Ok(true);
    }
    Ok(settings.closure_threshold > 0
        && stats.packs == 1
        && stats.loose_objects == 0
        && stats.object_count > settings.closure_threshold
        && state
            .meta
            .list_packs(&repo.id)
            .await?
            .iter()
            .all(|pack| pack.graph_bytes.is_none()))
}

/// After a push: compact in the background when [`auto_gc_due`] says so —
/// which includes recording a large pack holding the whole history (pushed at
/// once: an import), which would otherwise wait for the thresholds (never,
/// for a repository pushed once) and serve every first request without its
/// commit-graph, tip entries or pack order.
/// Shutdown abandons a compaction under way: nothing is recorded before its
/// one transaction, and the packs it had stored are deleted by its claim on
/// drop or, failing that, swept once the claim has lapsed.
pub fn maybe_auto_gc(state: &AppState, repo: &Repo) {
    let settings = &state.config.gc;
    if settings.loose_threshold == 0
        && settings.pack_threshold == 0
        && settings.closure_threshold == 0
    {
        return;
    }
    let (task_state, repo) = (state.clone(), repo.clone());
    state.spawn(async move {
        let state = task_state;
        let check = async {
            if auto_gc_due(&state, &repo).await? {
                gc_repo(&state, &repo).await?;
            }
            Ok::<(), GitError>(())
        };
        let result = tokio::select! {
            _ = state.shutdown.cancelled() => return,
            result = check => result,
        };
        match result {
            Ok(()) => {}
            // Not yet migrated: the migration compacts it when done.
            Err(GitError::Conflict(why)) => tracing::debug!(repo = %repo.id, "no automatic compaction: {why}"),
            Err(err) => {
                tracing::warn!(repo = %repo.id, error = %crate::error::chain(&err), "automatic compaction failed")
            }
        }
    });
}
