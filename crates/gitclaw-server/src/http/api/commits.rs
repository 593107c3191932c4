//! Commits without a clone: `/api/v1/repos/{owner}/{name}/commits` (the log)
//! and `/commits/{revision}` (one commit), for whoever may read the repository.

use axum::{extract::State, http::HeaderMap, Json};
use serde::Deserialize;

use super::{bad_query, caller, find_readable, ApiError};
use crate::{
    app::AppState,
    service::commits::{self, CommitView, LogPage, LogQuery},
};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CommitsQuery {
    /// The revision the log starts at (`HEAD` when left out).
    #[serde(rename = "ref")]
    pub revision: Option<String>,
    /// Only commits that change this path.
    pub path: Option<String>,
    /// Listed commits passed over first (the previous page's `next_skip`).
    pub skip: Option<usize>,
    pub limit: Option<usize>,
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/commits", description = "The commits `git log REVISION [-- PATH]` lists, in its order (newest committer date first; with a path, git's default history simplification), a page at a time. The walk takes a pack-generation turn (`503` when too many wait) and reads at most 100,000 commits (`walk_cut_short` when it stopped there).", params(("owner" = String, Path), ("name" = String, Path), ("ref" = Option<String>, Query, description = "where the log starts: a ref name, `HEAD` (the default), or a commit id a ref reaches, with git's `~N`, `^N`, `^{…}` after it"), ("path" = Option<String>, Query, description = "only commits that change this file or directory"), ("skip" = Option<usize>, Query, description = "listed commits to pass over first (at most 100000)"), ("limit" = Option<usize>, Query, description = "at most this many (default 50, at most 1000)")), responses((status = 200, body = LogPage), (status = 400, body = ApiError, description = "a bad revision, path or page"), (status = 401, body = ApiError), (status = 404, body = ApiError, description = "no such repository or revision"), (status = 503, body = ApiError)))]
pub async fn repo_commits(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
    query: Result<axum::extract::Query<CommitsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<LogPage>, ApiError> {
    let axum::extract::Query(query) = query.map_err(bad_query)?;
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    let revision = query.revision.as_deref().unwrap_or("HEAD");
    let log = LogQuery {
        path: query.path,
        skip: query.skip.unwrap_or(0),
        limit: query.limit.unwrap_or(50),
    };
    Ok(Json(commits::log(&state, &repo, revision, log).await?))
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/commits/{revision}", description = "One commit: its id, tree, parents, author, committer (dates as `git log --format=%aI` prints them) and message (at most 64 KiB; `message_truncated` when cut).", params(("owner" = String, Path), ("name" = String, Path), ("revision" = String, Path, description = "a ref name, `HEAD`, or a commit id (full or abbreviated) a ref reaches, with git's `~N`, `^N`, `^{…}` after it")), responses((status = 200, body = CommitView), (status = 400, body = ApiError, description = "a bad or ambiguous revision"), (status = 401, body = ApiError), (status = 404, body = ApiError, description = "no such repository or revision")))]
pub async fn repo_commit(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name, revision)): axum::extract::Path<(String, String, String)>,
) -> Result<Json<CommitView>, ApiError> {
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    Ok(Json(commits::show(&state, &repo, &revision).await?))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CompareQuery {
    /// Whether renames are looked for (the default), as `git diff` does.
    pub renames: Option<bool>,
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/compare/{spec}", description = "Two revisions compared: `ahead_by` and `behind_by` as `git rev-list --left-right --count BASE...HEAD` counts them, the first 250 commits of `git log BASE..HEAD`, the merge bases (`git merge-base --all`), and the files that differ (at most 3000), as `git diff --raw` lists them from the merge base when there is exactly one, else from BASE (`files_from` says which): renames found as git finds them by default (`R`, with `previous_path` and `similarity`), or none with `renames=false` (`--no-renames`). Comparing takes a pack-generation turn.", params(("owner" = String, Path), ("name" = String, Path), ("spec" = String, Path, description = "`BASE...HEAD`: two revisions (ref names, `HEAD`, commit ids a ref reaches, with git's `~N`, `^N`, `^{…}` after them)"), ("renames" = Option<bool>, Query, description = "look for renames (default true)")), responses((status = 200, body = crate::service::compare::Comparison), (status = 400, body = ApiError, description = "not `BASE...HEAD`, or a bad revision"), (status = 401, body = ApiError), (status = 404, body = ApiError, description = "no such repository or revision"), (status = 413, body = ApiError, description = "the two are more than 100,000 commits apart"), (status = 503, body = ApiError)))]
pub async fn repo_compare(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name, spec)): axum::extract::Path<(String, String, String)>,
    query: Result<axum::extract::Query<CompareQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<crate::service::compare::Comparison>, ApiError> {
    let axum::extract::Query(query) = query.map_err(bad_query)?;
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    let Some((base, head)) = spec.split_once("...") else {
        return Err(crate::error::GitError::BadRequest(format!(
            "'{}' is not BASE...HEAD",
            spec.escape_default()
        ))
        .into());
    };
    Ok(Json(
        crate::service::compare::compare(&state, &repo, base, head, query.renames.unwrap_or(true))
            .await?,
    ))
}
