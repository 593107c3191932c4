//! Two revisions compared, as a CI job or a reviewer asks: how far apart they
//! are (`git rev-list --left-right --count BASE...HEAD`), the commits HEAD has
//! that BASE does not (`git log BASE..HEAD`), their merge bases (`git
//! merge-base --all`), and the files that differ (`git diff`, renames
//! found as it finds them unless asked not to, from the merge base when
//! there is exactly one, else from BASE).
//!
//! Each side's walk is git's own ([`walk::range`]) and reads at most
//! [`MAX_WALKED`] commits; comparing takes a pack-generation turn.

use gitclaw_metadata::Repo;
use gitclaw_pack::{
    archive::commit_source,
    files::{diff_trees, mode_of},
    odb::ObjectDb,
    renames::{detect_renames, Detection, RenameLimits},
    walk::{range, unreachable_wants, Graph},
    ObjectId,
};
use serde::Serialize;

use crate::{
    app::AppState,
    error::GitError,
    service::{
        commits::{describe, CommitView, MAX_LOG_MESSAGE_BYTES},
        revision,
    },
};

/// The most commits one side's walk reads.
pub const MAX_WALKED: usize = 100_000;

/// The most commits a compare lists (it counts them all).
pub const MAX_COMMITS: usize = 250;

/// The most changed files a compare lists.
pub const MAX_FILES: usize = 3000;

/// The most changes a compare looks through for renames (some 15 MB); past
/// them it lists the first [`MAX_FILES`] without renames.
pub const MAX_RENAME_CHANGES: usize = 100_000;

/// The most merge-base candidates weighed against each other.
const MAX_CANDIDATES: usize = 64;

/// A file that differs.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FileChange {
    /// From the top of the repository (not UTF-8 bytes replaced).
    pub path: String,
    /// As `git diff --name-status` shows it: `A`, `D`, `M`, `T` (another
    /// type: file, symbolic link, submodule) or `R` (renamed from
    /// `previous_path`).
    pub status: String,
    /// Where a renamed file was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_path: Option<String>,
    /// How similar a renamed file is to what it was, in percent, as git
    /// shows it (`R086`: 86).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub similarity: Option<u32>,
    /// Mode and id before and after, as `git diff --raw` shows them
    /// (`000000` and forty zeros where the path is absent).
    pub old_mode: String,
    pub new_mode: String,
    pub old_id: String,
    pub new_id: String,
}

/// Two revisions compared.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Comparison {
    /// The commits the two revisions resolved to.
    pub base: String,
    pub head: String,
    /// The best common ancestors (none for unrelated histories).
    pub merge_bases: Vec<String>,
    /// Commits HEAD has that BASE does not, and the other way.
    pub ahead_by: usize,
    pub behind_by: usize,
    /// The first commits of `git log BASE..HEAD`, newest first.
    pub commits: Vec<CommitView>,
    /// The commit the files are diffed from: the merge base when there is
    /// one, else BASE.
    pub files_from: String,
    pub files: Vec<FileChange>,
    /// Set when more files differ than are listed.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub files_truncated: bool,
    /// Set when renames were looked for but not all the way git looks: more
    /// than 1000 × 1000 deleted and added files were left to pair (git skips
    /// them too), comparing contents went past its bounds
    /// ([`RenameLimits::default`]), or more than 100,000 files differ.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub renames_incomplete: bool,
}

/// Compare `base` with `head` in `repo` (see the module doc).
pub async fn compare(
    state: &AppState,
    repo: &Repo,
    base: &str,
    head: &str,
    renames: bool,
) -> Result<Comparison, GitError> {
    let (db, commits) = revision::resolve_all(state, repo, &[base, head]).await?;
    let (base, head) = (commits[0], commits[1]);
    let _turn = state.generations.acquire_async(&repo.id).await?;
    crate::metrics::spawn_blocking(move || compare_commits(&db, base, head, renames)).await?
}

fn compare_commits(
    db: &ObjectDb,
    base: ObjectId,
    head: ObjectId,
    renames: bool,
) -> Result<Comparison, GitError> {
    let mut graph = Graph::new(db);
    let too_far = || {
        GitError::TooLarge(format!(
            "{base} and {head} are too far apart to compare (more than {MAX_WALKED} commits)"
        ))
    };
    let ahead = range(&mut graph, head, base, MAX_WALKED)?;
    let behind = range(&mut graph, base, head, MAX_WALKED)?;
    if ahead.cut_short || behind.cut_short {
        return Err(too_far());
    }
    let merge_bases = merge_bases(&mut graph, base, head, &ahead.commits, &behind.commits)?;
    drop(graph);
    let files_from = match merge_bases.as_slice() {
        [one] => *one,
        _ => base,
    };
    let mut reader = db.reader();
    let (old_tree, _) = commit_source(db, &files_from)?;
    let (new_tree, _) = commit_source(db, &head)?;
    let limit = if renames {
        MAX_RENAME_CHANGES
    } else {
        MAX_FILES
    };
    let diff = diff_trees(&mut reader, old_tree, new_tree, limit)?;
    let (mut changes, renames_incomplete) = match renames {
        false => (diff.changes, false),
        // Past the changes looked through: none paired.
        true if diff.truncated => (diff.changes, true),
        true => {
            let limits = RenameLimits::default();
            let (changes, detection) = detect_renames(db, &mut reader, diff.changes, &limits)?;
            (changes, detection != Detection::Complete)
        }
    };
    let files_truncated = diff.truncated || changes.len() > MAX_FILES;
    changes.truncate(MAX_FILES);
    let side = |entry: Option<(gix_object::tree::EntryKind, ObjectId)>| match entry {
        Some((kind, id)) => (mode_of(kind).to_string(), id.to_string()),
        None => ("000000".to_string(), "0".repeat(40)),
    };
    let files = changes
        .iter()
        .map(|change| {
            let ((old_mode, old_id), (new_mode, new_id)) = (side(change.old), side(change.new));
            let from = change.renamed_from.as_ref();
            FileChange {
                path: String::from_utf8_lossy(&change.path).into_owned(),
                status: change.kind.letter().to_string(),
                previous_path: from.map(|r| String::from_utf8_lossy(&r.path).into_owned()),
                similarity: from.map(|r| r.similarity()),
                old_mode,
                new_mode,
                old_id,
                new_id,
            }
        })
        .collect();
    let commits = ahead
        .commits
        .iter()
        .take(MAX_COMMITS)
        .map(|id| describe(db, *id, MAX_LOG_MESSAGE_BYTES))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Comparison {
        base: base.to_string(),
        head: head.to_string(),
        merge_bases: merge_bases.iter().map(ToString::to_string).collect(),
        ahead_by: ahead.commits.len(),
        behind_by: behind.commits.len(),
        commits,
        files_from: files_from.to_string(),
        files,
        files_truncated,
        renames_incomplete,
    })
}

/// The best common ancestors of `base` and `head`, given the commits only
/// one of them reaches (`ahead`, `behind`): each is `base` or `head` itself
/// (when the other reaches it) or a parent of one of those commits that
/// neither list holds, and none of them reaches another. In id order.
fn merge_bases(
    graph: &mut Graph<'_>,
    base: ObjectId,
    head: ObjectId,
    ahead: &[ObjectId],
    behind: &[ObjectId],
) -> Result<Vec<ObjectId>, GitError> {
    let one_sided: gix_hashtable::HashSet<ObjectId> = ahead.iter().chain(behind).copied().collect();
    let mut candidates = std::collections::BTreeSet::new();
    for end in [base, head] {
        if !one_sided.contains(&end) {
            candidates.insert(end);
        }
    }
    for commit in ahead.iter().chain(behind) {
        let info = graph.commit_info(commit)?;
        candidates.extend(info.parents.iter().filter(|p| !one_sided.contains(*p)));
    }
    if candidates.len() > MAX_CANDIDATES {
        return Err(GitError::TooLarge(format!(
            "{base} and {head} have too many common ancestors to weigh ({})",
            candidates.len()
        )));
    }
    let candidates: Vec<ObjectId> = candidates.into_iter().collect();
    let mut best = Vec::new();
    for candidate in &candidates {
        let others: Vec<ObjectId> = candidates
            .iter()
            .filter(|c| *c != candidate)
            .copied()
            .collect();
        // A candidate another reaches is not a best one.
        let reached =
            !others.is_empty() && unreachable_wants(graph, &others, &[*candidate])?.is_empty();
        if !reached {
            best.push(*candidate);
        }
    }
    Ok(best)
}
