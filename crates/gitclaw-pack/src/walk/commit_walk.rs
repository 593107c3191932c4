//! The commit half of [`enumerate`](fn@super::enumerate): which commits the wants
//! reach and the haves do not, found in one walk of both histories together, as
//! git's `limit_list` does, so its cost follows the commits near the boundary
//! rather than the whole history of the haves.

use gix_hash::ObjectId;
use gix_hashtable::{HashMap, HashSet};

use super::{graph::Graph, shallow::ShallowPlan};
use crate::{
    commit_graph::{CommitGraph, FirstParentSpan},
    Result,
};

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

/// A commit of the walk: by its position in the repository's commit-graph
/// (parents, times and flags without a lookup or an allocation), or by id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Node {
    Pos(u32),
    Id(ObjectId),
}

/// Hashes a commit-graph position for the walk's flags: a multiplicative mix,
/// folded so that both the bucket (low bits) and the tag (high bits) vary.
#[derive(Default)]
struct PositionHasher(u64);

impl std::hash::Hasher for PositionHasher {
    /// Only positions (`u32`) are hashed; any other key folds in byte by byte.
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        let x = u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = x ^ (x >> 32);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// The walk's flags, and where it finds a commit's time and parents. Flags are
/// kept for the commits walked only (a map, not a byte for every commit of the
/// graph): a request's memory follows its walk, not the repository's size.
struct Nodes<'g> {
    graph: Option<&'g CommitGraph>,
    by_pos: std::collections::HashMap<u32, u8, std::hash::BuildHasherDefault<PositionHasher>>,
    by_id: HashMap<ObjectId, u8>,
    scratch: Vec<u32>,
}

impl<'g> Nodes<'g> {
    fn new(graph: Option<&'g CommitGraph>) -> Self {
        Nodes {
            graph,
            by_pos: Default::default(),
            by_id: HashMap::default(),
            scratch: Vec::new(),
        }
    }

    fn node(&self, id: &ObjectId) -> Node {
        match self.graph.and_then(|g| g.position(id)) {
            Some(pos) => Node::Pos(pos),
            None => Node::Id(*id),
        }
    }

    fn id(&self, node: Node) -> ObjectId {
        match (node, self.graph) {
            (Node::Pos(pos), Some(g)) => g.id_at(pos),
            (Node::Id(id), _) => id,
            (Node::Pos(_), None) => unreachable!("positions come from the graph"),
        }
    }

    fn flags(&self, node: Node) -> u8 {
        match node {
            Node::Pos(pos) => self.by_pos.get(&pos).copied().unwrap_or(0),
            Node::Id(id) => self.by_id.get(&id).copied().unwrap_or(0),
        }
    }

    fn flags_mut(&mut self, node: Node) -> &mut u8 {
        match node {
            Node::Pos(pos) => self.by_pos.entry(pos).or_insert(0),
            Node::Id(id) => self.by_id.entry(id).or_insert(0),
        }
    }

    fn time(&self, graph: &mut Graph<'_>, node: Node) -> Result<i64> {
        match (node, self.graph) {
            (Node::Pos(pos), Some(g)) => Ok(g.time_at(pos)),
            _ => graph.commit_time(&self.id(node)),
        }
    }

    /// The parents of `node`, appended to `out`.
    fn parents(&mut self, graph: &mut Graph<'_>, node: Node, out: &mut Vec<Node>) -> Result<()> {
        match (node, self.graph) {
            (Node::Pos(pos), Some(g)) => {
                self.scratch.clear();
                g.parents_at(pos, &mut self.scratch)?;
                out.extend(self.scratch.iter().map(|&p| Node::Pos(p)));
            }
            _ => {
                for parent in graph.parents(&self.id(node))? {
                    out.push(self.node(&parent));
                }
            }
        }
        Ok(())
    }

    /// `node`'s interval in the graph's first-parent forest, if it has one.
    fn span(&self, node: Node) -> Result<Option<FirstParentSpan>> {
        match (node, self.graph) {
            (Node::Pos(pos), Some(g)) => g.first_parent_span(pos),
            _ => Ok(None),
        }
    }

    /// Whether `node`'s interval shows it reachable from a commit of `haves`
    /// (intervals of [`Self::spans`]): the client's.
    fn held_by(&self, node: Node, haves: &[FirstParentSpan]) -> Result<bool> {
        if haves.is_empty() {
            return Ok(false);
        }
        Ok(self
            .span(node)?
            .is_some_and(|span| haves.iter().any(|have| span.holds(have))))
    }

    /// The intervals of those of `ids` that have one.
    fn spans(&self, ids: &[ObjectId]) -> Result<Vec<FirstParentSpan>> {
        let mut spans = Vec::new();
        for id in ids {
            spans.extend(self.span(self.node(id))?);
        }
        Ok(spans)
    }

    /// Whether the walk must not follow `node`'s parents (a shallow boundary).
    fn grafted(&self, plan: &ShallowPlan, node: Node) -> bool {
        !plan.grafts.is_empty() && plan.grafts.contains(&self.id(node))
    }

    fn uninteresting(&self) -> HashSet<ObjectId> {
        let by_pos = self
            .by_pos
            .iter()
            .filter(|(_, f)| **f & UNINTERESTING != 0)
            .map(|(pos, _)| self.id(Node::Pos(*pos)));
        let by_id = self
            .by_id
            .iter()
            .filter(|(_, f)| **f & UNINTERESTING != 0)
            .map(|(id, _)| *id);
        by_pos.chain(by_id).collect()
    }
}

/// Commits reachable from `wants` and not from `haves`, found as git's `limit_list`
/// does: one walk, newest first, of both histories together, marking what the haves
/// reach as uninteresting and stopping once nothing interesting is left to visit
/// (after a few more steps, for clocks that lie). Cost follows the commits near the
/// boundary, not the whole history of the haves. Commits in the first commit-graph
/// of the repository's packs are walked by their positions in it.
pub(super) fn limit_commits(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    haves: &[ObjectId],
    plan: &ShallowPlan,
    closed: Option<&crate::odb::PackHandle>,
) -> Result<CommitWalk> {
    /// Extra steps once only uninteresting commits are queued (git's SLOP).
    const SLOP: u32 = 5;
    let db = graph.db();
    let mut nodes = Nodes::new(db.packs().iter().find_map(|p| p.commit_graph()));
    // Ordered by time, then by id, as a walk by ids orders them.
    let mut heap: std::collections::BinaryHeap<(i64, ObjectId, Node)> =
        std::collections::BinaryHeap::new();
    // Queued commits not (yet) known to be uninteresting.
    let mut interesting_queued = 0usize;
    for id in haves {
        let node = nodes.node(id);
        let f = nodes.flags_mut(node);
        if *f & SEEN == 0 {
            *f = SEEN | UNINTERESTING | QUEUED;
            heap.push((nodes.time(graph, node)?, *id, node));
        }
    }
    // A want the graph's first-parent intervals show a have to reach is the
    // client's already: marked so, not walked to (a client 50 commits behind
    // that wants the old branches of a long history would otherwise have the
    // walk go back through all of it to find them). Marked but not seen: should
    // the walk reach it, it goes on through it as through any commit the
    // client has, so that what lies below is known to be the client's too.
    // Not past a shallow client's boundary: below it, what a have reaches
    // is not the client's.
    let have_spans = match plan.grafts.is_empty() {
        true => nodes.spans(haves)?,
        false => Vec::new(),
    };
    for id in wants {
        let node = nodes.node(id);
        if nodes.flags(node) & SEEN == 0 && nodes.held_by(node, &have_spans)? {
            *nodes.flags_mut(node) |= UNINTERESTING;
            continue;
        }
        if nodes.flags(node) & SEEN == 0 {
            *nodes.flags_mut(node) = SEEN | QUEUED;
            interesting_queued += 1;
            heap.push((nodes.time(graph, node)?, *id, node));
        }
    }
    let mut order: Vec<Node> = Vec::new();
    let mut slop = SLOP;
    let mut parents = Vec::new();
    while let Some((time, _, node)) = heap.pop() {
        if let Node::Pos(_) = node {
            // Read from the graph without `Graph::commit`, which counts the
            // commits it parses for progress and keepalives: counted here.
            graph.count_parsed();
        }
        let f = nodes.flags_mut(node);
        *f = (*f & !QUEUED) | DONE;
        let uninteresting = *f & UNINTERESTING != 0;
        if !uninteresting {
            interesting_queued -= 1;
            order.push(node);
        }
        if !nodes.grafted(plan, node) {
            parents.clear();
            nodes.parents(graph, node, &mut parents)?;
            if uninteresting {
                mark_uninteresting(graph, &mut nodes, &parents, plan, &mut interesting_queued)?;
            }
            for &parent in &parents {
                let in_closed = match closed {
                    Some(pack) if !uninteresting => pack.lookup(&nodes.id(parent))?.is_some(),
                    _ => false,
                };
                if in_closed {
                    // It and all it reaches go out with the closed pack.
                    continue;
                }
                // A commit met from the wants' side that the intervals show a
                // have to reach is the client's: the walk stops there rather
                // than go on until the haves' side comes down to it (a branch
                // forked from the default branch long before the client's
                // commit would otherwise have the walk go back to the fork).
                if !uninteresting
                    && nodes.flags(parent) & (SEEN | UNINTERESTING) == 0
                    && nodes.held_by(parent, &have_spans)?
                {
                    *nodes.flags_mut(parent) |= UNINTERESTING;
                }
                let f = nodes.flags_mut(parent);
                if *f & SEEN == 0 {
                    *f |= SEEN | QUEUED;
                    if *f & UNINTERESTING == 0 {
                        interesting_queued += 1;
                    }
                    let time = nodes.time(graph, parent)?;
                    heap.push((time, nodes.id(parent), parent));
                }
            }
        }
        // Once only uninteresting commits are queued, a few more steps — but
        // none counted while the next is as new as this one (git's rule): with
        // commit times that tie, what this commit reaches is not yet all marked.
        let tied = heap.peek().is_some_and(|(next, _, _)| *next >= time);
        if interesting_queued == 0 && !tied {
            slop -= 1;
            if slop == 0 {
                break;
            }
        } else {
            slop = SLOP;
        }
    }
    let commits: Vec<Node> = order
        .into_iter()
        .filter(|node| nodes.flags(*node) & UNINTERESTING == 0)
        .collect();
    let mut edges: Vec<ObjectId> = haves.to_vec();
    let mut edge_set: HashSet<ObjectId> = haves.iter().copied().collect();
    for &node in &commits {
        if nodes.grafted(plan, node) {
            continue;
        }
        parents.clear();
        nodes.parents(graph, node, &mut parents)?;
        for &parent in &parents {
            if nodes.flags(parent) & UNINTERESTING != 0 {
                let id = nodes.id(parent);
                if edge_set.insert(id) {
                    edges.push(id);
                }
            }
        }
    }
    Ok(CommitWalk {
        commits: commits.iter().map(|node| nodes.id(*node)).collect(),
        edges,
        uninteresting: nodes.uninteresting(),
    })
}

/// Mark `start` and, through commits already visited, their ancestors uninteresting
/// (git's `mark_parents_uninteresting`); unvisited ones are left to the walk.
fn mark_uninteresting(
    graph: &mut Graph<'_>,
    nodes: &mut Nodes<'_>,
    start: &[Node],
    plan: &ShallowPlan,
    interesting_queued: &mut usize,
) -> Result<()> {
    let mut stack: Vec<Node> = start.to_vec();
    while let Some(node) = stack.pop() {
        let f = nodes.flags_mut(node);
        if *f & UNINTERESTING != 0 {
            continue;
        }
        *f |= UNINTERESTING;
        if *f & QUEUED != 0 {
            *interesting_queued -= 1;
        }
        if *f & DONE != 0 && !nodes.grafted(plan, node) {
            nodes.parents(graph, node, &mut stack)?;
        }
    }
    Ok(())
}
