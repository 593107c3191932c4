//! A revision's files as a tar or tar.gz archive (the API's `archive`
//! route): what `git archive` makes of it, which git cannot fetch over HTTP.
//!
//! The revision is resolved as git resolves a name (`HEAD`, a full ref name,
//! then `refs/`, `refs/tags/`, `refs/heads/`, `refs/remotes/` before it), or
//! is a full commit id, which must be reachable from a ref (as a fetch by id
//! must: a commit a force-push left behind is not served). Making one takes a
//! pack-generation turn (see `fetch::limits`), so archives count against the
//! same limits as the packs they are as costly as.

use std::io::Write;

use gitclaw_metadata::Repo;
use gitclaw_pack::{
    archive::{commit_source, write_tar, TarOptions, TarSummary},
    odb::ObjectDb,
    walk::{unreachable_wants, Graph},
    Kind, ObjectId,
};

use crate::{
    app::AppState,
    error::GitError,
    service::{
        advertise::advertised_refs_cached, fetch::limits::GenerationSlot, objects::object_db_with,
    },
};

/// The longest prefix a caller may ask for.
pub const MAX_PREFIX_BYTES: usize = 256;

/// What the archive is wrapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Tar,
    TarGz,
}

impl Format {
    /// The format a file name's extension names, and the name without it.
    pub fn split(file: &str) -> Option<(&str, Format)> {
        [
            (".tar.gz", Format::TarGz),
            (".tgz", Format::TarGz),
            (".tar", Format::Tar),
        ]
        .into_iter()
        .find_map(|(ext, format)| file.strip_suffix(ext).map(|rest| (rest, format)))
        .filter(|(rest, _)| !rest.is_empty())
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::TarGz => "tar.gz",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Tar => "application/x-tar",
            Format::TarGz => "application/gzip",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Format::Tar => "tar",
            Format::TarGz => "tar.gz",
        }
    }
}

/// An archive ready to be written: its revision resolved and its objects
/// open; [`Archive::take_turn`] before [`Archive::write`].
pub struct Archive {
    /// The commit archived.
    pub commit: ObjectId,
    pub format: Format,
    /// `NAME-REVISION.EXT`, for the download.
    pub file_name: String,
    db: ObjectDb,
    tree: ObjectId,
    options: TarOptions,
    repo_id: String,
    turn: Option<GenerationSlot>,
}

/// Resolve `revision` in `repo`, to archive it with `prefix` (by default
/// `NAME-REVISION/`) before every path.
pub async fn prepare(
    state: &AppState,
    repo: &Repo,
    revision: &str,
    format: Format,
    prefix: Option<&str>,
) -> Result<Archive, GitError> {
    check_revision(revision)?;
    let prefix = match prefix {
        Some(prefix) => {
            check_prefix(prefix)?;
            prefix.to_string()
        }
        None => format!("{}-{}/", repo.name, revision.replace('/', "-")),
    };
    let (refs, cached) = advertised_refs_cached(state, repo).await?;
    let db = object_db_with(state, repo, cached).await?;
    let named = resolve_name(repo, &refs, revision);
    let tips: Vec<(ObjectId, Option<ObjectId>)> = refs.iter().map(|r| (r.oid, r.peeled)).collect();
    let revision_owned = revision.to_string();
    let (db, commit, tree, mtime) = crate::metrics::spawn_blocking(move || {
        let commit = match named {
            Some(id) => peel_to_commit(&db, id, &revision_owned)?,
            None => reachable_commit(&db, &tips, &revision_owned)?,
        };
        let (tree, mtime) = commit_source(&db, &commit)?;
        Ok::<_, GitError>((db, commit, tree, mtime))
    })
    .await??;
    Ok(Archive {
        commit,
        format,
        file_name: format!(
            "{}-{}.{}",
            repo.name,
            revision.replace('/', "-"),
            format.extension()
        ),
        db,
        tree,
        options: TarOptions {
            prefix: prefix.into_bytes(),
            commit: Some(commit),
            mtime,
        },
        repo_id: repo.id.clone(),
        turn: None,
    })
}

impl Archive {
    /// Wait for a pack-generation turn (refused when too many wait).
    pub async fn take_turn(mut self, state: &AppState) -> Result<Archive, GitError> {
        let (generations, runtime) = (state.generations.clone(), tokio::runtime::Handle::current());
        let repo_id = self.repo_id.clone();
        let turn = crate::metrics::spawn_blocking(move || generations.acquire(&repo_id, &runtime))
            .await??;
        self.turn = Some(turn);
        Ok(self)
    }

    /// A strong validator of the archive's bytes: its commit, format and
    /// prefix decide them.
    pub fn etag(&self) -> String {
        use sha2::Digest;
        let prefix = sha2::Sha256::digest(&self.options.prefix);
        let prefix: String = prefix[..8].iter().map(|b| format!("{b:02x}")).collect();
        format!("\"{}-{}-{prefix}\"", self.commit, self.format.label())
    }

    /// Write the archive to `out`. Blocking.
    pub fn write(self, out: &mut dyn Write) -> Result<TarSummary, GitError> {
        match self.format {
            Format::Tar => Ok(write_tar(&self.db, self.tree, &self.options, out)?),
            Format::TarGz => {
                let mut gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
                let summary = write_tar(&self.db, self.tree, &self.options, &mut gz)?;
                gz.finish().map_err(|source| GitError::Io {
                    context: "writing the archive",
                    source,
                })?;
                Ok(summary)
            }
        }
    }
}

/// A revision must be a name git could give a ref (or an id): no empty
/// component, no `..`, no control characters.
fn check_revision(revision: &str) -> Result<(), GitError> {
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

/// A prefix may not lead out of the directory it is extracted in.
fn check_prefix(prefix: &str) -> Result<(), GitError> {
    let bad = prefix.len() > MAX_PREFIX_BYTES
        || prefix.starts_with('/')
        || prefix.split('/').any(|part| part == "..")
        || prefix.chars().any(|c| c.is_control());
    if bad {
        return Err(GitError::BadRequest(format!(
            "the prefix must be a relative path of at most {MAX_PREFIX_BYTES} bytes, \
             without '..' or control characters"
        )));
    }
    Ok(())
}

/// The object a ref name resolves to, in git's order of names; `None` when
/// `revision` is no ref's name (it may be an id).
fn resolve_name(
    repo: &Repo,
    refs: &[crate::service::advertise::PeeledRef],
    revision: &str,
) -> Option<ObjectId> {
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
    fn file_names_name_the_format() {
        assert_eq!(Format::split("main.tar.gz"), Some(("main", Format::TarGz)));
        assert_eq!(Format::split("v1.0.tgz"), Some(("v1.0", Format::TarGz)));
        assert_eq!(
            Format::split("feature/x.tar"),
            Some(("feature/x", Format::Tar))
        );
        assert_eq!(Format::split(".tar"), None);
        assert_eq!(Format::split("main.zip"), None);
    }

    #[test]
    fn revisions_and_prefixes_that_could_mislead_are_refused() {
        for bad in ["", "/main", "main/", "a//b", "a/../b", "..", "a\nb"] {
            assert!(check_revision(bad).is_err(), "{bad:?}");
        }
        for good in ["main", "feature/x", "v1.0", "refs/heads/main", "HEAD"] {
            assert!(check_revision(good).is_ok(), "{good:?}");
        }
        for bad in ["/abs/", "../up/", "a/../../b/", "a\0b"] {
            assert!(check_prefix(bad).is_err(), "{bad:?}");
        }
        for good in ["", "app/", "app-", "a/b/"] {
            assert!(check_prefix(good).is_ok(), "{good:?}");
        }
        assert!(check_prefix(&"p".repeat(MAX_PREFIX_BYTES + 1)).is_err());
    }
}
