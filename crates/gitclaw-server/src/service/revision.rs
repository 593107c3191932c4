//! A revision a request names (`main`, `v1.0`, `refs/heads/x`, `HEAD`, or a
//! full commit id) resolved to a commit of the repository, for the routes that
//! read a revision's files (archives, raw files).
//!
//! Names resolve as git resolves a short name: the full name, then `refs/`,
//! `refs/tags/`, `refs/heads/`, `refs/remotes/` before it (a tag wins over a
//! branch of the same name). A full commit id must be reachable from a ref, as
//! a fetch by id must: a commit a force-push left behind is not served.

use gitclaw_metadata::Repo;
use gitclaw_pack::{
    odb::ObjectDb,
    walk::{unreachable_wants, Graph},
    Kind, ObjectId,
};

use crate::{
    app::AppState,
    error::GitError,
    service::{
        advertise::{advertised_refs_cached, PeeledRef},
        objects::object_db_with,
    },
};

/// A commit a request named, with the repository's objects to read it from.
pub struct Resolved {
    pub db: ObjectDb,
    pub commit: ObjectId,
}

/// Resolve `revision` in `repo` (see the module doc).
pub async fn resolve(state: &AppState, repo: &Repo, revision: &str) -> Result<Resolved, GitError> {
    check_revision(revision)?;
    let (refs, cached) = advertised_refs_cached(state, repo).await?;
    let db = object_db_with(state, repo, cached).await?;
    let named = resolve_name(repo, &refs, revision);
    let tips: Vec<(ObjectId, Option<ObjectId>)> = refs.iter().map(|r| (r.oid, r.peeled)).collect();
    let revision = revision.to_string();
    crate::metrics::spawn_blocking(move || {
        let commit = match named {
            Some(id) => peel_to_commit(&db, id, &revision)?,
            None => reachable_commit(&db, &tips, &revision)?,
        };
        Ok(Resolved { db, commit })
    })
    .await?
}

/// A revision must be a name git could give a ref (or an id): no empty
/// component, no `..`, no control characters.
pub fn check_revision(revision: &str) -> Result<(), GitError> {
    let bad = revision.is_empty()
        || revision.len() > 1024
        || revision.starts_with('/')
        || revision.ends_with('/')
        || revision.contains("//")
        || revision.contains("..")
        || revision.chars().any(|c| c.is_control());
    if bad {
        return Err(GitError::BadRequest(format!(
            "'{}' is not a revision name",
            revision.escape_default()
        )));
    }
    Ok(())
}

/// The object a ref name resolves to, in git's order of names; `None` when
/// `revision` is no ref's name (it may be an id).
fn resolve_name(repo: &Repo, refs: &[PeeledRef], revision: &str) -> Option<ObjectId> {
    let find = |name: &str| refs.iter().find(|r| r.name == name).map(|r| r.oid);
    if revision == "HEAD" {
        return find(&repo.head_ref);
    }
    let candidates = [
        revision.to_string(),
        format!("refs/{revision}"),
        format!("refs/tags/{revision}"),
        format!("refs/heads/{revision}"),
        format!("refs/remotes/{revision}"),
        format!("refs/remotes/{revision}/HEAD"),
    ];
    candidates
        .iter()
        .filter(|name| name.starts_with("refs/"))
        .find_map(|name| find(name))
}

/// The commit a ref's object peels to.
fn peel_to_commit(db: &ObjectDb, id: ObjectId, revision: &str) -> Result<ObjectId, GitError> {
    let (target, kind) = db.reader().peel(&id)?;
    if kind != Kind::Commit {
        return Err(GitError::NotFound(format!(
            "revision '{revision}' names a {kind}, not a commit"
        )));
    }
    Ok(target)
}

/// A full commit id that some ref reaches.
fn reachable_commit(
    db: &ObjectDb,
    tips: &[(ObjectId, Option<ObjectId>)],
    revision: &str,
) -> Result<ObjectId, GitError> {
    let unknown = || GitError::NotFound(format!("no branch, tag or reachable commit '{revision}'"));
    let Ok(id) = ObjectId::from_hex(revision.as_bytes()) else {
        return Err(unknown());
    };
    let mut graph = Graph::new(db);
    graph.know_peeled_tags(
        tips.iter()
            .filter_map(|&(oid, peeled)| peeled.map(|p| (oid, p))),
    );
    if graph.peel_to_commit(&id).ok().flatten() != Some(id) {
        return Err(unknown());
    }
    let tips: Vec<ObjectId> = tips.iter().map(|&(oid, _)| oid).collect();
    if !unreachable_wants(&mut graph, &tips, &[id])?.is_empty() {
        return Err(unknown());
    }
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_that_could_mislead_are_refused() {
        for bad in ["", "/main", "main/", "a//b", "a/../b", "..", "a\nb"] {
            assert!(check_revision(bad).is_err(), "{bad:?}");
        }
        for good in ["main", "feature/x", "v1.0", "refs/heads/main", "HEAD"] {
            assert!(check_revision(good).is_ok(), "{good:?}");
        }
    }
}
