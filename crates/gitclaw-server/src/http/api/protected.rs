//! `/api/v1/repos/{owner}/{name}/protected-refs`: rules a push must keep to
//! for the refs a pattern names. Every route needs an admin token or the
//! admin scope on the repository.

use axum::{
    extract::{rejection::JsonRejection, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use gitclaw_metadata::ProtectedRef;
use serde::{Deserialize, Serialize};

use super::{admin_repo, ApiError};
use crate::{app::AppState, service::protected};

const DOING: &str = "managing the protected refs of";

/// A rule to create.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProtectedRef {
    /// A full ref name; `*` stands for any run of characters within a
    /// component, a `**` component for any number of components
    /// (`refs/heads/main`, `refs/heads/release/*`, `refs/tags/**`).
    pub pattern: String,
    /// Pushes may move a matching ref to a commit its old one is not an
    /// ancestor of (default: no).
    #[serde(default)]
    pub allow_force_push: bool,
    /// Pushes may delete a matching ref (default: no).
    #[serde(default)]
    pub allow_deletion: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProtectedRefView {
    pub id: String,
    pub pattern: String,
    pub allow_force_push: bool,
    pub allow_deletion: bool,
    pub created_at: i64,
}

impl From<ProtectedRef> for ProtectedRefView {
    fn from(rule: ProtectedRef) -> Self {
        ProtectedRefView {
            id: rule.id,
            pattern: rule.pattern,
            allow_force_push: rule.allow_force_push,
            allow_deletion: rule.allow_deletion,
            created_at: rule.created_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProtectedRefList {
    pub rules: Vec<ProtectedRefView>,
}

#[utoipa::path(post, path = "/api/v1/repos/{owner}/{name}/protected-refs", description = "Needs an admin token, or a token with the admin scope on this repository. From then on a push may neither force-push nor delete a ref the pattern names, unless the rule allows it; the refusal names the rule.", params(("owner" = String, Path), ("name" = String, Path)), request_body = CreateProtectedRef, responses((status = 201, body = ProtectedRefView), (status = 400, body = ApiError, description = "a bad pattern, or as many rules as a repository may have"), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError), (status = 409, body = ApiError, description = "ALREADY_EXISTS: a rule with this pattern")))]
pub async fn create_protected_ref(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
    payload: Result<Json<CreateProtectedRef>, JsonRejection>,
) -> Result<(StatusCode, Json<ProtectedRefView>), ApiError> {
    let (caller, repo) = admin_repo(&state, &headers, (&owner, &name), DOING).await?;
    let Json(req) = payload?;
    let allow = (req.allow_force_push, req.allow_deletion);
    let rule = protected::create(&state, &repo, &req.pattern, allow, &caller.actor()).await?;
    Ok((StatusCode::CREATED, Json(rule.into())))
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/protected-refs", description = "Needs an admin token, or a token with the admin scope on this repository.", params(("owner" = String, Path), ("name" = String, Path)), responses((status = 200, body = ProtectedRefList), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn list_protected_refs(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
) -> Result<Json<ProtectedRefList>, ApiError> {
    let (_, repo) = admin_repo(&state, &headers, (&owner, &name), DOING).await?;
    let rules = state.meta.list_protected_refs(&repo.id).await?;
    Ok(Json(ProtectedRefList {
        rules: rules.into_iter().map(ProtectedRefView::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/repos/{owner}/{name}/protected-refs/{id}", description = "Needs an admin token, or a token with the admin scope on this repository.", params(("owner" = String, Path), ("name" = String, Path), ("id" = String, Path)), responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn delete_protected_ref(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name, id)): axum::extract::Path<(String, String, String)>,
) -> Result<StatusCode, ApiError> {
    let (caller, repo) = admin_repo(&state, &headers, (&owner, &name), DOING).await?;
    protected::delete(&state, &repo, &id, &caller.actor()).await?;
    Ok(StatusCode::NO_CONTENT)
}
