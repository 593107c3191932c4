//! Reachability questions asked before a walk: whether the wants are reachable
//! from the ref tips (what a server that does not serve arbitrary objects must
//! check), and whether the wants reach every tip of a stored closure pack (so that
//! pack can go out whole).

use gix_hash::ObjectId;
use gix_hashtable::HashSet;
use gix_object::Kind;

use super::{
    graph::Graph,
    tree_walk::{walk_trees, Skip},
};
use crate::Result;

/// Whether everything `tips` names is reachable from `wants`: each tip is wanted
/// itself or is a commit found walking the wants' history, newest first, within
/// `limit` commits (beyond it the answer is "no", which only costs the caller its
/// shortcut).
pub fn reaches_all(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    tips: &[ObjectId],
    limit: usize,
) -> Result<bool> {
    let wanted: HashSet<ObjectId> = wants.iter().copied().collect();
    let mut missing: HashSet<ObjectId> = HashSet::default();
    for tip in tips.iter().filter(|t| !wanted.contains(*t)) {
        // A tag or tree that is not wanted could only be reached through another
        // tag; not worth a search.
        if graph.peel_to_commit(tip)? != Some(*tip) {
            return Ok(false);
        }
        missing.insert(*tip);
    }
    if missing.is_empty() {
        return Ok(true);
    }
    let mut heap: std::collections::BinaryHeap<(i64, ObjectId)> =
        std::collections::BinaryHeap::new();
    let mut seen: HashSet<ObjectId> = HashSet::default();
    for want in wants {
        if let Some(commit) = graph.peel_to_commit(want)? {
            if seen.insert(commit) {
                heap.push((graph.commit_time(&commit)?, commit));
            }
        }
    }
    // Tips on a first-parent line below a want are found without the walk.
    let starts: Vec<ObjectId> = heap.iter().map(|(_, id)| *id).collect();
    graph.remove_first_parent_reached(&mut missing, &starts)?;
    if missing.is_empty() {
        return Ok(true);
    }
    while let Some((_, id)) = heap.pop() {
        if missing.remove(&id) && missing.is_empty() {
            return Ok(true);
        }
        if seen.len() > limit {
            return Ok(false);
        }
        for parent in graph.parents(&id)? {
            if seen.insert(parent) {
                heap.push((graph.commit_time(&parent)?, parent));
            }
        }
    }
    Ok(false)
}

/// The wants that are not reachable from `tips` (ref tips): what
/// `uploadpack.allowReachableSHA1InWant` refuses. Wants equal to a tip (or to
/// what a tip peels to) pass at once; commits are found by a commit walk, other
/// objects by walking the trees of reachable commits, stopping as soon as every
/// want is found.
pub fn unreachable_wants(
    graph: &mut Graph<'_>,
    tips: &[ObjectId],
    wants: &[ObjectId],
) -> Result<Vec<ObjectId>> {
    let mut missing: HashSet<ObjectId> = HashSet::default();
    let mut tip_set: HashSet<ObjectId> = tips.iter().copied().collect();
    let mut starts = Vec::new();
    for tip in tips {
        if !graph.db.contains(tip) {
            continue;
        }
        let (target, kind, chain) = graph.peel(tip)?;
        tip_set.insert(target);
        tip_set.extend(chain);
        if kind == Kind::Commit {
            starts.push(target);
        }
    }
    for want in wants {
        if !tip_set.contains(want) {
            missing.insert(*want);
        }
    }
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    // A commit on a first-parent line below a tip is found without a walk
    // (the commit-graph's intervals): a CI checkout of an older commit by SHA.
    graph.remove_first_parent_reached(&mut missing, &starts)?;
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    // Commits first: the common case (a CI checkout of a commit by SHA).
    let mut seen: HashSet<ObjectId> = HashSet::default();
    let mut stack = starts;
    let mut commits = Vec::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        missing.remove(&id);
        commits.push(id);
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        stack.extend(graph.parents(&id)?);
    }
    // Trees, blobs and tags: walk the trees of every reachable commit.
    let mut objects_seen: HashSet<ObjectId> = HashSet::default();
    for id in commits {
        let tree = graph.commit(&id)?.tree;
        walk_trees(
            graph,
            vec![(tree, Kind::Tree, true)],
            &mut objects_seen,
            &Skip {
                set: &HashSet::default(),
                closed: None,
            },
            None,
            |o| {
                missing.remove(&o.id);
            },
        )?;
        if missing.is_empty() {
            return Ok(Vec::new());
        }
    }
    let mut left: Vec<ObjectId> = missing.into_iter().collect();
    left.sort();
    Ok(left)
}
