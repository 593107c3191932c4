//! `/api/v1/repos`: create, list, get, update, fork, delete, stats, audit.

use axum::{
    extract::{rejection::JsonRejection, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use gitclaw_metadata::Repo;
use serde::{Deserialize, Serialize};

use super::{bad_query, caller, ApiError};
use crate::{
    app::AppState,
    auth::{self, Caller},
    service::repos::{self, RepoError},
};

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRepo {
    pub owner: String,
    pub name: String,
    #[serde(default)]
    pub private: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RepoView {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub private: bool,
    pub default_branch: String,
    pub clone_url: String,
    pub created_at: i64,
    /// Its own size limit in bytes, over the server's
    /// `GITCLAW_MAX_REPO_BYTES` (0: none); absent when it has none of its own.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_bytes: Option<u64>,
    /// Where moving its objects out of the legacy table stands, when a
    /// migration has touched it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration: Option<MigrationView>,
}

/// A repository's migration out of the legacy object table. Times are unix seconds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MigrationView {
    /// `pending`, `in_progress`, `migrated` or `failed`.
    pub state: String,
    /// A `gitclaw migrate` holds it right now.
    pub running: bool,
    pub objects_total: u64,
    pub objects_copied: u64,
    pub bytes_copied: u64,
    pub corrupt_rows: u64,
    pub batches_in_flight: u64,
    /// Seconds left at the rate so far, while running.
    pub eta_secs: Option<u64>,
    pub started_at: Option<i64>,
    pub updated_at: i64,
    pub finished_at: Option<i64>,
    pub verified_at: Option<i64>,
    pub source_dropped_at: Option<i64>,
    pub last_error: Option<String>,
}

impl From<gitclaw_metadata::MigrationStatus> for MigrationView {
    fn from(s: gitclaw_metadata::MigrationStatus) -> Self {
        let running = s.is_running();
        let eta_secs = s.started_at.filter(|_| running).and_then(|started| {
            let elapsed = u64::try_from(s.updated_at - started)
                .ok()
                .filter(|e| *e > 0)?;
            let rate = s.objects_copied as f64 / elapsed as f64;
            let left = s
                .objects_total
                .saturating_sub(s.objects_copied + s.corrupt_rows);
            (rate > 0.0).then(|| (left as f64 / rate).ceil() as u64)
        });
        MigrationView {
            state: s.state.as_str().to_string(),
            running,
            objects_total: s.objects_total,
            objects_copied: s.objects_copied,
            bytes_copied: s.bytes_copied,
            corrupt_rows: s.corrupt_rows,
            batches_in_flight: s.batches_in_flight,
            eta_secs,
            started_at: s.started_at,
            updated_at: s.updated_at,
            finished_at: s.finished_at,
            verified_at: s.verified_at,
            source_dropped_at: s.source_dropped_at,
            last_error: s.last_error,
        }
    }
}

impl RepoView {
    pub fn new(state: &AppState, repo: Repo) -> Self {
        RepoView {
            clone_url: repos::clone_url(&state.config, &repo),
            default_branch: repo.head_ref.trim_start_matches("refs/heads/").to_string(),
            id: repo.id,
            owner: repo.owner,
            name: repo.name,
            private: repo.private,
            created_at: repo.created_at,
            max_bytes: repo.max_bytes,
            migration: None,
        }
    }
}

#[utoipa::path(post, path = "/api/v1/repos", request_body = CreateRepo, responses((status = 201, body = RepoView), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
pub async fn post_repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    payload: Result<Json<CreateRepo>, JsonRejection>,
) -> Result<(StatusCode, Json<RepoView>), ApiError> {
    let caller = caller(&state, &headers).await?;
    auth::check_admin(&caller)?;
    let Json(req) = payload?;
    let repo =
        repos::create_repo(&state, &req.owner, &req.name, req.private, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(RepoView::new(&state, repo))))
}

/// The repository an API path names if `caller` may read it; otherwise the
/// very 404 a missing repository gets (same code, same message), so the
/// answer does not tell a private repository from a missing one.
pub(super) async fn find_readable(
    state: &AppState,
    caller: &Caller,
    owner: &str,
    name: &str,
) -> Result<Repo, ApiError> {
    let repo = repos::find_repo(state, owner, name).await?;
    if auth::can_read(caller, &repo) {
        Ok(repo)
    } else {
        Err(RepoError::NotFound(format!("{owner}/{name}")).into())
    }
}

/// The repository an API path names, for a caller with admin access to it
/// (see [`auth::check_repo_admin`]; `doing` says what, for the refusal).
pub(super) async fn admin_repo(
    state: &AppState,
    headers: &HeaderMap,
    (owner, name): (&str, &str),
    doing: &str,
) -> Result<(Caller, Repo), ApiError> {
    let caller = caller(state, headers).await?;
    let repo = find_readable(state, &caller, owner, name).await?;
    auth::check_repo_admin(&caller, &repo, doing)?;
    Ok((caller, repo))
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Continue after this `owner/name` (the `next` of the previous page).
    pub after: Option<String>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RepoPage {
    pub repos: Vec<RepoView>,
    /// Pass as `after` to get the next page; absent on the last page. Always
    /// the `OWNER/NAME` of the last repository on this page.
    pub next: Option<String>,
}

#[utoipa::path(get, path = "/api/v1/repos", params(("after" = Option<String>, Query, description = "continue after OWNER/NAME"), ("limit" = Option<u32>, Query)), responses((status = 200, body = RepoPage), (status = 400, body = ApiError)))]
pub async fn list_repos(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<axum::extract::Query<ListQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<RepoPage>, ApiError> {
    let caller = caller(&state, &headers).await?;
    let axum::extract::Query(query) = query.map_err(bad_query)?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let after = match &query.after {
        Some(text) => Some(text.split_once('/').ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                "after must be OWNER/NAME",
            )
        })?),
        None => None,
    };
    // Filtered in the query: `limit` and the cursor only involve repositories
    // this caller may read.
    let repos = state
        .meta
        .list_readable_repos(caller.readers(), after, limit)
        .await?;
    let next = (repos.len() == limit as usize)
        .then(|| repos.last().map(|r| format!("{}/{}", r.owner, r.name)))
        .flatten();
    Ok(Json(RepoPage {
        repos: repos
            .into_iter()
            .map(|r| RepoView::new(&state, r))
            .collect(),
        next,
    }))
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}", params(("owner" = String, Path, description = "matched ignoring letter case"), ("name" = String, Path)), responses((status = 200, body = RepoView), (status = 401, body = ApiError, description = "invalid or expired token"), (status = 404, body = ApiError, description = "no such repository, or a private one the caller may not read")))]
pub async fn get_repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
) -> Result<Json<RepoView>, ApiError> {
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    let migration = state.meta.migration_status(&repo.id).await?;
    let mut view = RepoView::new(&state, repo);
    view.migration = migration.map(MigrationView::from);
    Ok(Json(view))
}

/// One repository's migration, as `GET /api/v1/migrations` lists them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RepoMigration {
    /// `owner/name`.
    pub repository: String,
    #[serde(flatten)]
    pub migration: MigrationView,
}

#[utoipa::path(get, path = "/api/v1/migrations", description = "Needs an admin token (it names private repositories).", responses((status = 200, body = [RepoMigration]), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub async fn list_migrations(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Vec<RepoMigration>>, ApiError> {
    let caller = caller(&state, &headers).await?;
    auth::check_admin(&caller)?;
    let mut out = Vec::new();
    for status in state.meta.list_migration_status().await? {
        let repository = match state.meta.get_repo_by_id(&status.repo_id).await? {
            Some(repo) => format!("{}/{}", repo.owner, repo.name),
            None => continue,
        };
        out.push(RepoMigration {
            repository,
            migration: status.into(),
        });
    }
    Ok(Json(out))
}

#[utoipa::path(get, path = "/api/v1/migrations/{owner}/{name}", params(("owner" = String, Path), ("name" = String, Path)), responses((status = 200, body = MigrationView), (status = 404, body = ApiError, description = "no such repository, or no migration has touched it")))]
pub async fn get_migration(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
) -> Result<Json<MigrationView>, ApiError> {
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    match state.meta.migration_status(&repo.id).await? {
        Some(status) => Ok(Json(status.into())),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("no migration has touched {owner}/{name}"),
        )),
    }
}

#[utoipa::path(delete, path = "/api/v1/repos/{owner}/{name}", description = "Needs an admin token, or a token with the admin scope on this repository (write is not enough).", params(("owner" = String, Path), ("name" = String, Path)), responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn delete_repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    auth::check_repo_admin(&caller, &repo, "deleting")?;
    repos::delete_repo(&state, &repo, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What `PATCH /api/v1/repos/{owner}/{name}` changes.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateRepo {
    /// The branch HEAD names (`main` or `refs/heads/main`); the repository
    /// must have it. Pushes may not delete the default branch, so renaming
    /// one is: push the new branch, make it the default, delete the old one.
    pub default_branch: Option<String>,
    /// A new owner: moves the repository (admin token only).
    pub owner: Option<String>,
    /// A new name: renames the repository (admin token only). Git URLs with
    /// the old owner and name keep leading to it until a repository is
    /// created under them; the API answers only to the new ones.
    pub name: Option<String>,
    /// Its own size limit in bytes (0: none), over the server's
    /// `GITCLAW_MAX_REPO_BYTES`; `null` to take the server's again (admin
    /// token only).
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<u64>)]
    pub max_bytes: Option<Option<u64>>,
}

/// A field that may be `null`: `Some(None)` then, `None` when left out.
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<u64>>, D::Error> {
    Option::<u64>::deserialize(d).map(Some)
}

#[utoipa::path(patch, path = "/api/v1/repos/{owner}/{name}", description = "Needs an admin token, or a token with the admin scope on this repository (write is not enough); a new owner or name, or a size limit, needs an admin token.", params(("owner" = String, Path), ("name" = String, Path)), request_body = UpdateRepo, responses((status = 200, body = RepoView), (status = 400, body = ApiError, description = "NO_SUCH_BRANCH: the repository has no such branch; INVALID_NAME: a name the server does not allow"), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError, description = "ALREADY_EXISTS: another repository has the new name")))]
pub async fn update_repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
    payload: Result<Json<UpdateRepo>, JsonRejection>,
) -> Result<Json<RepoView>, ApiError> {
    let caller = caller(&state, &headers).await?;
    let Json(req) = payload?;
    let mut repo = find_readable(&state, &caller, &owner, &name).await?;
    auth::check_repo_admin(&caller, &repo, "changing")?;
    let rename = req.owner.is_some() || req.name.is_some();
    if req.max_bytes.is_some() {
        // A quota is the operator's to give.
        auth::check_admin(&caller)?;
    }
    if rename {
        // A name is the server's to give, as creating a repository is.
        auth::check_admin(&caller)?;
        let (owner, name) = (
            req.owner.as_deref().unwrap_or(&repo.owner),
            req.name.as_deref().unwrap_or(&repo.name),
        );
        repos::validate(owner, name)?;
        // Refused before anything changes (the rename checks again).
        if let Some(taken) = state.meta.get_repo(owner, name).await? {
            if taken.id != repo.id {
                return Err(RepoError::AlreadyExists(format!("{owner}/{name}")).into());
            }
        }
    }
    if let Some(branch) = &req.default_branch {
        repo = repos::set_default_branch(&state, &repo, branch, &caller.actor()).await?;
    }
    if let Some(max_bytes) = req.max_bytes {
        repo = state
            .meta
            .set_repo_max_bytes(&repo.id, max_bytes, &caller.actor())
            .await
            .map_err(crate::error::GitError::from)?;
    }
    if rename {
        let owner = req.owner.clone().unwrap_or_else(|| repo.owner.clone());
        let name = req.name.clone().unwrap_or_else(|| repo.name.clone());
        repo = repos::rename_repo(&state, &repo, &owner, &name, &caller.actor()).await?;
    }
    Ok(Json(RepoView::new(&state, repo)))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ForkRequest {
    pub owner: String,
    pub name: String,
}

#[utoipa::path(post, path = "/api/v1/repos/{owner}/{name}/fork", params(("owner" = String, Path), ("name" = String, Path)), request_body = ForkRequest, responses((status = 201, body = RepoView), (status = 400, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError)))]
pub async fn fork_repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
    payload: Result<Json<ForkRequest>, JsonRejection>,
) -> Result<(StatusCode, Json<RepoView>), ApiError> {
    let caller = caller(&state, &headers).await?;
    auth::check_admin(&caller)?;
    let Json(req) = payload?;
    let source = repos::find_repo(&state, &owner, &name).await?;
    let fork = repos::fork_repo(&state, &source, &req.owner, &req.name, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(RepoView::new(&state, fork))))
}

/// A repository's statistics: what the metadata records, and what the store holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RepoStatsView {
    /// Packs, loose objects, objects and bytes as the metadata records them.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub recorded: gitclaw_metadata::RepoStats,
    /// Git LFS objects recorded for the repository.
    pub lfs_objects: u64,
    /// Their bytes.
    pub lfs_bytes: u64,
    /// Keys and bytes under the repository's prefix in the object store.
    pub store: crate::service::sweep::StoreUsage,
    /// Objects the legacy table holds for it (0 without one).
    pub legacy_rows: u64,
    /// Of those, how many a migration has copied into the store.
    pub legacy_rows_migrated: u64,
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/stats", params(("owner" = String, Path), ("name" = String, Path)), responses((status = 200, body = RepoStatsView, description = "object count, stored bytes, packs, loose objects, and what the store holds"), (status = 404, body = ApiError)))]
pub async fn repo_stats(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
) -> Result<Json<RepoStatsView>, ApiError> {
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    let recorded = state.meta.repo_stats(&repo.id).await?;
    let lfs = state.meta.lfs_usage(&repo.id).await?;
    let store = crate::service::sweep::store_usage(&state, &repo).await?;
    let (legacy_rows, legacy_rows_migrated) = if state.legacy_table {
        state.meta.legacy_counts(&repo.id).await?
    } else {
        (0, 0)
    };
    Ok(Json(RepoStatsView {
        recorded,
        lfs_objects: lfs.objects,
        lfs_bytes: lfs.bytes,
        store,
        legacy_rows,
        legacy_rows_migrated,
    }))
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    /// Events older than this id (the `next` of the previous page).
    pub before: Option<i64>,
    pub limit: Option<u32>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<gitclaw_metadata::AuditEvent>,
    pub next: Option<i64>,
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/audit", params(("owner" = String, Path), ("name" = String, Path), ("before" = Option<i64>, Query), ("limit" = Option<u32>, Query)), responses((status = 200, body = AuditPage), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn repo_audit(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
    query: Result<axum::extract::Query<AuditQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    auth::check_admin(&caller(&state, &headers).await?)?;
    let axum::extract::Query(query) = query.map_err(bad_query)?;
    let repo = repos::find_repo(&state, &owner, &name).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let events = state
        .meta
        .list_audit(Some(&repo.id), query.before, limit)
        .await?;
    let next = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage { events, next }))
}
