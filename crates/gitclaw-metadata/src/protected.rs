//! Protected refs: per-repository rules, each naming refs by a pattern, that
//! a push must keep to (no force-push, no deletion, unless the rule allows it).
//!
//! For: storing the rules and matching a ref name against them. Not for:
//! deciding whether an update is a force-push (that needs the objects; the
//! server does it) or refusing anything.

use serde::Serialize;
use sqlx::any::AnyRow;

use crate::audit::{self, AuditAction};
use crate::repos::lock_repo;
use crate::util::{get_bool, get_i64, get_str, now_secs};
use crate::{Error, Metadata, Result};

/// A rule for the refs its pattern names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ProtectedRef {
    pub id: String,
    pub repo_id: String,
    /// A full ref name, in which `*` stands for any run of characters within
    /// a component and a `**` component for any number of components
    /// (`refs/heads/release/*`, `refs/tags/**`, `refs/heads/**/main`).
    pub pattern: String,
    /// A push may move a matching ref to a commit its old one is not an ancestor of.
    pub allow_force_push: bool,
    /// A push may delete a matching ref.
    pub allow_deletion: bool,
    pub created_at: i64,
}

impl ProtectedRef {
    /// Whether the rule names `name`.
    pub fn matches(&self, name: &str) -> bool {
        pattern_matches(self.pattern.as_bytes(), name.as_bytes())
    }
}

/// Longest pattern taken, in bytes (a ref name's longest).
pub const MAX_PATTERN_BYTES: usize = 1024;

/// Why `pattern` is not one, if it is not: it must name refs under `refs/`,
/// with no control characters or empty components, `**` only as a whole
/// component, and be at most [`MAX_PATTERN_BYTES`] long.
pub fn pattern_problem(pattern: &str) -> Option<String> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Some(format!(
            "a pattern may be at most {MAX_PATTERN_BYTES} bytes"
        ));
    }
    if !pattern.starts_with("refs/") || pattern.len() == "refs/".len() {
        return Some(format!(
            "'{pattern}' does not name refs: a pattern is a full ref name, such as refs/heads/main or refs/heads/release/*"
        ));
    }
    if pattern.chars().any(|c| c.is_control()) {
        return Some("a pattern may not hold control characters".into());
    }
    if pattern.split('/').any(|c| c != "**" && c.contains("**")) {
        return Some(format!(
            "'{pattern}': `**` stands for whole components only (refs/heads/**/main)"
        ));
    }
    if pattern.split('/').any(str::is_empty) {
        return Some(format!("'{pattern}' has an empty component"));
    }
    None
}

/// Glob match of a ref name, component by component: a `**` component
/// matches any number of components (none included), and `*` within a
/// component any run of its characters. Both use the classic matching with
/// backtracking to the last star only, so the work stays within the product
/// of the lengths.
fn pattern_matches(pattern: &[u8], name: &[u8]) -> bool {
    let pattern: Vec<&[u8]> = pattern.split(|&c| c == b'/').collect();
    let name: Vec<&[u8]> = name.split(|&c| c == b'/').collect();
    wildcard(
        &pattern,
        &name,
        |p| *p == b"**",
        |p, n| component_matches(p, n),
    )
}

/// `*` within one component.
fn component_matches(pattern: &[u8], name: &[u8]) -> bool {
    wildcard(pattern, name, |c| *c == b'*', |p, n| p == n)
}

/// Wildcard matching of `items` against `pattern`, whose stars (`is_star`)
/// match any run of items and whose other elements match one item each
/// (`one`).
fn wildcard<T>(
    pattern: &[T],
    items: &[T],
    is_star: impl Fn(&T) -> bool,
    one: impl Fn(&T, &T) -> bool,
) -> bool {
    let (mut p, mut i) = (0, 0);
    // After the last star: where in the pattern, and where in the items it began.
    let mut star: Option<(usize, usize)> = None;
    while i < items.len() {
        if p < pattern.len() && is_star(&pattern[p]) {
            p += 1;
            star = Some((p, i));
        } else if p < pattern.len() && one(&pattern[p], &items[i]) {
            p += 1;
            i += 1;
        } else if let Some((after, start)) = star {
            // The star takes one more item.
            star = Some((after, start + 1));
            p = after;
            i = start + 1;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(is_star)
}

fn protected_from_row(row: &AnyRow) -> Result<ProtectedRef> {
    Ok(ProtectedRef {
        id: get_str(row, "id")?,
        repo_id: get_str(row, "repo_id")?,
        pattern: get_str(row, "pattern")?,
        allow_force_push: get_bool(row, "allow_force_push")?,
        allow_deletion: get_bool(row, "allow_deletion")?,
        created_at: get_i64(row, "created_at")?,
    })
}

impl Metadata {
    /// Protect the refs `pattern` names in a repository; audited.
    ///
    /// Errors: [`Error::InvalidInput`] for a bad pattern (see
    /// [`pattern_problem`]) or a repository with `max_per_repo` rules,
    /// [`Error::AlreadyExists`] if the repository has a rule of that pattern,
    /// [`Error::NotFound`] if it does not exist.
    pub async fn create_protected_ref(
        &self,
        repo_id: &str,
        pattern: &str,
        allow_force_push: bool,
        allow_deletion: bool,
        actor: &str,
        max_per_repo: usize,
    ) -> Result<ProtectedRef> {
        self.timed("create_protected_ref", async {
            if let Some(problem) = pattern_problem(pattern) {
                return Err(Error::InvalidInput(problem));
            }
            let mut tx = self.begin_write().await?;
            let repo = lock_repo(&mut tx, repo_id).await?;
            let rows = sqlx::query("SELECT pattern FROM protected_refs WHERE repo_id = $1")
                .bind(repo_id)
                .fetch_all(&mut *tx)
                .await?;
            for row in &rows {
                if get_str(row, "pattern")? == pattern {
                    return Err(Error::AlreadyExists(format!(
                        "a rule for {pattern} in {}/{}",
                        repo.owner, repo.name
                    )));
                }
            }
            if rows.len() >= max_per_repo {
                return Err(Error::InvalidInput(format!(
                    "{}/{} has {max_per_repo} protected-ref rules, the most a repository may have",
                    repo.owner, repo.name
                )));
            }
            let rule = ProtectedRef {
                id: uuid::Uuid::new_v4().to_string(),
                repo_id: repo_id.to_owned(),
                pattern: pattern.to_owned(),
                allow_force_push,
                allow_deletion,
                created_at: now_secs(),
            };
            sqlx::query(
                "INSERT INTO protected_refs \
                 (id, repo_id, pattern, allow_force_push, allow_deletion, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(&rule.id)
            .bind(&rule.repo_id)
            .bind(&rule.pattern)
            .bind(rule.allow_force_push)
            .bind(rule.allow_deletion)
            .bind(rule.created_at)
            .execute(&mut *tx)
            .await?;
            let details = serde_json::json!({
                "rule": rule.id,
                "pattern": rule.pattern,
                "allow_force_push": allow_force_push,
                "allow_deletion": allow_deletion,
            });
            audit::append_for(
                &mut tx,
                &repo,
                AuditAction::ProtectionCreate,
                actor,
                &details,
            )
            .await?;
            tx.commit().await?;
            Ok(rule)
        })
        .await
    }

    /// The repository's protected-ref rules, by pattern.
    pub async fn list_protected_refs(&self, repo_id: &str) -> Result<Vec<ProtectedRef>> {
        self.timed("list_protected_refs", async {
            let rows = sqlx::query(
                "SELECT id, repo_id, pattern, allow_force_push, allow_deletion, created_at \
                 FROM protected_refs WHERE repo_id = $1 ORDER BY pattern",
            )
            .bind(repo_id)
            .fetch_all(self.pool())
            .await?;
            rows.iter().map(protected_from_row).collect()
        })
        .await
    }

    /// Delete a protected-ref rule of the repository; audited. Whether there was one.
    pub async fn delete_protected_ref(&self, repo_id: &str, id: &str, actor: &str) -> Result<bool> {
        self.timed("delete_protected_ref", async {
            let mut tx = self.begin_write().await?;
            let repo = lock_repo(&mut tx, repo_id).await?;
            let row = sqlx::query(
                "DELETE FROM protected_refs WHERE repo_id = $1 AND id = $2 RETURNING pattern",
            )
            .bind(repo_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(row) = row else {
                tx.rollback().await?;
                return Ok(false);
            };
            let details = serde_json::json!({ "rule": id, "pattern": get_str(&row, "pattern")? });
            audit::append_for(
                &mut tx,
                &repo,
                AuditAction::ProtectionDelete,
                actor,
                &details,
            )
            .await?;
            tx.commit().await?;
            Ok(true)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, name: &str) -> bool {
        pattern_matches(pattern.as_bytes(), name.as_bytes())
    }

    #[test]
    fn stars_match_within_a_component_and_double_stars_across() {
        assert!(matches("refs/heads/main", "refs/heads/main"));
        assert!(!matches("refs/heads/main", "refs/heads/main2"));
        assert!(!matches("refs/heads/main", "refs/heads/mai"));
        assert!(matches("refs/heads/release/*", "refs/heads/release/1.0"));
        assert!(!matches(
            "refs/heads/release/*",
            "refs/heads/release/1.0/fix"
        ));
        assert!(!matches("refs/heads/release/*", "refs/heads/release"));
        assert!(matches(
            "refs/heads/release/**",
            "refs/heads/release/1.0/fix"
        ));
        assert!(matches("refs/tags/**", "refs/tags/v1"));
        assert!(matches("refs/heads/*-stable", "refs/heads/6.1-stable"));
        assert!(!matches("refs/heads/*-stable", "refs/heads/x/6.1-stable"));
        assert!(matches("refs/heads/**/*-stable", "refs/heads/x/6.1-stable"));
        assert!(matches("refs/heads/**/*-stable", "refs/heads/6.1-stable"));
        assert!(matches("refs/*/main", "refs/heads/main"));
        assert!(!matches("refs/*/main", "refs/remotes/origin/main"));
        assert!(matches("refs/**/main", "refs/remotes/origin/main"));
        assert!(matches("refs/**/main", "refs/main"));
        assert!(matches("refs/**/x*/y", "refs/a/xb/xc/y"));
        assert!(!matches("refs/**/x*/y", "refs/a/xb/xc/z"));
        assert!(matches("refs/heads/*", "refs/heads/a*b"));
        assert!(matches("refs/heads/*a*b*", "refs/heads/xxaxxbxx"));
        assert!(!matches("refs/heads/*a*b*", "refs/heads/xxbxxaxx"));
        // A long name against many stars stays quick (no exponential backtracking).
        let name = format!("refs/heads/{}", "a".repeat(900));
        let pattern = format!("refs/heads/{}b", "*a".repeat(50));
        assert!(!matches(&pattern, &name));
    }

    #[test]
    fn patterns_must_name_refs() {
        for good in [
            "refs/heads/main",
            "refs/heads/release/*",
            "refs/tags/**",
            "refs/*",
        ] {
            assert_eq!(pattern_problem(good), None, "{good}");
        }
        for bad in [
            "main",
            "refs/",
            "heads/main",
            "refs//x",
            "refs/heads/***",
            "refs/heads/**-stable",
            "refs/heads/a\n",
        ] {
            assert!(pattern_problem(bad).is_some(), "{bad}");
        }
        assert!(pattern_problem(&format!("refs/{}", "a".repeat(MAX_PATTERN_BYTES))).is_some());
    }
}
