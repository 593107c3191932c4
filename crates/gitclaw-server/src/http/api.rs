//! The REST API under `/api/v1` and the operational endpoints.
//!
//! JSON in and out; errors are `{"code", "message"}`. A private repository the
//! caller may not read is answered exactly like a missing one (404), so its name
//! does not leak, and listings only ever show (and page by) what the caller may
//! read.

use axum::{
    extract::{rejection::JsonRejection, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    Json,
};
use gitclaw_metadata::{Error as MetadataError, Repo};
use serde::{Deserialize, Serialize};

use crate::{
    app::AppState,
    auth::{self, Caller, Denied},
    names,
    service::lifecycle::{self, LifecycleError},
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

#[utoipa::path(post, path = "/api/v1/repos", request_body = CreateRepo, responses((status = 201, body = RepoView), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 409, body = ApiError)))]
pub async fn post_repo(
    State(state): State<AppState>,
    headers: HeaderMap,
    payload: Result<Json<CreateRepo>, JsonRejection>,
) -> Result<(StatusCode, Json<RepoView>), ApiError> {
    let caller = caller(&state, &headers).await?;
    auth::check_admin(&caller).map_err(auth_error)?;
    let Json(req) = payload?;
    let repo = create_repo(&state, &req.owner, &req.name, req.private, &caller.actor()).await?;
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

fn auth_error(d: Denied) -> ApiError {
    match d {
        Denied::Unauthenticated(m) => ApiError::new(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", m),
        Denied::Forbidden(m) => ApiError::new(StatusCode::FORBIDDEN, "FORBIDDEN", m),
        Denied::Unavailable(m) => {
            ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "DATABASE_ERROR", m)
        }
    }
}

async fn caller(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    auth::authenticate(state, headers).await.map_err(auth_error)
}

fn db_error(err: MetadataError) -> ApiError {
    tracing::error!(error = %err, "metadata request failed");
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "DATABASE_ERROR",
        err.to_string(),
    )
}

/// The repository an API path names, or 400 / 404.
async fn find_repo(state: &AppState, owner: &str, name: &str) -> Result<Repo, ApiError> {
    names::validate_name("owner", owner)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_NAME", m))?;
    names::validate_name("repository", name)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_NAME", m))?;
    state
        .meta
        .get_repo(owner, name)
        .await
        .map_err(db_error)?
        .ok_or_else(|| repo_not_found(owner, name))
}

/// The repository an API path names if `caller` may read it; otherwise the
/// very 404 a missing repository gets (same code, same message), so the
/// answer does not tell a private repository from a missing one.
async fn find_readable(
    state: &AppState,
    caller: &Caller,
    owner: &str,
    name: &str,
) -> Result<Repo, ApiError> {
    let repo = find_repo(state, owner, name).await?;
    if auth::can_read(caller, &repo) {
        Ok(repo)
    } else {
        Err(repo_not_found(owner, name))
    }
}

fn repo_not_found(owner: &str, name: &str) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "NOT_FOUND",
        format!("repository {owner}/{name} not found"),
    )
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
    let axum::extract::Query(query) =
        query.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", r.body_text()))?;
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
        .await
        .map_err(db_error)?;
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
    Ok(Json(RepoView::new(&state, repo)))
}

fn lifecycle_error(err: LifecycleError) -> ApiError {
    match err {
        LifecycleError::NotFound(m) => ApiError::new(StatusCode::NOT_FOUND, "NOT_FOUND", m),
        LifecycleError::AlreadyExists(m) => ApiError::new(
            StatusCode::CONFLICT,
            "ALREADY_EXISTS",
            format!("repository {m} already exists"),
        ),
        LifecycleError::Metadata(err) => db_error(err),
        LifecycleError::Storage(err) => {
            tracing::error!(error = %err, code = err.code(), "object store request failed");
            let status = if err.is_retryable() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::INTERNAL_SERVER_ERROR
            };
            ApiError::new(status, err.code(), err.to_string())
        }
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
    auth::check_repo_admin(&caller, &repo).map_err(auth_error)?;
    lifecycle::delete_repo(&state, &repo, &caller.actor())
        .await
        .map_err(lifecycle_error)?;
    Ok(StatusCode::NO_CONTENT)
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
    auth::check_admin(&caller).map_err(auth_error)?;
    let Json(req) = payload?;
    let source = find_repo(&state, &owner, &name).await?;
    names::validate_name("owner", &req.owner)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_NAME", m))?;
    names::validate_name("repository", &req.name)
        .map_err(|m| ApiError::new(StatusCode::BAD_REQUEST, "INVALID_NAME", m))?;
    let fork = lifecycle::fork_repo(&state, &source, &req.owner, &req.name, &caller.actor())
        .await
        .map_err(lifecycle_error)?;
    Ok((StatusCode::CREATED, Json(RepoView::new(&state, fork))))
}

/// A repository's statistics: what the metadata records, and what the store holds.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RepoStatsView {
    /// Packs, loose objects, objects and bytes as the metadata records them.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub recorded: gitclaw_metadata::RepoStats,
    /// Keys and bytes under the repository's prefix in the object store.
    pub store: crate::service::gc::StoreUsage,
}

#[utoipa::path(get, path = "/api/v1/repos/{owner}/{name}/stats", params(("owner" = String, Path), ("name" = String, Path)), responses((status = 200, body = RepoStatsView, description = "object count, stored bytes, packs, loose objects, and what the store holds"), (status = 404, body = ApiError)))]
pub async fn repo_stats(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path((owner, name)): axum::extract::Path<(String, String)>,
) -> Result<Json<RepoStatsView>, ApiError> {
    let caller = caller(&state, &headers).await?;
    let repo = find_readable(&state, &caller, &owner, &name).await?;
    let recorded = state.meta.repo_stats(&repo.id).await.map_err(db_error)?;
    let store = crate::service::gc::store_usage(&state, &repo)
        .await
        .map_err(|err| {
            tracing::error!(error = %format!("{err:#}"), "cannot list the repository's store keys");
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "S3_CONNECTION_ERROR",
                "cannot list the repository's keys in the object store",
            )
        })?;
    Ok(Json(RepoStatsView { recorded, store }))
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
    auth::check_admin(&caller(&state, &headers).await?).map_err(auth_error)?;
    let axum::extract::Query(query) =
        query.map_err(|r| ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", r.body_text()))?;
    let repo = find_repo(&state, &owner, &name).await?;
    let limit = query.limit.unwrap_or(50).clamp(1, 500);
    let events = state
        .meta
        .list_audit(Some(&repo.id), query.before, limit)
        .await
        .map_err(db_error)?;
    let next = (events.len() == limit as usize)
        .then(|| events.last().map(|e| e.id))
        .flatten();
    Ok(Json(AuditPage { events, next }))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenScope {
    /// OWNER/NAME
    pub repo: String,
    /// `read`, `write` (push) or `admin` (push and delete the repository)
    pub access: String,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateToken {
    pub name: String,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub repos: Vec<TokenScope>,
    /// The token stops working this many days after its creation.
    pub expires_in_days: Option<u32>,
    /// The token stops working at this time (unix seconds). At most one of
    /// `expires_in_days` and `expires_at`; neither: it never expires.
    pub expires_at: Option<i64>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NewToken {
    pub id: String,
    pub name: String,
    pub admin: bool,
    /// Unix seconds; absent if it never expires.
    pub expires_at: Option<i64>,
    /// The secret: shown this once, stored only as a hash.
    pub token: String,
}

/// The longest a token may be made to last, in days (about 100 years).
pub const MAX_TOKEN_DAYS: u32 = 36_500;

/// When a new token expires (unix seconds), from the two ways to say it.
pub fn token_expiry(
    expires_in_days: Option<u32>,
    expires_at: Option<i64>,
) -> Result<Option<i64>, ApiError> {
    let bad = |m: String| ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", m);
    let now = auth::now_secs();
    match (expires_in_days, expires_at) {
        (Some(_), Some(_)) => Err(bad("give expires_in_days or expires_at, not both".into())),
        (Some(days), None) if days == 0 || days > MAX_TOKEN_DAYS => Err(bad(format!(
            "expires_in_days must be 1 to {MAX_TOKEN_DAYS}, not {days}"
        ))),
        (Some(days), None) => Ok(Some(now + i64::from(days) * 86_400)),
        (None, Some(at)) if at <= now => Err(bad(format!(
            "expires_at {at} is not in the future (now is {now})"
        ))),
        (None, at) => Ok(at),
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenScopeView {
    /// OWNER/NAME, as stored now.
    pub repo: String,
    /// `read`, `write` or `admin`
    pub access: String,
}

/// A token as listed: never its secret or its hash.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub admin: bool,
    pub scopes: Vec<TokenScopeView>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds; absent if it never expires.
    pub expires_at: Option<i64>,
    /// Unix seconds of its last use (recorded at most once a minute); absent if never used.
    pub last_used_at: Option<i64>,
}

impl From<gitclaw_metadata::TokenSummary> for TokenView {
    fn from(t: gitclaw_metadata::TokenSummary) -> Self {
        TokenView {
            id: t.id,
            name: t.name,
            admin: t.admin,
            scopes: t
                .scopes
                .into_iter()
                .map(|s| TokenScopeView {
                    repo: format!("{}/{}", s.owner, s.name),
                    access: s.access.as_str().to_string(),
                })
                .collect(),
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenList {
    pub tokens: Vec<TokenView>,
}

/// Mint a token: the shared rule for the API and the command line.
pub async fn mint_token(
    state: &AppState,
    name: &str,
    admin: bool,
    scopes: &[(String, String)],
    expires_at: Option<i64>,
) -> Result<NewToken, ApiError> {
    let mut resolved = Vec::with_capacity(scopes.len());
    for (full, access) in scopes {
        let access = gitclaw_metadata::Access::parse(access).ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("access must be read, write or admin, not '{access}'"),
            )
        })?;
        let (owner, repo) = full.split_once('/').ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "BAD_REQUEST",
                format!("'{full}' is not OWNER/NAME"),
            )
        })?;
        let repo = find_repo(state, owner, repo).await?;
        resolved.push((repo.id, access));
    }
    let secret = auth::new_secret();
    let token = state
        .meta
        .create_token(
            name,
            &auth::hash_secret(&secret),
            admin,
            &resolved,
            expires_at,
        )
        .await
        .map_err(|err| match err {
            MetadataError::InvalidInput(m) => {
                ApiError::new(StatusCode::BAD_REQUEST, "BAD_REQUEST", m)
            }
            other => db_error(other),
        })?;
    Ok(NewToken {
        id: token.id,
        name: token.name,
        admin: token.admin,
        expires_at: token.expires_at,
        token: secret,
    })
}

#[utoipa::path(post, path = "/api/v1/tokens", request_body = CreateToken, responses((status = 201, body = NewToken), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub async fn post_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    payload: Result<Json<CreateToken>, JsonRejection>,
) -> Result<(StatusCode, Json<NewToken>), ApiError> {
    auth::check_admin(&caller(&state, &headers).await?).map_err(auth_error)?;
    let Json(req) = payload?;
    let expires_at = token_expiry(req.expires_in_days, req.expires_at)?;
    let scopes: Vec<(String, String)> = req.repos.into_iter().map(|s| (s.repo, s.access)).collect();
    Ok((
        StatusCode::CREATED,
        Json(mint_token(&state, &req.name, req.admin, &scopes, expires_at).await?),
    ))
}

#[utoipa::path(get, path = "/api/v1/tokens", description = "Every token, oldest first, without secrets. Admin only.", responses((status = 200, body = TokenList), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<TokenList>, ApiError> {
    auth::check_admin(&caller(&state, &headers).await?).map_err(auth_error)?;
    let tokens = state.meta.list_tokens().await.map_err(db_error)?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(TokenView::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", description = "Revoke a token: every server refuses it from the next request on. Admin only.", params(("id" = String, Path)), responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn delete_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    auth::check_admin(&caller(&state, &headers).await?).map_err(auth_error)?;
    revoke_token(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revoke a token: the shared rule for the API and the command line.
pub async fn revoke_token(state: &AppState, id: &str) -> Result<(), ApiError> {
    state.meta.revoke_token(id).await.map_err(|err| match err {
        MetadataError::NotFound(_) => ApiError::new(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("token {id} not found"),
        ),
        other => db_error(other),
    })
}

/// The OpenAPI document of this API, generated from the handlers above.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "GitClaw API",
        description = "Repositories, tokens and audit of a GitClaw server."
    ),
    paths(
        post_repo,
        list_repos,
        get_repo,
        delete_repo,
        fork_repo,
        repo_stats,
        repo_audit,
        post_token,
        list_tokens,
        delete_token
    ),
    components(schemas(
        ApiError,
        RepoStatsView,
        crate::service::gc::StoreUsage,
        CreateRepo,
        RepoView,
        RepoPage,
        ForkRequest,
        AuditPage,
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
