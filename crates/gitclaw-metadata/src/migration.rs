//! The legacy object table and the bookkeeping of moving it into the store.
//!
//! Earlier versions kept every object as a row of `repo_objects` (created by
//! them, never by this crate's migrations: on a database without it every
//! legacy query answers "nothing"). `gitclaw migrate` copies the rows into the
//! store in batches; each batch's pack or loose objects are recorded in the
//! same transaction as the `object_migration_log` rows naming the objects it
//! holds, so a run killed at any instant resumes at the first row not logged
//! and no object is copied twice. `repo_migration_status` holds one row per
//! repository with its state, counts and the running migration's lease.
//!
//! For: reading legacy rows (a batch at a time, an index for dual read, one
//! object), recording batches, the state machine pending → in progress →
//! migrated | failed, and dropping the rows of a verified repository. Not
//! for: deciding which reading of a row's bytes is right (the server hashes
//! them), or writing the store.

use futures_util::TryStreamExt;
use gix_hash::ObjectId;
use serde::Serialize;
use sqlx::Row;

use crate::objects::{insert_loose, insert_pack, PackRecord};
use crate::push::{NewLoose, NewPack};
use crate::util::{get_i64, get_oid, get_str, now_secs, oid_hex, to_db_u64};
use crate::{Backend, Error, Metadata, Result};

/// Where a repository's migration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MigrationState {
    /// Legacy rows are waiting; nothing copied yet, or a run was stopped.
    Pending,
    /// A run holds the repository (see [`MigrationStatus::lease_until`]).
    InProgress,
    /// Every row is in the store (or the repository had none).
    Migrated,
    /// A run ended with rows it could not copy (corrupt rows, or an error).
    Failed,
}

impl MigrationState {
    pub fn as_str(self) -> &'static str {
        match self {
            MigrationState::Pending => "pending",
            MigrationState::InProgress => "in_progress",
            MigrationState::Migrated => "migrated",
            MigrationState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Result<Self> {
        Ok(match text {
            "pending" => MigrationState::Pending,
            "in_progress" => MigrationState::InProgress,
            "migrated" => MigrationState::Migrated,
            "failed" => MigrationState::Failed,
            other => {
                return Err(Error::InvalidData(format!(
                    "unknown migration state {other:?}"
                )))
            }
        })
    }
}

/// One repository's row of `repo_migration_status`. Times are unix seconds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MigrationStatus {
    pub repo_id: String,
    pub state: MigrationState,
    /// Legacy rows of the repository when the last run started.
    pub objects_total: u64,
    /// Rows copied into the store (and their SHA-1 checked).
    pub objects_copied: u64,
    /// Bytes of object content copied.
    pub bytes_copied: u64,
    /// Rows no reading of which hashes to their oid.
    pub corrupt_rows: u64,
    /// Batches the running migration has under way (its last report).
    pub batches_in_flight: u64,
    /// Until when the running migration holds the repository.
    pub lease_until: i64,
    pub started_at: Option<i64>,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    /// When `--verify-only` last found every row in the store, byte for byte.
    pub verified_at: Option<i64>,
    /// When the legacy rows were dropped.
    pub source_dropped_at: Option<i64>,
    pub last_error: Option<String>,
}

impl MigrationStatus {
    /// Whether a migration holds the repository right now (in progress with a
    /// lease that has not lapsed).
    pub fn is_running(&self) -> bool {
        self.state == MigrationState::InProgress && self.lease_until > now_secs()
    }
}

/// One row of the legacy table, as stored: `data` is whatever the old server
/// wrote (the content, or zlib of it, or it with git's header).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyRow {
    pub oid: ObjectId,
    pub object_type: String,
    pub size: i64,
    pub data: Vec<u8>,
}

/// The type and size the legacy table claims for an object (dual read's index).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LegacyEntry {
    pub oid: ObjectId,
    pub object_type: String,
    pub size: i64,
}

/// What happened to one legacy row in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RowOutcome {
    /// In the store, `bytes` of content, its SHA-1 checked.
    Copied { bytes: u64 },
    /// Not copied: no reading hashes to the oid; `detail` says what was tried.
    Corrupt { detail: String },
}

/// A batch of legacy rows dealt with: what was stored for it, and each row's outcome.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MigrationBatch {
    pub repo_id: String,
    pub pack: Option<NewPack>,
    pub loose: Vec<NewLoose>,
    pub rows: Vec<(ObjectId, RowOutcome)>,
}

/// Whether a run could take a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MigrationStart {
    /// Taken: the run holds the lease.
    Taken(MigrationStatus),
    /// Another run holds it until `lease_until`.
    Held { lease_until: i64 },
    /// Already migrated; nothing to do.
    Migrated(MigrationStatus),
    /// No such repository.
    NoRepository,
}

/// Log rows written by one statement (five parameters each, well under
/// PostgreSQL's and SQLite's limits).
const LOG_ROWS_PER_STATEMENT: usize = 1000;

const STATUS_COLUMNS: &str =
    "repo_id, state, objects_total, objects_copied, bytes_copied, corrupt_rows, \
     batches_in_flight, lease_until, started_at, updated_at, finished_at, verified_at, \
     source_dropped_at, last_error";

fn status_from_row(row: &sqlx::any::AnyRow) -> Result<MigrationStatus> {
    let count = |col: &str| -> Result<u64> { crate::util::get_u64(row, col) };
    let optional = |col: &str| -> Result<Option<i64>> { Ok(row.try_get::<Option<i64>, _>(col)?) };
    Ok(MigrationStatus {
        repo_id: get_str(row, "repo_id")?,
        state: MigrationState::parse(&get_str(row, "state")?)?,
        objects_total: count("objects_total")?,
        objects_copied: count("objects_copied")?,
        bytes_copied: count("bytes_copied")?,
        corrupt_rows: count("corrupt_rows")?,
        batches_in_flight: count("batches_in_flight")?,
        lease_until: get_i64(row, "lease_until")?,
        started_at: optional("started_at")?,
        updated_at: get_i64(row, "updated_at")?,
        finished_at: optional("finished_at")?,
        verified_at: optional("verified_at")?,
        source_dropped_at: optional("source_dropped_at")?,
        last_error: row.try_get::<Option<String>, _>("last_error")?,
    })
}

/// Whether the legacy `repo_objects` table exists, asked on `conn` (which may
/// be inside a transaction: a pool of one connection has no other).
pub(crate) async fn legacy_table_exists(
    conn: &mut sqlx::AnyConnection,
    backend: Backend,
) -> Result<bool> {
    let sql = match backend {
        Backend::Postgres => {
            "SELECT COUNT(*) AS n FROM information_schema.tables \
             WHERE table_name = 'repo_objects' AND table_schema = ANY (current_schemas(false))"
        }
        Backend::Sqlite => {
            "SELECT COUNT(*) AS n FROM sqlite_master WHERE type = 'table' AND name = 'repo_objects'"
        }
    };
    let row = sqlx::query(sql).fetch_one(conn).await?;
    Ok(get_i64(&row, "n")? > 0)
}

/// The condition "row `r` is not in the migration log" (with `extra` on the
/// log row). On PostgreSQL the subquery is kept a subquery (`OFFSET 0`): one
/// index probe of the log per row. Planned as an anti-join instead, with
/// statistics from before the log grew, it can become a nested loop reading the
/// whole log for every row — quadratic in the repository's size.
fn not_logged(backend: Backend, extra: &str) -> String {
    let fence = match backend {
        Backend::Postgres => " OFFSET 0",
        Backend::Sqlite => "",
    };
    format!(
        "NOT EXISTS (SELECT 1 FROM object_migration_log l \
         WHERE l.repo_id = r.repo_id AND l.oid = r.oid {extra}{fence})"
    )
}

impl Metadata {
    /// Whether the database has the legacy `repo_objects` table. Asked once
    /// per handle (and its clones): a table created later is seen by the next
    /// process, as the server sees it at start.
    pub async fn has_legacy_table(&self) -> Result<bool> {
        let exists = self.legacy_table.get_or_try_init(|| {
            self.timed("has_legacy_table", async {
                let mut conn = self.pool().acquire().await?;
                legacy_table_exists(&mut conn, self.backend()).await
            })
        });
        Ok(*exists.await?)
    }

    /// Every repository with legacy rows, with how many it has (ordered by id).
    pub async fn legacy_repos(&self) -> Result<Vec<(String, u64)>> {
        self.timed("legacy_repos", async {
            if !self.has_legacy_table().await? {
                return Ok(Vec::new());
            }
            let rows = sqlx::query(
                "SELECT repo_id, COUNT(*) AS n FROM repo_objects GROUP BY repo_id ORDER BY repo_id",
            )
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|row| Ok((get_str(row, "repo_id")?, crate::util::get_u64(row, "n")?)))
                .collect()
        })
        .await
    }

    /// How many legacy rows the repository has, and how many of them the
    /// migration log records as copied.
    pub async fn legacy_counts(&self, repo_id: &str) -> Result<(u64, u64)> {
        self.timed("legacy_counts", async {
            if !self.has_legacy_table().await? {
                return Ok((0, 0));
            }
            let row = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM repo_objects WHERE repo_id = $1) AS total, \
                 (SELECT COUNT(*) FROM object_migration_log WHERE repo_id = $1 AND outcome = 'copied') AS copied",
            )
            .bind(repo_id)
            .fetch_one(self.pool())
            .await?;
            Ok((
                crate::util::get_u64(&row, "total")?,
                crate::util::get_u64(&row, "copied")?,
            ))
        })
        .await
    }

    /// The next legacy rows of the repository after `after` (by oid), at most
    /// `max_rows` of them and — past the first — no more than `max_bytes` of
    /// data in all. Rows the log records are left out unless `logged_too`
    /// (verification reads every row). Rows stream from the database, so the
    /// batch's bound is all that is ever held.
    pub async fn legacy_batch(
        &self,
        repo_id: &str,
        after: Option<&ObjectId>,
        max_rows: usize,
        max_bytes: u64,
        logged_too: bool,
    ) -> Result<Vec<LegacyRow>> {
        self.timed("legacy_batch", async {
            let sql = if logged_too {
                "SELECT oid, object_type, size, data FROM repo_objects \
                 WHERE repo_id = $1 AND oid > $2 ORDER BY oid LIMIT $3"
                    .to_string()
            } else {
                format!(
                    "SELECT r.oid, r.object_type, r.size, r.data FROM repo_objects r \
                     WHERE r.repo_id = $1 AND r.oid > $2 AND {} ORDER BY r.oid LIMIT $3",
                    not_logged(self.backend(), "")
                )
            };
            let after = after.map(oid_hex).unwrap_or_default();
            let limit = i64::try_from(max_rows.max(1)).unwrap_or(i64::MAX);
            // Planned afresh for each batch, with its values: a plan cached
            // for any values (a prepared statement's generic plan) can scan the
            // whole log for every row while the log grows under it.
            let mut stream = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(repo_id)
                .bind(after)
                .bind(limit)
                .persistent(false)
                .fetch(self.pool());
            let mut batch = Vec::new();
            let mut bytes = 0u64;
            while let Some(row) = stream.try_next().await? {
                let data: Vec<u8> = row.try_get("data")?;
                bytes += data.len() as u64;
                batch.push(LegacyRow {
                    oid: get_oid(&row, "oid")?,
                    object_type: get_str(&row, "object_type")?,
                    size: get_i64(&row, "size")?,
                    data,
                });
                if bytes >= max_bytes {
                    break;
                }
            }
            Ok(batch)
        })
        .await
    }

    /// The legacy rows of the repository the log does not record as copied:
    /// what dual read must find in the table. Empty without a legacy table.
    pub async fn legacy_index(&self, repo_id: &str) -> Result<Vec<LegacyEntry>> {
        self.timed("legacy_index", async {
            if !self.has_legacy_table().await? {
                return Ok(Vec::new());
            }
            let sql = format!(
                "SELECT r.oid, r.object_type, r.size FROM repo_objects r WHERE r.repo_id = $1 AND {}",
                not_logged(self.backend(), "AND l.outcome = 'copied'")
            );
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(repo_id)
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(LegacyEntry {
                        oid: get_oid(row, "oid")?,
                        object_type: get_str(row, "object_type")?,
                        size: get_i64(row, "size")?,
                    })
                })
                .collect()
        })
        .await
    }

    /// One legacy row, if the table has it.
    pub async fn legacy_object(&self, repo_id: &str, oid: &ObjectId) -> Result<Option<LegacyRow>> {
        self.timed("legacy_object", async {
            let row = sqlx::query(
                "SELECT oid, object_type, size, data FROM repo_objects WHERE repo_id = $1 AND oid = $2",
            )
            .bind(repo_id)
            .bind(oid_hex(oid))
            .fetch_optional(self.pool())
            .await?;
            row.map(|row| {
                Ok(LegacyRow {
                    oid: get_oid(&row, "oid")?,
                    object_type: get_str(&row, "object_type")?,
                    size: get_i64(&row, "size")?,
                    data: row.try_get("data")?,
                })
            })
            .transpose()
        })
        .await
    }

    /// The repository's migration row, if a migration has touched it.
    pub async fn migration_status(&self, repo_id: &str) -> Result<Option<MigrationStatus>> {
        self.timed("migration_status", async {
            let sql =
                format!("SELECT {STATUS_COLUMNS} FROM repo_migration_status WHERE repo_id = $1");
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(repo_id)
                .fetch_optional(self.pool())
                .await?;
            row.as_ref().map(status_from_row).transpose()
        })
        .await
    }

    /// Every migration row, by repository id.
    pub async fn list_migration_status(&self) -> Result<Vec<MigrationStatus>> {
        self.timed("list_migration_status", async {
            let sql =
                format!("SELECT {STATUS_COLUMNS} FROM repo_migration_status ORDER BY repo_id");
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(self.pool())
                .await?;
            rows.iter().map(status_from_row).collect()
        })
        .await
    }

    /// Take the repository for a migration run under a lease of `lease_secs`
    /// (unless another run holds it, or it is migrated already), with
    /// `objects_total` legacy rows. The counts carry on from earlier runs.
    pub async fn start_migration(
        &self,
        repo_id: &str,
        objects_total: u64,
        lease_secs: u64,
    ) -> Result<MigrationStart> {
        self.timed("start_migration", async {
            let now = now_secs();
            let mut tx = self.begin_write().await?;
            let exists = sqlx::query("UPDATE repositories SET state = state WHERE id = $1 AND state = 'active'")
                .bind(repo_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if exists == 0 {
                return Ok(MigrationStart::NoRepository);
            }
            sqlx::query(
                "INSERT INTO repo_migration_status (repo_id, state, updated_at) VALUES ($1, 'pending', $2) \
                 ON CONFLICT DO NOTHING",
            )
            .bind(repo_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            let sql = format!("SELECT {STATUS_COLUMNS} FROM repo_migration_status WHERE repo_id = $1");
            let current = status_from_row(
                &sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(repo_id)
                    .fetch_one(&mut *tx)
                    .await?,
            )?;
            if current.state == MigrationState::Migrated {
                return Ok(MigrationStart::Migrated(current));
            }
            if current.is_running() {
                return Ok(MigrationStart::Held {
                    lease_until: current.lease_until,
                });
            }
            let lease_until = now + i64::try_from(lease_secs).unwrap_or(i64::MAX / 2);
            let sql = format!(
                "UPDATE repo_migration_status SET state = 'in_progress', lease_until = $2, \
                 objects_total = $3, batches_in_flight = 0, started_at = COALESCE(started_at, $4), \
                 updated_at = $4, finished_at = NULL, last_error = NULL WHERE repo_id = $1 \
                 RETURNING {STATUS_COLUMNS}"
            );
            let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(repo_id)
                .bind(lease_until)
                .bind(to_db_u64(objects_total, "object count")?)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
            let taken = status_from_row(&row)?;
            tx.commit().await?;
            Ok(MigrationStart::Taken(taken))
        })
        .await
    }

    /// Extend the running migration's lease and report its batches in flight.
    pub async fn renew_migration(
        &self,
        repo_id: &str,
        lease_secs: u64,
        batches_in_flight: u64,
    ) -> Result<()> {
        self.timed("renew_migration", async {
            let now = now_secs();
            sqlx::query(
                "UPDATE repo_migration_status SET lease_until = $2, batches_in_flight = $3, updated_at = $4 \
                 WHERE repo_id = $1 AND state = 'in_progress'",
            )
            .bind(repo_id)
            .bind(now + i64::try_from(lease_secs).unwrap_or(i64::MAX / 2))
            .bind(to_db_u64(batches_in_flight, "batches")?)
            .bind(now)
            .execute(self.pool())
            .await?;
            Ok(())
        })
        .await
    }

    /// Record a batch in one transaction: its pack or loose objects (as a push
    /// records them), a log row per legacy row, and the counts. A row already
    /// logged (a batch redone after a crash between upload and commit cannot
    /// meet one, but two runs racing could) is left as it was and not counted.
    pub async fn record_migration_batch(&self, batch: &MigrationBatch) -> Result<()> {
        self.timed("record_migration_batch", async {
            let now = now_secs();
            let mut tx = self.begin_write().await?;
            let pack_hash = batch.pack.as_ref().map(|p| oid_hex(&p.pack_hash));
            if let Some(pack) = &batch.pack {
                let record: PackRecord = pack.record(now, None);
                insert_pack(&mut tx, &batch.repo_id, &record).await?;
            }
            for loose in &batch.loose {
                insert_loose(&mut tx, &batch.repo_id, &loose.oid, &loose.kind, loose.size, now).await?;
            }
            let (mut copied, mut bytes, mut corrupt) = (0i64, 0i64, 0i64);
            // Many rows a statement: a batch logs thousands of rows, and one
            // round trip each would be most of a migration's time.
            for chunk in batch.rows.chunks(LOG_ROWS_PER_STATEMENT) {
                let mut sql = String::from(
                    "INSERT INTO object_migration_log \
                     (repo_id, oid, outcome, bytes, pack_hash, detail, created_at) VALUES ",
                );
                for i in 0..chunk.len() {
                    let at = 3 + i * 5;
                    if i > 0 {
                        sql.push_str(", ");
                    }
                    sql.push_str(&format!(
                        "($1, ${}, ${}, ${}, ${}, ${}, $2)",
                        at,
                        at + 1,
                        at + 2,
                        at + 3,
                        at + 4
                    ));
                }
                sql.push_str(" ON CONFLICT DO NOTHING RETURNING outcome, bytes");
                // Only placeholders are formatted into the statement.
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(&batch.repo_id)
                    .bind(now);
                for (oid, outcome) in chunk {
                    let (label, size, detail) = match outcome {
                        RowOutcome::Copied { bytes } => {
                            ("copied", to_db_u64(*bytes, "object size")?, None)
                        }
                        RowOutcome::Corrupt { detail } => ("corrupt", 0, Some(detail.clone())),
                    };
                    query = query
                        .bind(oid_hex(oid))
                        .bind(label)
                        .bind(size)
                        .bind(if label == "copied" { pack_hash.clone() } else { None })
                        .bind(detail);
                }
                // Rows already logged (two runs racing) are not returned, so not counted.
                for row in query.fetch_all(&mut *tx).await? {
                    if get_str(&row, "outcome")? == "copied" {
                        copied += 1;
                        bytes += get_i64(&row, "bytes")?;
                    } else {
                        corrupt += 1;
                    }
                }
            }
            sqlx::query(
                "UPDATE repo_migration_status SET objects_copied = objects_copied + $2, \
                 bytes_copied = bytes_copied + $3, corrupt_rows = corrupt_rows + $4, updated_at = $5 \
                 WHERE repo_id = $1",
            )
            .bind(&batch.repo_id)
            .bind(copied)
            .bind(bytes)
            .bind(corrupt)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// End a run: `Migrated`, `Failed` (with why) or `Pending` (stopped).
    pub async fn finish_migration(
        &self,
        repo_id: &str,
        state: MigrationState,
        error: Option<&str>,
    ) -> Result<()> {
        self.timed("finish_migration", async {
            let now = now_secs();
            sqlx::query(
                "UPDATE repo_migration_status SET state = $2, lease_until = 0, batches_in_flight = 0, \
                 updated_at = $3, finished_at = $4, last_error = $5 WHERE repo_id = $1",
            )
            .bind(repo_id)
            .bind(state.as_str())
            .bind(now)
            .bind((state != MigrationState::Pending).then_some(now))
            .bind(error)
            .execute(self.pool())
            .await?;
            Ok(())
        })
        .await
    }

    /// Forget what the log says of the repository's corrupt rows, so a new
    /// run looks at them again (after an operator repaired them).
    pub async fn retry_corrupt_rows(&self, repo_id: &str) -> Result<u64> {
        self.timed("retry_corrupt_rows", async {
            let mut tx = self.begin_write().await?;
            let removed = sqlx::query(
                "DELETE FROM object_migration_log WHERE repo_id = $1 AND outcome = 'corrupt'",
            )
            .bind(repo_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            sqlx::query("UPDATE repo_migration_status SET corrupt_rows = 0 WHERE repo_id = $1")
                .bind(repo_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(removed)
        })
        .await
    }

    /// Note that every legacy row was found in the store, byte for byte.
    pub async fn mark_migration_verified(&self, repo_id: &str) -> Result<()> {
        self.timed("mark_migration_verified", async {
            let now = now_secs();
            sqlx::query(
                "UPDATE repo_migration_status SET verified_at = $2, updated_at = $2 \
                 WHERE repo_id = $1 AND state = 'migrated'",
            )
            .bind(repo_id)
            .bind(now)
            .execute(self.pool())
            .await?;
            Ok(())
        })
        .await
    }

    /// Delete the repository's legacy rows — only once it is migrated and
    /// verified. Returns how many rows went.
    pub async fn drop_legacy_rows(&self, repo_id: &str) -> Result<u64> {
        self.timed("drop_legacy_rows", async {
            let Some(status) = self.migration_status(repo_id).await? else {
                return Err(Error::InvalidInput(format!(
                    "repository {repo_id} has not been migrated"
                )));
            };
            if status.state != MigrationState::Migrated || status.verified_at.is_none() {
                return Err(Error::InvalidInput(format!(
                    "repository {repo_id} is not migrated and verified; its legacy rows stay"
                )));
            }
            let mut tx = self.begin_write().await?;
            let removed = sqlx::query("DELETE FROM repo_objects WHERE repo_id = $1")
                .bind(repo_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            sqlx::query(
                "UPDATE repo_migration_status SET source_dropped_at = $2 WHERE repo_id = $1",
            )
            .bind(repo_id)
            .bind(now_secs())
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(removed)
        })
        .await
    }
}
