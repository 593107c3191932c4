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

use gix_hash::ObjectId;

use crate::audit::{self, AuditAction, NewEvent};
use crate::objects::{check_kind, insert_closure_tips, insert_loose, insert_pack, PackRecord};
use crate::repos::DEFAULT_HEAD_REF;
use crate::util::{get_str, now_secs, oid_hex, to_db_u64};
use crate::{Error, Metadata, Result};

/// Reason for an update whose expected old value did not match.
pub const REASON_STALE: &str = "stale info";
/// Reason given, in an atomic push, to the updates that would have applied.
pub const REASON_ATOMIC_FAILED: &str = "atomic push failed";
/// Reason for an update with neither old nor new value.
pub const REASON_INVALID: &str = "invalid ref update: neither old nor new value";

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
    /// (every object they reach and nothing else): the tips' closure key and
    /// the tips, recorded with the pack as compaction records its own (see
    /// [`PackRecord::closure_of`]).
    pub pack_closure: Option<(ObjectId, Vec<ObjectId>)>,
}

/// The outcome of one [`RefUpdate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefResult {
    Applied,
    /// Not applied, with the reason to show in the `ng` line:
    /// [`REASON_STALE`], [`REASON_ATOMIC_FAILED`] or [`REASON_INVALID`].
    Rejected(String),
}

impl RefResult {
    pub fn is_applied(&self) -> bool {
        matches!(self, RefResult::Applied)
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
    /// Errors: [`Error::NotFound`] if the repository does not exist,
    /// [`Error::InvalidInput`] for a bad loose-object type or a size that
    /// does not fit, [`Error::Database`] if the database fails (nothing is
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
            let repo = sqlx::query(
                "UPDATE repositories SET head_ref = head_ref WHERE id = $1 \
                 RETURNING owner, name, head_ref",
            )
            .bind(&push.repo_id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(repo) = repo else {
                return Err(Error::NotFound(format!("repository {}", push.repo_id)));
            };
            let owner = get_str(&repo, "owner")?;
            let name = get_str(&repo, "name")?;
            let head_ref = get_str(&repo, "head_ref")?;
            let head_existed = ref_exists(&mut tx, &push.repo_id, &head_ref).await?;

            let mut results = Vec::with_capacity(push.updates.len());
            for update in &push.updates {
                let applied = apply(&mut tx, &push.repo_id, update).await?;
                results.push(match applied {
                    Some(true) => RefResult::Applied,
                    Some(false) => RefResult::Rejected(REASON_STALE.to_owned()),
                    None => RefResult::Rejected(REASON_INVALID.to_owned()),
                });
            }

            let any_rejected = results.iter().any(|r| !r.is_applied());
            if push.atomic && any_rejected {
                tx.rollback().await?;
                return Ok(results
                    .into_iter()
                    .map(|r| match r {
                        RefResult::Applied => RefResult::Rejected(REASON_ATOMIC_FAILED.to_owned()),
                        rejected => rejected,
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
                let record = pack.record(now, closure.map(|(key, _)| *key));
                insert_pack(&mut tx, &push.repo_id, &record).await?;
                if let Some((_, tips)) = closure {
                    insert_closure_tips(&mut tx, &push.repo_id, &pack.pack_hash, tips).await?;
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

/// Applies one update as a compare-and-swap. `Some(applied)`, or `None` for
/// an update with neither old nor new value.
async fn apply(
    conn: &mut sqlx::AnyConnection,
    repo_id: &str,
    update: &RefUpdate,
) -> Result<Option<bool>> {
    let done = match (&update.old, &update.new) {
        (None, None) => return Ok(None),
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
    Ok(Some(done.rows_affected() == 1))
}

async fn ref_exists(conn: &mut sqlx::AnyConnection, repo_id: &str, name: &str) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 AS one FROM refs WHERE repo_id = $1 AND name = $2")
            .bind(repo_id)
            .bind(name)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
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
