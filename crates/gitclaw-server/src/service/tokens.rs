//! Access tokens: minting (the secret is shown once and stored only as a
//! hash), expiry, revocation. The REST API and the command line both call these.

use gitclaw_metadata::{Access, Error as MetadataError, Token};

use crate::{
    app::AppState,
    auth,
    service::repos::{self, RepoError},
};

/// The longest a token may be made to last, in days (about 100 years).
pub const MAX_TOKEN_DAYS: u32 = 36_500;

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The request is wrong; the text says how.
    #[error("{0}")]
    Invalid(String),
    #[error("token {0} not found")]
    NotFound(String),
    /// A repository a scope names.
    #[error(transparent)]
    Repo(#[from] RepoError),
    #[error(transparent)]
    Metadata(#[from] MetadataError),
}

/// When a new token expires (unix seconds), from the two ways to say it.
pub fn token_expiry(
    expires_in_days: Option<u32>,
    expires_at: Option<i64>,
) -> Result<Option<i64>, TokenError> {
    let now = auth::now_secs();
    let bad = |m: String| Err(TokenError::Invalid(m));
    match (expires_in_days, expires_at) {
        (Some(_), Some(_)) => bad("give expires_in_days or expires_at, not both".into()),
        (Some(days), None) if days == 0 || days > MAX_TOKEN_DAYS => bad(format!(
            "expires_in_days must be 1 to {MAX_TOKEN_DAYS}, not {days}"
        )),
        (Some(days), None) => Ok(Some(now + i64::from(days) * 86_400)),
        (None, Some(at)) if at <= now => bad(format!(
            "expires_at {at} is not in the future (now is {now})"
        )),
        (None, at) => Ok(at),
    }
}

/// A token just minted, with its secret.
pub struct MintedToken {
    pub token: Token,
    /// Shown this once; stored only as a hash.
    pub secret: String,
}

/// Mint a token; `scopes` are (`OWNER/NAME`, `read`|`write`|`admin`).
pub async fn mint_token(
    state: &AppState,
    name: &str,
    admin: bool,
    scopes: &[(String, String)],
    expires_at: Option<i64>,
) -> Result<MintedToken, TokenError> {
    let mut resolved = Vec::with_capacity(scopes.len());
    for (full, access) in scopes {
        let access = Access::parse(access).ok_or_else(|| {
            TokenError::Invalid(format!(
                "access must be read, write or admin, not '{access}'"
            ))
        })?;
        let (owner, repo) = full
            .split_once('/')
            .ok_or_else(|| TokenError::Invalid(format!("'{full}' is not OWNER/NAME")))?;
        let repo = repos::find_repo(state, owner, repo).await?;
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
            MetadataError::InvalidInput(m) => TokenError::Invalid(m),
            other => other.into(),
        })?;
    Ok(MintedToken { token, secret })
}

/// Revoke a token: every server refuses it from the next request on.
pub async fn revoke_token(state: &AppState, id: &str) -> Result<(), TokenError> {
    let hash = state.meta.revoke_token(id).await.map_err(|err| match err {
        MetadataError::NotFound(_) => TokenError::NotFound(id.to_string()),
        other => other.into(),
    })?;
    state.shared.forget_token(&hash).await;
    Ok(())
}
