//! The REST API under `/api/v1` and the operational endpoints.
//!
//! JSON in and out; errors are `{"code", "message"}`.

use axum::{
    extract::{rejection::JsonRejection, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use gitclaw_metadata::{Error as MetadataError, Repo};
use serde::{Deserialize, Serialize};

use crate::{app::AppState, names};

/// An API error as JSON.
#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "BAD_REQUEST",
            rejection.body_text(),
        )
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateRepo {
    pub owner: String,
    pub name: String,
    #[serde(default)]
    pub private: bool,
}

#[derive(Debug, Serialize)]
pub struct RepoView {
    pub id: String,
    pub owner: String,
    pub name: String,
    pub private: bool,
    pub default_branch: String,
    pub clone_url: String,
    pub created_at: i64,
}

impl RepoView {
    pub fn new(state: &AppState, repo: Repo) -> Self {
        let base = state
            .config
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{}", state.config.listen));
        RepoView {
            clone_url: format!("{base}/{}/{}.git", repo.owner, repo.name),
            default_branch: repo.head_ref.trim_start_matches("refs/heads/").to_string(),
            id: repo.id,
            owner: repo.owner,
            name: repo.name,
            private: repo.private,
            created_at: repo.created_at,
        }
    }
}

/// Create a repository: the shared rule for the API and the command line.
pub async fn create_repo(
    state: &AppState,
    owner: &str,
    name: &str,
    private: bool,
    actor: &str,
) -> Result<Repo, ApiError> {
    names::validate_name("owner", owner)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_NAME", m))?;
    names::validate_name("repository", name)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_NAME", m))?;
    state
        .meta
        .create_repo(owner, name, private, actor)
        .await
        .map_err(|err| match err {
            MetadataError::AlreadyExists(_) => ApiError::new(
                StatusCode::CONFLICT,
                "ALREADY_EXISTS",
                format!("repository {owner}/{name} already exists"),
            ),
            other => {
                tracing::error!(error = %other, "create repository failed");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "DATABASE_ERROR",
                    other.to_string(),
                )
            }
        })
}

pub async fn post_repo(
    State(state): State<AppState>,
    payload: Result<Json<CreateRepo>, JsonRejection>,
) -> Result<(StatusCode, Json<RepoView>), ApiError> {
    let Json(req) = payload?;
    let repo = create_repo(&state, &req.owner, &req.name, req.private, "anonymous").await?;
    Ok((StatusCode::CREATED, Json(RepoView::new(&state, repo))))
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when the database answers and the object store can be listed.
pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    state.meta.ping().await.map_err(|err| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "DATABASE_UNAVAILABLE",
            err.to_string(),
        )
    })?;
    let probe = gitclaw_storage::RepoId::new("readyz").map_err(|err| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL",
            err.to_string(),
        )
    })?;
    state.store.list(&probe.prefix()).await.map_err(|err| {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, err.code(), err.to_string())
    })?;
    Ok("ready\n")
}
