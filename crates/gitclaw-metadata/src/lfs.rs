//! Git LFS: which LFS objects a repository has, and its file locks.
//!
//! An LFS object is recorded ([`Metadata::record_lfs_object`]) only after the
//! server made sure the store holds its content with the right size and hash;
//! a row is what makes an object downloadable. Locks are one per path of a
//! repository: the unique key `(repo_id, path)` decides a race between two
//! creators, so exactly one wins and the other is shown the winner's lock.
//!
//! Not for: object ids' format (the caller passes 64 lowercase hex digits and
//! the schema checks the length), who may lock or unlock (the server decides),
//! the bytes themselves (the store).

use std::collections::HashMap;

use sqlx::any::AnyRow;

use crate::util::{get_i64, get_str, get_u64, now_secs, to_db_u64};
use crate::{Error, Metadata, Result};

/// How many oids one lookup statement names (bound parameters stay well under
/// every database's limit).
const LOOKUP_CHUNK: usize = 200;

/// A lock on one path of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfsLock {
    pub id: String,
    pub path: String,
    /// Who holds it, as compared to tell one's own locks from others'.
    pub owner_id: String,
    /// Who holds it, as shown.
    pub owner_name: String,
    /// Unix seconds.
    pub locked_at: i64,
}

/// What creating a lock did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockCreated {
    /// The path was free; this is the new lock.
    Created(LfsLock),
    /// The path is already locked, by this lock.
    Exists(LfsLock),
}

/// Which locks to list: all of a repository's, or those on one path, or the
/// one with an id; in id order, after `after` (a cursor: the last id of the
/// previous page), at most `limit`.
#[derive(Debug, Clone, Default)]
pub struct LockFilter<'a> {
    pub path: Option<&'a str>,
    pub id: Option<&'a str>,
    pub after: Option<&'a str>,
    pub limit: u32,
}

/// One LFS object a repository has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LfsRecord {
    /// 64 lowercase hex digits.
    pub oid: String,
    pub size: u64,
    pub created_at: i64,
}

/// Records an LFS object on `conn` (inside the caller's transaction); idempotent.
pub(crate) async fn insert_lfs_object(
    conn: &mut sqlx::AnyConnection,
    repo_id: &str,
    object: &LfsRecord,
) -> Result<()> {
    check_oid(&object.oid)?;
    sqlx::query(
        "INSERT INTO lfs_objects (repo_id, oid, size, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT DO NOTHING",
    )
    .bind(repo_id)
    .bind(&object.oid)
    .bind(to_db_u64(object.size, "LFS object size")?)
    .bind(object.created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A repository's LFS objects, counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LfsUsage {
    pub objects: u64,
    pub bytes: u64,
}

fn lock_from_row(row: &AnyRow) -> Result<LfsLock> {
    Ok(LfsLock {
        id: get_str(row, "id")?,
        path: get_str(row, "path")?,
        owner_id: get_str(row, "owner_id")?,
        owner_name: get_str(row, "owner_name")?,
        locked_at: get_i64(row, "locked_at")?,
    })
}

fn check_oid(oid: &str) -> Result<()> {
    let ok = oid.len() == 64
        && oid
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "{:?} is not an LFS object id",
            oid.escape_default().to_string()
        )))
    }
}

impl Metadata {
    /// Of `oids` (64 lowercase hex digits each), those the repository has,
    /// with their recorded sizes.
    pub async fn lfs_objects(
        &self,
        repo_id: &str,
        oids: &[String],
    ) -> Result<HashMap<String, u64>> {
        self.timed("lfs_objects", async {
            let mut found = HashMap::new();
            for chunk in oids.chunks(LOOKUP_CHUNK) {
                for oid in chunk {
                    check_oid(oid)?;
                }
                let placeholders: Vec<String> =
                    (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
                let sql = format!(
                    "SELECT oid, size FROM lfs_objects WHERE repo_id = $1 AND oid IN ({})",
                    placeholders.join(", ")
                );
                // Only generated placeholders are spliced in; every value is bound.
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(repo_id);
                for oid in chunk {
                    query = query.bind(oid);
                }
                for row in query.fetch_all(self.pool()).await? {
                    found.insert(get_str(&row, "oid")?, get_u64(&row, "size")?);
                }
            }
            Ok(found)
        })
        .await
    }

    /// Every LFS object of the repository, by oid.
    pub async fn list_lfs_objects(&self, repo_id: &str) -> Result<Vec<LfsRecord>> {
        self.timed("list_lfs_objects", async {
            let rows = sqlx::query(
                "SELECT oid, size, created_at FROM lfs_objects WHERE repo_id = $1 ORDER BY oid",
            )
            .bind(repo_id)
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(LfsRecord {
                        oid: get_str(row, "oid")?,
                        size: get_u64(row, "size")?,
                        created_at: get_i64(row, "created_at")?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Record that the repository has the LFS object `oid` of `size` bytes
    /// (its content stored and checked). Recording it again is a no-op;
    /// [`Error::NotFound`] if the repository is gone.
    pub async fn record_lfs_object(&self, repo_id: &str, oid: &str, size: u64) -> Result<()> {
        self.timed("record_lfs_object", async {
            check_oid(oid)?;
            let inserted = sqlx::query(
                "INSERT INTO lfs_objects (repo_id, oid, size, created_at) \
                 SELECT id, $2, $3, $4 FROM repositories WHERE id = $1 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(repo_id)
            .bind(oid)
            .bind(to_db_u64(size, "LFS object size")?)
            .bind(now_secs())
            .execute(self.pool())
            .await?
            .rows_affected();
            if inserted == 0 && self.get_repo_by_id(repo_id).await?.is_none() {
                return Err(Error::NotFound(format!("repository {repo_id}")));
            }
            Ok(())
        })
        .await
    }

    /// How many LFS objects the repository has, and their bytes.
    pub async fn lfs_usage(&self, repo_id: &str) -> Result<LfsUsage> {
        self.timed("lfs_usage", async {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes \
                 FROM lfs_objects WHERE repo_id = $1",
            )
            .bind(repo_id)
            .fetch_one(self.pool())
            .await?;
            usage_of(&row)
        })
        .await
    }

    /// How many LFS objects all repositories have, and their bytes.
    pub async fn lfs_usage_total(&self) -> Result<LfsUsage> {
        self.timed("lfs_usage_total", async {
            let row = sqlx::query(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes \
                 FROM lfs_objects",
            )
            .fetch_one(self.pool())
            .await?;
            usage_of(&row)
        })
        .await
    }

    /// Lock `path` of the repository for `owner_id` (shown as `owner_name`),
    /// unless it is locked already. [`Error::NotFound`] if the repository is gone.
    pub async fn create_lfs_lock(
        &self,
        repo_id: &str,
        path: &str,
        owner_id: &str,
        owner_name: &str,
    ) -> Result<LockCreated> {
        self.timed("create_lfs_lock", async {
            // Two tries: a lock seen by the insert can be removed before it is read.
            for _ in 0..2 {
                let lock = LfsLock {
                    id: uuid::Uuid::new_v4().simple().to_string(),
                    path: path.to_string(),
                    owner_id: owner_id.to_string(),
                    owner_name: owner_name.to_string(),
                    locked_at: now_secs(),
                };
                let inserted = sqlx::query(
                    "INSERT INTO lfs_locks (id, repo_id, path, owner_id, owner_name, locked_at) \
                     SELECT $1, id, $3, $4, $5, $6 FROM repositories WHERE id = $2 \
                     ON CONFLICT DO NOTHING",
                )
                .bind(&lock.id)
                .bind(repo_id)
                .bind(&lock.path)
                .bind(&lock.owner_id)
                .bind(&lock.owner_name)
                .bind(lock.locked_at)
                .execute(self.pool())
                .await?
                .rows_affected();
                if inserted == 1 {
                    return Ok(LockCreated::Created(lock));
                }
                let existing = sqlx::query(
                    "SELECT id, path, owner_id, owner_name, locked_at FROM lfs_locks \
                     WHERE repo_id = $1 AND path = $2",
                )
                .bind(repo_id)
                .bind(path)
                .fetch_optional(self.pool())
                .await?;
                if let Some(row) = existing {
                    return Ok(LockCreated::Exists(lock_from_row(&row)?));
                }
                if self.get_repo_by_id(repo_id).await?.is_none() {
                    return Err(Error::NotFound(format!("repository {repo_id}")));
                }
            }
            Err(Error::AlreadyExists(format!("a lock on {path}")))
        })
        .await
    }

    /// The repository's locks that `filter` selects, in id order.
    pub async fn list_lfs_locks(
        &self,
        repo_id: &str,
        filter: &LockFilter<'_>,
    ) -> Result<Vec<LfsLock>> {
        self.timed("list_lfs_locks", async {
            let rows = sqlx::query(
                "SELECT id, path, owner_id, owner_name, locked_at FROM lfs_locks \
                 WHERE repo_id = $1 \
                   AND ($2 IS NULL OR path = $2) \
                   AND ($3 IS NULL OR id = $3) \
                   AND ($4 IS NULL OR id > $4) \
                 ORDER BY id LIMIT $5",
            )
            .bind(repo_id)
            .bind(filter.path)
            .bind(filter.id)
            .bind(filter.after)
            .bind(i64::from(filter.limit))
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(lock_from_row).collect()
        })
        .await
    }

    /// Remove the lock `id` of the repository; returns it, or `None` if there
    /// was no such lock.
    pub async fn delete_lfs_lock(&self, repo_id: &str, id: &str) -> Result<Option<LfsLock>> {
        self.timed("delete_lfs_lock", async {
            let row = sqlx::query(
                "DELETE FROM lfs_locks WHERE repo_id = $1 AND id = $2 \
                 RETURNING id, path, owner_id, owner_name, locked_at",
            )
            .bind(repo_id)
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
            row.as_ref().map(lock_from_row).transpose()
        })
        .await
    }
}

/// An [`LfsUsage`] from a row of `n` (objects) and `bytes`.
fn usage_of(row: &sqlx::any::AnyRow) -> Result<LfsUsage> {
    Ok(LfsUsage {
        objects: get_u64(row, "n")?,
        bytes: get_u64(row, "bytes")?,
    })
}
