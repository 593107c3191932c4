//! Compaction's bookkeeping: swap a repository's packs and loose objects for the
//! merged pack (and the pack of unreachable objects) in a single transaction, and remember the replaced keys until their
//! grace period ends so clones in flight never lose a pack under them.
//!
//! Not for: writing packs or deleting keys from the store (the server does that,
//! driven by [`Metadata::due_deletions`]).

use gix_hash::ObjectId;

use crate::objects::{insert_closure, insert_pack, select_loose, select_packs, PackClosure};
use crate::push::NewPack;
use crate::refs::select_refs;
use crate::util::{get_i64, get_str, now_secs, oid_hex};
use crate::{LooseRecord, Metadata, PackRecord, RefRecord, Result};

/// A repository's refs, packs and loose objects as of one moment: what a
/// compaction works from. Read apart, a push landing between the reads would
/// put objects in the lists that the refs read before it do not reach, and the
/// compaction would file them as unreachable.
#[derive(Clone, Debug, Default)]
pub struct ObjectSnapshot {
    pub refs: Vec<RefRecord>,
    pub packs: Vec<PackRecord>,
    pub loose: Vec<LooseRecord>,
}

/// One compaction of one repository.
#[derive(Clone, Debug)]
pub struct Compaction {
    pub repo_id: String,
    /// Packs merged into `new_pack` (they must all still be listed).
    pub removed_packs: Vec<ObjectId>,
    /// Loose objects merged into `new_pack` (they must all still be listed).
    pub removed_loose: Vec<ObjectId>,
    pub new_pack: NewPack,
    /// When `new_pack` holds exactly the objects reachable from a set of tips.
    pub closure: Option<PackClosure>,
    /// The objects no ref reaches, kept in a pack of their own.
    pub cruft_pack: Option<NewPack>,
    /// Store keys of what was merged, deleted once `delete_after` (unix seconds) has passed.
    pub replaced_keys: Vec<String>,
    pub delete_after: i64,
}

/// Whether [`Metadata::apply_compaction`] recorded a compaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompactionApplied {
    /// The new packs replace what they merged.
    Applied,
    /// Something the compaction merges is no longer listed: another compaction
    /// of the repository (on this or another server) recorded first. Nothing
    /// changed; the string names what went missing.
    Superseded(String),
}

/// A store key whose grace period is over.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DueDeletion {
    pub repo_id: String,
    pub key: String,
}

impl Metadata {
    /// The refs, packs and loose objects of a repository, read in one
    /// snapshot of the database.
    pub async fn object_snapshot(&self, repo_id: &str) -> Result<ObjectSnapshot> {
        self.timed("object_snapshot", async {
            let mut tx = self.begin_snapshot().await?;
            let refs = select_refs(&mut tx, repo_id).await?;
            let packs = select_packs(&mut tx, repo_id).await?;
            let loose = select_loose(&mut tx, repo_id).await?;
            tx.commit().await?;
            Ok(ObjectSnapshot { refs, packs, loose })
        })
        .await
    }

    /// Apply a compaction in one transaction: record the new pack, drop the merged
    /// pack and loose rows, schedule the replaced keys for deletion. When
    /// something it merges is no longer listed (another compaction won the
    /// race) nothing changes and the answer is [`CompactionApplied::Superseded`].
    pub async fn apply_compaction(&self, c: &Compaction) -> Result<CompactionApplied> {
        self.timed("apply_compaction", async {
            let mut tx = self.begin_write().await?;
            for pack in &c.removed_packs {
                let gone = sqlx::query("DELETE FROM packs WHERE repo_id = $1 AND pack_hash = $2")
                    .bind(&c.repo_id)
                    .bind(oid_hex(pack))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                let rewritten = *pack == c.new_pack.pack_hash
                    || c.cruft_pack.as_ref().is_some_and(|p| p.pack_hash == *pack);
                if gone != 1 && !rewritten {
                    tx.rollback().await?;
                    return Ok(CompactionApplied::Superseded(format!(
                        "pack {pack} is no longer listed"
                    )));
                }
            }
            for oid in &c.removed_loose {
                let gone = sqlx::query("DELETE FROM loose_objects WHERE repo_id = $1 AND oid = $2")
                    .bind(&c.repo_id)
                    .bind(oid_hex(oid))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if gone != 1 {
                    tx.rollback().await?;
                    return Ok(CompactionApplied::Superseded(format!(
                        "loose object {oid} is no longer listed"
                    )));
                }
            }
            let now = now_secs();
            let closure_of = c.closure.as_ref().map(|closure| closure.key);
            insert_pack(&mut tx, &c.repo_id, &c.new_pack.record(now, closure_of)).await?;
            if let Some(closure) = &c.closure {
                insert_closure(&mut tx, &c.repo_id, &c.new_pack.pack_hash, closure).await?;
            }
            if let Some(cruft) = &c.cruft_pack {
                insert_pack(&mut tx, &c.repo_id, &cruft.record(now, None)).await?;
            }
            for key in &c.replaced_keys {
                sqlx::query(
                    "INSERT INTO pending_deletions (repo_id, object_key, delete_after) VALUES ($1, $2, $3) \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&c.repo_id)
                .bind(key)
                .bind(c.delete_after)
                .execute(&mut *tx)
                .await?;
            }
            crate::crash_point("gc:in-swap");
            tx.commit().await?;
            Ok(CompactionApplied::Applied)
        })
        .await
    }

    /// Keys whose grace period ended at or before `now`, oldest first.
    pub async fn due_deletions(&self, now: i64, limit: u32) -> Result<Vec<DueDeletion>> {
        self.timed("due_deletions", async {
            let rows = sqlx::query(
                "SELECT repo_id, object_key, delete_after FROM pending_deletions \
                 WHERE delete_after <= $1 ORDER BY delete_after, repo_id, object_key LIMIT $2",
            )
            .bind(now)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|row| {
                    let _ = get_i64(row, "delete_after")?;
                    Ok(DueDeletion {
                        repo_id: get_str(row, "repo_id")?,
                        key: get_str(row, "object_key")?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Remember a key — or, ending in `/`, a whole prefix — to delete once
    /// `delete_after` has passed (a repository whose deletion did not finish).
    pub async fn schedule_deletion(
        &self,
        repo_id: &str,
        key: &str,
        delete_after: i64,
    ) -> Result<()> {
        self.timed("schedule_deletion", async {
            sqlx::query(
                "INSERT INTO pending_deletions (repo_id, object_key, delete_after) VALUES ($1, $2, $3) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(repo_id)
            .bind(key)
            .bind(delete_after)
            .execute(self.pool())
            .await?;
            Ok(())
        })
        .await
    }

    /// Forget deletions that were carried out.
    pub async fn finish_deletion(&self, repo_id: &str, key: &str) -> Result<()> {
        self.timed("finish_deletion", async {
            sqlx::query("DELETE FROM pending_deletions WHERE repo_id = $1 AND object_key = $2")
                .bind(repo_id)
                .bind(key)
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await
    }
}
