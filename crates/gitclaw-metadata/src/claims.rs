//! Leases on store keys, so that deleting unrecorded keys can never delete a key
//! that a push is about to record.
//!
//! For: the two writers of keys that no row records yet — a push between its
//! upload and its commit, and a cleaner (a push whose updates all failed, or the
//! sweep that collects what crashed pushes left) about to delete such a key. A
//! push claims its keys for `upload` before it writes them and releases them once
//! its commit has recorded them (or it gave up); a cleaner claims a key for
//! `delete` only when no row records it and no other live lease names it, and
//! releases it after the store's delete. An upload waits while a deletion of the
//! same key is under way. Each claim is a lease with an expiry that its holder
//! renews, so the leases of a process that died lapse on their own.
//!
//! Every claim is taken in one write transaction that first locks the
//! repository row (the lock `commit_push` takes too), so checks and inserts of
//! two claimers never interleave, on PostgreSQL as on SQLite.
//!
//! Not for: knowing the key layout. The caller names for each key the row that
//! would record it ([`Recorded`]); this module only compares.

use gix_hash::ObjectId;

use crate::util::{now_secs, oid_hex};
use crate::{Metadata, Result};

/// The row that records a store key, when one may.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A pack or its index: recorded by the pack row with this checksum.
    Pack(ObjectId),
    /// A pack's commit-graph: recorded by that pack's row once it names the graph.
    PackGraph(ObjectId),
    /// A loose object: recorded by the loose-object row with this id.
    Loose(ObjectId),
    /// A Git LFS object: recorded by the LFS-object row with this id (64
    /// lowercase hex digits).
    Lfs(String),
    /// Nothing records this key (not a key GitClaw writes).
    Nothing,
}

/// A key a cleaner would like to delete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeleteCandidate {
    pub key: String,
    pub recorded: Recorded,
}

/// Whether an upload claim was taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadClaim {
    Taken,
    /// A deletion of one of the keys is under way: try again shortly.
    DeletionUnderWay,
    /// The repository does not exist (any more).
    NoRepository,
}

impl Metadata {
    /// Claim `keys` of a repository for an upload under `claim_id`, for
    /// `lease_secs` (renew with [`Metadata::renew_claim`]). Also cancels any
    /// scheduled deletion of those keys: the push is about to write them again.
    pub async fn claim_upload(
        &self,
        repo_id: &str,
        claim_id: &str,
        keys: &[String],
        lease_secs: u64,
    ) -> Result<UploadClaim> {
        self.timed("claim_upload", async {
            let mut tx = self.begin_write().await?;
            if !lock_repo(&mut tx, repo_id).await? {
                return Ok(UploadClaim::NoRepository);
            }
            let now = now_secs();
            drop_lapsed(&mut tx, repo_id, now).await?;
            for key in keys {
                let deleting = sqlx::query(
                    "SELECT 1 AS one FROM store_claims WHERE repo_id = $1 AND object_key = $2 \
                     AND purpose = 'delete' AND claim_id <> $3",
                )
                .bind(repo_id)
                .bind(key)
                .bind(claim_id)
                .fetch_optional(&mut *tx)
                .await?;
                if deleting.is_some() {
                    tx.rollback().await?;
                    return Ok(UploadClaim::DeletionUnderWay);
                }
            }
            let expires = now.saturating_add(lease(lease_secs));
            for key in keys {
                put_claim(&mut tx, repo_id, key, claim_id, "upload", expires).await?;
                sqlx::query("DELETE FROM pending_deletions WHERE repo_id = $1 AND object_key = $2")
                    .bind(repo_id)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(UploadClaim::Taken)
        })
        .await
    }

    /// Claim for deletion, under `claim_id`, those candidates that no row records,
    /// that no scheduled deletion owns and that no other live claim names; the
    /// claimer's own upload claims on them become delete claims. Returns the keys
    /// granted: delete them from the store, then [`Metadata::release_claim`].
    ///
    /// Of a repository that no longer exists every candidate is granted (and
    /// nothing recorded): its rows and claims went with it, and as ids are never
    /// reused no row will ever record its keys again. That is how what a push
    /// or compaction in flight uploaded after the repository's deletion swept
    /// its prefix still goes.
    pub async fn claim_delete(
        &self,
        repo_id: &str,
        claim_id: &str,
        candidates: &[DeleteCandidate],
        lease_secs: u64,
    ) -> Result<Vec<String>> {
        self.timed("claim_delete", async {
            let mut tx = self.begin_write().await?;
            if !lock_repo(&mut tx, repo_id).await? {
                return Ok(candidates.iter().map(|c| c.key.clone()).collect());
            }
            let now = now_secs();
            drop_lapsed(&mut tx, repo_id, now).await?;
            let expires = now.saturating_add(lease(lease_secs));
            let mut granted = Vec::new();
            for candidate in candidates {
                let recorded = match &candidate.recorded {
                    Recorded::Pack(hash) => sqlx::query(
                        "SELECT 1 AS one FROM packs WHERE repo_id = $1 AND pack_hash = $2",
                    )
                    .bind(repo_id)
                    .bind(oid_hex(hash))
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some(),
                    Recorded::PackGraph(hash) => sqlx::query(
                        "SELECT 1 AS one FROM packs \
                         WHERE repo_id = $1 AND pack_hash = $2 AND graph_bytes IS NOT NULL",
                    )
                    .bind(repo_id)
                    .bind(oid_hex(hash))
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some(),
                    Recorded::Loose(oid) => sqlx::query(
                        "SELECT 1 AS one FROM loose_objects WHERE repo_id = $1 AND oid = $2",
                    )
                    .bind(repo_id)
                    .bind(oid_hex(oid))
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some(),
                    Recorded::Lfs(oid) => sqlx::query(
                        "SELECT 1 AS one FROM lfs_objects WHERE repo_id = $1 AND oid = $2",
                    )
                    .bind(repo_id)
                    .bind(oid)
                    .fetch_optional(&mut *tx)
                    .await?
                    .is_some(),
                    Recorded::Nothing => false,
                };
                if recorded {
                    continue;
                }
                let owned = sqlx::query(
                    "SELECT 1 AS one FROM pending_deletions WHERE repo_id = $1 AND object_key = $2",
                )
                .bind(repo_id)
                .bind(&candidate.key)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
                let claimed = sqlx::query(
                    "SELECT 1 AS one FROM store_claims WHERE repo_id = $1 AND object_key = $2 \
                     AND claim_id <> $3",
                )
                .bind(repo_id)
                .bind(&candidate.key)
                .bind(claim_id)
                .fetch_optional(&mut *tx)
                .await?
                .is_some();
                if owned || claimed {
                    continue;
                }
                put_claim(
                    &mut tx,
                    repo_id,
                    &candidate.key,
                    claim_id,
                    "delete",
                    expires,
                )
                .await?;
                granted.push(candidate.key.clone());
            }
            tx.commit().await?;
            Ok(granted)
        })
        .await
    }

    /// Extend every lease of `claim_id` to `lease_secs` from now.
    pub async fn renew_claim(&self, claim_id: &str, lease_secs: u64) -> Result<()> {
        self.timed("renew_claim", async {
            sqlx::query("UPDATE store_claims SET expires_at = $1 WHERE claim_id = $2")
                .bind(now_secs().saturating_add(lease(lease_secs)))
                .bind(claim_id)
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await
    }

    /// Drop every lease of `claim_id`.
    pub async fn release_claim(&self, claim_id: &str) -> Result<()> {
        self.timed("release_claim", async {
            sqlx::query("DELETE FROM store_claims WHERE claim_id = $1")
                .bind(claim_id)
                .execute(self.pool())
                .await?;
            Ok(())
        })
        .await
    }

    /// Live claims on a repository's keys: `(key, purpose)`, for tests and tools.
    pub async fn live_claims(&self, repo_id: &str) -> Result<Vec<(String, String)>> {
        self.timed("live_claims", async {
            let rows = sqlx::query(
                "SELECT object_key, purpose FROM store_claims WHERE repo_id = $1 AND expires_at >= $2 \
                 ORDER BY object_key, purpose",
            )
            .bind(repo_id)
            .bind(now_secs())
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|row| {
                    Ok((
                        crate::util::get_str(row, "object_key")?,
                        crate::util::get_str(row, "purpose")?,
                    ))
                })
                .collect()
        })
        .await
    }
}

fn lease(secs: u64) -> i64 {
    i64::try_from(secs).unwrap_or(i64::MAX)
}

/// Lock the repository row for the rest of the transaction; false when it is gone.
async fn lock_repo(conn: &mut sqlx::AnyConnection, repo_id: &str) -> Result<bool> {
    let locked = sqlx::query("UPDATE repositories SET head_ref = head_ref WHERE id = $1")
        .bind(repo_id)
        .execute(conn)
        .await?;
    Ok(locked.rows_affected() == 1)
}

/// Record (or turn into) a claim of `purpose` on one key.
async fn put_claim(
    conn: &mut sqlx::AnyConnection,
    repo_id: &str,
    key: &str,
    claim_id: &str,
    purpose: &str,
    expires: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO store_claims (repo_id, object_key, claim_id, purpose, expires_at) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (repo_id, object_key, claim_id) DO UPDATE SET purpose = $4, expires_at = $5",
    )
    .bind(repo_id)
    .bind(key)
    .bind(claim_id)
    .bind(purpose)
    .bind(expires)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forget the leases of a repository that ran out: their holders died.
async fn drop_lapsed(conn: &mut sqlx::AnyConnection, repo_id: &str, now: i64) -> Result<()> {
    sqlx::query("DELETE FROM store_claims WHERE repo_id = $1 AND expires_at < $2")
        .bind(repo_id)
        .bind(now)
        .execute(conn)
        .await?;
    Ok(())
}
