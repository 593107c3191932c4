//! `/api/v1/tokens`: mint, list, revoke.

use axum::{
    extract::{rejection::JsonRejection, State},
    http::{HeaderMap, StatusCode},
    Json,
};
use serde::{Deserialize, Serialize};

use super::{caller, ApiError};
use crate::{
    app::AppState,
    auth,
    service::tokens::{self, MintedToken},
};

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

impl From<MintedToken> for NewToken {
    fn from(minted: MintedToken) -> Self {
        NewToken {
            id: minted.token.id,
            name: minted.token.name,
            admin: minted.token.admin,
            expires_at: minted.token.expires_at,
            token: minted.secret,
        }
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

#[utoipa::path(post, path = "/api/v1/tokens", request_body = CreateToken, responses((status = 201, body = NewToken), (status = 400, body = ApiError), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub async fn post_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    payload: Result<Json<CreateToken>, JsonRejection>,
) -> Result<(StatusCode, Json<NewToken>), ApiError> {
    auth::check_admin(&caller(&state, &headers).await?)?;
    let Json(req) = payload?;
    let expires_at = tokens::token_expiry(req.expires_in_days, req.expires_at)?;
    let scopes: Vec<(String, String)> = req.repos.into_iter().map(|s| (s.repo, s.access)).collect();
    let minted = tokens::mint_token(&state, &req.name, req.admin, &scopes, expires_at).await?;
    Ok((StatusCode::CREATED, Json(NewToken::from(minted))))
}

#[utoipa::path(get, path = "/api/v1/tokens", description = "Every token, oldest first, without secrets. Admin only.", responses((status = 200, body = TokenList), (status = 401, body = ApiError), (status = 403, body = ApiError)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<TokenList>, ApiError> {
    auth::check_admin(&caller(&state, &headers).await?)?;
    let listed = state.meta.list_tokens().await?;
    Ok(Json(TokenList {
        tokens: listed.into_iter().map(TokenView::from).collect(),
    }))
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", description = "Revoke a token: every server refuses it from the next request on. Admin only.", params(("id" = String, Path)), responses((status = 204), (status = 401, body = ApiError), (status = 403, body = ApiError), (status = 404, body = ApiError)))]
pub async fn delete_token(
    State(state): State<AppState>,
    headers: HeaderMap,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Result<StatusCode, ApiError> {
    auth::check_admin(&caller(&state, &headers).await?)?;
    tokens::revoke_token(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
