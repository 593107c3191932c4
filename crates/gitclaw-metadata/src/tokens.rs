//! Access tokens: a name, an admin flag and per-repository scopes, stored under a
//! hash of the secret (the secret itself is shown once, by the caller, and never
//! stored).
//!
//! Not for: generating secrets, hashing them, or deciding access (the server does).

use crate::util::{get_bool, get_i64, get_str, now_secs};
use crate::{Error, Metadata, Result};

/// What a token may touch in one repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }

    pub fn parse(text: &str) -> Option<Access> {
        match text {
            "read" => Some(Access::Read),
            "write" => Some(Access::Write),
            _ => None,
        }
    }
}

/// A stored token (without its secret).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Token {
    pub id: String,
    pub name: String,
    pub admin: bool,
    /// `(repo_id, access)` pairs.
    pub scopes: Vec<(String, Access)>,
    pub created_at: i64,
}

impl Token {
    /// The access this token has to a repository (admins have write everywhere).
    pub fn access_to(&self, repo_id: &str) -> Option<Access> {
        if self.admin {
            return Some(Access::Write);
        }
        self.scopes
            .iter()
            .filter(|(r, _)| r == repo_id)
            .map(|(_, a)| *a)
            .max()
    }
}

impl Metadata {
    /// Store a token under `token_hash` with its scopes, in one transaction.
    pub async fn create_token(
        &self,
        name: &str,
        token_hash: &str,
        admin: bool,
        scopes: &[(String, Access)],
    ) -> Result<Token> {
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
        };
        let mut tx = self.begin_write().await?;
        sqlx::query("INSERT INTO tokens (id, name, token_hash, admin, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&token.id)
            .bind(&token.name)
            .bind(token_hash)
            .bind(admin)
            .bind(token.created_at)
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
    }

    /// The token stored under `token_hash`, with its scopes.
    pub async fn token_by_hash(&self, token_hash: &str) -> Result<Option<Token>> {
        let Some(row) =
            sqlx::query("SELECT id, name, admin, created_at FROM tokens WHERE token_hash = $1")
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
                Access::parse(&access)
                    .ok_or_else(|| Error::InvalidData(format!("token scope access {access}")))?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(Some(Token {
            id,
            name: get_str(&row, "name")?,
            admin: get_bool(&row, "admin")?,
            scopes,
            created_at: get_i64(&row, "created_at")?,
        }))
    }
}
