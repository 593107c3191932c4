//! The shallow boundary of a fetch (`deepen`, `deepen-relative`, `deepen-since`,
//! `deepen-not`, unshallow), decided the way git's upload-pack decides it, so a
//! client gets the same `shallow`/`unshallow` lines and the same commits as from
//! git. The resulting [`ShallowPlan`] tells the walk which parents not to follow.

use std::collections::VecDeque;

use gix_hash::ObjectId;
use gix_hashtable::HashSet;

use super::graph::Graph;
use crate::{PackError, Result};

/// `deepen` with this value means "all of history" (what `git fetch --unshallow` sends).
pub const INFINITE_DEPTH: u32 = 0x7fff_ffff;

/// What the client asked for about history depth.
#[derive(Debug, Clone, Default)]
pub struct DeepenRequest {
    /// The client's current shallow commits (`shallow` lines).
    pub client_shallow: Vec<ObjectId>,
    pub depth: Option<u32>,
    pub relative: bool,
    /// The client's shallow commits that no ref reaches (the caller's
    /// answer): `deepen-relative` deepens from the others only, as git's
    /// upload-pack does — after a force-push, a client's old boundary stays.
    pub unreachable_shallow: Vec<ObjectId>,
    pub since: Option<i64>,
    /// Tips (already resolved from ref names) whose history is excluded.
    pub not: Vec<ObjectId>,
}

impl DeepenRequest {
    pub fn is_deepen(&self) -> bool {
        self.depth.is_some() || self.since.is_some() || !self.not.is_empty()
    }

    /// Whether the client is shallow or becomes so: what its haves reach is
    /// then not all its own.
    pub fn makes_shallow(&self) -> bool {
        self.is_deepen() || !self.client_shallow.is_empty()
    }
}

/// The shallow boundary of a fetch and what to tell the client about it.
#[derive(Debug, Clone, Default)]
pub struct ShallowPlan {
    /// Commits to announce as `shallow`.
    pub shallow: Vec<ObjectId>,
    /// Commits to announce as `unshallow`.
    pub unshallow: Vec<ObjectId>,
    /// Commits whose parents the walk must not follow.
    pub(super) grafts: HashSet<ObjectId>,
    /// Parents of unshallowed commits: sent as if wanted.
    pub(super) extra_wants: Vec<ObjectId>,
    /// Unshallowed commits: the client has them and their trees.
    pub(super) extra_edges: Vec<ObjectId>,
}

impl ShallowPlan {
    /// Nothing shallow about this fetch: the walk follows every parent.
    pub fn is_full(&self) -> bool {
        self.shallow.is_empty()
            && self.unshallow.is_empty()
            && self.grafts.is_empty()
            && self.extra_wants.is_empty()
            && self.extra_edges.is_empty()
    }
}

/// Decide the shallow boundary as git's upload-pack does.
pub fn plan_shallow(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    request: &DeepenRequest,
) -> Result<ShallowPlan> {
    let mut client_shallow = Vec::new();
    for id in &request.client_shallow {
        // Unknown shallow commits are ignored, as git does.
        if graph.db.contains(id)? && graph.peel_to_commit(id)? == Some(*id) {
            client_shallow.push(*id);
        }
    }
    let mut plan = ShallowPlan::default();
    if !request.is_deepen() {
        plan.grafts = client_shallow.iter().copied().collect();
        return Ok(plan);
    }

    let mut not_shallow: HashSet<ObjectId> = HashSet::default();
    let mut boundary: Vec<ObjectId> = Vec::new();
    let mut want_commits = Vec::new();
    for want in wants {
        if let Some(commit) = graph.peel_to_commit(want)? {
            want_commits.push(commit);
        }
    }

    if request.since.is_some() || !request.not.is_empty() {
        boundary = shallow_by_rev_list(graph, &want_commits, request, &mut not_shallow)?;
        if boundary.is_empty() && not_shallow.is_empty() {
            return Err(PackError::InvalidRequest(
                "no commits selected for shallow requests".into(),
            ));
        }
    } else if let Some(depth) = request.depth {
        if depth == INFINITE_DEPTH && !request.relative {
            not_shallow.extend(client_shallow.iter().copied());
        } else {
            let (heads, depth) = if request.relative {
                let unreachable: HashSet<ObjectId> =
                    request.unreachable_shallow.iter().copied().collect();
                let heads = client_shallow
                    .iter()
                    .filter(|id| !unreachable.contains(*id))
                    .copied()
                    .collect();
                (heads, depth.saturating_add(1))
            } else {
                (want_commits.clone(), depth)
            };
            boundary = shallow_by_depth(graph, &heads, depth, &mut not_shallow)?;
        }
    }

    let client_set: HashSet<ObjectId> = client_shallow.iter().copied().collect();
    for id in &boundary {
        if !client_set.contains(id) && !not_shallow.contains(id) {
            plan.shallow.push(*id);
        }
        plan.grafts.insert(*id);
    }
    for id in &client_shallow {
        if not_shallow.contains(id) {
            plan.unshallow.push(*id);
            plan.extra_wants.extend(graph.parents(id)?);
            plan.extra_edges.push(*id);
        }
        plan.grafts.insert(*id);
    }
    Ok(plan)
}

/// Commits at exactly `depth` from `heads` (by their shortest path) form the boundary.
fn shallow_by_depth(
    graph: &mut Graph<'_>,
    heads: &[ObjectId],
    depth: u32,
    not_shallow: &mut HashSet<ObjectId>,
) -> Result<Vec<ObjectId>> {
    let mut seen: HashSet<ObjectId> = HashSet::default();
    let mut queue: VecDeque<(ObjectId, u32)> = VecDeque::new();
    for head in heads {
        if seen.insert(*head) {
            queue.push_back((*head, 1));
        }
    }
    let mut boundary = Vec::new();
    while let Some((id, d)) = queue.pop_front() {
        if d >= depth {
            boundary.push(id);
            continue;
        }
        not_shallow.insert(id);
        for parent in graph.parents(&id)? {
            if seen.insert(parent) {
                queue.push_back((parent, d + 1));
            }
        }
    }
    Ok(boundary)
}

/// `deepen-since` / `deepen-not`: the selected commits are those reachable from the
/// wants, not from the excluded tips, and not older than the cut-off; a selected
/// commit with an unselected parent is a boundary commit.
fn shallow_by_rev_list(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    request: &DeepenRequest,
    not_shallow: &mut HashSet<ObjectId>,
) -> Result<Vec<ObjectId>> {
    let mut excluded: HashSet<ObjectId> = HashSet::default();
    let mut stack: Vec<ObjectId> = Vec::new();
    for tip in &request.not {
        if let Some(commit) = graph.peel_to_commit(tip)? {
            stack.push(commit);
        }
    }
    while let Some(id) = stack.pop() {
        if excluded.insert(id) {
            stack.extend(graph.parents(&id)?);
        }
    }
    let mut selected: Vec<ObjectId> = Vec::new();
    let mut seen: HashSet<ObjectId> = HashSet::default();
    stack.extend(wants.iter().copied());
    while let Some(id) = stack.pop() {
        if excluded.contains(&id) || !seen.insert(id) {
            continue;
        }
        if let Some(since) = request.since {
            if graph.commit_time(&id)? < since {
                continue;
            }
        }
        selected.push(id);
        not_shallow.insert(id);
        stack.extend(graph.parents(&id)?);
    }
    let mut boundary = Vec::new();
    for id in selected {
        let parents = graph.parents(&id)?;
        if parents.iter().any(|p| !not_shallow.contains(p)) {
            boundary.push(id);
        }
    }
    // Boundary commits are shallow, not "not shallow".
    for id in &boundary {
        not_shallow.remove(id);
    }
    Ok(boundary)
}
