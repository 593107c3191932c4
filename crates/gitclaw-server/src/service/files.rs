//! One file of a revision, for the API's `raw` route: what `git show
//! REVISION:PATH` prints, without a clone.
//!
//! The revision is resolved by [`revision::resolve`]. Reading a file takes a
//! pack-generation turn (see `fetch::limits`), as an archive does: a file
//! stored as a delta is rebuilt in memory, so how many are read at once is
//! bounded.

use std::io::{Read, Write};

use gitclaw_metadata::Repo;
use gitclaw_pack::{
    archive::commit_source,
    files::{copy_stream, find_path, list_tree, open_blob, BlobContent},
    odb::ObjectDb,
    ObjectId,
};
use gix_object::tree::EntryKind;

use crate::{
    app::AppState,
    error::GitError,
    service::{
        fetch::limits::GenerationSlot,
        revision::{self, Resolved},
    },
};

/// The longest path a request may name.
pub const MAX_PATH_BYTES: usize = 4096;

/// A file found, ready to be read.
pub struct RawFile {
    /// The commit the revision resolved to.
    pub commit: ObjectId,
    /// The blob.
    pub id: ObjectId,
    /// Its size in bytes.
    pub size: u64,
    /// A symbolic link: its content is the link's target.
    pub is_link: bool,
    db: ObjectDb,
    repo_id: String,
    turn: Option<GenerationSlot>,
}

/// The file at `path` in `revision` of `repo`.
pub async fn find(
    state: &AppState,
    repo: &Repo,
    revision: &str,
    path: &str,
) -> Result<RawFile, GitError> {
    check_path(path)?;
    let Resolved { db, commit, .. } = revision::resolve(state, repo, revision).await?;
    let (path, revision) = (path.to_string(), revision.to_string());
    let (db, id, kind, size) = crate::metrics::spawn_blocking(move || {
        let (tree, _) = commit_source(&db, &commit)?;
        let mut reader = db.reader();
        let found = find_path(&mut reader, tree, path.as_bytes())?;
        let (id, kind) = match found {
            Some((id, kind)) if !matches!(kind, EntryKind::Tree | EntryKind::Commit) => (id, kind),
            Some((_, kind)) => {
                let what = if kind == EntryKind::Tree {
                    "a directory"
                } else {
                    "a submodule"
                };
                return Err(GitError::NotFound(format!(
                    "'{path}' is {what} in '{revision}', not a file"
                )));
            }
            None => {
                return Err(GitError::NotFound(format!(
                    "no file '{path}' in '{revision}'"
                )))
            }
        };
        let (_, size) = reader
            .header(&id)?
            .ok_or(gitclaw_pack::PackError::MissingObject(id))?;
        drop(reader);
        Ok::<_, GitError>((db, id, kind, size))
    })
    .await??;
    Ok(RawFile {
        commit,
        id,
        size,
        is_link: kind == EntryKind::Link,
        db,
        repo_id: repo.id.clone(),
        turn: None,
    })
}

impl RawFile {
    /// Wait for a pack-generation turn (refused when too many wait).
    pub async fn take_turn(mut self, state: &AppState) -> Result<RawFile, GitError> {
        self.turn = Some(state.generations.acquire_async(&self.repo_id).await?);
        Ok(self)
    }

    /// A strong validator: the blob's id decides the bytes.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.id)
    }

    /// Read the file (whole, unless it streams) and tell whether its first
    /// `probe` bytes hold a NUL (binary, by git's rule). Blocking.
    pub fn load(self, probe: usize) -> Result<(Loaded, bool), GitError> {
        let mut reader = self.db.reader();
        let (whole, binary) = match open_blob(&self.db, &mut reader, &self.id)? {
            BlobContent::Whole(data) => {
                let binary = data[..data.len().min(probe)].contains(&0);
                (Some(data), binary)
            }
            BlobContent::Stream(_, stream) => {
                // Only its start is read now; the whole streams later.
                let mut head = Vec::with_capacity(probe);
                stream
                    .take(probe as u64)
                    .read_to_end(&mut head)
                    .map_err(|source| GitError::Io {
                        context: "reading a file",
                        source,
                    })?;
                (None, head.contains(&0))
            }
        };
        drop(reader);
        Ok((Loaded { file: self, whole }, binary))
    }
}

/// A file being sent: held whole, or streamed as it is read.
pub struct Loaded {
    file: RawFile,
    whole: Option<Vec<u8>>,
}

impl Loaded {
    /// The file's bytes, when it was read whole (it does not stream).
    pub fn whole(&self) -> Option<&[u8]> {
        self.whole.as_deref()
    }

    /// Whether the file is a symbolic link.
    pub fn is_link(&self) -> bool {
        self.file.is_link
    }

    /// Write the file's content to `out`. Blocking.
    pub fn write(self, out: &mut dyn Write) -> Result<(), GitError> {
        let io = |source| GitError::Io {
            context: "sending a file",
            source,
        };
        if let Some(data) = &self.whole {
            return out.write_all(data).map_err(io);
        }
        let file = &self.file;
        let mut reader = file.db.reader();
        match open_blob(&file.db, &mut reader, &file.id)? {
            BlobContent::Whole(data) => out.write_all(&data).map_err(io)?,
            BlobContent::Stream(size, mut stream) => {
                copy_stream(&file.id, size, &mut stream, |data| {
                    out.write_all(data)
                        .map_err(|source| gitclaw_pack::PackError::Io {
                            context: "sending a file".into(),
                            source,
                        })
                })?
            }
        }
        Ok(())
    }
}

/// The most entries one tree listing holds.
pub const MAX_TREE_ITEMS: usize = 100_000;

/// One entry of a tree listing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct TreeEntryView {
    /// From the top of the repository (not UTF-8 bytes replaced).
    pub path: String,
    /// As git prints it: `100644`, `100755`, `120000`, `040000`, `160000`.
    pub mode: String,
    /// `blob`, `tree` or `commit` (a submodule).
    #[serde(rename = "type")]
    pub kind: String,
    pub id: String,
    /// A blob's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
}

/// A directory of a revision, as `git ls-tree -l` lists it.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct TreeView {
    /// The commit the revision resolved to.
    pub commit: String,
    /// The directory listed (empty for the top).
    pub path: String,
    /// Its tree.
    pub id: String,
    pub entries: Vec<TreeEntryView>,
    /// Set when the listing stopped at its limit (100,000 entries).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// The directory at `path` (the top when `None`) of `revision` in `repo`;
/// with `recursive`, every file under it, as `git ls-tree -r` lists them.
pub async fn tree(
    state: &AppState,
    repo: &Repo,
    revision: &str,
    path: Option<&str>,
    recursive: bool,
) -> Result<TreeView, GitError> {
    if let Some(path) = path {
        check_path(path)?;
    }
    let Resolved { db, commit, .. } = revision::resolve(state, repo, revision).await?;
    let _turn = state.generations.acquire_async(&repo.id).await?;
    let (path, revision) = (path.unwrap_or("").to_string(), revision.to_string());
    crate::metrics::spawn_blocking(move || {
        let (top, _) = commit_source(&db, &commit)?;
        let mut reader = db.reader();
        let tree = if path.is_empty() {
            top
        } else {
            match find_path(&mut reader, top, path.as_bytes())? {
                Some((id, EntryKind::Tree)) => id,
                Some(_) => {
                    return Err(GitError::NotFound(format!(
                        "'{path}' is not a directory in '{revision}'"
                    )))
                }
                None => {
                    return Err(GitError::NotFound(format!(
                        "no directory '{path}' in '{revision}'"
                    )))
                }
            }
        };
        let listing = list_tree(
            &mut reader,
            tree,
            path.as_bytes(),
            recursive,
            MAX_TREE_ITEMS,
        )?;
        let entries = listing
            .items
            .iter()
            .map(|item| TreeEntryView {
                path: String::from_utf8_lossy(&item.path).into_owned(),
                mode: item.mode().to_string(),
                kind: item.kind_name().to_string(),
                id: item.id.to_string(),
                size: item.size,
            })
            .collect();
        Ok(TreeView {
            commit: commit.to_string(),
            path,
            id: tree.to_string(),
            entries,
            truncated: listing.truncated,
        })
    })
    .await?
}

/// A path names a file under the top of the tree: no empty, `.` or `..`
/// component.
pub fn check_path(path: &str) -> Result<(), GitError> {
    let bad = path.is_empty()
        || path.len() > MAX_PATH_BYTES
        || path
            .split('/')
            .any(|part| part.is_empty() || part == "." || part == "..");
    if bad {
        return Err(GitError::BadRequest(format!(
            "'{}' is not a path of the repository (at most {MAX_PATH_BYTES} bytes, no empty, '.' or '..' part)",
            path.escape_default()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_outside_the_tree_or_empty_are_refused() {
        for bad in ["", "/etc/passwd", "a//b", "a/./b", "../x", "a/..", "a/"] {
            assert!(check_path(bad).is_err(), "{bad:?}");
        }
        for good in [
            "README.md",
            "src/lib.rs",
            ".github/workflows/ci.yml",
            "a b/c",
        ] {
            assert!(check_path(good).is_ok(), "{good:?}");
        }
    }
}
