//! The tree half of the walk: every tree and blob under a set of roots, each once,
//! with the path-name hash the pack writer sorts delta candidates by. Shared by
//! enumeration (what to send, what the client has) and the reachability check of
//! wants that are not commits.

use gix_hash::ObjectId;
use gix_hashtable::HashSet;
use gix_object::Kind;

use super::{enumerate::WalkObject, filter::Filter, graph::Graph, history::ClientHistory};
use crate::{PackError, Result};

/// Git's `pack_name_hash`: a sortable number from the last non-whitespace
/// characters of a path, the final ones counting most (so `*.c` sort together).
pub fn name_hash(path: &[u8]) -> u32 {
    path.iter()
        .filter(|c| !c.is_ascii_whitespace())
        .fold(0u32, |hash, &c| {
            (hash >> 2).wrapping_add(u32::from(c) << 24)
        })
}

/// Objects a walk does not enter: a set, optionally a closed pack, and
/// optionally what the client's history holds.
pub(super) struct Skip<'a> {
    pub(super) set: &'a HashSet<ObjectId>,
    pub(super) closed: Option<&'a crate::odb::PackHandle>,
    pub(super) history: Option<(&'a ClientHistory, &'a crate::odb::ObjectDb)>,
}

impl Skip<'_> {
    /// Whether the walk passes `id` over. What the client's history holds is
    /// passed over only when it was not asked for by name: a partial clone
    /// asks for objects of its own history it never received.
    pub(super) fn has(&self, id: &ObjectId, explicit: bool) -> Result<bool> {
        if self.set.contains(id) || self.closed.is_some_and(|p| p.lookup(id).is_some()) {
            return Ok(true);
        }
        match self.history {
            Some((history, db)) if !explicit => history.has(db, id),
            _ => Ok(false),
        }
    }
}

/// Depth-first walk of trees from `roots` (with whether each was asked for by
/// name: such objects pass any filter), calling `emit` for every object not in
/// `skip` and not yet in `seen` (which collects what was visited) that `filter`
/// admits.
pub(super) fn walk_trees(
    graph: &mut Graph<'_>,
    roots: Vec<(ObjectId, Kind, bool)>,
    seen: &mut HashSet<ObjectId>,
    skip: &Skip<'_>,
    filter: Option<&Filter>,
    mut emit: impl FnMut(WalkObject),
) -> Result<()> {
    // (id, kind, depth below the root tree, path relative to it, asked for by name);
    // reversed so the first root (the newest commit's tree) is walked first.
    let mut stack: Vec<(ObjectId, Kind, u64, Vec<u8>, bool)> = roots
        .into_iter()
        .rev()
        .map(|(id, kind, explicit)| (id, kind, 0, Vec::new(), explicit))
        .collect();
    let mut buf = Vec::new();
    let sparse = graph.db.has_sparse_packs();
    while let Some((id, kind, depth, path, explicit)) = stack.pop() {
        // A child was checked against `skip` when it was queued (the skip
        // does not change during the walk): only a root is checked here, so
        // what the client's history holds is asked once an object.
        if seen.contains(&id) || (depth == 0 && skip.has(&id, explicit)?) {
            continue;
        }
        if let (Some(filter), false) = (filter, explicit) {
            let reader = &mut graph.reader;
            if !filter.admits(kind, depth, &mut || reader.size(&id))? {
                // Not marked seen: the same object higher up a tree may still go out.
                continue;
            }
        }
        seen.insert(id);
        emit(WalkObject {
            id,
            kind,
            name_hash: name_hash(&path),
        });
        if kind != Kind::Tree {
            continue;
        }
        graph.count_parsed();
        let actual = graph.reader.read_existing(&id, &mut buf)?;
        if actual != Kind::Tree {
            return Err(PackError::MalformedObject {
                oid: id,
                detail: format!("expected a tree, found a {actual}"),
            });
        }
        // Children are pushed in tree order, then that run is reversed so the
        // stack pops them in tree order; no entry list is allocated.
        let first_child = stack.len();
        for entry in gix_object::TreeRefIter::from_bytes(&buf, gix_hash::Kind::Sha1) {
            let entry = entry.map_err(|err| PackError::MalformedObject {
                oid: id,
                detail: err.to_string(),
            })?;
            if entry.mode.is_commit() {
                continue;
            }
            let child_kind = if entry.mode.is_tree() {
                Kind::Tree
            } else {
                Kind::Blob
            };
            // What the filter refuses at any size (blob:none, tree:<depth>) is not
            // even queued; size-dependent refusals are decided when popped.
            if let Some(filter) = filter {
                if !filter.admits(child_kind, depth + 1, &mut || Ok(0))? {
                    continue;
                }
            }
            let child = entry.oid.to_owned();
            if !seen.contains(&child) && !skip.has(&child, false)? {
                let mut child_path = Vec::with_capacity(path.len() + entry.filename.len() + 1);
                if !path.is_empty() {
                    child_path.extend_from_slice(&path);
                    child_path.push(b'/');
                }
                child_path.extend_from_slice(entry.filename);
                stack.push((child, child_kind, depth + 1, child_path, false));
            }
        }
        stack[first_child..].reverse();
        if sparse {
            // Read by ranges: the subtrees come down in one batch now, not in a
            // round trip each as the walk reaches them.
            let subtrees: Vec<ObjectId> = stack[first_child..]
                .iter()
                .filter(|(_, kind, ..)| *kind == Kind::Tree)
                .map(|(id, ..)| *id)
                .collect();
            if subtrees.len() > 1 {
                graph.db.prefetch(&subtrees)?;
            }
        }
    }
    Ok(())
}
