//! The append-only audit log: who created, deleted, forked or pushed to which
//! repository, and what changed.
//!
//! For: appending an event inside the same transaction as the change it
//! describes (only this crate does that), and reading the log back newest
//! first. Not for: metrics or request logging. Events keep `repo_id`, owner
//! and name as plain values (no foreign key) so they outlive the repository.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::AnyConnection;
use sqlx::Row;

use crate::util::{get_i64, get_str, now_secs};
use crate::{Error, Metadata, Result};

/// The kinds of event this crate writes, as stored in `audit_events.action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// `repo.create`
    RepoCreate,
    /// `repo.delete`
    RepoDelete,
    /// `repo.fork` (recorded on the new repository)
    RepoFork,
    /// `push`
    Push,
    /// `repo.update` (its default branch changed)
    RepoUpdate,
    /// `repo.rename` (its owner or name changed)
    RepoRename,
    HookCreate,
    HookDelete,
    ProtectionCreate,
    ProtectionDelete,
}

impl AuditAction {
    /// The stored string, e.g. `"repo.create"`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::RepoCreate => "repo.create",
            AuditAction::RepoDelete => "repo.delete",
            AuditAction::RepoFork => "repo.fork",
            AuditAction::Push => "push",
            AuditAction::RepoUpdate => "repo.update",
            AuditAction::RepoRename => "repo.rename",
            AuditAction::HookCreate => "hook.create",
            AuditAction::HookDelete => "hook.delete",
            AuditAction::ProtectionCreate => "protection.create",
            AuditAction::ProtectionDelete => "protection.delete",
        }
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One audit log entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct AuditEvent {
    /// Increasing id; newer events have larger ids.
    pub id: i64,
    /// The repository's id, kept after the repository is deleted.
    pub repo_id: Option<String>,
    pub owner: String,
    pub name: String,
    /// One of [`AuditAction::as_str`] (kept a string so events written by
    /// newer versions still read).
    pub action: String,
    pub actor: String,
    /// Event-specific JSON. `push`: `{"refs": [{"name","old","new"}…],
    /// "pack": hex|null, "loose_objects": n, …caller's details}`;
    /// `repo.create`: `{"id","private"}`; `repo.delete`: `{"id","refs",
    /// "packs","loose_objects"}`; `repo.fork`: `{"id","source_id",
    /// "source","refs","packs","loose_objects"}`.
    pub details: serde_json::Value,
    /// Unix seconds.
    pub created_at: i64,
}

pub(crate) struct NewEvent<'a> {
    pub repo_id: &'a str,
    pub owner: &'a str,
    pub name: &'a str,
    pub action: AuditAction,
    pub actor: &'a str,
    pub details: &'a serde_json::Value,
}

/// Appends an event on `conn`, which is inside the transaction making the
/// change. Returns the event id.
pub(crate) async fn append(conn: &mut AnyConnection, event: NewEvent<'_>) -> Result<i64> {
    let details = serde_json::to_string(event.details)
        .map_err(|e| Error::InvalidInput(format!("audit details are not serialisable: {e}")))?;
    let row = sqlx::query(
        "INSERT INTO audit_events (repo_id, owner, name, action, actor, details, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(event.repo_id)
    .bind(event.owner)
    .bind(event.name)
    .bind(event.action.as_str())
    .bind(event.actor)
    .bind(details)
    .bind(now_secs())
    .fetch_one(conn)
    .await?;
    get_i64(&row, "id")
}

/// [`append`] an event about `repo` (its id and its names as they are now).
pub(crate) async fn append_for(
    conn: &mut AnyConnection,
    repo: &crate::Repo,
    action: AuditAction,
    actor: &str,
    details: &serde_json::Value,
) -> Result<i64> {
    append(
        conn,
        NewEvent {
            repo_id: &repo.id,
            owner: &repo.owner,
            name: &repo.name,
            action,
            actor,
            details,
        },
    )
    .await
}

fn event_from_row(row: &AnyRow) -> Result<AuditEvent> {
    let details = get_str(row, "details")?;
    let details = serde_json::from_str(&details).map_err(|e| {
        Error::InvalidData(format!(
            "audit_events.details is not JSON: {e}: {details:?}"
        ))
    })?;
    Ok(AuditEvent {
        id: get_i64(row, "id")?,
        repo_id: row.try_get::<Option<String>, _>("repo_id")?,
        owner: get_str(row, "owner")?,
        name: get_str(row, "name")?,
        action: get_str(row, "action")?,
        actor: get_str(row, "actor")?,
        details,
        created_at: get_i64(row, "created_at")?,
    })
}

impl Metadata {
    /// Audit events, newest first: of one repository (by id, also after it
    /// was deleted) or of all, older than `before_id` if given (pass the
    /// last id of the previous page), at most `limit`.
    pub async fn list_audit(
        &self,
        repo_id: Option<&str>,
        before_id: Option<i64>,
        limit: u32,
    ) -> Result<Vec<AuditEvent>> {
        self.timed("list_audit", async {
            let before = before_id.unwrap_or(i64::MAX);
            let limit = i64::from(limit);
            let rows = match repo_id {
                Some(repo_id) => {
                    sqlx::query(
                        "SELECT id, repo_id, owner, name, action, actor, details, created_at \
                         FROM audit_events WHERE repo_id = $1 AND id < $2 \
                         ORDER BY id DESC LIMIT $3",
                    )
                    .bind(repo_id)
                    .bind(before)
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
                }
                None => {
                    sqlx::query(
                        "SELECT id, repo_id, owner, name, action, actor, details, created_at \
                         FROM audit_events WHERE id < $1 ORDER BY id DESC LIMIT $2",
                    )
                    .bind(before)
                    .bind(limit)
                    .fetch_all(self.pool())
                    .await?
                }
            };
            rows.iter().map(event_from_row).collect()
        })
        .await
    }
}
