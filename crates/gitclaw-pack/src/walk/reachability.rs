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
/// what a tip peels to) pass at once, as do commits the commit-graph's
/// first-parent intervals put below a tip; other commits are found by a commit
/// walk, other objects by walking the trees of the tips and then of each commit
/// the walk meets, stopping as soon as every want is found.
pub fn unreachable_wants(
    graph: &mut Graph<'_>,
    tips: &[ObjectId],
    wants: &[ObjectId],
) -> Result<Vec<ObjectId>> {
    // A tip, or what a tag tip peels to by the caller's word, needs no read.
    let mut tip_set: HashSet<ObjectId> = tips.iter().copied().collect();
    tip_set.extend(tips.iter().filter_map(|tip| graph.peeled_tag(tip)));
    let mut missing: HashSet<ObjectId> = wants
        .iter()
        .filter(|want| !tip_set.contains(*want))
        .copied()
        .collect();
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let mut starts = Vec::new();
    // Tag tips peeled by the caller's word: the tags between are read only if
    // some want is still missing after the cheap checks.
    let mut chains_unread = Vec::new();
    for tip in tips {
        if !graph.db.contains(tip)? {
            continue;
        }
        if let Some(target) = graph.peeled_commit(tip)? {
            starts.push(target);
            chains_unread.push(*tip);
            continue;
        }
        let (target, kind, chain) = graph.peel(tip)?;
        tip_set.insert(target);
        tip_set.extend(chain);
        if kind == Kind::Commit {
            starts.push(target);
        }
    }
    missing.retain(|want| !tip_set.contains(want));
    // A commit on a first-parent line below a tip is found without a walk
    // (the commit-graph's intervals): a CI checkout of an older commit by SHA.
    graph.remove_first_parent_reached(&mut missing, &starts)?;
    for tip in chains_unread {
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        // A want may be a tag inside a tip's chain of tags.
        let (_, _, chain) = graph.peel(&tip)?;
        for tag in chain {
            missing.remove(&tag);
        }
    }
    if missing.is_empty() {
        return Ok(Vec::new());
    }
    let mut objects_seen: HashSet<ObjectId> = HashSet::default();
    let no_skip = HashSet::default();
    let skip = Skip {
        set: &no_skip,
        closed: None,
        history: None,
    };
    let mut walk_tree_of = |graph: &mut Graph<'_>, missing: &mut HashSet<ObjectId>, commit| {
        let tree = graph.commit(&commit)?.tree;
        walk_trees(
            graph,
            vec![(tree, Kind::Tree, true)],
            &mut objects_seen,
            &skip,
            None,
            None,
            |o| {
                missing.remove(&o.id);
            },
        )
    };
    // Trees and blobs under a tip first: what a partial clone's lazy fetch asks
    // for (a tip's root tree, the blobs of its checkout). Only when some want is
    // not a commit: a commit is found by the commit walk alone.
    let mut trees_wanted = false;
    for id in &missing {
        // One the store lacks stays missing.
        if graph.db.contains(id)? && graph.kind(id)? != Kind::Commit {
            trees_wanted = true;
            break;
        }
    }
    if trees_wanted {
        // Newest tip first (a checkout is most often of a recent commit), and
        // their root trees before what is under them.
        let mut newest_first = Vec::with_capacity(starts.len());
        for tip in &starts {
            newest_first.push((graph.commit_time(tip)?, *tip));
            let tree = graph.commit(tip)?.tree;
            missing.remove(&tree);
        }
        newest_first.sort_by(|a, b| b.cmp(a));
        for (_, tip) in newest_first {
            if missing.is_empty() {
                return Ok(Vec::new());
            }
            walk_tree_of(graph, &mut missing, tip)?;
        }
        if missing.is_empty() {
            return Ok(Vec::new());
        }
    }
    // Then the history: each commit as the walk meets it, and while a tree or
    // blob is still missing, the trees of that commit.
    let mut seen: HashSet<ObjectId> = HashSet::default();
    let mut stack = starts;
    while let Some(id) = stack.pop() {
        if !seen.insert(id) {
            continue;
        }
        missing.remove(&id);
        if trees_wanted {
            walk_tree_of(graph, &mut missing, id)?;
        }
        if missing.is_empty() {
            return Ok(Vec::new());
        }
        stack.extend(graph.parents(&id)?);
    }
    let mut left: Vec<ObjectId> = missing.into_iter().collect();
    left.sort();
    Ok(left)
}
