//! Repository rows: create, look up, list, fork, delete.
//!
//! For: the repository's identity (`id`, the storage key prefix, never
//! reused), its `owner/name`, visibility, HEAD and lifecycle state, each
//! change audited in its own transaction. Not for: validating names (the
//! server rejects `..`, `/`, control characters… before calling in), or
//! storage keys — deleting a repository here removes its rows only; the
//! caller removes the bytes under `{id}/`.

use serde::Serialize;
use sqlx::any::AnyRow;

use crate::audit::{self, AuditAction, NewEvent};
use crate::lfs::LfsRecord;
use crate::objects::{check_kind, insert_loose, insert_pack, LooseRecord, PackRecord};
use crate::refs::RefRecord;
use crate::util::{get_bool, get_i64, get_opt_u64, get_str, now_secs, oid_hex};
use crate::{Error, Metadata, Result};

/// HEAD of a new repository.
pub const DEFAULT_HEAD_REF: &str = "refs/heads/main";

/// The columns [`repo_from_row`] reads, for `concat!`.
macro_rules! repo_columns {
    () => {
        "id, owner, name, private, head_ref, state, created_at, cache_version, max_bytes"
    };
}

/// Whose view [`Metadata::list_readable_repos`] lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readers<'a> {
    /// Every repository (admins, an open server, the command line).
    Everyone,
    /// Public repositories only (no credentials).
    Public,
    /// Public repositories and those token `id` has a scope on.
    PublicAndToken(&'a str),
}

/// A repository.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Repo {
    /// UUID v4, the storage key prefix. Stable for the repository's life.
    pub id: String,
    pub owner: String,
    pub name: String,
    pub private: bool,
    /// The ref HEAD points to, e.g. `refs/heads/main`. It may not exist yet
    /// (unborn HEAD).
    pub head_ref: String,
    /// Lifecycle state, `"active"` unless the caller set another with
    /// [`Metadata::set_repo_state`].
    pub state: String,
    /// Unix seconds.
    pub created_at: i64,
    /// Bumped (by the database, in the same transaction) by every change to the
    /// repository's refs, packs or loose objects: what a shared cache keys its
    /// entries of this repository by.
    pub cache_version: i64,
    /// Its own size limit in bytes, over the server's (`None`: the server's;
    /// 0: none).
    pub max_bytes: Option<u64>,
}

/// Everything [`Metadata::fork_repo`] needs. Build `refs`, `packs` and
/// `loose` from [`Metadata::snapshot`] of the source, copy those objects to
/// the new id's prefix, then call `fork_repo`: the new repository then only
/// names objects that were copied.
#[derive(Clone, Debug)]
pub struct ForkRepo {
    /// The new repository's id, from [`Metadata::new_repo_id`], chosen before
    /// the objects are copied under it.
    pub id: String,
    pub source_id: String,
    pub owner: String,
    pub name: String,
    pub private: bool,
    pub head_ref: String,
    pub refs: Vec<RefRecord>,
    pub packs: Vec<PackRecord>,
    pub loose: Vec<LooseRecord>,
    /// LFS objects recorded before the copy of the prefix began (so their
    /// content is in it).
    pub lfs: Vec<LfsRecord>,
    pub actor: String,
}

/// A repository with its refs, packs and loose objects, read in that order
/// so that every listed ref names an object in a listed pack or loose object
/// (objects are recorded no later than the refs that name them).
#[derive(Clone, Debug)]
pub struct RepoSnapshot {
    pub repo: Repo,
    pub refs: Vec<RefRecord>,
    pub packs: Vec<PackRecord>,
    pub loose: Vec<LooseRecord>,
    /// Its LFS objects.
    pub lfs: Vec<LfsRecord>,
}

/// Lock the repository's row for the rest of the transaction and read it: a
/// no-op update is a portable `SELECT … FOR UPDATE`. Pushes, deletions and
/// default-branch changes of one repository take turns this way.
/// [`Error::NotFound`] if there is no such repository.
pub(crate) async fn lock_repo(conn: &mut sqlx::AnyConnection, id: &str) -> Result<Repo> {
    let row = sqlx::query(concat!(
        "UPDATE repositories SET state = state WHERE id = $1 RETURNING ",
        repo_columns!()
    ))
    .bind(id)
    .fetch_optional(conn)
    .await?;
    match row {
        Some(row) => repo_from_row(&row),
        None => Err(Error::NotFound(format!("repository {id}"))),
    }
}

pub(crate) fn repo_from_row(row: &AnyRow) -> Result<Repo> {
    Ok(Repo {
        id: get_str(row, "id")?,
        owner: get_str(row, "owner")?,
        name: get_str(row, "name")?,
        private: get_bool(row, "private")?,
        head_ref: get_str(row, "head_ref")?,
        state: get_str(row, "state")?,
        created_at: get_i64(row, "created_at")?,
        cache_version: get_i64(row, "cache_version")?,
        max_bytes: get_opt_u64(row, "max_bytes")?,
    })
}

fn check_names(owner: &str, name: &str) -> Result<()> {
    if owner.is_empty() || name.is_empty() {
        return Err(Error::InvalidInput(format!(
            "repository owner and name must not be empty (got {owner:?}/{name:?})"
        )));
    }
    Ok(())
}

impl Metadata {
    /// A fresh repository id (UUID v4), for callers that must write storage
    /// keys before the row exists ([`Metadata::fork_repo`]).
    pub fn new_repo_id() -> String {
        uuid::Uuid::new_v4().to_string()
    }

    /// Creates `owner/name` (unique regardless of letter case; the spelling
    /// given here is the one stored and shown) with HEAD at
    /// `refs/heads/main` and no refs, and records `repo.create` by `actor`
    /// in the same transaction.
    ///
    /// [`Error::AlreadyExists`] if the name is taken in any letter case, also
    /// when two callers race for it: the unique index decides.
    pub async fn create_repo(
        &self,
        owner: &str,
        name: &str,
        private: bool,
        actor: &str,
    ) -> Result<Repo> {
        self.timed("create_repo", async {
            check_names(owner, name)?;
            let repo = Repo {
                id: Self::new_repo_id(),
                owner: owner.to_owned(),
                name: name.to_owned(),
                private,
                head_ref: DEFAULT_HEAD_REF.to_owned(),
                state: "active".to_owned(),
                created_at: now_secs(),
                cache_version: 0,
                max_bytes: None,
            };
            let mut tx = self.begin_write().await?;
            insert_repo(&mut tx, &repo).await?;
            delete_redirect(&mut tx, owner, name).await?;
            let details = serde_json::json!({ "id": repo.id, "private": private });
            audit::append(
                &mut tx,
                NewEvent {
                    repo_id: &repo.id,
                    owner,
                    name,
                    action: AuditAction::RepoCreate,
                    actor,
                    details: &details,
                },
            )
            .await?;
            tx.commit().await?;
            tracing::debug!(repo_id = %repo.id, %owner, %name, "repository created");
            Ok(repo)
        })
        .await
    }

    /// The repository `owner/name`, ignoring letter case: `Alice/Pub` finds
    /// `alice/pub`, and the result carries the stored spelling.
    pub async fn get_repo(&self, owner: &str, name: &str) -> Result<Option<Repo>> {
        self.timed("get_repo", async {
            let row = sqlx::query(concat!(
                "SELECT ",
                repo_columns!(),
                " FROM repositories WHERE lower(owner) = lower($1) AND lower(name) = lower($2)"
            ))
            .bind(owner)
            .bind(name)
            .fetch_optional(self.pool())
            .await?;
            row.as_ref().map(repo_from_row).transpose()
        })
        .await
    }

    /// The repository `owner/name` ([`Metadata::get_repo`]), or else the one
    /// that was called so before it was renamed ([`Metadata::rename_repo`]),
    /// with its name of now.
    pub async fn find_repo(&self, owner: &str, name: &str) -> Result<Option<Repo>> {
        if let Some(repo) = self.get_repo(owner, name).await? {
            return Ok(Some(repo));
        }
        let moved = self
            .timed("find_moved_repo", async {
                let row = sqlx::query(
                    "SELECT repo_id FROM repo_redirects \
                     WHERE lower(owner) = lower($1) AND lower(name) = lower($2)",
                )
                .bind(owner)
                .bind(name)
                .fetch_optional(self.pool())
                .await?;
                row.as_ref().map(|row| get_str(row, "repo_id")).transpose()
            })
            .await?;
        match moved {
            Some(id) => self.get_repo_by_id(&id).await,
            None => Ok(None),
        }
    }

    /// Renames the repository `id` to `owner/name` (a new owner moves it), and
    /// records `repo.rename` by `actor` in the same transaction. Its id, and so
    /// its objects, refs and tokens' access, stay as they are. The old name
    /// keeps leading to it ([`Metadata::find_repo`]) until a repository is
    /// created under it. Renaming to the name it has changes nothing.
    ///
    /// Errors: [`Error::NotFound`] if there is no such repository,
    /// [`Error::AlreadyExists`] if another repository has the name in any
    /// letter case, [`Error::InvalidInput`] for an empty name or a repository
    /// being deleted.
    pub async fn rename_repo(
        &self,
        id: &str,
        owner: &str,
        name: &str,
        actor: &str,
    ) -> Result<Repo> {
        self.timed("rename_repo", async {
            check_names(owner, name)?;
            let mut tx = self.begin_write().await?;
            let before = lock_repo(&mut tx, id).await?;
            if before.owner == owner && before.name == name {
                return Ok(before);
            }
            if before.state != "active" {
                return Err(Error::InvalidInput(format!(
                    "{}/{} is being deleted",
                    before.owner, before.name
                )));
            }
            let taken = sqlx::query(
                "SELECT id FROM repositories \
                 WHERE lower(owner) = lower($1) AND lower(name) = lower($2) AND id <> $3",
            )
            .bind(owner)
            .bind(name)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let already = || Error::AlreadyExists(format!("repository {owner}/{name}"));
            if taken.is_some() {
                return Err(already());
            }
            // Cached answers name the repository (its clone URL): the version moves.
            let row = sqlx::query(concat!(
                "UPDATE repositories SET owner = $1, name = $2, cache_version = cache_version + 1 \
                 WHERE id = $3 RETURNING ",
                repo_columns!()
            ))
            .bind(owner)
            .bind(name)
            .bind(id)
            .fetch_one(&mut *tx)
            .await
            .map_err(|err| match err {
                // Created by another transaction since the check above.
                sqlx::Error::Database(db) if db.is_unique_violation() => already(),
                other => other.into(),
            })?;
            let after = repo_from_row(&row)?;
            delete_redirect(&mut tx, owner, name).await?;
            let same_name = before.owner.to_lowercase() == owner.to_lowercase()
                && before.name.to_lowercase() == name.to_lowercase();
            if !same_name {
                sqlx::query(
                    "INSERT INTO repo_redirects (owner, name, repo_id, created_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                )
                .bind(&before.owner)
                .bind(&before.name)
                .bind(id)
                .bind(now_secs())
                .execute(&mut *tx)
                .await?;
            }
            let details = serde_json::json!({
                "old": format!("{}/{}", before.owner, before.name),
                "new": format!("{owner}/{name}"),
            });
            audit::append(
                &mut tx,
                NewEvent {
                    repo_id: id,
                    owner,
                    name,
                    action: AuditAction::RepoRename,
                    actor,
                    details: &details,
                },
            )
            .await?;
            tx.commit().await?;
            tracing::debug!(repo_id = %id, old = %format!("{}/{}", before.owner, before.name), new = %format!("{owner}/{name}"), "repository renamed");
            Ok(after)
        })
        .await
    }

    /// The repository with this id.
    pub async fn get_repo_by_id(&self, id: &str) -> Result<Option<Repo>> {
        self.timed("get_repo_by_id", async {
            let row = sqlx::query(concat!(
                "SELECT ",
                repo_columns!(),
                " FROM repositories WHERE id = $1"
            ))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
            row.as_ref().map(repo_from_row).transpose()
        })
        .await
    }

    /// Up to `limit` repositories in listing order, starting after `after`
    /// — pass the last `(owner, name)` of the previous page; `None` for the
    /// first page. Every repository, whoever may read it: see
    /// [`Metadata::list_readable_repos`].
    pub async fn list_repos(&self, after: Option<(&str, &str)>, limit: u32) -> Result<Vec<Repo>> {
        self.timed("list_repos", async {
            self.list_readable_repos(Readers::Everyone, after, limit)
                .await
        })
        .await
    }

    /// Up to `limit` of the repositories `readers` may see, sorted by
    /// `(lower(owner), lower(name))` (bytewise; unique, as names are unique
    /// regardless of case), starting after `after` — the last `(owner, name)`
    /// of the previous page, compared ignoring case; `None` for the first
    /// page. The filter is part of the query, so `limit` counts, and a page
    /// ends on, visible repositories only: however many hidden ones sit
    /// between, a page is full unless the listing is over.
    pub async fn list_readable_repos(
        &self,
        readers: Readers<'_>,
        after: Option<(&str, &str)>,
        limit: u32,
    ) -> Result<Vec<Repo>> {
        self.timed("list_readable_repos", async {
            let (everything, token_id) = match readers {
                Readers::Everyone => (true, ""),
                Readers::Public => (false, ""),
                Readers::PublicAndToken(id) => (false, id),
            };
            // Names are never empty, so `("", "")` starts before the first one.
            let (owner, name) = after.unwrap_or(("", ""));
            let rows = sqlx::query(concat!(
                "SELECT ",
                repo_columns!(),
                " FROM repositories \
                 WHERE ($1 OR NOT private \
                        OR id IN (SELECT repo_id FROM token_scopes WHERE token_id = $2)) \
                   AND (lower(owner) > lower($3) \
                        OR (lower(owner) = lower($3) AND lower(name) > lower($4))) \
                 ORDER BY lower(owner), lower(name) LIMIT $5"
            ))
            .bind(everything)
            .bind(token_id)
            .bind(owner)
            .bind(name)
            .bind(i64::from(limit))
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(repo_from_row).collect()
        })
        .await
    }

    /// Sets the repository's lifecycle state (e.g. `"deleting"` while its
    /// objects are removed, so a cleanup retry can find it).
    /// [`Error::NotFound`] if there is no such repository.
    pub async fn set_repo_state(&self, id: &str, state: &str) -> Result<()> {
        self.timed("set_repo_state", async {
            let done = sqlx::query("UPDATE repositories SET state = $1 WHERE id = $2")
                .bind(state)
                .bind(id)
                .execute(self.pool())
                .await?;
            if done.rows_affected() == 0 {
                return Err(Error::NotFound(format!("repository {id}")));
            }
            Ok(())
        })
        .await
    }

    /// Deletes the repository row with its refs, packs and loose-object
    /// rows, and records `repo.delete` by `actor`, in one transaction.
    /// Returns the deleted repository. Its storage keys (`{id}/…`) are the
    /// caller's to remove. [`Error::NotFound`] if there is no such
    /// repository.
    pub async fn delete_repo(&self, id: &str, actor: &str) -> Result<Repo> {
        self.timed("delete_repo", async {
            let mut tx = self.begin_write().await?;
            // Locked first, so a concurrent push either commits before us or
            // finds the repository gone.
            let repo = lock_repo(&mut tx, id).await?;
            let migration = sqlx::query(
                "SELECT lease_until FROM repo_migration_status WHERE repo_id = $1 AND state = 'in_progress'",
            )
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(row) = migration {
                if crate::util::get_i64(&row, "lease_until")? > now_secs() {
                    return Err(Error::MigrationInProgress(format!(
                        "{}/{}",
                        repo.owner, repo.name
                    )));
                }
            }
            // The legacy table (if any) has no cascade: its rows go with the repository.
            let legacy = match self.legacy_table.get() {
                Some(known) => *known,
                None => crate::migration::legacy_table_exists(&mut tx, self.backend()).await?,
            };
            if legacy {
                sqlx::query("DELETE FROM repo_objects WHERE repo_id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?;
            }
            let mut removed = [0u64; 5];
            for (i, sql) in [
                "DELETE FROM refs WHERE repo_id = $1",
                "DELETE FROM packs WHERE repo_id = $1",
                "DELETE FROM loose_objects WHERE repo_id = $1",
                "DELETE FROM lfs_objects WHERE repo_id = $1",
                "DELETE FROM lfs_locks WHERE repo_id = $1",
            ]
            .into_iter()
            .enumerate()
            {
                removed[i] = sqlx::query(sql)
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
            sqlx::query("DELETE FROM repositories WHERE id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let details = serde_json::json!({
                "id": id,
                "refs": removed[0],
                "packs": removed[1],
                "loose_objects": removed[2],
                "lfs_objects": removed[3],
            });
            audit::append(
                &mut tx,
                NewEvent {
                    repo_id: id,
                    owner: &repo.owner,
                    name: &repo.name,
                    action: AuditAction::RepoDelete,
                    actor,
                    details: &details,
                },
            )
            .await?;
            tx.commit().await?;
            tracing::debug!(repo_id = %id, owner = %repo.owner, name = %repo.name, "repository deleted");
            Ok(repo)
        })
        .await
    }

    /// Set the repository's own size limit (`None`: the server's again),
    /// audited as `repo.update` by `actor`.
    pub async fn set_repo_max_bytes(
        &self,
        id: &str,
        max_bytes: Option<u64>,
        actor: &str,
    ) -> Result<Repo> {
        self.timed("set_repo_max_bytes", async {
            let mut tx = self.begin_write().await?;
            let before = lock_repo(&mut tx, id).await?;
            let stored = max_bytes.map(|b| i64::try_from(b).unwrap_or(i64::MAX));
            let row = sqlx::query(concat!(
                "UPDATE repositories SET max_bytes = $1, cache_version = cache_version + 1 \
                 WHERE id = $2 RETURNING ",
                repo_columns!()
            ))
            .bind(stored)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let repo = repo_from_row(&row)?;
            let details = serde_json::json!({
                "max_bytes": { "old": before.max_bytes, "new": repo.max_bytes },
            });
            audit::append_for(&mut tx, &repo, AuditAction::RepoUpdate, actor, &details).await?;
            tx.commit().await?;
            Ok(repo)
        })
        .await
    }

    /// Point the repository's HEAD at `head_ref`, a branch it has, with a
    /// `repo.update` audit event; returns the repository as it now is. The
    /// branch is looked up under the repository's lock, as pushes take it, so
    /// no push deletes it in between (and a push cannot delete the branch HEAD
    /// names).
    ///
    /// Errors: [`Error::NotFound`] if the repository does not exist,
    /// [`Error::InvalidInput`] if `head_ref` is not a branch it has.
    pub async fn set_head(&self, id: &str, head_ref: &str, actor: &str) -> Result<Repo> {
        self.timed("set_head", async {
            let mut tx = self.begin_write().await?;
            let before = lock_repo(&mut tx, id).await?;
            let exists = head_ref.starts_with("refs/heads/")
                && crate::refs::ref_exists(&mut tx, id, head_ref).await?;
            if !exists {
                return Err(Error::InvalidInput(format!(
                    "{}/{} has no branch {head_ref}",
                    before.owner, before.name
                )));
            }
            // A cached advertisement names HEAD's target: the version moves.
            let row = sqlx::query(concat!(
                "UPDATE repositories SET head_ref = $1, cache_version = cache_version + 1 \
                 WHERE id = $2 RETURNING ",
                repo_columns!()
            ))
            .bind(head_ref)
            .bind(id)
            .fetch_one(&mut *tx)
            .await?;
            let after = repo_from_row(&row)?;
            let details = serde_json::json!({
                "head": { "old": before.head_ref, "new": head_ref },
            });
            audit::append_for(&mut tx, &after, AuditAction::RepoUpdate, actor, &details).await?;
            tx.commit().await?;
            Ok(after)
        })
        .await
    }

    /// The repository with its refs, packs and loose objects; the input for
    /// a fork. [`Error::NotFound`] if there is no such repository.
    pub async fn snapshot(&self, repo_id: &str) -> Result<RepoSnapshot> {
        self.timed("snapshot", async {
            let repo = self
                .get_repo_by_id(repo_id)
                .await?
                .ok_or_else(|| Error::NotFound(format!("repository {repo_id}")))?;
            // Refs before objects: a push records objects in the same
            // transaction as the refs, so objects read later cover every ref
            // read earlier.
            let refs = self.list_refs(repo_id).await?;
            let packs = self.list_packs(repo_id).await?;
            let loose = self.list_loose(repo_id).await?;
            let lfs = self.list_lfs_objects(repo_id).await?;
            Ok(RepoSnapshot {
                repo,
                refs,
                packs,
                loose,
                lfs,
            })
        })
        .await
    }

    /// Creates the fork `fork.owner/fork.name` with id `fork.id` and the
    /// given refs, packs and loose objects, and records `repo.fork` on the
    /// new repository, in one transaction. The objects must already be
    /// stored under the new id. [`Error::AlreadyExists`] if the name (or id)
    /// is taken, [`Error::NotFound`] if the source is gone.
    pub async fn fork_repo(&self, fork: ForkRepo) -> Result<Repo> {
        self.timed("fork_repo", async {
            check_names(&fork.owner, &fork.name)?;
            for loose in &fork.loose {
                check_kind(&loose.kind)?;
            }
            let repo = Repo {
                id: fork.id.clone(),
                owner: fork.owner.clone(),
                name: fork.name.clone(),
                private: fork.private,
                head_ref: fork.head_ref.clone(),
                state: "active".to_owned(),
                created_at: now_secs(),
                cache_version: 0,
                max_bytes: None,
            };
            let mut tx = self.begin_write().await?;
            let source = sqlx::query("SELECT owner, name FROM repositories WHERE id = $1")
                .bind(&fork.source_id)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(source) = source else {
                return Err(Error::NotFound(format!("repository {}", fork.source_id)));
            };
            let source_name = format!(
                "{}/{}",
                get_str(&source, "owner")?,
                get_str(&source, "name")?
            );
            insert_repo(&mut tx, &repo).await?;
            delete_redirect(&mut tx, &repo.owner, &repo.name).await?;
            for r in &fork.refs {
                sqlx::query("INSERT INTO refs (repo_id, name, oid) VALUES ($1, $2, $3)")
                    .bind(&repo.id)
                    .bind(&r.name)
                    .bind(oid_hex(&r.oid))
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query(
                "INSERT INTO peeled_refs (repo_id, oid, peeled) SELECT $1, oid, peeled FROM peeled_refs WHERE repo_id = $2",
            )
            .bind(&repo.id)
            .bind(&fork.source_id)
            .execute(&mut *tx)
            .await?;
            for p in &fork.packs {
                insert_pack(&mut tx, &repo.id, p).await?;
            }
            for l in &fork.loose {
                insert_loose(&mut tx, &repo.id, &l.oid, &l.kind, l.size, l.created_at).await?;
            }
            // Locks stay with the source.
            for object in &fork.lfs {
                crate::lfs::insert_lfs_object(&mut tx, &repo.id, object).await?;
            }
            let details = serde_json::json!({
                "id": repo.id,
                "source_id": fork.source_id,
                "source": source_name,
                "private": repo.private,
                "refs": fork.refs.len(),
                "packs": fork.packs.len(),
                "loose_objects": fork.loose.len(),
                "lfs_objects": fork.lfs.len(),
            });
            audit::append_for(&mut tx, &repo, AuditAction::RepoFork, &fork.actor, &details)
            .await?;
            tx.commit().await?;
            Ok(repo)
        })
        .await
    }
}

/// A repository now has the name `owner/name`: an old name of another one
/// that it was no longer leads there.
async fn delete_redirect(conn: &mut sqlx::AnyConnection, owner: &str, name: &str) -> Result<()> {
    sqlx::query(
        "DELETE FROM repo_redirects WHERE lower(owner) = lower($1) AND lower(name) = lower($2)",
    )
    .bind(owner)
    .bind(name)
    .execute(conn)
    .await?;
    Ok(())
}

/// Inserts the row; [`Error::AlreadyExists`] when the name or id is taken.
/// `ON CONFLICT DO NOTHING` instead of catching the unique violation keeps a
/// PostgreSQL transaction usable and waits out a concurrent insert of the
/// same name before deciding.
async fn insert_repo(conn: &mut sqlx::AnyConnection, repo: &Repo) -> Result<()> {
    let done = sqlx::query(
        "INSERT INTO repositories (id, owner, name, private, head_ref, state, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
    )
    .bind(&repo.id)
    .bind(&repo.owner)
    .bind(&repo.name)
    .bind(repo.private)
    .bind(&repo.head_ref)
    .bind(&repo.state)
    .bind(repo.created_at)
    .execute(conn)
    .await?;
    if done.rows_affected() == 0 {
        return Err(Error::AlreadyExists(format!(
            "repository {}/{}",
            repo.owner, repo.name
        )));
    }
    Ok(())
}
