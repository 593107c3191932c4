//! The commit half of [`enumerate`](fn@super::enumerate): which commits the wants
//! reach and the haves do not, found in one walk of both histories together, as
//! git's `limit_list` does, so its cost follows the commits near the boundary
//! rather than the whole history of the haves.

use gix_hash::ObjectId;
use gix_hashtable::{HashMap, HashSet};

use super::{graph::Graph, shallow::ShallowPlan};
use crate::Result;

// Flags of the commit walk.
const SEEN: u8 = 1;
const UNINTERESTING: u8 = 2;
const QUEUED: u8 = 4;
const DONE: u8 = 8;

/// The commit part of [`enumerate`](fn@super::enumerate).
pub(super) struct CommitWalk {
    /// Commits to send, newest first.
    pub(super) commits: Vec<ObjectId>,
    /// Commits the client has that border on what it gets: its named haves and the
    /// parents of sent commits it has.
    pub(super) edges: Vec<ObjectId>,
    /// Every commit the walk found the client to have.
    pub(super) uninteresting: HashSet<ObjectId>,
}

/// Commits reachable from `wants` and not from `haves`, found as git's `limit_list`
/// does: one walk, newest first, of both histories together, marking what the haves
/// reach as uninteresting and stopping once nothing interesting is left to visit
/// (after a few more steps, for clocks that lie). Cost follows the commits near the
/// boundary, not the whole history of the haves.
pub(super) fn limit_commits(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    haves: &[ObjectId],
    plan: &ShallowPlan,
    closed: Option<&crate::odb::PackHandle>,
) -> Result<CommitWalk> {
    /// Extra steps once only uninteresting commits are queued (git's SLOP).
    const SLOP: u32 = 5;
    let mut flags: HashMap<ObjectId, u8> = HashMap::default();
    let mut heap: std::collections::BinaryHeap<(i64, ObjectId)> =
        std::collections::BinaryHeap::new();
    // Queued commits not (yet) known to be uninteresting.
    let mut interesting_queued = 0usize;
    for id in haves {
        let f = flags.entry(*id).or_insert(0);
        if *f & SEEN == 0 {
            *f = SEEN | UNINTERESTING | QUEUED;
            heap.push((graph.commit_time(id)?, *id));
        }
    }
    for id in wants {
        if flags.get(id).is_none_or(|f| f & SEEN == 0) {
            flags.insert(*id, SEEN | QUEUED);
            interesting_queued += 1;
            heap.push((graph.commit_time(id)?, *id));
        }
    }
    let mut order: Vec<ObjectId> = Vec::new();
    let mut slop = SLOP;
    while let Some((_, id)) = heap.pop() {
        let f = flags.get_mut(&id).expect("queued commits have flags");
        *f = (*f & !QUEUED) | DONE;
        let uninteresting = *f & UNINTERESTING != 0;
        if !uninteresting {
            interesting_queued -= 1;
            order.push(id);
        }
        if !plan.grafts.contains(&id) {
            let parents = graph.parents(&id)?;
            if uninteresting {
                mark_uninteresting(graph, &mut flags, &parents, plan, &mut interesting_queued)?;
            }
            for parent in parents {
                if !uninteresting && closed.is_some_and(|p| p.lookup(&parent).is_some()) {
                    // It and all it reaches go out with the closed pack.
                    continue;
                }
                let f = flags.entry(parent).or_insert(0);
                if *f & SEEN == 0 {
                    *f |= SEEN | QUEUED;
                    if *f & UNINTERESTING == 0 {
                        interesting_queued += 1;
                    }
                    let time = graph.commit_time(&parent)?;
                    heap.push((time, parent));
                }
            }
        }
        if interesting_queued == 0 {
            slop -= 1;
            if slop == 0 {
                break;
            }
        } else {
            slop = SLOP;
        }
    }
    let is_uninteresting = |flags: &HashMap<ObjectId, u8>, id: &ObjectId| {
        flags.get(id).is_some_and(|f| f & UNINTERESTING != 0)
    };
    let commits: Vec<ObjectId> = order
        .into_iter()
        .filter(|id| !is_uninteresting(&flags, id))
        .collect();
    let mut edges: Vec<ObjectId> = haves.to_vec();
    let mut edge_set: HashSet<ObjectId> = haves.iter().copied().collect();
    for id in &commits {
        if plan.grafts.contains(id) {
            continue;
        }
        for parent in graph.parents(id)? {
            if is_uninteresting(&flags, &parent) && edge_set.insert(parent) {
                edges.push(parent);
            }
        }
    }
    let uninteresting = flags
        .iter()
        .filter(|(_, f)| **f & UNINTERESTING != 0)
        .map(|(id, _)| *id)
        .collect();
    Ok(CommitWalk {
        commits,
        edges,
        uninteresting,
    })
}

/// Mark `start` and, through commits already visited, their ancestors uninteresting
/// (git's `mark_parents_uninteresting`); unvisited ones are left to the walk.
fn mark_uninteresting(
    graph: &mut Graph<'_>,
    flags: &mut HashMap<ObjectId, u8>,
    start: &[ObjectId],
    plan: &ShallowPlan,
    interesting_queued: &mut usize,
) -> Result<()> {
    let mut stack: Vec<ObjectId> = start.to_vec();
    while let Some(id) = stack.pop() {
        let f = flags.entry(id).or_insert(0);
        if *f & UNINTERESTING != 0 {
            continue;
        }
        *f |= UNINTERESTING;
        if *f & QUEUED != 0 {
            *interesting_queued -= 1;
        }
        if *f & DONE != 0 && !plan.grafts.contains(&id) {
            stack.extend(graph.parents(&id)?);
        }
    }
    Ok(())
}
