//! The pack list and the loose-object index of each repository.
//!
//! For: knowing which packs and loose objects a repository has without
//! listing the object store (no S3 LIST on the hot path), and the numbers
//! behind the stats endpoint. Rows are added by [`Metadata::commit_push`]
//! and fork, removed with the repository. Not for: object bytes, pack
//! indexes, or which pack holds which object (that is in the `.idx`).

use gix_hash::ObjectId;
use serde::Serialize;

use sqlx::{AnyConnection, AssertSqlSafe};

use crate::util::{
    get_i64, get_oid, get_opt_oid, get_opt_u64, get_str, get_u64, oid_hex, to_db_u64, value_rows,
    ROWS_PER_INSERT,
};
use crate::{Error, Metadata, RefRecord, Result};

/// The object types a loose object may have, as stored in `object_type`.
pub const OBJECT_KINDS: [&str; 4] = ["commit", "tree", "blob", "tag"];

pub(crate) fn check_kind(kind: &str) -> Result<()> {
    if OBJECT_KINDS.contains(&kind) {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "object type {kind:?} is not one of commit, tree, blob, tag"
        )))
    }
}

/// The packs of a repository, oldest first, read on `conn`.
pub(crate) async fn select_packs(
    conn: &mut AnyConnection,
    repo_id: &str,
) -> Result<Vec<PackRecord>> {
    let rows = sqlx::query(
        "SELECT pack_hash, object_count, pack_bytes, index_bytes, created_at, closure_of, graph_bytes \
         FROM packs WHERE repo_id = $1 ORDER BY created_at, pack_hash",
    )
    .bind(repo_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(PackRecord {
                pack_hash: get_oid(row, "pack_hash")?,
                object_count: get_u64(row, "object_count")?,
                pack_bytes: get_u64(row, "pack_bytes")?,
                index_bytes: get_u64(row, "index_bytes")?,
                created_at: get_i64(row, "created_at")?,
                closure_of: get_opt_oid(row, "closure_of")?,
                graph_bytes: get_opt_u64(row, "graph_bytes")?,
            })
        })
        .collect()
}

/// The loose objects of a repository, by id, read on `conn`.
pub(crate) async fn select_loose(
    conn: &mut AnyConnection,
    repo_id: &str,
) -> Result<Vec<LooseRecord>> {
    let rows = sqlx::query(
        "SELECT oid, object_type, size, created_at \
         FROM loose_objects WHERE repo_id = $1 ORDER BY oid",
    )
    .bind(repo_id)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(LooseRecord {
                oid: get_oid(row, "oid")?,
                kind: get_str(row, "object_type")?,
                size: get_u64(row, "size")?,
                created_at: get_i64(row, "created_at")?,
            })
        })
        .collect()
}

/// Records a pack on `conn` (inside the caller's transaction). Recording the
/// same pack twice is a no-op: a retried push must not fail on it.
pub(crate) async fn insert_pack(
    conn: &mut AnyConnection,
    repo_id: &str,
    pack: &PackRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO packs (repo_id, pack_hash, object_count, pack_bytes, index_bytes, created_at, closure_of, graph_bytes) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
    )
    .bind(repo_id)
    .bind(oid_hex(&pack.pack_hash))
    .bind(to_db_u64(pack.object_count, "pack object count")?)
    .bind(to_db_u64(pack.pack_bytes, "pack size")?)
    .bind(to_db_u64(pack.index_bytes, "pack index size")?)
    .bind(pack.created_at)
    .bind(pack.closure_of.as_ref().map(oid_hex))
    .bind(
        pack.graph_bytes
            .map(|b| to_db_u64(b, "commit-graph size"))
            .transpose()?,
    )
    .execute(conn)
    .await?;
    Ok(())
}

/// What a pack is recorded as holding: exactly the objects some tips reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackClosure {
    /// The tips' closure key ([`PackRecord::closure_of`]).
    pub key: ObjectId,
    /// The tips: every object they reach is in the pack, and nothing else.
    pub tips: Vec<ObjectId>,
    /// The refs that pointed at those tips then, by name: a bundle of the pack
    /// lists them in its header (see [`Metadata::closure_refs`]).
    pub refs: Vec<RefRecord>,
}

/// Records the tips a pack is the closure of, in batches (a repository may have
/// many thousands of refs).
pub(crate) async fn insert_closure(
    conn: &mut AnyConnection,
    repo_id: &str,
    pack: &ObjectId,
    closure: &PackClosure,
) -> Result<()> {
    insert_closure_tips(conn, repo_id, pack, &closure.tips).await?;
    insert_closure_refs(conn, repo_id, pack, &closure.refs).await
}

async fn insert_closure_refs(
    conn: &mut AnyConnection,
    repo_id: &str,
    pack: &ObjectId,
    refs: &[RefRecord],
) -> Result<()> {
    for chunk in refs.chunks(ROWS_PER_INSERT / 2) {
        let sql = format!(
            "INSERT INTO pack_closure_refs (repo_id, pack_hash, name, oid) VALUES {} ON CONFLICT DO NOTHING",
            value_rows(chunk.len(), 2, 2)
        );
        // Only placeholders are formatted into the statement.
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(repo_id)
            .bind(oid_hex(pack));
        for r in chunk {
            query = query.bind(r.name.as_str()).bind(oid_hex(&r.oid));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

async fn insert_closure_tips(
    conn: &mut AnyConnection,
    repo_id: &str,
    pack: &ObjectId,
    tips: &[ObjectId],
) -> Result<()> {
    let mut tips: Vec<&ObjectId> = tips.iter().collect();
    tips.sort();
    tips.dedup();
    for chunk in tips.chunks(ROWS_PER_INSERT) {
        let sql = format!(
            "INSERT INTO pack_closure_tips (repo_id, pack_hash, oid) VALUES {} ON CONFLICT DO NOTHING",
            value_rows(chunk.len(), 2, 1)
        );
        // Only placeholders are formatted into the statement.
        let mut query = sqlx::query(AssertSqlSafe(sql))
            .bind(repo_id)
            .bind(oid_hex(pack));
        for tip in chunk {
            query = query.bind(oid_hex(tip));
        }
        query.execute(&mut *conn).await?;
    }
    Ok(())
}

/// Records a loose object on `conn` (inside the caller's transaction);
/// idempotent like [`insert_pack`].
pub(crate) async fn insert_loose(
    conn: &mut AnyConnection,
    repo_id: &str,
    oid: &ObjectId,
    kind: &str,
    size: u64,
    created_at: i64,
) -> Result<()> {
    check_kind(kind)?;
    sqlx::query(
        "INSERT INTO loose_objects (repo_id, oid, object_type, size, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(repo_id)
    .bind(oid_hex(oid))
    .bind(kind)
    .bind(to_db_u64(size, "object size")?)
    .bind(created_at)
    .execute(conn)
    .await?;
    Ok(())
}

/// A stored pack: `{repo_id}/pack/pack-{pack_hash}.pack` and `.idx`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct PackRecord {
    /// The pack's own checksum (its trailer), which names its files.
    pub pack_hash: ObjectId,
    pub object_count: u64,
    pub pack_bytes: u64,
    pub index_bytes: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// When the pack holds exactly the objects reachable from a set of tips:
    /// that set's digest (`gitclaw_pack::repack::closure_key`).
    pub closure_of: Option<ObjectId>,
    /// Bytes of the pack's commit-graph (`pack-{hash}.graph`), when it has one.
    #[serde(default)]
    pub graph_bytes: Option<u64>,
}

/// A stored loose object: `{repo_id}/objects/{oid[0:2]}/{oid[2:]}`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize)]
pub struct LooseRecord {
    pub oid: ObjectId,
    /// `commit`, `tree`, `blob` or `tag`.
    pub kind: String,
    /// Inflated size of the object's content, as in its header.
    pub size: u64,
    /// Unix seconds.
    pub created_at: i64,
}

/// What a repository stores, for the stats endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RepoStats {
    /// Number of packs.
    pub packs: u64,
    /// Number of loose objects.
    pub loose_objects: u64,
    /// Objects in all packs plus loose objects. An object stored twice
    /// (in two packs, or packed and loose) counts twice.
    pub object_count: u64,
    /// `pack_bytes + index_bytes + loose_bytes`.
    pub stored_bytes: u64,
    /// Sum of the packs' sizes.
    pub pack_bytes: u64,
    /// Sum of the pack indexes' sizes.
    pub index_bytes: u64,
    /// Sum of the loose objects' inflated sizes (their compressed size is not
    /// recorded, so this over-counts what the store holds).
    pub loose_bytes: u64,
}

impl Metadata {
    /// The repository's packs, oldest first (ties by hash).
    pub async fn list_packs(&self, repo_id: &str) -> Result<Vec<PackRecord>> {
        self.timed("list_packs", async {
            select_packs(&mut *self.pool().acquire().await?, repo_id).await
        })
        .await
    }

    /// Record that `pack` holds exactly the objects reachable from the
    /// closure's tips, and (`graph_bytes`) that its commit-graph is now stored
    /// beside it.
    pub async fn record_closure(
        &self,
        repo_id: &str,
        pack: &ObjectId,
        closure: &PackClosure,
        graph_bytes: Option<u64>,
    ) -> Result<()> {
        let graph_bytes = graph_bytes
            .map(|b| to_db_u64(b, "commit-graph size"))
            .transpose()?;
        self.timed("record_closure", async {
            let mut tx = self.begin_write().await?;
            let updated = sqlx::query(
                "UPDATE packs SET closure_of = $1, graph_bytes = COALESCE($4, graph_bytes) \
                 WHERE repo_id = $2 AND pack_hash = $3",
            )
            .bind(oid_hex(&closure.key))
            .bind(repo_id)
            .bind(oid_hex(pack))
            .bind(graph_bytes)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if updated == 1 {
                insert_closure(&mut tx, repo_id, pack, closure).await?;
            }
            tx.commit().await?;
            Ok(())
        })
        .await
    }

    /// The tips a pack was recorded as the closure of (empty when none were).
    pub async fn closure_tips(&self, repo_id: &str, pack: &ObjectId) -> Result<Vec<ObjectId>> {
        self.timed("closure_tips", async {
            let rows = sqlx::query(
                "SELECT oid FROM pack_closure_tips WHERE repo_id = $1 AND pack_hash = $2 ORDER BY oid",
            )
            .bind(repo_id)
            .bind(oid_hex(pack))
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(|row| get_oid(row, "oid")).collect()
        })
        .await
    }

    /// The refs a pack was recorded as the closure of, by name, sorted by name
    /// (empty when none were, as for packs recorded before names were kept).
    pub async fn closure_refs(&self, repo_id: &str, pack: &ObjectId) -> Result<Vec<RefRecord>> {
        self.timed("closure_refs", async {
            let rows = sqlx::query(
                "SELECT name, oid FROM pack_closure_refs WHERE repo_id = $1 AND pack_hash = $2 ORDER BY name",
            )
            .bind(repo_id)
            .bind(oid_hex(pack))
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(crate::refs::ref_from_row).collect()
        })
        .await
    }

    /// The repository's loose objects, sorted by id.
    pub async fn list_loose(&self, repo_id: &str) -> Result<Vec<LooseRecord>> {
        self.timed("list_loose", async {
            select_loose(&mut *self.pool().acquire().await?, repo_id).await
        })
        .await
    }

    /// Whether the repository has `oid` as a loose object.
    pub async fn loose_exists(&self, repo_id: &str, oid: &ObjectId) -> Result<bool> {
        self.timed("loose_exists", async {
            let row =
                sqlx::query("SELECT 1 AS one FROM loose_objects WHERE repo_id = $1 AND oid = $2")
                    .bind(repo_id)
                    .bind(oid_hex(oid))
                    .fetch_optional(self.pool())
                    .await?;
            Ok(row.is_some())
        })
        .await
    }

    /// Counts and sizes of what the repository stores. All zero for an
    /// unknown repository.
    pub async fn repo_stats(&self, repo_id: &str) -> Result<RepoStats> {
        self.timed("repo_stats", async {
            // SUM over BIGINT is NUMERIC on PostgreSQL, which `Any` cannot read:
            // cast back to BIGINT.
            let packs = sqlx::query(
                "SELECT COUNT(*) AS n, \
                        CAST(COALESCE(SUM(object_count), 0) AS BIGINT) AS objects, \
                        CAST(COALESCE(SUM(pack_bytes), 0) AS BIGINT) AS pack_bytes, \
                        CAST(COALESCE(SUM(index_bytes), 0) AS BIGINT) AS index_bytes \
                 FROM packs WHERE repo_id = $1",
            )
            .bind(repo_id)
            .fetch_one(self.pool())
            .await?;
            let loose = sqlx::query(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(size), 0) AS BIGINT) AS bytes \
                 FROM loose_objects WHERE repo_id = $1",
            )
            .bind(repo_id)
            .fetch_one(self.pool())
            .await?;

            let packs_n = get_u64(&packs, "n")?;
            let pack_objects = get_u64(&packs, "objects")?;
            let pack_bytes = get_u64(&packs, "pack_bytes")?;
            let index_bytes = get_u64(&packs, "index_bytes")?;
            let loose_n = get_u64(&loose, "n")?;
            let loose_bytes = get_u64(&loose, "bytes")?;
            Ok(RepoStats {
                packs: packs_n,
                loose_objects: loose_n,
                object_count: pack_objects.saturating_add(loose_n),
                stored_bytes: pack_bytes
                    .saturating_add(index_bytes)
                    .saturating_add(loose_bytes),
                pack_bytes,
                index_bytes,
                loose_bytes,
            })
        })
        .await
    }

    /// The `limit` repositories storing the most bytes (Git and LFS objects),
    /// largest first: for per-repository metrics, read from the database alone
    /// (never the store).
    pub async fn largest_repos(&self, limit: u32) -> Result<Vec<RepoSize>> {
        self.timed("largest_repos", async {
            let rows = sqlx::query(
                "SELECT r.owner AS owner, r.name AS name, \
                        CAST(COALESCE(p.objects, 0) + COALESCE(l.n, 0) AS BIGINT) AS objects, \
                        CAST(COALESCE(p.bytes, 0) + COALESCE(l.bytes, 0) AS BIGINT) AS bytes, \
                        CAST(COALESCE(f.n, 0) AS BIGINT) AS lfs_objects, \
                        CAST(COALESCE(f.bytes, 0) AS BIGINT) AS lfs_bytes \
                 FROM repositories r \
                 LEFT JOIN (SELECT repo_id, SUM(object_count) AS objects, \
                                   SUM(pack_bytes + index_bytes) AS bytes \
                            FROM packs GROUP BY repo_id) p ON p.repo_id = r.id \
                 LEFT JOIN (SELECT repo_id, COUNT(*) AS n, SUM(size) AS bytes \
                            FROM loose_objects GROUP BY repo_id) l ON l.repo_id = r.id \
                 LEFT JOIN (SELECT repo_id, COUNT(*) AS n, SUM(size) AS bytes \
                            FROM lfs_objects GROUP BY repo_id) f ON f.repo_id = r.id \
                 ORDER BY COALESCE(p.bytes, 0) + COALESCE(l.bytes, 0) + COALESCE(f.bytes, 0) DESC, \
                          r.owner, r.name LIMIT $1",
            )
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
            rows.iter()
                .map(|row| {
                    Ok(RepoSize {
                        owner: get_str(row, "owner")?,
                        name: get_str(row, "name")?,
                        objects: get_u64(row, "objects")?,
                        bytes: get_u64(row, "bytes")?,
                        lfs_objects: get_u64(row, "lfs_objects")?,
                        lfs_bytes: get_u64(row, "lfs_bytes")?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Connections of the pool: (open, of which idle).
    pub fn pool_connections(&self) -> (u32, usize) {
        (self.pool().size(), self.pool().num_idle())
    }
}

/// A repository's size as the metadata records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoSize {
    pub owner: String,
    pub name: String,
    pub objects: u64,
    pub bytes: u64,
    /// Its Git LFS objects and their bytes (not in `objects` and `bytes`).
    pub lfs_objects: u64,
    pub lfs_bytes: u64,
}
