//! A revision a request names, resolved to a commit of the repository, for
//! the routes that read a revision's files (archives, raw files).
//!
//! A revision is a base and the steps git's revision syntax takes from it:
//! - the base is `HEAD` (or `@`), a ref name resolved as git resolves a short
//!   name (the full name, then `refs/`, `refs/tags/`, `refs/heads/`,
//!   `refs/remotes/` before it: a tag wins over a branch of the same name), or
//!   a commit id, full or abbreviated (at least 4 hex digits), that a ref
//!   reaches, as a fetch by id must: a commit a force-push left behind is not
//!   served. A name is tried as a ref first, as git does.
//! - then any of `~N` (the Nth first-parent ancestor), `^N` (the Nth parent;
//!   `^0` the commit itself), `^{commit}`, `^{}` (tags peeled), `^{object}`,
//!   `^{tag}`; `~` and `^` alone mean `~1` and `^1`.
//!
//! What the whole resolves to must peel to a commit. Reflogs (`@{1}`), searches
//! (`^{/text}`, `:/text`) and paths (`REV:path`) are not revisions here.

use std::sync::Arc;

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
    /// The refs it was resolved against.
    pub refs: Arc<Vec<PeeledRef>>,
}

/// Resolve `revision` in `repo` (see the module doc).
pub async fn resolve(state: &AppState, repo: &Repo, revision: &str) -> Result<Resolved, GitError> {
    let (db, commits, refs) = resolve_with_refs(state, repo, &[revision]).await?;
    Ok(Resolved {
        db,
        commit: commits[0],
        refs,
    })
}

/// Resolve each of `revisions` in `repo` against one reading of its refs,
/// with the objects those refs name: a push between two resolutions could
/// otherwise name a commit the other's objects lack.
pub async fn resolve_all(
    state: &AppState,
    repo: &Repo,
    revisions: &[&str],
) -> Result<(ObjectDb, Vec<ObjectId>), GitError> {
    let (db, commits, _) = resolve_with_refs(state, repo, revisions).await?;
    Ok((db, commits))
}

/// [`resolve_all`], with the refs read.
async fn resolve_with_refs(
    state: &AppState,
    repo: &Repo,
    revisions: &[&str],
) -> Result<(ObjectDb, Vec<ObjectId>, Arc<Vec<PeeledRef>>), GitError> {
    let mut specs = Vec::with_capacity(revisions.len());
    for revision in revisions {
        check_revision(revision)?;
        let spec = Spec::parse(revision)?;
        specs.push((revision.to_string(), spec.base.to_string(), spec.steps));
    }
    let (refs, cached) = advertised_refs_cached(state, repo).await?;
    let db = object_db_with(state, repo, cached).await?;
    let named: Vec<Option<ObjectId>> = specs
        .iter()
        .map(|(_, base, _)| resolve_name(repo, &refs, base))
        .collect();
    let tips: Vec<(ObjectId, Option<ObjectId>)> = refs.iter().map(|r| (r.oid, r.peeled)).collect();
    let (db, commits) = crate::metrics::spawn_blocking(move || {
        let mut graph = Graph::new(&db);
        graph.know_peeled_tags(
            tips.iter()
                .filter_map(|&(oid, peeled)| peeled.map(|p| (oid, p))),
        );
        let mut commits = Vec::with_capacity(specs.len());
        for ((revision, base, steps), named) in specs.iter().zip(named) {
            let start = match named {
                Some(id) => id,
                None => reachable_commit(&mut graph, &tips, base)?,
            };
            let mut walk = Steps {
                graph: &mut graph,
                revision,
            };
            commits.push(walk.apply(start, steps)?);
        }
        drop(graph);
        Ok::<_, GitError>((db, commits))
    })
    .await??;
    Ok((db, commits, refs))
}

/// A revision must be a name git could give a ref (or an id, with revision
/// syntax after it): no empty component, no `..`, no control characters.
pub fn check_revision(revision: &str) -> Result<(), GitError> {
    let bad = revision.is_empty()
        || revision.len() > 1024
        || revision.starts_with('/')
        || revision.ends_with('/')
        || revision.contains("//")
        || revision.contains("..")
        || revision.chars().any(|c| c.is_control());
    if bad {
        return Err(not_a_revision(revision));
    }
    Ok(())
}

fn not_a_revision(revision: &str) -> GitError {
    GitError::BadRequest(format!(
        "'{}' is not a revision name",
        revision.escape_default()
    ))
}

/// One step of revision syntax after the base.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// `~N`: the Nth ancestor by first parents (`~0`: the commit itself).
    Ancestor(u32),
    /// `^N`: the Nth parent (`^0`: the commit itself).
    Parent(u32),
    /// `^{commit}`.
    ToCommit,
    /// `^{}`: tags peeled, to whatever they name.
    Peeled,
    /// `^{object}`: the object itself.
    Object,
    /// `^{tag}`: the object must be a tag.
    Tag,
    /// `^{tree}` or `^{blob}`: a kind no route here serves.
    ToKind(Kind),
}

/// A revision taken apart: its base and the steps from it.
#[derive(Debug, PartialEq, Eq)]
struct Spec<'a> {
    base: &'a str,
    steps: Vec<Step>,
}

impl<'a> Spec<'a> {
    fn parse(revision: &'a str) -> Result<Spec<'a>, GitError> {
        let bad = || not_a_revision(revision);
        let unsupported = |what: &str| {
            GitError::BadRequest(format!(
                "'{}': {what} is not resolved here (a ref name or commit id, with ~N, ^N or ^{{…}} after it)",
                revision.escape_default()
            ))
        };
        if revision.contains("@{") {
            return Err(unsupported("a reflog entry"));
        }
        if revision.contains(':') {
            return Err(unsupported("a path or search"));
        }
        let split = revision.find(['~', '^']).unwrap_or(revision.len());
        let (base, mut rest) = revision.split_at(split);
        let base = match base {
            "" => return Err(bad()),
            "@" => "HEAD",
            name => name,
        };
        let mut steps = Vec::new();
        while let Some(op) = rest.chars().next() {
            rest = &rest[1..];
            if op == '^' && rest.starts_with('{') {
                let close = rest.find('}').ok_or_else(bad)?;
                let step = match &rest[1..close] {
                    "commit" => Step::ToCommit,
                    "" => Step::Peeled,
                    "object" => Step::Object,
                    "tag" => Step::Tag,
                    "tree" => Step::ToKind(Kind::Tree),
                    "blob" => Step::ToKind(Kind::Blob),
                    search if search.starts_with('/') => {
                        return Err(unsupported("a search of commit messages"))
                    }
                    _ => return Err(bad()),
                };
                steps.push(step);
                rest = &rest[close + 1..];
                continue;
            }
            let digits = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            let n = match &rest[..digits] {
                "" => 1,
                number => number.parse::<u32>().map_err(|_| bad())?,
            };
            rest = &rest[digits..];
            steps.push(match op {
                '~' => Step::Ancestor(n),
                '^' => Step::Parent(n),
                _ => return Err(bad()),
            });
        }
        Ok(Spec { base, steps })
    }
}

/// Revision syntax applied, over the commit graph.
struct Steps<'g, 'db> {
    graph: &'g mut Graph<'db>,
    revision: &'g str,
}

impl Steps<'_, '_> {
    /// Take `steps` from `start`; what they lead to, peeled to a commit.
    fn apply(&mut self, start: ObjectId, steps: &[Step]) -> Result<ObjectId, GitError> {
        let mut current = start;
        for &step in steps {
            current = match step {
                Step::Ancestor(n) => {
                    let mut commit = self.commit(current)?;
                    for _ in 0..n {
                        commit = self.parent(commit, 1)?;
                    }
                    commit
                }
                Step::Parent(0) | Step::ToCommit => self.commit(current)?,
                Step::Parent(n) => {
                    let commit = self.commit(current)?;
                    self.parent(commit, n)?
                }
                Step::Peeled => self.graph.db().reader().peel(&current)?.0,
                Step::Object => current,
                Step::Tag => {
                    let kind = self.kind(current)?;
                    if kind != Kind::Tag {
                        return Err(self.names(kind, "a tag"));
                    }
                    current
                }
                Step::ToKind(kind) => return Err(self.names(kind, "a commit")),
            };
        }
        self.commit(current)
    }

    /// The commit `id` peels to.
    fn commit(&mut self, id: ObjectId) -> Result<ObjectId, GitError> {
        match self.graph.peel_to_commit(&id)? {
            Some(commit) => Ok(commit),
            None => {
                let (_, kind) = self.graph.db().reader().peel(&id)?;
                Err(self.names(kind, "a commit"))
            }
        }
    }

    /// The `n`th parent (from 1) of `commit`.
    fn parent(&mut self, commit: ObjectId, n: u32) -> Result<ObjectId, GitError> {
        let info = self.graph.commit_info(&commit)?;
        let index = usize::try_from(n - 1).unwrap_or(usize::MAX);
        info.parents.get(index).copied().ok_or_else(|| {
            GitError::NotFound(format!(
                "revision '{}' goes past commit {commit}, which has {} parent(s)",
                self.revision,
                info.parents.len()
            ))
        })
    }

    fn kind(&mut self, id: ObjectId) -> Result<Kind, GitError> {
        let (kind, _) = self
            .graph
            .db()
            .reader()
            .header(&id)?
            .ok_or(gitclaw_pack::PackError::MissingObject(id))?;
        Ok(kind)
    }

    fn names(&self, kind: Kind, wanted: &str) -> GitError {
        GitError::NotFound(format!(
            "revision '{}' names a {kind}, not {wanted}",
            self.revision
        ))
    }
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

/// How many objects an abbreviated id may match before it is too short to
/// look through.
const MAX_PREFIX_MATCHES: usize = 256;

/// A commit some ref reaches, by its full or abbreviated id. Among the objects
/// an abbreviation matches only such commits count: it is ambiguous when two
/// of them share it, and an object no ref reaches is never told of.
fn reachable_commit(
    graph: &mut Graph<'_>,
    tips: &[(ObjectId, Option<ObjectId>)],
    revision: &str,
) -> Result<ObjectId, GitError> {
    let unknown = || GitError::NotFound(format!("no branch, tag or reachable commit '{revision}'"));
    let is_hex = revision.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_hex || revision.len() < gix_hash::Prefix::MIN_HEX_LEN || revision.len() > 40 {
        return Err(unknown());
    }
    let lower = revision.to_ascii_lowercase();
    let candidates = match ObjectId::from_hex(lower.as_bytes()) {
        Ok(id) if graph.db().contains(&id)? => vec![id],
        Ok(_) => return Err(unknown()),
        Err(_) => {
            let prefix = gix_hash::Prefix::from_hex(&lower).map_err(|_| unknown())?;
            let ids = graph.db().ids_with_prefix(&prefix, MAX_PREFIX_MATCHES)?;
            if ids.len() == MAX_PREFIX_MATCHES {
                return Err(GitError::BadRequest(format!(
                    "'{revision}' matches too many objects to look through: give more digits"
                )));
            }
            ids
        }
    };
    let mut commits = Vec::new();
    for id in candidates {
        if graph.peel_to_commit(&id)? == Some(id) {
            commits.push(id);
        }
    }
    let tip_ids: Vec<ObjectId> = tips.iter().map(|&(oid, _)| oid).collect();
    let unreachable = unreachable_wants(graph, &tip_ids, &commits)?;
    commits.retain(|id| !unreachable.contains(id));
    match commits.as_slice() {
        [] => Err(unknown()),
        [one] => Ok(*one),
        many => Err(GitError::BadRequest(format!(
            "short id '{revision}' is ambiguous: it starts {} commits ({}); give more digits",
            many.len(),
            many.iter()
                .take(10)
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
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

    #[test]
    fn revision_syntax_is_taken_apart_as_git_does() {
        use Step::*;
        let cases: [(&str, &str, &[Step]); 10] = [
            ("main", "main", &[]),
            ("@", "HEAD", &[]),
            ("@~2", "HEAD", &[Ancestor(2)]),
            ("main~", "main", &[Ancestor(1)]),
            ("main^", "main", &[Parent(1)]),
            ("main^2~3", "main", &[Parent(2), Ancestor(3)]),
            ("v1^{}", "v1", &[Peeled]),
            ("v1^{tag}^{commit}^0", "v1", &[Tag, ToCommit, Parent(0)]),
            (
                "feature/x~~^^",
                "feature/x",
                &[Ancestor(1), Ancestor(1), Parent(1), Parent(1)],
            ),
            ("abc1^{tree}", "abc1", &[ToKind(Kind::Tree)]),
        ];
        for (revision, base, steps) in cases {
            let spec = Spec::parse(revision).unwrap();
            assert_eq!(
                spec,
                Spec {
                    base,
                    steps: steps.to_vec()
                },
                "{revision}"
            );
        }
    }

    #[test]
    fn revision_syntax_not_resolved_here_is_refused() {
        for bad in [
            "~1",
            "^{commit}",
            "main@{1}",
            "@{-1}",
            "main:README.md",
            ":/fix",
            "main^{/fix}",
            "main^{nope}",
            "main^{commit",
            "main~1x",
            "main~99999999999",
        ] {
            let err = Spec::parse(bad).unwrap_err();
            assert!(matches!(err, GitError::BadRequest(_)), "{bad}: {err}");
        }
    }
}
