//! What a `push` webhook tells of each ref that moved, beyond its old and new
//! ids: whether the move was forced, and the commit the ref now names (its
//! id, message, author and committer), so a CI system can act on a push, and
//! honour a `[skip ci]` in its message, without fetching anything. Worked out
//! only for a repository with webhooks, before the push is committed (the
//! payload is written in the commit's transaction).

use std::{collections::HashMap, path::Path};

use gitclaw_metadata::RefUpdate;
use gitclaw_pack::{odb::ObjectDb, walk::Graph, ObjectId, PackError};

use super::checks::{is_fast_forward, with_pushed_pack};

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

/// A commit as a payload shows it; `None` when it cannot be read or parsed.
fn commit_summary(db: &ObjectDb, id: ObjectId) -> Option<serde_json::Value> {
    let mut buf = Vec::new();
    db.reader().read(&id, &mut buf).ok()??;
    let commit = gix_object::CommitRef::from_bytes(&buf, gix_hash::Kind::Sha1).ok()?;
    let person = |name: &[u8], email: &[u8], time: gix_object::date::Time| {
        serde_json::json!({
            "name": String::from_utf8_lossy(name),
            "email": String::from_utf8_lossy(email),
            "date": crate::time::rfc3339_at_offset(time.seconds, time.offset),
        })
    };
    let (author, committer) = (commit.author().ok()?, commit.committer().ok()?);
    Some(serde_json::json!({
        "id": id.to_string(),
        "message": truncated(&String::from_utf8_lossy(commit.message)),
        "author": person(author.name, author.email, author.time().unwrap_or_default()),
        "committer": person(
            committer.name,
            committer.email,
            committer.time().unwrap_or_default()
        ),
    }))
}

/// `text` cut to at most [`MAX_MESSAGE_BYTES`], at a character's end.
fn truncated(text: &str) -> &str {
    if text.len() <= MAX_MESSAGE_BYTES {
        return text;
    }
    let mut end = MAX_MESSAGE_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_at_a_character_s_end() {
        let text = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = truncated(&text);
        assert!(cut.len() <= MAX_MESSAGE_BYTES && cut.len() > MAX_MESSAGE_BYTES - 2);
        assert!(cut.chars().all(|c| c == 'é'));
        assert_eq!(truncated("short"), "short");
    }
}
