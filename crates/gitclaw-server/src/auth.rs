//! Authentication and access: who is calling, and what they may do.
//!
//! Tokens arrive as the HTTP Basic password (any user name — what git credential
//! helpers send) or as `Authorization: Bearer`; scheme names ignore letter case.
//! `GITCLAW_ADMIN_TOKEN` is the bootstrap admin; other tokens live hashed
//! (SHA-256) in the metadata database, each an admin or scoped to repositories
//! with read, write or admin access, optionally until an expiry time. Every
//! request looks its token up in the database, so a revoked or expired token is
//! refused at once by every server sharing it. With no admin token configured
//! the server runs open: everyone may read and write.
//!
//! Rules with auth on: public repositories are readable by anyone; private ones
//! need a read (or write, or admin) token, and to anyone else they do not exist:
//! the routes answer exactly as for a missing repository ([`can_read`] is the
//! test). Pushes and API writes need write or admin for that repository; deleting
//! a repository needs admin for it; creating repositories, forking and managing
//! tokens need an admin token. A missing, unknown or expired token is a 401 with
//! `WWW-Authenticate: Basic` (so git asks its credential helper); a valid token
//! without the scope is a 403.

use axum::http::{header, HeaderMap};
use base64::Engine;
use gitclaw_metadata::{Access, Readers, Repo, Token};
use sha2::{Digest, Sha256};

use crate::app::AppState;

/// Who is calling.
#[derive(Debug, Clone)]
pub enum Caller {
    /// Authentication is off: the server runs open.
    Open,
    /// No credentials were sent.
    Anonymous,
    /// The bootstrap admin token.
    Admin,
    /// A stored token.
    Token(Token),
}

impl Caller {
    /// The name recorded in audit events.
    pub fn actor(&self) -> String {
        match self {
            Caller::Open => "anonymous".into(),
            Caller::Anonymous => "anonymous".into(),
            Caller::Admin => "admin".into(),
            Caller::Token(t) => format!("token:{}", t.name),
        }
    }

    /// Who holds the Git LFS locks this caller creates: a token by its id
    /// (shown by its name), the admin token, or everyone alike when there are
    /// no credentials.
    pub fn lock_owner(&self) -> crate::service::lfs::locks::LockOwner {
        use crate::service::lfs::locks::LockOwner;
        match self {
            Caller::Token(t) => LockOwner {
                id: format!("token:{}", t.id),
                name: t.name.clone(),
            },
            Caller::Admin => LockOwner {
                id: "admin".into(),
                name: "admin".into(),
            },
            Caller::Open | Caller::Anonymous => LockOwner {
                id: "anonymous".into(),
                name: "anonymous".into(),
            },
        }
    }

    fn is_admin(&self) -> bool {
        matches!(self, Caller::Open | Caller::Admin) || matches!(self, Caller::Token(t) if t.admin)
    }

    /// The repositories this caller may see in a listing.
    pub fn readers(&self) -> Readers<'_> {
        match self {
            _ if self.is_admin() => Readers::Everyone,
            Caller::Token(t) => Readers::PublicAndToken(&t.id),
            _ => Readers::Public,
        }
    }

    fn access_to(&self, repo: &Repo) -> Option<Access> {
        match self {
            Caller::Open | Caller::Admin => Some(Access::Admin),
            Caller::Anonymous => None,
            Caller::Token(t) => t.access_to(&repo.id),
        }
    }
}

/// Why a request may not proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No valid credentials: answer 401 with `WWW-Authenticate`.
    Unauthenticated(String),
    /// Valid credentials without the scope: answer 403.
    Forbidden(String),
    /// The token store could not be read.
    Unavailable(String),
}

/// The SHA-256 of a token secret, as stored.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Compare without an early exit, so timing does not reveal a prefix.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether a request may read `/metrics`: always when no
/// `GITCLAW_METRICS_TOKEN` is set, else only with that token (Bearer, or as
/// the Basic password).
pub fn may_scrape(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.config.metrics_token else {
        return true;
    };
    matches!(secret_from(headers), Ok(Some(secret)) if constant_time_eq(secret.as_bytes(), token.as_bytes()))
}

/// A new token secret: 32 random bytes, hex, with a recognisable prefix.
pub fn new_secret() -> String {
    let a = uuid::Uuid::new_v4();
    let b = uuid::Uuid::new_v4();
    format!("gct_{}{}", a.simple(), b.simple())
}

fn secret_from(headers: &HeaderMap) -> Result<Option<String>, Denied> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| Denied::Unauthenticated("malformed Authorization header".into()))?;
    // Scheme names are case-insensitive (RFC 7235): `bearer` is `Bearer`.
    let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if scheme.eq_ignore_ascii_case("bearer") {
        return Ok(Some(rest.trim().to_string()));
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest.trim())
            .map_err(|_| Denied::Unauthenticated("malformed Basic credentials".into()))?;
        let text = String::from_utf8(decoded)
            .map_err(|_| Denied::Unauthenticated("malformed Basic credentials".into()))?;
        let password = text.split_once(':').map(|(_, p)| p).unwrap_or("");
        return Ok((!password.is_empty()).then(|| password.to_string()));
    }
    Err(Denied::Unauthenticated(
        "unsupported Authorization scheme: use Basic or Bearer".into(),
    ))
}

/// Unix seconds now.
pub fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A token's last use is written at most this often (seconds), so a busy
/// token costs one small update a minute, not one per request.
const LAST_USED_INTERVAL_SECS: i64 = 60;

/// Identify the caller from the request headers.
pub async fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<Caller, Denied> {
    let Some(admin) = &state.config.admin_token else {
        return Ok(Caller::Open);
    };
    let Some(secret) = secret_from(headers)? else {
        return Ok(Caller::Anonymous);
    };
    if constant_time_eq(secret.as_bytes(), admin.as_bytes()) {
        return Ok(Caller::Admin);
    }
    let hash = hash_secret(&secret);
    let token = match state.shared.token(&hash).await {
        Some(token) => token,
        None => match state.meta.token_by_hash(&hash).await {
            Ok(Some(token)) => {
                state.shared.put_token(&hash, &token);
                token
            }
            Ok(None) => return Err(Denied::Unauthenticated("invalid token".into())),
            Err(err) => return Err(Denied::Unavailable(err.to_string())),
        },
    };
    let now = now_secs();
    if token.expires_at.is_some_and(|at| at <= now) {
        return Err(Denied::Unauthenticated(format!(
            "token '{}' has expired: create a new one",
            token.name
        )));
    }
    if token
        .last_used_at
        .is_none_or(|at| now - at >= LAST_USED_INTERVAL_SECS)
    {
        match state
            .meta
            .touch_token(&token.id, now, LAST_USED_INTERVAL_SECS)
            .await
        {
            Ok(()) => state.shared.touched(&token.id, now),
            Err(err) => {
                tracing::warn!(token = %token.id, error = %err, "cannot record the token's last use")
            }
        }
    }
    Ok(Caller::Token(token))
}

/// Whether the caller may read the repository. A caller who may not must be
/// answered exactly as if it did not exist, so that private names do not leak.
pub fn can_read(caller: &Caller, repo: &Repo) -> bool {
    !repo.private || caller.access_to(repo).is_some()
}

/// Write access (push) to a repository the caller may read.
pub fn check_write(caller: &Caller, repo: &Repo) -> Result<(), Denied> {
    match (caller, caller.access_to(repo)) {
        (_, Some(Access::Write | Access::Admin)) => Ok(()),
        (Caller::Anonymous, _) => Err(Denied::Unauthenticated(format!(
            "authentication required to write to {}/{}",
            repo.owner, repo.name
        ))),
        _ => Err(Denied::Forbidden(format!(
            "this token may not write to {}/{}",
            repo.owner, repo.name
        ))),
    }
}

/// Admin access to one repository (deleting it, changing it, its webhooks),
/// for a caller who may read it: an admin token, or a token with the `admin`
/// scope on it; `write` is not enough. `doing` says what, for the refusal
/// (`"deleting"`).
pub fn check_repo_admin(caller: &Caller, repo: &Repo, doing: &str) -> Result<(), Denied> {
    match (caller, caller.access_to(repo)) {
        (_, Some(Access::Admin)) => Ok(()),
        (Caller::Anonymous, _) => Err(Denied::Unauthenticated(format!(
            "authentication required for {doing} {}/{}",
            repo.owner, repo.name
        ))),
        _ => Err(Denied::Forbidden(format!(
            "{doing} {}/{} needs an admin token or the admin scope on it",
            repo.owner, repo.name
        ))),
    }
}

/// Admin-only operations (create repositories, fork, mint tokens, audit).
pub fn check_admin(caller: &Caller) -> Result<(), Denied> {
    if caller.is_admin() {
        Ok(())
    } else if matches!(caller, Caller::Anonymous) {
        Err(Denied::Unauthenticated("authentication required".into()))
    } else {
        Err(Denied::Forbidden(
            "this operation needs an admin token".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(private: bool) -> Repo {
        Repo {
            id: "r1".into(),
            owner: "o".into(),
            name: "n".into(),
            private,
            head_ref: "refs/heads/main".into(),
            state: "active".into(),
            created_at: 0,
            cache_version: 0,
            max_bytes: None,
        }
    }

    fn token(admin: bool, scopes: &[(&str, Access)]) -> Caller {
        Caller::Token(Token {
            id: "t".into(),
            name: "t".into(),
            admin,
            scopes: scopes.iter().map(|(r, a)| (r.to_string(), *a)).collect(),
            created_at: 0,
            expires_at: None,
            last_used_at: None,
        })
    }

    #[test]
    fn access_rules() {
        let (public, private) = (repo(false), repo(true));
        assert!(can_read(&Caller::Anonymous, &public));
        assert!(!can_read(&Caller::Anonymous, &private));
        assert!(!can_read(&token(false, &[]), &private));
        assert!(!can_read(&token(false, &[("r2", Access::Admin)]), &private));
        assert!(can_read(&token(false, &[("r1", Access::Read)]), &private));
        assert!(can_read(&token(true, &[]), &private));
        assert!(can_read(&Caller::Open, &private));
        assert!(matches!(
            check_write(&token(false, &[("r1", Access::Read)]), &public),
            Err(Denied::Forbidden(_))
        ));
        assert!(check_write(&token(false, &[("r1", Access::Write)]), &private).is_ok());
        assert!(check_write(&token(false, &[("r1", Access::Admin)]), &private).is_ok());
        assert!(matches!(
            check_write(&token(false, &[("r2", Access::Write)]), &public),
            Err(Denied::Forbidden(_))
        ));
        assert!(check_write(&token(true, &[]), &private).is_ok());
        assert!(check_write(&Caller::Open, &private).is_ok());
        assert!(matches!(
            check_write(&Caller::Anonymous, &public),
            Err(Denied::Unauthenticated(_))
        ));
        assert!(check_admin(&Caller::Admin).is_ok());
        assert!(matches!(
            check_admin(&token(false, &[("r1", Access::Write)])),
            Err(Denied::Forbidden(_))
        ));
    }

    #[test]
    fn deleting_a_repository_needs_admin_on_it_not_write() {
        let public = repo(false);
        assert!(matches!(
            check_repo_admin(&token(false, &[("r1", Access::Write)]), &public, "deleting"),
            Err(Denied::Forbidden(_))
        ));
        assert!(matches!(
            check_repo_admin(&token(false, &[("r2", Access::Admin)]), &public, "deleting"),
            Err(Denied::Forbidden(_))
        ));
        assert!(matches!(
            check_repo_admin(&Caller::Anonymous, &public, "deleting"),
            Err(Denied::Unauthenticated(_))
        ));
        assert!(
            check_repo_admin(&token(false, &[("r1", Access::Admin)]), &public, "deleting").is_ok()
        );
        assert!(check_repo_admin(&token(true, &[]), &public, "deleting").is_ok());
        assert!(check_repo_admin(&Caller::Admin, &public, "deleting").is_ok());
        assert!(check_repo_admin(&Caller::Open, &public, "deleting").is_ok());
    }

    #[test]
    fn listings_show_what_the_caller_may_read() {
        assert_eq!(Caller::Anonymous.readers(), Readers::Public);
        assert_eq!(Caller::Admin.readers(), Readers::Everyone);
        assert_eq!(Caller::Open.readers(), Readers::Everyone);
        assert_eq!(token(true, &[]).readers(), Readers::Everyone);
        assert_eq!(
            token(false, &[("r1", Access::Read)]).readers(),
            Readers::PublicAndToken("t")
        );
    }

    #[test]
    fn credentials_from_headers() {
        let mut headers = HeaderMap::new();
        let basic = base64::engine::general_purpose::STANDARD.encode("anyone:s3cret");
        headers.insert(
            header::AUTHORIZATION,
            format!("Basic {basic}").parse().unwrap(),
        );
        assert_eq!(secret_from(&headers).unwrap().as_deref(), Some("s3cret"));
        headers.insert(header::AUTHORIZATION, "Bearer abc".parse().unwrap());
        assert_eq!(secret_from(&headers).unwrap().as_deref(), Some("abc"));
        headers.insert(header::AUTHORIZATION, "Digest x".parse().unwrap());
        assert!(secret_from(&headers).is_err());
        // Scheme names ignore letter case.
        for scheme in ["bearer", "BEARER", "bEaReR"] {
            headers.insert(
                header::AUTHORIZATION,
                format!("{scheme} abc").parse().unwrap(),
            );
            assert_eq!(secret_from(&headers).unwrap().as_deref(), Some("abc"));
        }
        for scheme in ["basic", "BASIC"] {
            headers.insert(
                header::AUTHORIZATION,
                format!("{scheme} {basic}").parse().unwrap(),
            );
            assert_eq!(secret_from(&headers).unwrap().as_deref(), Some("s3cret"));
        }
        assert!(
            constant_time_eq(b"abc", b"abc")
                && !constant_time_eq(b"abc", b"abd")
                && !constant_time_eq(b"a", b"ab")
        );
        assert!(new_secret().starts_with("gct_") && new_secret().len() == 68);
    }
}
