//! The push commit: one transaction that compare-and-swaps every ref,
//! records the stored pack or loose objects, moves an unborn HEAD to the
//! first pushed branch, and appends the `push` audit event.
//!
//! For: the last step of a push, after every object is durably stored
//! (so a ref never names a missing object). Not for: deciding whether an
//! update is allowed (fast-forward, ref-name format, permissions — the
//! server checks those and leaves refused commands out), or uploading
//! anything.
//!
//! Concurrency: every update is a single conditional statement (`INSERT …
//! ON CONFLICT DO NOTHING`, `UPDATE … WHERE oid = old`, `DELETE … WHERE oid =
//! old`) whose row count says whether it applied. On PostgreSQL under READ
//! COMMITTED such a statement waits for a concurrent writer of the same row
//! and re-checks its condition against the committed value, so of two
//! pushes from the same old value exactly one applies. The transaction also
//! first locks the repository row, serialising pushes to one repository
//! (and pushes against deletion); on SQLite `BEGIN IMMEDIATE` serialises all
//! writers anyway.
//!
//! Names: as in git, no ref may sit where another ref's name continues
//! (`refs/heads/a` beside `refs/heads/a/b`): a git client keeps refs as files
//! and directories and cannot fetch such a pair. A push that would make one
//! is refused for that ref, with git's words. Without `atomic` each update
//! is checked against the refs as the earlier updates of the push left them
//! (git runs them one at a time, in order); with `atomic`, against the refs
//! before the push and every other name in it, as git's ref transaction does.
//!
//! As git's receive-pack does by default, a push may not delete the branch
//! HEAD names, and deleting with no old value a ref that is not there is no
//! change, reported as done.

use gix_hash::ObjectId;

use crate::audit::{self, AuditAction, NewEvent};
use crate::objects::{
    check_kind, insert_closure, insert_loose, insert_pack, PackClosure, PackRecord,
};
use crate::refs::ref_exists;
use crate::repos::{lock_repo, DEFAULT_HEAD_REF};
use crate::util::{get_str, now_secs, oid_hex, to_db_u64};
use crate::{Metadata, Result};

/// Reason for an update whose expected old value did not match.
pub const REASON_STALE: &str = "stale info";
/// Reason given, in an atomic push, to the updates that would have applied.
pub const REASON_ATOMIC_FAILED: &str = "atomic push failed";
/// Reason for deleting the branch HEAD names (git's receive-pack refuses it
/// too: a clone would then find no branch to check out).
pub const REASON_CURRENT_BRANCH: &str = "deletion of the current branch prohibited";

/// One ref command of a push.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefUpdate {
    /// Full ref name, already validated by the caller.
    pub name: String,
    /// The value the client expects: `None` means the ref must not exist.
    pub old: Option<ObjectId>,
    /// The value to set: `None` deletes the ref.
    pub new: Option<ObjectId>,
}

/// The pack a push stored (`pack-{pack_hash}.pack` and `.idx`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewPack {
    pub pack_hash: ObjectId,
    pub object_count: u64,
    pub pack_bytes: u64,
    pub index_bytes: u64,
    /// Bytes of its commit-graph, stored beside it, when it has one.
    pub graph_bytes: Option<u64>,
}

impl NewPack {
    /// The row for this pack, created at `created_at`.
    pub(crate) fn record(&self, created_at: i64, closure_of: Option<ObjectId>) -> PackRecord {
        PackRecord {
            pack_hash: self.pack_hash,
            object_count: self.object_count,
            pack_bytes: self.pack_bytes,
            index_bytes: self.index_bytes,
            created_at,
            closure_of,
            graph_bytes: self.graph_bytes,
        }
    }
}

/// A loose object a push stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewLoose {
    pub oid: ObjectId,
    /// `commit`, `tree`, `blob` or `tag`.
    pub kind: String,
    /// Inflated content size.
    pub size: u64,
}

/// Everything a push commits, in one transaction.
#[derive(Clone, Debug)]
pub struct PushCommit {
    pub repo_id: String,
    /// In the client's command order; results come back in the same order.
    pub updates: Vec<RefUpdate>,
    /// All updates apply or none (`atomic` capability).
    pub atomic: bool,
    pub pack: Option<NewPack>,
    pub loose: Vec<NewLoose>,
    pub actor: String,
    /// Extra audit details from the caller (objects, bytes, storage kind…).
    /// If it is a JSON object its fields are merged into the event's
    /// details; anything else but `null` is kept under `"details"`.
    pub details: serde_json::Value,
    /// When the push knows `pack` to hold exactly the closure of some tips
    /// (every object they reach and nothing else): recorded with the pack as
    /// compaction records its own (see [`PackRecord::closure_of`]).
    pub pack_closure: Option<PackClosure>,
    /// The push options the client sent (`git push -o`), for the `push`
    /// webhook's payload: see [`WEBHOOK_MAX_PUSH_OPTIONS`].
    pub push_options: Vec<String>,
    /// More for the `push` webhook's payload about some refs, by ref name:
    /// fields added to the ref's entry (the server's reading of the objects,
    /// such as the commit it now names).
    pub ref_details: std::collections::HashMap<String, serde_json::Value>,
}

/// The outcome of one [`RefUpdate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefResult {
    Applied,
    /// A deletion, with no old value, of a ref that was not there: nothing
    /// changed, and the ref is gone as asked (git reports it `ok`, warning
    /// "deleting a non-existent ref"). One with an old value is stale.
    Absent,
    /// Not applied, with the reason to show in the `ng` line:
    /// [`REASON_STALE`], [`REASON_ATOMIC_FAILED`], [`REASON_CURRENT_BRANCH`], or
    /// git's words for a name another ref's name continues or is continued
    /// by (`'refs/heads/a' exists; cannot create 'refs/heads/a/b'`).
    Rejected(String),
}

impl RefResult {
    /// Whether the update changed a ref.
    pub fn is_applied(&self) -> bool {
        matches!(self, RefResult::Applied)
    }

    fn is_rejected(&self) -> bool {
        matches!(self, RefResult::Rejected(_))
    }
}

impl Metadata {
    /// Commits a push; see the module docs. Returns one result per update,
    /// in order.
    ///
    /// If at least one update applies, the pack and loose rows are recorded
    /// (idempotently), HEAD is moved if it was unborn (to `refs/heads/main`
    /// if this push created it, else to the first `refs/heads/*` it created),
    /// and one `push` audit event is appended, all in the same transaction.
    /// If none applies (or `atomic` and any fails), nothing at all is
    /// written.
    ///
    /// Errors: [`crate::Error::NotFound`] if the repository does not exist,
    /// [`crate::Error::InvalidInput`] for a bad loose-object type or a size that
    /// does not fit, [`crate::Error::Database`] if the database fails (nothing is
    /// committed then).
    pub async fn commit_push(&self, push: PushCommit) -> Result<Vec<RefResult>> {
        self.timed("commit_push", async {
            // Refuse bad input before taking any lock.
            if let Some(pack) = &push.pack {
                to_db_u64(pack.object_count, "pack object count")?;
                to_db_u64(pack.pack_bytes, "pack size")?;
                to_db_u64(pack.index_bytes, "pack index size")?;
            }
            for loose in &push.loose {
                check_kind(&loose.kind)?;
                to_db_u64(loose.size, "object size")?;
            }

            let mut tx = self.begin_write().await?;
            let crate::Repo {
                owner,
                name,
                head_ref,
                ..
            } = lock_repo(&mut tx, &push.repo_id).await?;
            let head_existed = ref_exists(&mut tx, &push.repo_id, &head_ref).await?;

            // With `atomic`, names are checked against the refs before any
            // update applies; without, each just before it applies.
            let mut clashes = if push.atomic {
                let mut clashes = clashes_within(&push.updates);
                for (update, clash) in push.updates.iter().zip(clashes.iter_mut()) {
                    if update.creates() {
                        if let Some(taken) =
                            ref_in_the_way(&mut tx, &push.repo_id, &update.name).await?
                        {
                            *clash = Some(cannot("create", &taken, &update.name));
                        }
                    }
                }
                clashes
            } else {
                vec![None; push.updates.len()]
            };
            let mut results = Vec::with_capacity(push.updates.len());
            for (update, clash) in push.updates.iter().zip(clashes.iter_mut()) {
                if !push.atomic && update.creates() {
                    *clash = ref_in_the_way(&mut tx, &push.repo_id, &update.name)
                        .await?
                        .map(|taken| cannot("create", &taken, &update.name));
                }
                if let Some(clash) = clash.take() {
                    results.push(RefResult::Rejected(clash));
                    continue;
                }
                if update.new.is_none() && update.name == head_ref {
                    results.push(RefResult::Rejected(REASON_CURRENT_BRANCH.to_owned()));
                    continue;
                }
                results.push(apply(&mut tx, &push.repo_id, update).await?);
            }

            if push.atomic && results.iter().any(RefResult::is_rejected) {
                tx.rollback().await?;
                return Ok(results
                    .into_iter()
                    .map(|r| match r {
                        RefResult::Rejected(_) => r,
                        _ => RefResult::Rejected(REASON_ATOMIC_FAILED.to_owned()),
                    })
                    .collect());
            }
            if !results.iter().any(RefResult::is_applied) {
                tx.rollback().await?;
                return Ok(results);
            }

            let now = now_secs();
            if let Some(pack) = &push.pack {
                let closure = push.pack_closure.as_ref();
                let record = pack.record(now, closure.map(|c| c.key));
                insert_pack(&mut tx, &push.repo_id, &record).await?;
                if let Some(closure) = closure {
                    insert_closure(&mut tx, &push.repo_id, &pack.pack_hash, closure).await?;
                }
            }
            for loose in &push.loose {
                insert_loose(
                    &mut tx,
                    &push.repo_id,
                    &loose.oid,
                    &loose.kind,
                    loose.size,
                    now,
                )
                .await?;
            }

            let applied: Vec<&RefUpdate> = push
                .updates
                .iter()
                .zip(&results)
                .filter(|(_, r)| r.is_applied())
                .map(|(u, _)| u)
                .collect();

            let mut new_head = None;
            if !head_existed && !ref_exists(&mut tx, &push.repo_id, &head_ref).await? {
                let created_branches: Vec<&str> = applied
                    .iter()
                    .filter(|u| u.old.is_none() && u.new.is_some())
                    .map(|u| u.name.as_str())
                    .filter(|n| n.starts_with("refs/heads/"))
                    .collect();
                new_head = if created_branches.contains(&DEFAULT_HEAD_REF) {
                    Some(DEFAULT_HEAD_REF)
                } else {
                    created_branches.first().copied()
                };
                if let Some(new_head) = new_head {
                    sqlx::query("UPDATE repositories SET head_ref = $1 WHERE id = $2")
                        .bind(new_head)
                        .bind(&push.repo_id)
                        .execute(&mut *tx)
                        .await?;
                }
            }

            let details = push_details(&push, &applied, new_head);
            audit::append(
                &mut tx,
                NewEvent {
                    repo_id: &push.repo_id,
                    owner: &owner,
                    name: &name,
                    action: AuditAction::Push,
                    actor: &push.actor,
                    details: &details,
                },
            )
            .await?;
            let event = push_event(&push, &owner, &name, &applied, now);
            crate::hooks::enqueue(&mut tx, &push.repo_id, "push", &event).await?;
            crate::crash_point("push:in-transaction");
            tx.commit().await?;
            tracing::debug!(
                repo_id = %push.repo_id,
                applied = applied.len(),
                rejected = results.len() - applied.len(),
                "push committed"
            );
            Ok(results)
        })
        .await
    }
}

/// The most refs a `push` webhook delivery names: its payload, kept for every
/// webhook and sent several at once, stays small whatever the push.
pub const WEBHOOK_MAX_REFS: usize = 1000;

/// The most push options a `push` webhook delivery names, and the most bytes
/// they take together (a client may send up to 16 MiB of them).
pub const WEBHOOK_MAX_PUSH_OPTIONS: usize = 100;
/// See [`WEBHOOK_MAX_PUSH_OPTIONS`].
pub const WEBHOOK_MAX_PUSH_OPTION_BYTES: usize = 16 << 10;

/// What a `push` webhook is told: the repository, who pushed, and each ref
/// that moved, from what to what (40 zeros for none), in the push's order: the
/// first [`WEBHOOK_MAX_REFS`], and how many moved; and the push options, as
/// many of the first ones as [`WEBHOOK_MAX_PUSH_OPTIONS`] and
/// [`WEBHOOK_MAX_PUSH_OPTION_BYTES`] allow, and how many were sent.
fn push_event(
    push: &PushCommit,
    owner: &str,
    name: &str,
    applied: &[&RefUpdate],
    now: i64,
) -> serde_json::Value {
    let hex = |oid: Option<ObjectId>| oid.map_or_else(|| "0".repeat(40), |oid| oid_hex(&oid));
    let refs: Vec<serde_json::Value> = applied
        .iter()
        .take(WEBHOOK_MAX_REFS)
        .map(|u| {
            let mut entry = serde_json::json!({
                "ref": u.name,
                "before": hex(u.old),
                "after": hex(u.new),
                "created": u.old.is_none(),
                "deleted": u.new.is_none(),
            });
            if let (Some(serde_json::Value::Object(more)), Some(entry)) =
                (push.ref_details.get(&u.name), entry.as_object_mut())
            {
                entry.extend(more.clone());
            }
            entry
        })
        .collect();
    let mut option_bytes = 0;
    let options: Vec<&str> = push
        .push_options
        .iter()
        .take(WEBHOOK_MAX_PUSH_OPTIONS)
        .take_while(|option| {
            option_bytes += option.len();
            option_bytes <= WEBHOOK_MAX_PUSH_OPTION_BYTES
        })
        .map(String::as_str)
        .collect();
    serde_json::json!({
        "event": "push",
        "repository": { "id": push.repo_id, "owner": owner, "name": name },
        "pusher": push.actor,
        "refs": refs,
        "ref_count": applied.len(),
        "push_options": options,
        "push_option_count": push.push_options.len(),
        "pushed_at": now,
    })
}

impl RefUpdate {
    /// Whether the update makes a ref that is not there (an update of an
    /// existing ref cannot clash with another's name: that one exists too).
    fn creates(&self) -> bool {
        self.old.is_none() && self.new.is_some()
    }
}

/// The names `name` lies under: `refs/heads/a` for `refs/heads/a/b`, and so
/// on up to `refs`.
fn parents(name: &str) -> impl Iterator<Item = &str> {
    name.match_indices('/').map(|(at, _)| &name[..at])
}

/// For each update, git's refusal when another name of the same push lies
/// under it or over it: an atomic push's one transaction cannot hold both,
/// whatever each does.
fn clashes_within(updates: &[RefUpdate]) -> Vec<Option<String>> {
    let names: std::collections::HashSet<&str> = updates.iter().map(|u| u.name.as_str()).collect();
    let mut clashes = vec![None; updates.len()];
    for (i, update) in updates.iter().enumerate() {
        if let Some(parent) = parents(&update.name).find(|p| names.contains(p)) {
            let why = format!(
                "cannot process '{parent}' and '{}' at the same time",
                update.name
            );
            for (j, other) in updates.iter().enumerate() {
                if j == i || other.name == parent {
                    clashes[j].get_or_insert_with(|| why.clone());
                }
            }
        }
    }
    clashes
}

/// Git's refusal to `verb` a ref where `existing` is in the way.
fn cannot(verb: &str, existing: &str, name: &str) -> String {
    format!("'{existing}' exists; cannot {verb} '{name}'")
}

/// A ref the repository has that lies under `name` or over it, as the
/// transaction sees the refs now.
async fn ref_in_the_way(
    conn: &mut sqlx::AnyConnection,
    repo_id: &str,
    name: &str,
) -> Result<Option<String>> {
    // Refs under `name` are those from `name/` up to `name0` ('0' follows '/'):
    // names compare bytewise (COLLATE "C" on PostgreSQL, BINARY on SQLite), so
    // that is one range of the primary key.
    let under = sqlx::query(
        "SELECT name FROM refs WHERE repo_id = $1 AND name >= $2 AND name < $3 \
         ORDER BY name LIMIT 1",
    )
    .bind(repo_id)
    .bind(format!("{name}/"))
    .bind(format!("{name}0"))
    .fetch_optional(&mut *conn)
    .await?;
    if let Some(row) = under {
        return Ok(Some(get_str(&row, "name")?));
    }
    // The names over it are a few exact keys. (One query with both, joined
    // by OR, is not planned as key lookups: it scanned every ref of the
    // repository, so a push of thousands of new refs took seconds.)
    let parents: Vec<&str> = parents(name).collect();
    if parents.is_empty() {
        return Ok(None);
    }
    let placeholders: Vec<String> = (0..parents.len()).map(|i| format!("${}", i + 2)).collect();
    let sql = format!(
        "SELECT name FROM refs WHERE repo_id = $1 AND name IN ({}) LIMIT 1",
        placeholders.join(", ")
    );
    // Only placeholders are added to the text; every name is bound.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(repo_id);
    for parent in &parents {
        query = query.bind(*parent);
    }
    match query.fetch_optional(conn).await? {
        Some(row) => Ok(Some(get_str(&row, "name")?)),
        None => Ok(None),
    }
}

/// Applies one update as a compare-and-swap: [`RefResult::Applied`], a stale
/// [`RefResult::Rejected`], or [`RefResult::Absent`] for a deletion with no
/// old value of a ref that is not there — unless a ref lies under its name or
/// over it, which git refuses too (it cannot lock the name).
async fn apply(
    conn: &mut sqlx::AnyConnection,
    repo_id: &str,
    update: &RefUpdate,
) -> Result<RefResult> {
    let done = match (&update.old, &update.new) {
        (None, None) => {
            return Ok(match ref_exists(conn, repo_id, &update.name).await? {
                true => RefResult::Rejected(REASON_STALE.to_owned()),
                false => absent(conn, repo_id, &update.name).await?,
            })
        }
        (None, Some(new)) => {
            sqlx::query(
                "INSERT INTO refs (repo_id, name, oid) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(repo_id)
            .bind(&update.name)
            .bind(oid_hex(new))
            .execute(conn)
            .await?
        }
        (Some(old), Some(new)) => {
            sqlx::query("UPDATE refs SET oid = $1 WHERE repo_id = $2 AND name = $3 AND oid = $4")
                .bind(oid_hex(new))
                .bind(repo_id)
                .bind(&update.name)
                .bind(oid_hex(old))
                .execute(conn)
                .await?
        }
        (Some(old), None) => {
            sqlx::query("DELETE FROM refs WHERE repo_id = $1 AND name = $2 AND oid = $3")
                .bind(repo_id)
                .bind(&update.name)
                .bind(oid_hex(old))
                .execute(conn)
                .await?
        }
    };
    Ok(if done.rows_affected() == 1 {
        RefResult::Applied
    } else {
        RefResult::Rejected(REASON_STALE.to_owned())
    })
}

/// The result of deleting `name`, which is not there.
async fn absent(conn: &mut sqlx::AnyConnection, repo_id: &str, name: &str) -> Result<RefResult> {
    Ok(match ref_in_the_way(conn, repo_id, name).await? {
        Some(existing) => RefResult::Rejected(cannot("delete", &existing, name)),
        None => RefResult::Absent,
    })
}

fn push_details(
    push: &PushCommit,
    applied: &[&RefUpdate],
    new_head: Option<&str>,
) -> serde_json::Value {
    let hex = |oid: &Option<ObjectId>| oid.as_ref().map(oid_hex);
    let refs: Vec<serde_json::Value> = applied
        .iter()
        .map(|u| serde_json::json!({ "name": u.name, "old": hex(&u.old), "new": hex(&u.new) }))
        .collect();
    let mut details = serde_json::Map::new();
    match &push.details {
        serde_json::Value::Object(extra) => details.extend(extra.clone()),
        serde_json::Value::Null => {}
        other => {
            details.insert("details".to_owned(), other.clone());
        }
    }
    // Ours last: the caller cannot overwrite what the transaction did.
    details.insert("refs".to_owned(), refs.into());
    details.insert(
        "pack".to_owned(),
        push.pack.as_ref().map(|p| oid_hex(&p.pack_hash)).into(),
    );
    details.insert("loose_objects".to_owned(), push.loose.len().into());
    details.insert("atomic".to_owned(), push.atomic.into());
    if let Some(head) = new_head {
        details.insert("head".to_owned(), head.into());
    }
    serde_json::Value::Object(details)
}
