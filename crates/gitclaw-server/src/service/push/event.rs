//! What a `push` webhook tells of each ref that moved, beyond its old and new
//! ids: whether the move was forced, and the commit the ref now names (its
//! id, tree, parents, message, author and committer), so a CI system can act on a push, and
//! honour a `[skip ci]` in its message, without fetching anything. Worked out
//! only for a repository with webhooks, before the push is committed (the
//! payload is written in the commit's transaction).

use std::{collections::HashMap, path::Path};

use gitclaw_metadata::RefUpdate;
use gitclaw_pack::{odb::ObjectDb, walk::Graph, ObjectId, PackError};

use super::checks::{is_fast_forward, with_pushed_pack};
use crate::service::commits::describe;

/// The most refs of one push whose commit a webhook payload describes.
pub const DETAILED_REFS: usize = 20;

/// The longest commit message a payload carries, in bytes (cut at a
/// character's end).
pub const MAX_MESSAGE_BYTES: usize = 8 << 10;

/// For each of the first [`DETAILED_REFS`] `updates`, by ref name: `forced`
/// (an update of an existing ref to something that does not have it in its
/// history) and `head_commit`, the commit the new value is or peels to.
pub fn ref_details(
    updates: &[RefUpdate],
    db: &ObjectDb,
    new_pack: Option<&Path>,
) -> Result<HashMap<String, serde_json::Value>, PackError> {
    let full = with_pushed_pack(db, new_pack)?;
    let mut out = HashMap::new();
    for update in updates.iter().take(DETAILED_REFS) {
        let mut details = serde_json::Map::new();
        if let (Some(old), Some(new)) = (update.old, update.new) {
            details.insert("forced".into(), (!is_fast_forward(&full, old, new)?).into());
        }
        if let Some(new) = update.new {
            let commit = Graph::new(&full).peel_to_commit(&new).ok().flatten();
            if let Some(summary) = commit.and_then(|id| commit_summary(&full, id)) {
                details.insert("head_commit".into(), summary);
            }
        }
        out.insert(update.name.clone(), details.into());
    }
    Ok(out)
}

/// A commit as a payload shows it (as the API does, with a shorter
/// message); `None` when it cannot be read or parsed.
fn commit_summary(db: &ObjectDb, id: ObjectId) -> Option<serde_json::Value> {
    let commit = describe(db, id, MAX_MESSAGE_BYTES).ok()?;
    serde_json::to_value(commit).ok()
}
