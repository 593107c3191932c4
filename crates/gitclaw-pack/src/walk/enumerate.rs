//! The objects a fetch sends: everything reachable from the wants and not from
//! the haves, within the shallow boundary and the filter. Like git, the trees
//! excluded are those of the commits at the edge of what the client has, not of
//! its whole history, so the cost follows the fetch, not the repository; and
//! those trees are read only where the commits to send changed them (`edge`).
//! Where compaction recorded the commit that brought each object (see
//! `history`), an object the client's older history holds is left out too, as
//! git's reachability bitmaps leave it out.
//!
//! [`enumerate`] puts the steps together: commits come from `commit_walk`,
//! what the client has at the edge from `edge`, trees and blobs to send from
//! `tree_walk`.

use gix_hash::ObjectId;
use gix_hashtable::HashSet;
use gix_object::Kind;

use super::{
    commit_walk::limit_commits,
    edge::Edge,
    filter::Filter,
    graph::Graph,
    history::ClientHistory,
    shallow::ShallowPlan,
    tree_walk::{walk_trees, Skip},
};
use crate::{PackError, Result};

/// An object to send, with its type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalkObject {
    pub id: ObjectId,
    pub kind: Kind,
    /// Git's path-name hash of where the walk met the object (0 for commits and
    /// tags); objects at similar paths sort together for delta search.
    pub name_hash: u32,
}

impl WalkObject {
    pub fn new(id: ObjectId, kind: Kind) -> Self {
        WalkObject {
            id,
            kind,
            name_hash: 0,
        }
    }
}

/// The outcome of [`enumerate`].
#[derive(Debug, Default)]
pub struct WalkOutcome {
    /// Every object to send, commits first (newest first), then tags, trees and blobs.
    pub objects: Vec<WalkObject>,
    pub commits: usize,
    /// Objects the client is known to have: delta bases for a thin pack.
    pub client_has: HashSet<ObjectId>,
    /// The trees and blobs of the commits at the edge of what the client has
    /// (in the directories the commits to send changed), with the path-name
    /// hashes they were met at: what the delta search may try as
    /// bases of a thin pack (the previous version of a file is the best base of
    /// its new one, and the client has it).
    pub edge_objects: Vec<WalkObject>,
    /// What the client's older history holds, where compaction's records tell
    /// (see [`WalkOptions::history_complete`]).
    pub client_history: Option<ClientHistory>,
    /// The partial-clone filter the walk applied (see [`crate::writer::ClientHas::filter`]).
    pub filter: Option<Filter>,
}

impl WalkOutcome {
    /// What a thin pack of these objects may lean on.
    pub fn client_has(&self) -> crate::writer::ClientHas<'_> {
        crate::writer::ClientHas {
            ids: &self.client_has,
            bases: &self.edge_objects,
            history: self.client_history.as_ref(),
            filter: self.filter.as_ref(),
        }
    }
}

/// Root trees of the edge, and of the commits to send, read in the walk's
/// first batch on a pack read by ranges (each side; a fetch has a few).
const FIRST_TREES: usize = 64;

/// Queue the tags of a wanted tag's chain to be sent, once each, but those `skip` names.
fn queue_tags(
    tags: Vec<ObjectId>,
    skip: impl Fn(&ObjectId) -> Result<bool>,
    sent: &mut HashSet<ObjectId>,
    out: &mut Vec<WalkObject>,
) -> Result<()> {
    for tag in tags {
        if !skip(&tag)? && sent.insert(tag) {
            out.push(WalkObject::new(tag, Kind::Tag));
        }
    }
    Ok(())
}

/// What to send besides the plain wants.
#[derive(Clone, Default)]
pub struct WalkOptions {
    /// Partial clone: objects the filter refuses stay out (wanted objects never do).
    pub filter: Option<Filter>,
    /// Annotated tags (their object ids) to add when the object they point at is sent (`include-tag`).
    pub include_tags: Vec<ObjectId>,
    /// A pack closed under reachability (every object it holds has everything it
    /// reaches in it too) that goes out whole ahead of the listed objects: the walk
    /// neither lists nor enters anything it holds.
    pub closed: Option<std::sync::Arc<crate::odb::PackHandle>>,
    /// The client has the whole history of its haves (it is not shallow and
    /// does not become so): an object that history holds, as compaction's
    /// records prove it (see [`ClientHistory`]), is neither sent nor walked
    /// into, and a stored delta against one goes out as it is.
    pub history_complete: bool,
    /// About how many trees and blobs the walk will list, when the caller
    /// knows (compaction: every object of the repository): the list is made
    /// that large at once rather than grown by doubling, which leaves up to as
    /// much again unused (47 MB at 2.5 million objects). 0: not known.
    pub expected_objects: usize,
}

impl std::fmt::Debug for WalkOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WalkOptions")
            .field("filter", &self.filter)
            .field("include_tags", &self.include_tags.len())
            .field("closed", &self.closed.as_ref().map(|p| *p.hash()))
            .field("history_complete", &self.history_complete)
            .field("expected_objects", &self.expected_objects)
            .finish()
    }
}

/// List the objects reachable from `wants` and not reachable from `haves` (with
/// edge semantics: see the module documentation).
pub fn enumerate(
    graph: &mut Graph<'_>,
    wants: &[ObjectId],
    haves: &[ObjectId],
    plan: &ShallowPlan,
    options: &WalkOptions,
) -> Result<WalkOutcome> {
    // 1. The client's non-commit haves, and the commits its haves name.
    let mut have_roots: Vec<ObjectId> = Vec::new();
    let mut have_tips: Vec<ObjectId> = Vec::new();
    for have in haves.iter().chain(&plan.extra_edges) {
        if !graph.db.contains(have)? {
            continue;
        }
        let (target, kind, tags) = graph.peel(have)?;
        have_roots.extend(tags);
        match kind {
            Kind::Commit => have_tips.push(target),
            _ => have_roots.push(target),
        }
    }
    let have_root_set: HashSet<ObjectId> = have_roots.iter().copied().collect();

    // 2. Commits to send.
    let mut out = WalkOutcome {
        filter: options.filter.clone(),
        ..WalkOutcome::default()
    };
    let mut sent: HashSet<ObjectId> = HashSet::default();
    let mut tags_out: Vec<WalkObject> = Vec::new();
    let mut roots: Vec<(ObjectId, Kind)> = Vec::new();
    let mut want_commits: Vec<ObjectId> = Vec::new();
    let closed = options.closed.as_deref();
    let in_closed = |id: &ObjectId| -> Result<bool> {
        Ok(match closed {
            Some(pack) => pack.lookup(id)?.is_some(),
            None => false,
        })
    };
    // Wanted tags the refs peel to a known commit: their chains are read after
    // the commit walk, with the first trees (see below).
    let mut tags_unread: Vec<ObjectId> = Vec::new();
    // The commits the client named (or named tags of): they go out whatever
    // the filter, as git sends what it is asked for by name.
    let mut named: HashSet<ObjectId> = HashSet::default();
    for (i, want) in wants.iter().chain(&plan.extra_wants).enumerate() {
        if in_closed(want)? {
            continue;
        }
        if let Some(target) = graph.peeled_commit(want)? {
            tags_unread.push(*want);
            if !in_closed(&target)? {
                want_commits.push(target);
                if i < wants.len() {
                    named.insert(target);
                }
            }
            continue;
        }
        let (target, kind, tags) = graph.peel(want)?;
        let skip = |tag: &ObjectId| Ok(have_root_set.contains(tag) || in_closed(tag)?);
        queue_tags(tags, skip, &mut sent, &mut tags_out)?;
        match kind {
            Kind::Commit if in_closed(&target)? => {}
            Kind::Commit => {
                want_commits.push(target);
                if i < wants.len() {
                    named.insert(target);
                }
            }
            other => roots.push((target, other)),
        }
    }
    let walk = limit_commits(graph, &want_commits, &have_tips, plan, closed)?;
    let commits = walk.commits;
    // A filter that refuses commits (`object:type=blob`) still walks them for
    // what it sends below them, but sends only those named.
    let sends_commits = match options.filter.as_ref() {
        Some(filter) => filter.admits(Kind::Commit, 0, &mut || Ok(0))?,
        None => true,
    };
    let commit_goes_out = |id: &&ObjectId| sends_commits || named.contains(*id);
    sent.extend(commits.iter().filter(commit_goes_out).copied());
    out.commits = commits.iter().filter(commit_goes_out).count();
    // A filter that neither sends nor walks into root trees (`tree:0`,
    // `object:type=commit`) leaves the commits' trees unread: looking each up
    // would be most of the walk of a long history.
    let root_trees = match options.filter.as_ref() {
        Some(filter) => filter.enters(0) || filter.admits(Kind::Tree, 0, &mut || Ok(0))?,
        None => true,
    };
    // On a pack read by ranges, what the walk reads first comes down in one
    // batch of reads: those tags, and the root trees of the commits at the
    // edge of what the client has and of the first commits to send. Read as
    // the walk reaches them, each is a round trip to the store.
    if graph.db.has_sparse_packs() {
        let mut first = tags_unread.clone();
        let edges = walk.edges.iter().take(FIRST_TREES);
        let sending = commits.iter().filter(|_| root_trees).take(FIRST_TREES);
        for id in edges.chain(sending) {
            let tree = graph.commit(id)?.tree;
            if !in_closed(&tree)? {
                first.push(tree);
            }
        }
        graph.db.prefetch(&first)?;
    }
    for want in tags_unread {
        let skip = |tag: &ObjectId| Ok(have_root_set.contains(tag) || in_closed(tag)?);
        queue_tags(graph.peel(&want)?.2, skip, &mut sent, &mut tags_out)?;
    }

    // 3. Trees and blobs the client has, as far as they matter: those of the commits
    // at the edge between what it has and what it gets (git's edge semantics — an
    // object only deeper in its history may be sent again, which costs bytes, not
    // correctness, and spares walking every tree the client ever had; step 4
    // leaves out what compaction's records prove that history holds). Trees
    // and blobs it named as haves (rare) are walked whole now; the edge's trees
    // are read in step 4, only under the names where it sends other trees
    // (`edge`).
    let mut have_objects: HashSet<ObjectId> = HashSet::default();
    if !have_roots.is_empty() && (!commits.is_empty() || !roots.is_empty()) {
        let mut tree_roots: Vec<(ObjectId, Kind, bool)> = Vec::new();
        for id in &have_roots {
            let (kind, _) = graph
                .reader
                .header(id)?
                .ok_or(PackError::MissingObject(*id))?;
            tree_roots.push((*id, kind, true));
        }
        let none = HashSet::default();
        let skip = Skip {
            set: &none,
            closed,
            history: None,
        };
        walk_trees(
            graph,
            tree_roots,
            &mut have_objects,
            &skip,
            None,
            None,
            |obj| out.edge_objects.push(obj),
        )?;
    }
    let mut edge_trees = Vec::with_capacity(walk.edges.len());
    for id in &walk.edges {
        edge_trees.push(graph.commit(id)?.tree);
    }
    let mut edge = Edge::new(edge_trees, have_objects);
    let have_commits = walk.uninteresting;

    // 4. Trees and blobs to send.
    out.objects.extend(
        commits
            .iter()
            .filter(commit_goes_out)
            .map(|id| WalkObject::new(*id, Kind::Commit)),
    );
    let mut tree_roots: Vec<(ObjectId, Kind, bool)> = Vec::new();
    for id in commits.iter().filter(|_| root_trees) {
        tree_roots.push((graph.commit(id)?.tree, Kind::Tree, false));
    }
    tree_roots.extend(roots.into_iter().map(|(id, kind)| (id, kind, true)));
    let mut objects = Vec::with_capacity(options.expected_objects);
    // Only for a client with its haves' whole history: a shallow one's haves
    // reach commits it does not have.
    let db = graph.db;
    let history = match options.history_complete && plan.is_full() {
        true => {
            let client: Vec<ObjectId> = have_tips.iter().chain(&walk.edges).copied().collect();
            Some(ClientHistory::new(graph, &client)?).filter(|h| !h.is_empty())
        }
        false => None,
    };
    let none = HashSet::default();
    let skip = Skip {
        set: &none,
        closed,
        history: history.as_ref().map(|h| (h, db)),
    };
    walk_trees(
        graph,
        tree_roots,
        &mut sent,
        &skip,
        options.filter.as_ref(),
        Some(&mut edge),
        |obj| objects.push(obj),
    )?;
    out.edge_objects.append(&mut edge.bases);
    let mut have_objects = edge.have;

    // 5. include-tag: tags whose target goes out (or that peel to something that does).
    for tag in &options.include_tags {
        if sent.contains(tag) || have_root_set.contains(tag) || in_closed(tag)? {
            continue;
        }
        // A tag whose peeled object is known and stays behind is not read.
        if let Some(target) = graph.peeled_tag(tag) {
            if !sent.contains(&target) && !in_closed(&target)? {
                continue;
            }
        }
        let (target, _, chain) = graph.peel(tag)?;
        if sent.contains(&target) || in_closed(&target)? {
            for id in chain {
                if !in_closed(&id)? && sent.insert(id) {
                    tags_out.push(WalkObject::new(id, Kind::Tag));
                }
            }
        }
    }
    // Commits and tags go ahead of the trees and blobs: moved in front of the
    // walk's list (in place, within the room its growth left) rather than the
    // list copied behind them, which held it twice — 70 MB more at 2.5 million
    // objects, the peak of a compaction's walk.
    let mut lead = std::mem::take(&mut out.objects);
    lead.extend(tags_out);
    objects.splice(0..0, lead);
    out.objects = objects;
    have_objects.extend(have_commits);
    have_objects.extend(have_root_set);
    out.client_has = have_objects;
    out.client_history = history;
    Ok(out)
}
