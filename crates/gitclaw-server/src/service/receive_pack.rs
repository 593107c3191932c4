//! receive-pack: the push path.
//!
//! Order of work, which keeps invariant 1 (a ref never names an object that is not
//! fully stored): read the command list → spool the pack to a size-capped temp file
//! → index, complete and verify it (pack engine, blocking thread) → check the new
//! tips → store the pack + idx (more than 10 new objects) or loose objects → one
//! metadata transaction that compare-and-swaps the refs, records the objects and
//! appends the audit event → report per ref. Any failure before the transaction
//! leaves every ref as it was.

use std::{path::Path, time::Duration};

use gitclaw_metadata::{NewLoose, NewPack, PushCommit, RefResult, RefUpdate, Repo};
use gitclaw_pack::{
    ingest::{ingest_file, IngestOptions, IngestedPack},
    odb::{DecodeState, ObjectDb},
    Kind, ObjectId,
};
use gitclaw_protocol::{
    capabilities::Capabilities,
    receive_pack::{
        push_response, ParseProgress, PushRequest, PushRequestParser, RefCommand, RefStatus,
    },
};
use gitclaw_storage::{ObjectKey, PutOptions, RepoId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{app::AppState, http::body::BodyReader, service::claims::StoreClaim};

/// Capabilities advertised by receive-pack (besides `agent`).
pub const CAPABILITIES: &[&str] = &[
    "report-status",
    "report-status-v2",
    "delete-refs",
    "side-band-64k",
    "quiet",
    "atomic",
    "ofs-delta",
    "push-options",
    "object-format=sha1",
];

/// The full advertised capability list.
pub fn capabilities() -> Vec<String> {
    let mut caps: Vec<String> = CAPABILITIES.iter().map(|c| c.to_string()).collect();
    caps.push(crate::service::upload_pack::agent());
    caps
}

/// More new objects than this go into the store as one pack; fewer as loose objects.
pub const LOOSE_THRESHOLD: usize = 10;

/// Longest ref name a push may create, in bytes (hosting services cap names
/// near this too). It keeps every advertisement line far below a pkt-line's
/// 65516 bytes: `<oid> <name>\0<capabilities>` and, for HEAD's target,
/// `symref=HEAD:<name>` next to them.
pub const MAX_REF_NAME_BYTES: usize = 1024;

/// Longest component of a ref name, in bytes: the file-name limit of the
/// file systems git clients keep refs on, so a longer one could not be
/// fetched anyway.
pub const MAX_REF_COMPONENT_BYTES: usize = 255;

/// Why a push failed as a whole.
#[derive(Debug)]
struct Unpack(String);

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
        BadRequest {
            reason,
            commands: parser.partial().commands.clone(),
            capabilities: parser.capabilities().cloned(),
        }
    }
}

impl<E: std::fmt::Display> From<E> for Unpack {
    fn from(err: E) -> Self {
        Unpack(err.to_string())
    }
}

/// The outcome of a push, ready to be written as git's report.
struct Report {
    unpack: Result<(), String>,
    refs: Vec<(String, RefStatus)>,
}

/// Handle one receive-pack POST; returns the response body.
pub async fn receive_pack(
    state: &AppState,
    repo: &Repo,
    actor: &str,
    mut body: BodyReader,
) -> Vec<u8> {
    let request = match read_commands(&mut body).await {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Vec::new(),
        Err(bad) => {
            tracing::warn!(repo = %format!("{}/{}", repo.owner, repo.name), error = %bad.reason, "invalid push request");
            // Every command read so far is named, so the client shows each
            // as rejected rather than as "remote failed to report status".
            let refs: Vec<(String, RefStatus)> = bad
                .commands
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        RefStatus::Rejected("invalid push request".into()),
                    )
                })
                .collect();
            let reason = format!("invalid push request: {}", bad.reason);
            return push_response(Err(&reason), &refs, bad.capabilities.as_ref());
        }
    };
    let (request, leftover) = request;
    if let Some(name) = crate::http::git::unknown_capability(&request.capabilities, CAPABILITIES) {
        let report = Report {
            unpack: Err(format!("unknown capability '{name}'")),
            refs: request
                .commands
                .iter()
                .map(|c| {
                    (
                        c.name.clone(),
                        RefStatus::Rejected("unknown capability".into()),
                    )
                })
                .collect(),
        };
        return encode_report(&report, &request.capabilities);
    }
    let report = process(state, repo, actor, &request, leftover, body).await;
    if let Err(err) = &report.unpack {
        tracing::warn!(repo = %format!("{}/{}", repo.owner, repo.name), error = %err, "push failed");
    }
    encode_report(&report, &request.capabilities)
}

/// Read the command list; `None` when the client sent nothing to do (a lone flush).
async fn read_commands(
    body: &mut BodyReader,
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
        match progress {
            ParseProgress::NeedMore => {}
            ParseProgress::Complete { request, consumed } => {
                if request.commands.is_empty() {
                    return Ok(None);
                }
                return Ok(Some((request, chunk[consumed..n].to_vec())));
            }
        }
    }
}

async fn process(
    state: &AppState,
    repo: &Repo,
    actor: &str,
    request: &PushRequest,
    leftover: Vec<u8>,
    body: BodyReader,
) -> Report {
    let mut statuses: Vec<Option<RefStatus>> = vec![None; request.commands.len()];
    check_commands(&request.commands, &mut statuses);
    let fail_all = |message: String, statuses: &[Option<RefStatus>]| Report {
        refs: request
            .commands
            .iter()
            .zip(statuses)
            .map(|(c, s)| {
                (
                    c.name.clone(),
                    s.clone()
                        .unwrap_or_else(|| RefStatus::Rejected("unpacker error".into())),
                )
            })
            .collect(),
        unpack: Err(message),
    };

    let work = match tempfile::Builder::new()
        .prefix("push-")
        .tempdir_in(&state.tmp_dir)
    {
        Ok(dir) => dir,
        Err(err) => return fail_all(format!("cannot create work directory: {err}"), &statuses),
    };
    let spool = work.path().join("incoming.pack");
    let pack_bytes = match spool_pack(leftover, body, &spool, state.config.max_pack_bytes).await {
        Ok(n) => n,
        Err(err) => return fail_all(err.0, &statuses),
    };
    // A slot is for the work below, not for waiting on the client: a pack still
    // arriving (or never arriving) holds none.
    let _slot = match tokio::time::timeout(
        Duration::from_secs(state.config.push_wait_secs),
        state.push_slots.acquire(),
    )
    .await
    {
        Ok(Ok(permit)) => permit,
        _ => {
            return fail_all(
                "server busy: too many concurrent pushes, try again later".into(),
                &statuses,
            )
        }
    };

    let outcome = store_and_commit(
        state,
        repo,
        actor,
        request,
        &mut statuses,
        &spool,
        pack_bytes,
        work.path(),
    )
    .await;
    match outcome {
        Ok(()) => Report {
            unpack: Ok(()),
            refs: request
                .commands
                .iter()
                .zip(&statuses)
                .map(|(c, s)| (c.name.clone(), s.clone().unwrap_or(RefStatus::Ok)))
                .collect(),
        },
        Err(err) => fail_all(err.0, &statuses),
    }
}

/// Refuse malformed commands up front: bad names, duplicates, no-ops.
fn check_commands(commands: &[RefCommand], statuses: &mut [Option<RefStatus>]) {
    let mut seen = std::collections::HashSet::new();
    for (command, status) in commands.iter().zip(statuses.iter_mut()) {
        if let Some(reason) = ref_name_problem(&command.name) {
            *status = Some(RefStatus::Rejected(reason));
        } else if !seen.insert(command.name.clone()) {
            *status = Some(RefStatus::Rejected("duplicate ref update".into()));
        } else if command.old.is_null() && command.new.is_null() {
            *status = Some(RefStatus::Rejected("nothing to do".into()));
        }
    }
}

/// Why a push may not create or update a ref called `name`, if it may not:
/// what `git check-ref-format` refuses (as git's receive-pack, "funny
/// refname", with the rule broken), names outside `refs/`, and names longer
/// than [`MAX_REF_NAME_BYTES`] or with a component longer than
/// [`MAX_REF_COMPONENT_BYTES`].
fn ref_name_problem(name: &str) -> Option<String> {
    if name.len() > MAX_REF_NAME_BYTES {
        return Some(format!(
            "refname too long ({} bytes, at most {MAX_REF_NAME_BYTES})",
            name.len()
        ));
    }
    if let Some(part) = name.split('/').find(|p| p.len() > MAX_REF_COMPONENT_BYTES) {
        return Some(format!(
            "refname component too long ({} bytes, at most {MAX_REF_COMPONENT_BYTES})",
            part.len()
        ));
    }
    let funny = |why: &str| Some(format!("funny refname ({why})"));
    if name.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return funny("control character");
    }
    // The parser turns bytes that are not UTF-8 into U+FFFD.
    if name.contains('\u{fffd}') {
        return funny("not UTF-8");
    }
    if !name.starts_with("refs/") {
        return funny("not under refs/");
    }
    if let Err(err) = gix_validate::reference::name(name.as_bytes().into()) {
        let why = err.to_string();
        let mut chars = why.chars();
        let why = match chars.next() {
            Some(first) => first.to_lowercase().chain(chars).collect(),
            None => why,
        };
        return funny(&why);
    }
    None
}

/// A compressed push body may inflate to at most this many times the bytes
/// received (plus [`INFLATE_ALLOWANCE`]). Packs are zlib streams already, so a
/// real pack gzips to about its own size; a body that inflates a hundredfold
/// is a compression bomb, refused before it fills the disk.
const MAX_INFLATE_RATIO: u64 = 64;
const INFLATE_ALLOWANCE: u64 = 1 << 20;

/// Copy the pack (already-read bytes, then the rest of the body) into `path`,
/// capped at `limit` bytes as they inflate.
async fn spool_pack(
    leftover: Vec<u8>,
    mut body: BodyReader,
    path: &Path,
    limit: u64,
) -> Result<u64, Unpack> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut total = leftover.len() as u64;
    if total > limit {
        refuse_rest(&mut body, limit).await;
        return Err(too_large(limit));
    }
    file.write_all(&leftover).await?;
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = body
            .read(&mut buf)
            .await
            .map_err(|err| Unpack(format!("reading the pack: {err}")))?;
        if n == 0 {
            break;
        }
        total += n as u64;
        if total > limit {
            refuse_rest(&mut body, limit).await;
            return Err(too_large(limit));
        }
        if let Some(wire) = body.compressed_bytes() {
            if total > wire.saturating_mul(MAX_INFLATE_RATIO) + INFLATE_ALLOWANCE {
                return Err(Unpack(format!(
                    "the compressed request inflates more than {MAX_INFLATE_RATIO} times \
                     ({wire} bytes became {total}): refused"
                )));
            }
        }
        file.write_all(&buf[..n]).await?;
    }
    file.flush().await?;
    Ok(total)
}

/// Before refusing an oversized pack: drain a plain body so the client reads
/// the reason ([`discard_rest`]); a compressed one is not inflated any further
/// (git never compresses a push), the connection just closes after the answer.
async fn refuse_rest(body: &mut BodyReader, limit: u64) {
    if body.compressed_bytes().is_none() {
        discard_rest(body, limit).await;
    }
}

/// How long the rest of a refused pack is read and dropped.
const DISCARD_SECS: u64 = 30;

/// Read and drop what is left of a refused pack — at most as much again as the
/// limit (and 64 MiB at least), for at most [`DISCARD_SECS`] — so a client that
/// sends its whole pack before reading the answer gets to read why it was
/// refused rather than a broken pipe. Past either bound the connection closes.
async fn discard_rest(body: &mut BodyReader, limit: u64) {
    let mut left = limit.max(64 << 20);
    let mut buf = vec![0u8; 64 * 1024];
    let _ = tokio::time::timeout(Duration::from_secs(DISCARD_SECS), async {
        while left > 0 {
            match body.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => left = left.saturating_sub(n as u64),
            }
        }
    })
    .await;
}

fn too_large(limit: u64) -> Unpack {
    Unpack(format!(
        "pack exceeds the maximum allowed size of {limit} bytes"
    ))
}

#[allow(clippy::too_many_arguments)]
async fn store_and_commit(
    state: &AppState,
    repo: &Repo,
    actor: &str,
    request: &PushRequest,
    statuses: &mut [Option<RefStatus>],
    spool: &Path,
    pack_bytes: u64,
    work: &Path,
) -> Result<(), Unpack> {
    let repo_id = RepoId::new(&repo.id)?;
    let db = state.object_db(repo).await?;

    // Index and verify on a blocking thread.
    let ingested: Option<IngestedPack> = if pack_bytes > 0 {
        let (db2, spool, work) = (db.clone(), spool.to_owned(), work.to_owned());
        let options = IngestOptions {
            fsck: state.config.fsck_objects,
            ..IngestOptions::default()
        };
        tokio::task::spawn_blocking(move || -> Result<Option<IngestedPack>, Unpack> {
            Ok(ingest_file(&spool, &work, &db2, &options)?)
        })
        .await??
    } else {
        None
    };

    // Every new tip must exist; branches must point at commits.
    {
        let commands = request.commands.clone();
        let db2 = db.clone();
        let ingested_index = ingested.as_ref().map(|p| p.index_path.clone());
        let checks = tokio::task::spawn_blocking(move || {
            tip_checks(&commands, &db2, ingested_index.as_deref())
        })
        .await??;
        for (status, check) in statuses.iter_mut().zip(checks) {
            if status.is_none() {
                *status = check;
            }
        }
    }
    let updates: Vec<(usize, RefUpdate)> = request
        .commands
        .iter()
        .enumerate()
        .filter(|(i, _)| statuses[*i].is_none())
        .map(|(i, c)| {
            (
                i,
                RefUpdate {
                    name: c.name.clone(),
                    old: (!c.old.is_null()).then_some(c.old),
                    new: (!c.new.is_null()).then_some(c.new),
                },
            )
        })
        .collect();
    let atomic = request.capabilities.has("atomic");
    if atomic && statuses.iter().any(|s| s.is_some()) {
        for status in statuses.iter_mut() {
            if status.is_none() {
                *status = Some(RefStatus::Rejected("atomic push failed".into()));
            }
        }
        return Ok(());
    }
    if updates.is_empty() {
        return Ok(());
    }

    // Store the objects before any ref can see them, holding their keys until the
    // commit records them; if it records nothing, the keys are deleted again.
    let claim = match &ingested {
        Some(pack) => {
            let keys = keys_to_store(&repo_id, pack);
            if keys.is_empty() {
                None
            } else {
                Some(StoreClaim::upload(state, &repo.id, keys).await?)
            }
        }
        None => None,
    };
    let mut pack_record = None;
    let mut loose_records = Vec::new();
    let mut details = serde_json::json!({ "objects": 0, "bytes": 0, "storage": "none" });
    if let Some(pack) = &ingested {
        let new: Vec<_> = pack.new_objects().cloned().collect();
        if new.len() > LOOSE_THRESHOLD {
            let pack_key = ObjectKey::pack(&repo_id, pack.pack.hash());
            let index_key = ObjectKey::pack_index(&repo_id, pack.pack.hash());
            state
                .store
                .put_file(&pack_key, &pack.pack_path, &PutOptions::pack())
                .await?;
            state
                .store
                .put_file(&index_key, &pack.index_path, &PutOptions::pack_index())
                .await?;
            let size = tokio::fs::metadata(&pack.pack_path).await?.len();
            let index_size = tokio::fs::metadata(&pack.index_path).await?.len();
            pack_record = Some(NewPack {
                pack_hash: *pack.pack.hash(),
                object_count: u64::from(pack.pack.num_objects()),
                pack_bytes: size,
                index_bytes: index_size,
            });
            details = serde_json::json!({
                "objects": new.len(), "bytes": size, "storage": "pack", "pack": pack.pack.hash().to_string(),
            });
        } else if !new.is_empty() {
            // Each object is written in the loose format to a file, streamed (a
            // big one is never held whole), then uploaded from the file.
            let (index_path, ids, dir) = (
                pack.index_path.clone(),
                new.iter().map(|o| o.id).collect::<Vec<_>>(),
                work.join("loose"),
            );
            let objects =
                tokio::task::spawn_blocking(move || write_loose_files(&index_path, &ids, &dir))
                    .await??;
            let mut bytes = 0u64;
            for object in objects {
                gitclaw_storage::put_loose_file(
                    &*state.store,
                    &repo_id,
                    &object.id,
                    object.kind,
                    object.size,
                    &object.path,
                )
                .await?;
                let _ = tokio::fs::remove_file(&object.path).await;
                bytes += object.size;
                loose_records.push(NewLoose {
                    oid: object.id,
                    kind: object.kind.to_string(),
                    size: object.size,
                });
            }
            details = serde_json::json!({ "objects": loose_records.len(), "bytes": bytes, "storage": "loose" });
        }
    }

    let results = state
        .meta
        .commit_push(PushCommit {
            repo_id: repo.id.clone(),
            updates: updates.iter().map(|(_, u)| u.clone()).collect(),
            atomic,
            pack: pack_record,
            loose: loose_records,
            actor: actor.to_string(),
            details,
        })
        .await?;
    let mut any_applied = false;
    for ((i, _), result) in updates.iter().zip(results) {
        statuses[*i] = match result {
            RefResult::Applied => {
                any_applied = true;
                Some(RefStatus::Ok)
            }
            RefResult::Rejected(reason) => Some(RefStatus::Rejected(reason)),
        };
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
        crate::service::gc::maybe_auto_gc(state, repo);
    }
    Ok(())
}

/// The keys [`store_and_commit`] writes for a pack: the pack and its index when
/// it brings more than [`LOOSE_THRESHOLD`] new objects, else each new object.
fn keys_to_store(repo: &RepoId, pack: &IngestedPack) -> Vec<ObjectKey> {
    let new: Vec<&ObjectId> = pack.new_objects().map(|o| &o.id).collect();
    if new.len() > LOOSE_THRESHOLD {
        vec![
            ObjectKey::pack(repo, pack.pack.hash()),
            ObjectKey::pack_index(repo, pack.pack.hash()),
        ]
    } else {
        new.into_iter()
            .map(|id| ObjectKey::loose(repo, id))
            .collect()
    }
}

/// Per-command result of checking the new tip, `None` when it passes.
fn tip_checks(
    commands: &[RefCommand],
    db: &ObjectDb,
    new_pack: Option<&Path>,
) -> Result<Vec<Option<RefStatus>>, Unpack> {
    let pack = match new_pack {
        Some(path) => Some(gitclaw_pack::odb::PackHandle::open(path)?),
        None => None,
    };
    let mut state = DecodeState::default();
    let mut reader = db.reader();
    let mut out = Vec::with_capacity(commands.len());
    for command in commands {
        if command.new.is_null() {
            out.push(None);
            continue;
        }
        // Headers only: a tip may be a big blob (a tag of one).
        let kind = match pack
            .as_ref()
            .and_then(|p| p.lookup(&command.new).map(|i| (p, i)))
        {
            Some((p, index)) => Some(p.object_header(index, &mut state)?.0),
            None => reader.header(&command.new)?.map(|(kind, _)| kind),
        };
        out.push(match kind {
            None => Some(RefStatus::Rejected("missing necessary objects".into())),
            Some(kind) if command.name.starts_with("refs/heads/") && kind != Kind::Commit => Some(
                RefStatus::Rejected("non-commit object cannot be a branch tip".into()),
            ),
            Some(_) => None,
        });
    }
    Ok(out)
}

/// A new object of the push, written in the loose format to a local file.
struct LooseFile {
    id: ObjectId,
    kind: Kind,
    size: u64,
    path: std::path::PathBuf,
}

/// Write each object of the received pack named in `ids` as a loose file in `dir`.
/// Objects stored whole in the pack are inflated from it and deflated into the
/// file as they stream; deltas are resolved in memory (within the ingest's object
/// size limit), as git does. Each file's content must hash to its id.
fn write_loose_files(
    index_path: &Path,
    ids: &[ObjectId],
    dir: &Path,
) -> Result<Vec<LooseFile>, Unpack> {
    std::fs::create_dir_all(dir)?;
    let pack = gitclaw_pack::odb::PackHandle::open(index_path)?;
    let mut state = DecodeState::default();
    let mut out = Vec::with_capacity(ids.len());
    let mut buf = Vec::new();
    for id in ids {
        let index = pack
            .lookup(id)
            .ok_or_else(|| Unpack(format!("object {id} vanished from the received pack")))?;
        let path = dir.join(id.to_string());
        let (kind, size, written) = match pack.stream_whole(index)? {
            Some((kind, size, mut content)) => {
                let written = gitclaw_storage::write_loose_file(kind, size, &mut content, &path)?;
                (kind, size, written)
            }
            None => {
                let kind = pack.decode(index, &mut buf, &mut state)?;
                let size = buf.len() as u64;
                let written =
                    gitclaw_storage::write_loose_file(kind, size, &mut buf.as_slice(), &path)?;
                (kind, size, written)
            }
        };
        if written != *id {
            return Err(Unpack(format!(
                "object {id} hashed to {written} when stored"
            )));
        }
        out.push(LooseFile {
            id: *id,
            kind,
            size,
            path,
        });
    }
    Ok(out)
}

fn encode_report(report: &Report, caps: &Capabilities) -> Vec<u8> {
    let unpack = report.unpack.as_ref().map(|_| ()).map_err(|e| e.as_str());
    push_response(unpack, &report.refs, Some(caps))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(name: &str) -> String {
        ref_name_problem(name).unwrap_or_else(|| panic!("{name:?} is accepted"))
    }

    #[test]
    fn ref_names_git_accepts_are_accepted() {
        for name in [
            "refs/heads/main",
            "refs/tags/v1.0",
            "refs/heads/feature/ünïcode",
            "refs/pull/1/head",
        ] {
            assert_eq!(ref_name_problem(name), None, "{name}");
        }
        let longest = format!("refs/heads/{}", "a".repeat(MAX_REF_COMPONENT_BYTES));
        assert_eq!(ref_name_problem(&longest), None);
        let parts = vec!["b".repeat(200); 5].join("/");
        let long = format!("refs/heads/{parts}");
        assert!(long.len() <= MAX_REF_NAME_BYTES);
        assert_eq!(ref_name_problem(&long), None);
    }

    #[test]
    fn over_long_ref_names_are_refused_with_the_limit() {
        let name = format!("refs/heads/{}", "b".repeat(65_300));
        assert_eq!(
            refused(&name),
            "refname too long (65311 bytes, at most 1024)"
        );
        let parts = vec!["b".repeat(250); 5].join("/");
        assert!(refused(&format!("refs/heads/{parts}")).starts_with("refname too long"));
        let name = format!("refs/heads/{}", "c".repeat(256));
        assert_eq!(
            refused(&name),
            "refname component too long (256 bytes, at most 255)"
        );
    }

    #[test]
    fn funny_ref_names_are_refused_with_the_rule_broken() {
        assert_eq!(
            refused("refs/heads/a\u{1}b"),
            "funny refname (control character)"
        );
        assert_eq!(
            refused("refs/heads/tab\there"),
            "funny refname (control character)"
        );
        assert_eq!(
            refused("refs/heads/\u{7f}"),
            "funny refname (control character)"
        );
        assert_eq!(refused("refs/heads/\u{fffd}"), "funny refname (not UTF-8)");
        assert_eq!(refused("HEAD"), "funny refname (not under refs/)");
        assert_eq!(refused("main"), "funny refname (not under refs/)");
        for name in [
            "refs/heads/a..b",
            "refs/heads/x.lock",
            "refs/heads/sp ace",
            "refs/heads/end/",
            "refs/heads/a//b",
            "refs/heads/.hidden",
            "refs/heads/a@{1}",
            "refs/heads/star*",
            "refs/heads/colon:",
            "refs/heads/back\\slash",
            "refs/heads/dot.",
        ] {
            let reason = refused(name);
            assert!(reason.starts_with("funny refname ("), "{name}: {reason}");
        }
        assert_eq!(
            refused("refs/heads/a..b"),
            "funny refname (reference name cannot contain repeated dots)"
        );
    }

    #[test]
    fn each_command_gets_its_own_status() {
        let id = ObjectId::from_hex(b"7217a7c7e582c46cec22a130adf4b9d7d950fba0").unwrap();
        let zero = ObjectId::null(gix_hash::Kind::Sha1);
        let command = |name: &str, old: ObjectId, new: ObjectId| RefCommand {
            old,
            new,
            name: name.into(),
        };
        let commands = vec![
            command("refs/heads/ok", zero, id),
            command("refs/heads/bad\u{1}", zero, id),
            command("refs/heads/ok", zero, id),
            command("refs/heads/noop", zero, zero),
        ];
        let mut statuses = vec![None; commands.len()];
        check_commands(&commands, &mut statuses);
        assert_eq!(
            statuses,
            [
                None,
                Some(RefStatus::Rejected(
                    "funny refname (control character)".into()
                )),
                Some(RefStatus::Rejected("duplicate ref update".into())),
                Some(RefStatus::Rejected("nothing to do".into())),
            ]
        );
    }
}
