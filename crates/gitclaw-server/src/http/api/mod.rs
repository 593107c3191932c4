//! The REST API under `/api/v1` and the operational endpoints.
//!
//! JSON in and out; errors are `{"code", "message"}`, made from the services'
//! typed errors in one place ([`ApiError`]'s `From` impls): a caller's mistake
//! is explained, an outage or internal failure is logged whole and answered
//! with a short message and the request id. A private repository the caller
//! may not read is answered exactly like a missing one (404), so its name does
//! not leak, and listings only ever show (and page by) what the caller may read.

mod archive;
mod commits;
mod files;
mod hooks;
mod protected;
mod repos;
mod tokens;

pub use archive::*;
pub use commits::*;
pub use files::*;
pub use hooks::*;
pub use protected::*;
pub use repos::*;
pub use tokens::*;

use axum::{
    extract::{rejection::JsonRejection, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use serde::Serialize;

use crate::{
    app::AppState,
    auth::{self, Caller, Denied},
    error::{chain, GitError, RequestId},
    service::{hooks::HookError, protected::ProtectedError, repos::RepoError, tokens::TokenError},
};

/// An API error as JSON.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ApiError {
    #[serde(skip)]
    #[schema(ignore)]
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
        let mut response = (self.status, Json(&self)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Basic realm=\"GitClaw\""),
            );
        }
        response
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

impl From<Denied> for ApiError {
    fn from(denied: Denied) -> Self {
        match denied {
            Denied::Unauthenticated(m) => {
                ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", m)
            }
            Denied::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", m),
            Denied::Unavailable(m) => {
                tracing::error!(error = %m, "authentication failed");
                unavailable("DATABASE_ERROR", "the metadata database")
            }
        }
    }
}

/// A service the request needs is down: the caller is told which, and the
/// request id to quote; the log has the rest.
fn unavailable(code: &'static str, what: &str) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        code,
        format!(
            "{what} is unavailable, try again later (request id {})",
            RequestId::current()
        ),
    )
}

fn internal(code: &'static str) -> ApiError {
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        code,
        format!(
            "internal server error (request id {})",
            RequestId::current()
        ),
    )
}

impl From<gitclaw_metadata::Error> for ApiError {
    fn from(err: gitclaw_metadata::Error) -> Self {
        tracing::error!(error = %chain(&err), "metadata request failed");
        if err.is_transient() {
            unavailable("DATABASE_ERROR", "the metadata database")
        } else {
            internal("DATABASE_ERROR")
        }
    }
}

impl From<gitclaw_storage::StorageError> for ApiError {
    fn from(err: gitclaw_storage::StorageError) -> Self {
        tracing::error!(error = %chain(&err), code = err.code(), "object store request failed");
        if err.is_retryable() {
            unavailable(err.code(), "the object store")
        } else {
            internal(err.code())
        }
    }
}

impl From<RepoError> for ApiError {
    fn from(err: RepoError) -> Self {
        match err {
            RepoError::InvalidName(m) => ApiError::new(StatusCode::BAD_REQUEST, "INVALID_NAME", m),
            RepoError::NoSuchBranch(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "NO_SUCH_BRANCH", m)
            }
            RepoError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", err.to_string())
            }
            RepoError::AlreadyExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "ALREADY_EXISTS", err.to_string())
            }
            RepoError::MigrationInProgress(_) => ApiError::new(
                StatusCode::CONFLICT,
                "MIGRATION_IN_PROGRESS",
                err.to_string(),
            ),
            RepoError::Metadata(err) => err.into(),
            RepoError::Storage(err) => err.into(),
        }
    }
}

impl From<HookError> for ApiError {
    fn from(err: HookError) -> Self {
        match err {
            HookError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", m),
            HookError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", err.to_string())
            }
            HookError::Metadata(err) => err.into(),
        }
    }
}

impl From<ProtectedError> for ApiError {
    fn from(err: ProtectedError) -> Self {
        match err {
            ProtectedError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", m),
            ProtectedError::AlreadyExists(_) => {
                ApiError::new(StatusCode::CONFLICT, "ALREADY_EXISTS", err.to_string())
            }
            ProtectedError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", err.to_string())
            }
            ProtectedError::Metadata(err) => err.into(),
        }
    }
}

/// An LFS failure met outside the LFS API (a raw file's LFS content).
impl From<crate::service::lfs::LfsError> for ApiError {
    fn from(err: crate::service::lfs::LfsError) -> Self {
        use crate::service::lfs::LfsError;
        match err {
            LfsError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", m),
            LfsError::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", m),
            LfsError::TooLarge(m) => ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "TOO_LARGE", m),
            LfsError::Invalid(m) | LfsError::Unsupported(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", m)
            }
            LfsError::Server(err) => err.into(),
        }
    }
}

/// A failure of the git services (archives): the status a git client would get,
/// and the same message.
impl From<GitError> for ApiError {
    fn from(err: GitError) -> Self {
        err.log("API request");
        let status = crate::http::render::status(&err);
        let code = match status {
            StatusCode::NOT_FOUND => "NOT_FOUND",
            StatusCode::BAD_REQUEST => "BAD_REQUEST",
            StatusCode::UNAUTHORIZED => "UNAUTHORIZED",
            StatusCode::FORBIDDEN => "FORBIDDEN",
            StatusCode::SERVICE_UNAVAILABLE => "UNAVAILABLE",
            StatusCode::CONFLICT => "CONFLICT",
            StatusCode::PAYLOAD_TOO_LARGE => "TOO_LARGE",
            _ => "INTERNAL",
        };
        ApiError::new(status, code, err.client_message())
    }
}

impl From<TokenError> for ApiError {
    fn from(err: TokenError) -> Self {
        match err {
            TokenError::Invalid(m) => ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", m),
            TokenError::NotFound(_) => {
                ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", err.to_string())
            }
            TokenError::Repo(err) => err.into(),
            TokenError::Metadata(err) => err.into(),
        }
    }
}

pub async fn healthz() -> &'static str {
    "ok\n"
}

/// Ready when every dependency answers: one line per dependency (`ok`, or
/// `failing (CODE)`), then `ready` (200) or `not ready` (503). All are
/// checked at once; the log has each failure whole, with the request id.
/// The shared cache (Redis, when configured) has its line too, but does not
/// decide readiness: without it requests go to the database.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let database = async {
        match state.meta.ping().await {
            Ok(()) => None,
            Err(err) => {
                tracing::error!(error = %chain(&err), "readiness: the database does not answer");
                Some("DATABASE_UNAVAILABLE")
            }
        }
    };
    let store = async {
        let probe = match gitclaw_storage::RepoId::new("readyz") {
            Ok(probe) => probe,
            Err(err) => return Some(err.code()),
        };
        match state.store.list(&probe.prefix()).await {
            Ok(_) => None,
            Err(err) => {
                tracing::error!(error = %chain(&err), "readiness: the object store does not answer");
                Some(err.code())
            }
        }
    };
    let (database, store, shared) = tokio::join!(database, store, state.shared.ping());
    let mut body = String::new();
    for (name, failure) in [("database", database), ("object store", store)] {
        match failure {
            None => body.push_str(&format!("{name}: ok\n")),
            Some(code) => body.push_str(&format!("{name}: failing ({code})\n")),
        }
    }
    match shared {
        None => {}
        Some(Ok(())) => body.push_str("shared cache (redis): ok\n"),
        Some(Err(code)) => body.push_str(&format!(
            "shared cache (redis): failing ({code}); requests go to the database\n"
        )),
    }
    let ready = database.is_none() && store.is_none();
    body.push_str(if ready { "ready\n" } else { "not ready\n" });
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, body).into_response()
}

async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    Ok(auth::authenticate(state, headers).await?)
}

/// Whether the request's `If-None-Match` names `etag` (or `*`).
fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get_all(axum::http::header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == etag || tag.trim() == "*")
}

fn bad_query(rejection: axum::extract::rejection::QueryRejection) -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "BAD_REQUEST",
        rejection.body_text(),
    )
}

/// The OpenAPI document of this API, generated from the handlers above.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "GitClaw API",
        description = "Repositories, refs, commits, files and archives, tokens, webhooks, protected refs and audit of a GitClaw server."
    ),
    paths(
        post_repo,
        list_repos,
        get_repo,
        update_repo,
        delete_repo,
        fork_repo,
        repo_stats,
        repo_audit,
        repo_archive,
        repo_raw,
        repo_refs,
        update_refs,
        repo_tree,
        repo_tree_path,
        repo_commits,
        repo_commit,
        repo_compare,
        create_hook,
        list_hooks,
        delete_hook,
        list_deliveries,
        redeliver,
        create_protected_ref,
        list_protected_refs,
        delete_protected_ref,
        list_migrations,
        get_migration,
        post_token,
        list_tokens,
        delete_token
    ),
    components(schemas(
        ApiError,
        RepoStatsView,
        crate::service::sweep::StoreUsage,
        CreateRepo,
        UpdateRepo,
        RepoView,
        MigrationView,
        RepoMigration,
        RepoPage,
        ForkRequest,
        AuditPage,
        RefView,
        RefPage,
        UpdateRefs,
        RefUpdateRequest,
        RefUpdateResult,
        RefUpdateResults,
        crate::service::files::TreeView,
        crate::service::files::TreeEntryView,
        crate::service::commits::CommitView,
        crate::service::commits::Person,
        crate::service::commits::LogPage,
        crate::service::compare::Comparison,
        crate::service::compare::FileChange,
        CreateHook,
        HookView,
        HookList,
        DeliveryView,
        DeliveryList,
        CreateProtectedRef,
        ProtectedRefView,
        ProtectedRefList,
        CreateToken,
        TokenScope,
        NewToken,
        TokenList,
        TokenView,
        TokenScopeView
    ))
)]
pub struct ApiDoc;

pub async fn openapi() -> Json<utoipa::openapi::OpenApi> {
    Json(<ApiDoc as utoipa::OpenApi>::openapi())
}
