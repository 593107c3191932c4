//! receive-pack: the push path.
//!
//! Order of work, which keeps the rule that a ref never names an object that is
//! not fully stored: read the command list → spool the pack to a size-capped
//! temp file ([`spool`]) → take a push slot → index, complete and verify the
//! pack (pack engine, blocking thread) → check the new tips ([`checks`]) →
//! claim the keys and store the pack + idx or loose objects ([`store`]) → one
//! metadata transaction that compare-and-swaps the refs, records the objects and
//! appends the audit event → report per ref. Any failure before the transaction
//! leaves every ref as it was, and whatever was stored for a push that applied
//! nothing is deleted again.

pub mod checks;
pub mod event;
pub mod spool;
pub mod store;

use std::{
    path::Path,
    time::{Duration, Instant},
};

use gitclaw_metadata::{PackClosure, PushCommit, RefRecord, RefResult, RefUpdate, Repo};
use gitclaw_pack::{
    ingest::{ingest_file, IngestOptions, IngestedPack},
    repack::closure_key,
    ObjectId, PackError,
};
use gitclaw_protocol::{
    capabilities::Capabilities,
    receive_pack::{ParseProgress, PushRequest, PushRequestParser, RefCommand, RefStatus},
};
use gitclaw_storage::RepoId;
use tokio::io::{AsyncRead, AsyncReadExt};
use tracing::Instrument;

use crate::{
    app::AppState,
    error::GitError,
    metrics::Raised,
    service::{
        advertise::{unknown_capability, RECEIVE_PACK_CAPABILITIES},
        claims::StoreClaim,
    },
};

/// A push's request body as the push path reads it.
pub trait PushBody: AsyncRead + Unpin + Send {
    /// Bytes received on the wire so far when the body is compressed (`None`
    /// when it is not): a body that inflates far past them is refused.
    fn compressed_bytes(&self) -> Option<u64>;
}

/// The outcome of a push, for git's report.
pub struct PushReport {
    /// Whether the pack was taken; an error fails every update not rejected already.
    pub unpack: Result<(), GitError>,
    /// Each ref named by the client, with its outcome.
    pub refs: Vec<(String, RefStatus)>,
    /// The client's capabilities (which decide the report's form), when read.
    pub capabilities: Option<Capabilities>,
}

impl PushReport {
    /// Every command fails with `error`, named so the client shows each as
    /// rejected rather than "remote failed to report status".
    fn failed(
        commands: &[RefCommand],
        statuses: &[Option<RefStatus>],
        reason: &str,
        error: GitError,
        capabilities: Option<Capabilities>,
    ) -> PushReport {
        let refs = commands
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let status = statuses.get(i).cloned().flatten();
                (
                    c.name.clone(),
                    status.unwrap_or_else(|| RefStatus::Rejected(reason.into())),
                )
            })
            .collect();
        PushReport {
            unpack: Err(error),
            refs,
            capabilities,
        }
    }
}

/// Handle one receive-pack request; `None` when the client had nothing to do.
pub async fn receive_pack(
    state: &AppState,
    repo: &Repo,
    actor: &str,
    body: &mut dyn PushBody,
) -> Option<PushReport> {
    let (request, leftover) = match read_commands(body).await {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return None,
        Err(bad) => {
            let error = GitError::BadRequest(format!("invalid push request: {}", bad.reason));
            return Some(PushReport::failed(
                &bad.commands,
                &[],
                "invalid push request",
                error,
                bad.capabilities,
            ));
        }
    };
    if let Some(name) = unknown_capability(&request.capabilities, RECEIVE_PACK_CAPABILITIES) {
        let error = GitError::BadRequest(format!("unknown capability '{name}'"));
        return Some(PushReport::failed(
            &request.commands,
            &[],
            "unknown capability",
            error,
            Some(request.capabilities.clone()),
        ));
    }
    let mut statuses: Vec<Option<RefStatus>> = vec![None; request.commands.len()];
    checks::check_commands(&request.commands, &mut statuses);
    let outcome = Box::pin(process(
        state,
        repo,
        actor,
        &request,
        &mut statuses,
        leftover,
        body,
    ))
    .await;
    let capabilities = Some(request.capabilities.clone());
    Some(match outcome {
        Ok(()) => PushReport {
            unpack: Ok(()),
            refs: request
                .commands
                .iter()
                .zip(&statuses)
                .map(|(c, s)| (c.name.clone(), s.clone().unwrap_or(RefStatus::Ok)))
                .collect(),
            capabilities,
        },
        Err(error) => {
            error.log(&format!("push to {}/{}", repo.owner, repo.name));
            PushReport::failed(
                &request.commands,
                &statuses,
                "unpacker error",
                error,
                capabilities,
            )
        }
    })
}

/// A command section that could not be read, with what was read of it.
struct BadRequest {
    reason: String,
    /// Commands read in full before the problem.
    commands: Vec<RefCommand>,
    /// The client's capabilities, when the first command line was read.
    capabilities: Option<Capabilities>,
}

impl BadRequest {
    fn new(reason: String, parser: &PushRequestParser) -> Self {
        tracing::info!(error = %reason, "invalid push request");
        BadRequest {
            reason,
            commands: parser.partial().commands.clone(),
            capabilities: parser.capabilities().cloned(),
        }
    }
}

/// Read the command list; `None` when the client sent nothing to do (a lone flush).
async fn read_commands(
    body: &mut dyn PushBody,
) -> Result<Option<(PushRequest, Vec<u8>)>, BadRequest> {
    let mut parser = PushRequestParser::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let mut fed = 0usize;
    loop {
        let n = match body.read(&mut chunk).await {
            Ok(n) => n,
            Err(err) => {
                let reason = format!("reading the request: {err}");
                return Err(BadRequest::new(reason, &parser));
            }
        };
        fed += n;
        if n == 0 {
            // Even a client with nothing to push sends a flush.
            let reason = if fed == 0 {
                "empty request"
            } else {
                "the request ends before its command list does"
            };
            return Err(BadRequest::new(reason.into(), &parser));
        }
        let progress = parser
            .feed(&chunk[..n])
            .map_err(|err| BadRequest::new(err.to_string(), &parser))?;
        if let ParseProgress::Complete { request, consumed } = progress {
            if request.commands.is_empty() {
                return Ok(None);
            }
            return Ok(Some((request, chunk[consumed..n].to_vec())));
        }
    }
}

async fn process(
    state: &AppState,
    repo: &Repo,
    actor: &str,
    request: &PushRequest,
    statuses: &mut [Option<RefStatus>],
    leftover: Vec<u8>,
    body: &mut dyn PushBody,
) -> Result<(), GitError> {
    let work = tempfile::Builder::new()
        .prefix("push-")
        .tempdir_in(&state.scratch.dir)
        .map_err(GitError::io("creating a work directory"))?;
    let spooled = work.path().join("incoming.pack");
    let pack_bytes = spool::spool_pack(leftover, body, &spooled, state.config.max_pack_bytes)
        .instrument(tracing::info_span!("spool"))
        .await?;
    // A slot is for the work below, not for waiting on the client: a pack still
    // arriving (or never arriving) holds none.
    state.metrics.pack_bytes_received.inc_by(pack_bytes);
    let _slot = push_slot(state).await?;
    Box::pin(store_and_commit(
        state,
        repo,
        actor,
        request,
        statuses,
        (&spooled, pack_bytes),
        work.path(),
    ))
    .await
}

/// A push slot (`GITCLAW_MAX_CONCURRENT_PUSHES`), waited for at most
/// `GITCLAW_PUSH_WAIT_SECS`; held, it counts as in use.
async fn push_slot(
    state: &AppState,
) -> Result<(tokio::sync::SemaphorePermit<'_>, Raised<'_>), GitError> {
    let metrics = &state.metrics;
    let wait = Duration::from_secs(state.config.push_wait_secs);
    let waited = Instant::now();
    let acquired = {
        let _queued = Raised::new(&metrics.push_slots_queued);
        tokio::time::timeout(wait, state.push_slots.acquire()).await
    };
    let got = matches!(acquired, Ok(Ok(_)));
    metrics
        .push_slot_wait
        .with_label_values(&[if got { "acquired" } else { "timed_out" }])
        .observe(waited.elapsed().as_secs_f64());
    match acquired {
        Ok(Ok(permit)) => Ok((permit, Raised::new(&metrics.push_slots_in_use))),
        _ => Err(GitError::Busy(
            "too many concurrent pushes, try again later".into(),
        )),
    }
}

/// Ref updates that bring no objects, for the API: checked (names, tips,
/// protected refs), committed, audited and announced to webhooks exactly as
/// a push of them would be, under a push slot. Each update's outcome, in
/// order; with `atomic`, all or none.
pub async fn update_refs(
    state: &AppState,
    repo: &Repo,
    actor: &str,
    commands: Vec<RefCommand>,
    atomic: bool,
) -> Result<Vec<(String, RefStatus)>, GitError> {
    let capabilities = if atomic { &b"atomic"[..] } else { &b""[..] };
    let request = PushRequest {
        commands,
        capabilities: Capabilities::parse(capabilities)?,
        push_options: Vec::new(),
        shallow: Vec::new(),
    };
    let mut statuses: Vec<Option<RefStatus>> = vec![None; request.commands.len()];
    checks::check_commands(&request.commands, &mut statuses);
    let work = tempfile::Builder::new()
        .prefix("refs-")
        .tempdir_in(&state.scratch.dir)
        .map_err(GitError::io("creating a work directory"))?;
    let _slot = push_slot(state).await?;
    let no_pack = work.path().join("none.pack");
    Box::pin(store_and_commit(
        state,
        repo,
        actor,
        &request,
        &mut statuses,
        (&no_pack, 0),
        work.path(),
    ))
    .await?;
    Ok(request
        .commands
        .iter()
        .zip(statuses)
        .map(|(c, s)| (c.name.clone(), s.unwrap_or(RefStatus::Ok)))
        .collect())
}

/// An ingest error, said so the pusher knows what to do: an object above the
/// limit names the setting that sets it; an object missing from a push that
/// comes from a shallow clone (`shallow` lines) is the history below its
/// boundary, which git refuses too ("shallow update not allowed").
fn explained(err: PackError, from_shallow_clone: bool) -> GitError {
    match err {
        PackError::ObjectTooLarge { .. } => {
            GitError::TooLarge(format!("{err} (GITCLAW_MAX_OBJECT_BYTES)"))
        }
        PackError::MissingObject(_) if from_shallow_clone => GitError::BadRequest(format!(
            "{err}: shallow update not allowed (the push comes from a shallow clone, and \
             this repository lacks the history below its boundary; push from a full clone, \
             or run `git fetch --unshallow` first)"
        )),
        err => err.into(),
    }
}

/// Why a push that brings objects is refused under the repository's size
/// limit (its own, else `GITCLAW_MAX_REPO_BYTES`):
/// the repository's objects would take more than the limit. Checked before
/// the pack is indexed; a pack of no objects (a push that only moves refs)
/// always passes. Concurrent pushes may each pass and together go past it by
/// their own sizes.
async fn over_size_limit(
    state: &AppState,
    repo: &Repo,
    spooled: &Path,
    pack_bytes: u64,
) -> Result<Option<String>, GitError> {
    // The repository's own limit, else the server's.
    let limit = repo.max_bytes.unwrap_or(state.config.max_repo_bytes);
    if limit == 0 || pack_bytes == 0 || pack_objects(spooled).await? == 0 {
        return Ok(None);
    }
    let stored = state.meta.repo_stats(&repo.id).await?.stored_bytes;
    if stored.saturating_add(pack_bytes) <= limit {
        return Ok(None);
    }
    let human = crate::service::migrate::progress::human_bytes;
    Ok(Some(format!(
        "repository size limit: {}/{} stores {} of the {} allowed, and this push adds {} \
         (delete what is not needed and compact, or ask for a larger limit)",
        repo.owner,
        repo.name,
        human(stored),
        human(limit),
        human(pack_bytes)
    )))
}

/// The number of objects a spooled pack's header states (0 for a pack too
/// short to have one: indexing refuses it later).
async fn pack_objects(spooled: &Path) -> Result<u32, GitError> {
    use tokio::io::AsyncReadExt;
    let mut header = [0u8; 12];
    let mut file = tokio::fs::File::open(spooled)
        .await
        .map_err(|source| GitError::Io {
            context: "reading the pushed pack",
            source,
        })?;
    if file.read_exact(&mut header).await.is_err() || &header[..4] != b"PACK" {
        return Ok(0);
    }
    Ok(u32::from_be_bytes([
        header[8], header[9], header[10], header[11],
    ]))
}

async fn store_and_commit(
    state: &AppState,
    repo: &Repo,
    actor: &str,
    request: &PushRequest,
    statuses: &mut [Option<RefStatus>],
    (spooled, pack_bytes): (&Path, u64),
    work: &Path,
) -> Result<(), GitError> {
    let repo_id = RepoId::new(&repo.id)?;
    if let Some(refusal) = over_size_limit(state, repo, spooled, pack_bytes).await? {
        for status in statuses.iter_mut().filter(|s| s.is_none()) {
            *status = Some(RefStatus::Rejected(refusal.clone()));
        }
        return Ok(());
    }
    let db = state.object_db(repo).await?;

    // Index and verify on a blocking thread.
    let ingested: Option<IngestedPack> = if pack_bytes > 0 {
        let (db, spooled, work) = (db.clone(), spooled.to_owned(), work.to_owned());
        let options = IngestOptions {
            max_object_bytes: usize::try_from(state.config.max_object_bytes).unwrap_or(usize::MAX),
            fsck: state.config.fsck_objects,
            ..IngestOptions::default()
        };
        let ingested =
            crate::metrics::spawn_blocking(move || ingest_file(&spooled, &work, &db, &options))
                .instrument(tracing::info_span!("index_pack", bytes = pack_bytes))
                .await?
                .map_err(|err| explained(err, !request.shallow.is_empty()))?;
        gitclaw_metadata::crash_point("push:indexed");
        ingested
    } else {
        None
    };

    // Every new tip must exist; branches must point at commits.
    let commands = request.commands.clone();
    let new_index = ingested.as_ref().map(|p| p.index_path.clone());
    let tip_db = db.clone();
    let tips = crate::metrics::spawn_blocking(move || {
        checks::tip_checks(&commands, &tip_db, new_index.as_deref())
    })
    .await??;
    for (status, check) in statuses.iter_mut().zip(tips.statuses) {
        if status.is_none() {
            *status = check;
        }
    }
    // The repository's protected refs (most have none: one query finds so).
    let rules = state.meta.list_protected_refs(&repo.id).await?;
    if !rules.is_empty() {
        let (commands, so_far) = (request.commands.clone(), statuses.to_vec());
        let new_index = ingested.as_ref().map(|p| p.index_path.clone());
        let db = db.clone();
        let refusals = crate::metrics::spawn_blocking(move || {
            checks::protection_checks(&rules, &commands, &so_far, &db, new_index.as_deref())
        })
        .await??;
        for (status, refusal) in statuses.iter_mut().zip(refusals) {
            if status.is_none() {
                *status = refusal;
            }
        }
    }
    let updates: Vec<(usize, RefUpdate)> = request
        .commands
        .iter()
        .enumerate()
        .filter(|(i, _)| statuses[*i].is_none())
        .map(|(i, c)| {
            let update = RefUpdate {
                name: c.name.clone(),
                old: (!c.old.is_null()).then_some(c.old),
                new: (!c.new.is_null()).then_some(c.new),
            };
            (i, update)
        })
        .collect();
    let atomic = request.capabilities.has("atomic");
    if atomic && statuses.iter().any(|s| s.is_some()) {
        for status in statuses.iter_mut().filter(|s| s.is_none()) {
            *status = Some(RefStatus::Rejected("atomic push failed".into()));
        }
        return Ok(());
    }
    if updates.is_empty() {
        return Ok(());
    }

    // What the webhooks will be told of each ref, if there are any.
    let ref_details = if state.meta.list_webhooks(&repo.id).await?.is_empty() {
        Default::default()
    } else {
        let moved: Vec<RefUpdate> = updates.iter().map(|(_, u)| u.clone()).collect();
        let new_index = ingested.as_ref().map(|p| p.index_path.clone());
        crate::metrics::spawn_blocking(move || {
            event::ref_details(&moved, &db, new_index.as_deref())
        })
        .await??
    };

    // Store the objects before any ref can see them, holding their keys until the
    // commit records them; if it records nothing, the keys are deleted again.
    let (claim, stored) = match &ingested {
        Some(pack) => {
            let keys = store::keys_to_store(&repo_id, pack);
            let claim = if keys.is_empty() {
                None
            } else {
                Some(StoreClaim::upload(state, &repo.id, keys).await?)
            };
            (
                claim,
                Some(store::store_objects(state, &repo_id, pack, work).await?),
            )
        }
        None => (None, None),
    };
    let pack_closure = match (&ingested, &stored) {
        (Some(pack), Some(store::Stored { pack: Some(_), .. })) => pack_closure(
            pack,
            updates.iter().filter_map(|(_, u)| {
                u.new.map(|oid| RefRecord {
                    name: u.name.clone(),
                    oid,
                })
            }),
        ),
        _ => None,
    };
    let stored = stored.unwrap_or(store::Stored {
        pack: None,
        loose: Vec::new(),
        details: serde_json::json!({ "objects": 0, "bytes": 0, "storage": "none" }),
    });
    let commit = state.meta.commit_push(PushCommit {
        repo_id: repo.id.clone(),
        updates: updates.iter().map(|(_, u)| u.clone()).collect(),
        atomic,
        pack: stored.pack,
        loose: stored.loose,
        actor: actor.to_string(),
        details: stored.details,
        pack_closure,
        push_options: request.push_options.clone(),
        ref_details,
    });
    let results = match commit.instrument(tracing::info_span!("commit")).await {
        Ok(results) => {
            // Committed, but neither reported to the client nor the claim released.
            gitclaw_metadata::crash_point("push:committed");
            results
        }
        Err(err) => {
            // Nothing records what the push stored: delete it before answering.
            if let Some(claim) = claim {
                claim.discard().await;
            }
            return Err(match err {
                // Deleted (through any server) since the push began.
                gitclaw_metadata::Error::NotFound(_) => GitError::Conflict(format!(
                    "the repository {}/{} was deleted during the push",
                    repo.owner, repo.name
                )),
                other => other.into(),
            });
        }
    };
    let mut any_applied = false;
    for ((i, _), result) in updates.iter().zip(results) {
        statuses[*i] = Some(match result {
            RefResult::Applied => {
                any_applied = true;
                RefStatus::Ok
            }
            // Nothing changed, and the ref is gone as the client asked.
            RefResult::Absent => RefStatus::Ok,
            RefResult::Rejected(reason) => RefStatus::Rejected(reason),
        });
    }
    if any_applied {
        // Its webhook deliveries, if it has any, go out now.
        state.hooks.wake();
    }
    if let Some(claim) = claim {
        if any_applied {
            claim.release().await;
        } else {
            let deleted = claim.discard().await;
            tracing::info!(repo = %repo.id, keys = deleted, "no update applied; deleted what the push stored");
        }
    }
    if any_applied {
        // What the new tags peel to, so no advertisement reads them (content
        // addressed: recorded whether or not their refs were applied).
        if !tips.peeled.is_empty() {
            if let Err(err) = state.meta.record_peeled(&repo.id, &tips.peeled).await {
                tracing::warn!(repo = %repo.id, error = %err, "cannot record peeled tags");
            }
        }
        crate::service::gc::maybe_auto_gc(state, repo);
    }
    Ok(())
}

/// When the pushed pack holds exactly what the new tips reach — a repository's
/// first push, or any push of a whole history — its closure key and those
/// tips: recorded with the pack, a full clone of them then streams it as
/// stored, and a later one sends it whole and walks only what is newer, with
/// no compaction first.
fn pack_closure(pack: &IngestedPack, refs: impl Iterator<Item = RefRecord>) -> Option<PackClosure> {
    let roots = pack.roots.as_ref()?;
    let refs: Vec<RefRecord> = refs.collect();
    let mut tips: Vec<ObjectId> = refs.iter().map(|r| r.oid).collect();
    tips.sort();
    tips.dedup();
    let closed = !tips.is_empty()
        // The pushed pack is a local file: a lookup cannot fail (and one that
        // did would only leave the pack without a closure key).
        && tips.iter().all(|tip| matches!(pack.contains(tip), Ok(true)))
        && roots.iter().all(|root| tips.binary_search(root).is_ok());
    closed.then(|| PackClosure {
        key: closure_key(&tips),
        tips,
        refs,
    })
}
