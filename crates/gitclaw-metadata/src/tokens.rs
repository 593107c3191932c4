//! Access tokens: a name, an admin flag, per-repository scopes and an optional
//! expiry, stored under a hash of the secret (the secret itself is shown once,
//! by the caller, and never stored). Revoking deletes the row, so the next
//! lookup by any server finds nothing: nothing here is cached.
//!
//! Not for: generating secrets, hashing them, or deciding access (the server
//! does, including whether a token has expired).

use sqlx::any::AnyRow;
use sqlx::Row;

use crate::util::{get_bool, get_i64, get_str, now_secs};
use crate::{Error, Metadata, Result};

/// A nullable unix-seconds column.
fn get_opt_i64(row: &AnyRow, col: &str) -> Result<Option<i64>> {
    Ok(row.try_get::<Option<i64>, _>(col)?)
}

/// What a token may touch in one repository.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
    /// Write, and delete the repository.
    Admin,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
            Access::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Access> {
        match text {
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            "admin" => Some(Access::Admin),
            _ => None,
        }
    }
}

/// A stored token (without its secret).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub admin: bool,
    /// `(repo_id, access)` pairs.
    pub scopes: Vec<(String, Access)>,
    /// Unix seconds.
    pub created_at: i64,
    /// Unix seconds after which the token is refused; `None`: never.
    pub expires_at: Option<i64>,
    /// Unix seconds of the last request that used it, as recorded by
    /// [`Metadata::touch_token`]; `None`: never used.
    pub last_used_at: Option<i64>,
}

/// One scope of a listed token, with the repository's current name.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NamedScope {
    pub repo_id: String,
    pub owner: String,
    pub name: String,
    pub access: Access,
}

/// A token as [`Metadata::list_tokens`] shows it: never its secret or hash.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TokenSummary {
    pub id: String,
    pub name: String,
    pub admin: bool,
    pub scopes: Vec<NamedScope>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
}

impl Token {
    /// The access this token has to a repository (admin tokens have admin
    /// access everywhere).
    pub fn access_to(&self, repo_id: &str) -> Option<Access> {
        if self.admin {
            return Some(Access::Admin);
        }
        self.scopes
            .iter()
            .filter(|(r, _)| r == repo_id)
            .map(|(_, a)| *a)
            .max()
    }
}

impl Metadata {
    /// Store a token under `token_hash` with its scopes and expiry (unix
    /// seconds, `None` for never), in one transaction.
    pub async fn create_token(
        &self,
        name: &str,
        token_hash: &str,
        admin: bool,
        scopes: &[(String, Access)],
        expires_at: Option<i64>,
    ) -> Result<Token> {
        self.timed("create_token", async {
            if name.is_empty() || name.len() > 200 {
                return Err(Error::InvalidInput(
                    "token name must be 1 to 200 characters".into(),
                ));
            }
            let token = Token {
                id: Self::new_repo_id(),
                name: name.to_owned(),
                admin,
                scopes: scopes.to_vec(),
                created_at: now_secs(),
                expires_at,
                last_used_at: None,
            };
            let mut tx = self.begin_write().await?;
            sqlx::query(
                "INSERT INTO tokens (id, name, token_hash, admin, created_at, expires_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&token.id)
            .bind(&token.name)
            .bind(token_hash)
            .bind(admin)
            .bind(token.created_at)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
            for (repo_id, access) in scopes {
                sqlx::query(
                    "INSERT INTO token_scopes (token_id, repo_id, access) VALUES ($1, $2, $3) \
                     ON CONFLICT (token_id, repo_id) DO UPDATE SET access = excluded.access",
                )
                .bind(&token.id)
                .bind(repo_id)
                .bind(access.as_str())
                .execute(&mut *tx)
                .await?;
            }
            tx.commit().await?;
            Ok(token)
        })
        .await
    }

    /// The token stored under `token_hash`, with its scopes, read from the
    /// database on every call (a revoked token is gone at once, everywhere).
    /// An expired token is returned too: the caller decides, and can say why.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<Token>> {
        self.timed("token_by_hash", async {
            let Some(row) = sqlx::query(
                "SELECT id, name, admin, created_at, expires_at, last_used_at \
                 FROM tokens WHERE token_hash = $1",
            )
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?
            else {
                return Ok(None);
            };
            let id = get_str(&row, "id")?;
            let scopes = sqlx::query(
                "SELECT repo_id, access FROM token_scopes WHERE token_id = $1 ORDER BY repo_id",
            )
            .bind(&id)
            .fetch_all(self.pool())
            .await?
            .iter()
            .map(|r| {
                let access = get_str(r, "access")?;
                Ok((
                    get_str(r, "repo_id")?,
                    Access::parse(&access).ok_or_else(|| {
                        Error::InvalidData(format!("token scope access {access}"))
                    })?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
            Ok(Some(Token {
                id,
                name: get_str(&row, "name")?,
                admin: get_bool(&row, "admin")?,
                scopes,
                created_at: get_i64(&row, "created_at")?,
                expires_at: get_opt_i64(&row, "expires_at")?,
                last_used_at: get_opt_i64(&row, "last_used_at")?,
            }))
        })
        .await
    }

    /// Records that token `id` was used at `now`, unless a use later than
    /// `now - interval` is already recorded: at most one write per token per
    /// `interval` seconds, however busy the token.
    pub async fn touch_token(&self, id: &str, now: i64, interval: i64) -> Result<()> {
        self.timed("touch_token", async {
            sqlx::query(
                "UPDATE tokens SET last_used_at = $1 \
                 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
            )
            .bind(now)
            .bind(id)
            .bind(now.saturating_sub(interval))
            .execute(self.pool())
            .await?;
            Ok(())
        })
        .await
    }

    /// Every token, oldest first, with its scopes by repository name.
    pub async fn list_tokens(&self) -> Result<Vec<TokenSummary>> {
        self.timed("list_tokens", async {
            let rows = sqlx::query(
                "SELECT id, name, admin, created_at, expires_at, last_used_at \
                 FROM tokens ORDER BY created_at, id",
            )
            .fetch_all(self.pool())
            .await?;
            let scope_rows = sqlx::query(
                "SELECT s.token_id, s.repo_id, s.access, r.owner, r.name \
                 FROM token_scopes s JOIN repositories r ON r.id = s.repo_id \
                 ORDER BY lower(r.owner), lower(r.name)",
            )
            .fetch_all(self.pool())
            .await?;
            let mut scopes: std::collections::HashMap<String, Vec<NamedScope>> =
                std::collections::HashMap::new();
            for r in &scope_rows {
                let access = get_str(r, "access")?;
                scopes
                    .entry(get_str(r, "token_id")?)
                    .or_default()
                    .push(NamedScope {
                        repo_id: get_str(r, "repo_id")?,
                        owner: get_str(r, "owner")?,
                        name: get_str(r, "name")?,
                        access: Access::parse(&access).ok_or_else(|| {
                            Error::InvalidData(format!("token scope access {access}"))
                        })?,
                    });
            }
            rows.iter()
                .map(|row| {
                    let id = get_str(row, "id")?;
                    Ok(TokenSummary {
                        scopes: scopes.remove(&id).unwrap_or_default(),
                        id,
                        name: get_str(row, "name")?,
                        admin: get_bool(row, "admin")?,
                        created_at: get_i64(row, "created_at")?,
                        expires_at: get_opt_i64(row, "expires_at")?,
                        last_used_at: get_opt_i64(row, "last_used_at")?,
                    })
                })
                .collect()
        })
        .await
    }

    /// Revokes token `id`: its row and scopes are deleted, so the next
    /// lookup of its secret finds nothing. Returns the hash it was stored
    /// under (for caches keyed by it). [`Error::NotFound`] if there is no
    /// such token.
    pub async fn revoke_token(&self, id: &str) -> Result<String> {
        self.timed("revoke_token", async {
            let mut tx = self.begin_write().await?;
            sqlx::query("DELETE FROM token_scopes WHERE token_id = $1")
                .bind(id)
                .execute(&mut *tx)
                .await?;
            let Some(row) = sqlx::query("DELETE FROM tokens WHERE id = $1 RETURNING token_hash")
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?
            else {
                return Err(Error::NotFound(format!("token {id}")));
            };
            let hash = get_str(&row, "token_hash")?;
            tx.commit().await?;
            Ok(hash)
        })
        .await
    }
}
