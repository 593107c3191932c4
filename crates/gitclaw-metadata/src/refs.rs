//! Reading refs.
//!
//! For: the ref advertisement and lookups of single refs. Not for: changing
//! refs — every change goes through [`Metadata::commit_push`] (or repository
//! create/fork/delete), so it is compare-and-swapped and audited.
//! Symbolic refs other than HEAD are not stored; HEAD is
//! [`crate::Repo::head_ref`].

use gix_hash::ObjectId;

use sqlx::AnyConnection;

use crate::util::{get_oid, get_str, oid_hex, value_rows, ROWS_PER_INSERT};
use crate::{Metadata, Result};

/// Whether the repository has the ref `name`, as `conn` sees the refs.
pub(crate) async fn ref_exists(
    conn: &mut AnyConnection,
    repo_id: &str,
    name: &str,
) -> Result<bool> {
    Ok(
        sqlx::query("SELECT 1 AS one FROM refs WHERE repo_id = $1 AND name = $2")
            .bind(repo_id)
            .bind(name)
            .fetch_optional(conn)
            .await?
            .is_some(),
    )
}

/// A row of `name` and `oid`.
pub(crate) fn ref_from_row(row: &sqlx::any::AnyRow) -> Result<RefRecord> {
    Ok(RefRecord {
        name: get_str(row, "name")?,
        oid: get_oid(row, "oid")?,
    })
}

/// The refs of a repository, by name, read on `conn`.
pub(crate) async fn select_refs(conn: &mut AnyConnection, repo_id: &str) -> Result<Vec<RefRecord>> {
    let rows = sqlx::query("SELECT name, oid FROM refs WHERE repo_id = $1 ORDER BY name")
        .bind(repo_id)
        .fetch_all(conn)
        .await?;
    rows.iter().map(ref_from_row).collect()
}

/// A ref and the object it points to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RefRecord {
    /// Full name, e.g. `refs/heads/main`.
    pub name: String,
    pub oid: ObjectId,
}

impl Metadata {
    /// Every ref of the repository, sorted bytewise by name (the order Git
    /// advertises them in). Empty for an unknown repository.
    pub async fn list_refs(&self, repo_id: &str) -> Result<Vec<RefRecord>> {
        self.timed("list_refs", async {
            select_refs(&mut *self.pool().acquire().await?, repo_id).await
        })
        .await
    }

    /// What tag-ref objects peel to, as recorded by [`Metadata::record_peeled`]:
    /// object id → the non-tag object it peels to (itself for a non-tag).
    pub async fn peeled_refs(
        &self,
        repo_id: &str,
    ) -> Result<std::collections::HashMap<ObjectId, ObjectId>> {
        self.timed("peeled_refs", async {
            let rows = sqlx::query("SELECT oid, peeled FROM peeled_refs WHERE repo_id = $1")
                .bind(repo_id)
                .fetch_all(self.pool())
                .await?;
            rows.iter()
                .map(|row| Ok((get_oid(row, "oid")?, get_oid(row, "peeled")?)))
                .collect()
        })
        .await
    }

    /// Remember what objects peel to. Content-addressed, so it may be recorded
    /// at any time, more than once, by any server.
    pub async fn record_peeled(
        &self,
        repo_id: &str,
        peeled: &[(ObjectId, ObjectId)],
    ) -> Result<()> {
        self.timed("record_peeled", async {
            // Many rows a statement: a repository's first advertisement may
            // learn hundreds of tags, each a round trip when inserted alone.
            for chunk in peeled.chunks(ROWS_PER_INSERT) {
                let sql = format!(
                    "INSERT INTO peeled_refs (repo_id, oid, peeled) VALUES {} ON CONFLICT DO NOTHING",
                    value_rows(chunk.len(), 1, 2)
                );
                // Only placeholders are formatted into the statement.
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(repo_id);
                for (oid, target) in chunk {
                    query = query.bind(oid_hex(oid)).bind(oid_hex(target));
                }
                query.execute(self.pool()).await?;
            }
            Ok(())
        })
        .await
    }

    /// The object a ref points to, if the ref exists.
    pub async fn get_ref(&self, repo_id: &str, name: &str) -> Result<Option<ObjectId>> {
        self.timed("get_ref", async {
            let row = sqlx::query("SELECT oid FROM refs WHERE repo_id = $1 AND name = $2")
                .bind(repo_id)
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
            row.map(|row| get_oid(&row, "oid")).transpose()
        })
        .await
    }
}
