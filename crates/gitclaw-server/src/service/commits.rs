//! Commits through the API: one commit as `git show -s` describes it, and the
//! commits `git log REVISION [-- PATH]` lists, in git's order, a page at a
//! time (the walk is the engine's [`walk::log`]).
//!
//! A page's walk reads commits, and with a path trees: it takes a
//! pack-generation turn (see `fetch::limits`), and reads at most
//! [`MAX_WALKED`] commits, so what one request costs is bounded whatever it
//! asks for.

use gitclaw_metadata::Repo;
use gitclaw_pack::{
    odb::ObjectDb,
    walk::{self, Graph, LogRequest},
    ObjectId, PackError,
};
use serde::Serialize;

use crate::{
    app::AppState,
    error::GitError,
    service::{
        files::check_path,
        revision::{self, Resolved},
    },
};

/// The longest commit message the API returns, in bytes (cut at a
/// character's end, and said so).
pub const MAX_MESSAGE_BYTES: usize = 64 << 10;

/// The longest commit message a page of the log returns for each commit, in
/// bytes: a page of the most commits then holds at most 8 MiB of messages.
pub const MAX_LOG_MESSAGE_BYTES: usize = 8 << 10;

/// The most commits one page lists.
pub const MAX_LIMIT: usize = 1000;

/// The most listed commits a page may pass over.
pub const MAX_SKIP: usize = 100_000;

/// The most commits one page's walk reads.
pub const MAX_WALKED: usize = 100_000;

/// Someone who wrote or committed a commit, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Person {
    pub name: String,
    pub email: String,
    /// In the writer's own time zone, as `git log --format=%aI` prints it.
    pub date: String,
}

/// A commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CommitView {
    pub id: String,
    pub tree: String,
    pub parents: Vec<String>,
    pub author: Person,
    pub committer: Person,
    /// The message as the commit holds it (what `git cat-file commit` shows
    /// after the headers), up to a limit (see `message_truncated`).
    pub message: String,
    /// Set when the message was cut at the limit.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub message_truncated: bool,
}

/// Commit `id` of `db` as the API shows it, its message cut to `max_message`
/// bytes.
pub fn describe(db: &ObjectDb, id: ObjectId, max_message: usize) -> Result<CommitView, PackError> {
    let mut buf = Vec::new();
    db.reader()
        .read(&id, &mut buf)?
        .ok_or(PackError::MissingObject(id))?;
    let malformed = |detail: String| PackError::MalformedObject { oid: id, detail };
    let commit = gix_object::CommitRef::from_bytes(&buf, gix_hash::Kind::Sha1)
        .map_err(|err| malformed(err.to_string()))?;
    let person = |name: &[u8], email: &[u8], time: gix_object::date::Time| Person {
        name: String::from_utf8_lossy(name).into_owned(),
        email: String::from_utf8_lossy(email).into_owned(),
        date: crate::time::rfc3339_at_offset(time.seconds, time.offset),
    };
    let author = commit.author().map_err(|err| malformed(err.to_string()))?;
    let committer = commit
        .committer()
        .map_err(|err| malformed(err.to_string()))?;
    let message = String::from_utf8_lossy(commit.message);
    let kept = truncated(&message, max_message);
    Ok(CommitView {
        id: id.to_string(),
        tree: commit.tree().to_string(),
        parents: commit.parents().map(|p| p.to_string()).collect(),
        author: person(author.name, author.email, author.time().unwrap_or_default()),
        committer: person(
            committer.name,
            committer.email,
            committer.time().unwrap_or_default(),
        ),
        message_truncated: kept.len() < message.len(),
        message: kept.to_string(),
    })
}

/// `text` cut to at most `max` bytes, at a character's end.
pub fn truncated(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The commit `revision` names in `repo`.
pub async fn show(state: &AppState, repo: &Repo, revision: &str) -> Result<CommitView, GitError> {
    let Resolved { db, commit, .. } = revision::resolve(state, repo, revision).await?;
    crate::metrics::spawn_blocking(move || Ok(describe(&db, commit, MAX_MESSAGE_BYTES)?)).await?
}

/// What a page of the log asks for.
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    pub path: Option<String>,
    pub skip: usize,
    pub limit: usize,
}

/// A page of the log.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LogPage {
    /// The commit the revision resolved to.
    pub start: String,
    /// Newest first, in `git log`'s order.
    pub commits: Vec<CommitView>,
    /// Pass as `skip` for the next page; absent on the last page.
    pub next_skip: Option<usize>,
    /// Set when the walk read as many commits as one page may
    /// (`MAX_WALKED`) before the page was full: the log may go on, but this
    /// request does not tell.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub walk_cut_short: bool,
}

/// A page of `git log revision [-- path]` in `repo`.
pub async fn log(
    state: &AppState,
    repo: &Repo,
    revision: &str,
    mut query: LogQuery,
) -> Result<LogPage, GitError> {
    if let Some(path) = &mut query.path {
        // `docs/` is `docs`, as git takes it.
        if path.len() > 1 && path.ends_with('/') {
            path.pop();
        }
        check_path(path)?;
    }
    if query.skip > MAX_SKIP || query.limit == 0 || query.limit > MAX_LIMIT {
        return Err(GitError::BadRequest(format!(
            "a page lists 1 to {MAX_LIMIT} commits, after at most {MAX_SKIP} skipped"
        )));
    }
    let Resolved { db, commit, .. } = revision::resolve(state, repo, revision).await?;
    let _turn = state.generations.acquire_async(&repo.id).await?;
    crate::metrics::spawn_blocking(move || {
        let request = LogRequest {
            path: query.path.as_deref().map(str::as_bytes),
            skip: query.skip,
            limit: query.limit,
            max_walked: MAX_WALKED,
        };
        let page = walk::log(&mut Graph::new(&db), commit, &request)?;
        let commits = page
            .commits
            .iter()
            .map(|id| describe(&db, *id, MAX_LOG_MESSAGE_BYTES))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(LogPage {
            start: commit.to_string(),
            next_skip: page.more.then_some(query.skip + commits.len()),
            commits,
            walk_cut_short: page.cut_short,
        })
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_s_end() {
        let text = "é".repeat(10);
        assert_eq!(truncated(&text, 5), "éé");
        assert_eq!(truncated(&text, 4), "éé");
        assert_eq!(truncated(&text, 100), text);
    }
}
