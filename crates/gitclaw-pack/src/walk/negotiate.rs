//! The negotiation's "ready" test: once every want reaches a commit both sides
//! have, the server may stop asking for haves and send the pack (git's
//! `ok_to_give_up`); and which common haves to acknowledge.

use gix_hash::ObjectId;
use gix_hashtable::HashSet;

use super::graph::Graph;
use crate::Result;

/// Whether every want reaches one of the `common` commits: git's `ok_to_give_up`,
/// which lets the server answer `ready` and end negotiation. A want the
/// commit-graph's first-parent intervals put below a common commit is the
/// client's already and needs nothing sent (a client that lacks the names of
/// old branches of its own history wants them): it passes too, unless
/// `shallow` (below a shallow client's boundary, what a common commit reaches
/// is not the client's).
pub fn ok_to_give_up(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    common: &[ObjectId],
    shallow: bool,
) -> Result<bool> {
    if common.is_empty() {
        return Ok(false);
    }
    let common_set: HashSet<ObjectId> = common.iter().copied().collect();
    let mut cutoff = i64::MAX;
    let mut common_commits = Vec::new();
    for id in common {
        if let Some(commit) = graph.peel_to_commit(id)? {
            cutoff = cutoff.min(graph.commit_time(&commit)?);
            common_commits.push(commit);
        }
    }
    let mut starts: HashSet<ObjectId> = HashSet::default();
    for want in wants {
        if let Some(start) = graph.peel_to_commit(want)? {
            starts.insert(start);
        }
    }
    if !shallow {
        graph.remove_first_parent_reached(&mut starts, &common_commits)?;
    }
    for start in starts {
        let mut seen: HashSet<ObjectId> = HashSet::default();
        let mut stack = vec![start];
        let mut reached = false;
        while let Some(id) = stack.pop() {
            if common_set.contains(&id) {
                reached = true;
                break;
            }
            if !seen.insert(id) || graph.commit_time(&id)? < cutoff {
                continue;
            }
            stack.extend(graph.parents(&id)?);
        }
        if !reached {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Which of the `common` haves (in the client's order) to acknowledge, as git's
/// upload-pack decides: not one that is a parent of a have named earlier in the
/// same request, since the client takes an acknowledged commit's ancestors
/// as common already. A stateless client sends every acknowledged have again in
/// each later round, so acknowledging the whole chain it walked would grow every
/// round's request by it.
pub fn to_acknowledge(graph: &mut Graph<'_>, common: &[ObjectId]) -> Result<Vec<ObjectId>> {
    let mut they_have: HashSet<ObjectId> = HashSet::default();
    let mut acks = Vec::new();
    for id in common {
        if they_have.insert(*id) {
            acks.push(*id);
        }
        // Known or not, its parents are now known to be the client's.
        if let Some(commit) = graph.peel_to_commit(id)? {
            they_have.extend(graph.parents(&commit)?);
        }
    }
    Ok(acks)
}
