//! The tree half of the walk: every tree and blob under a set of roots, each once,
//! with the path-name hash the pack writer sorts delta candidates by. Shared by
//! enumeration (what to send, what the client has) and the reachability check of
//! wants that are not commits.

use gix_hash::ObjectId;
use gix_hashtable::{HashMap, HashSet};
use gix_object::Kind;

use super::{
    edge::Edge, enumerate::WalkObject, filter::Filter, graph::Graph, history::ClientHistory,
};
use crate::{odb::ObjectReader, PackError, Result};

/// Git's `pack_name_hash`: a sortable number from the last non-whitespace
/// characters of a path, the final ones counting most (so `*.c` sort together).
pub fn name_hash(path: &[u8]) -> u32 {
    name_hash_after(0, path)
}

/// [`name_hash`] of a path whose first part hashed to `hash`, given the rest.
pub(super) fn name_hash_after(hash: u32, rest: &[u8]) -> u32 {
    rest.iter()
        .filter(|c| !c.is_ascii_whitespace())
        .fold(hash, |hash, &c| {
            (hash >> 2).wrapping_add(u32::from(c) << 24)
        })
}

/// Read tree `id` into `buf`; anything else is an error naming what it is.
pub(crate) fn read_tree(
    reader: &mut ObjectReader<'_>,
    id: &ObjectId,
    buf: &mut Vec<u8>,
) -> Result<()> {
    match reader.read_existing(id, buf)? {
        Kind::Tree => Ok(()),
        other => Err(PackError::MalformedObject {
            oid: *id,
            detail: format!("expected a tree, found a {other}"),
        }),
    }
}

/// [`read_tree`] for a walk, counted as parsed (its progress).
pub(super) fn parse_tree(graph: &mut Graph<'_>, id: &ObjectId, buf: &mut Vec<u8>) -> Result<()> {
    graph.count_parsed();
    read_tree(&mut graph.reader, id, buf)
}

/// Tree `id`'s entries in `data` (submodules left out: their commits are not
/// in this repository): name, id, whether a tree.
pub(super) fn entries(
    id: ObjectId,
    data: &[u8],
) -> impl Iterator<Item = Result<(&[u8], ObjectId, bool)>> {
    gix_object::TreeRefIter::from_bytes(data, gix_hash::Kind::Sha1).filter_map(move |entry| {
        match entry {
            Ok(entry) if entry.mode.is_commit() => None,
            Ok(entry) => Some(Ok((
                entry.filename.as_ref(),
                entry.oid.to_owned(),
                entry.mode.is_tree(),
            ))),
            Err(err) => Some(Err(PackError::MalformedObject {
                oid: id,
                detail: err.to_string(),
            })),
        }
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
        let in_closed = match self.closed {
            Some(pack) => pack.lookup(id)?.is_some(),
            None => false,
        };
        if self.set.contains(id) || in_closed {
            return Ok(true);
        }
        match self.history {
            Some((history, db)) if !explicit => history.has(db, id),
            _ => Ok(false),
        }
    }
}

/// A tree or blob the walk is to visit.
struct Queued {
    id: ObjectId,
    kind: Kind,
    /// Depth below the root tree, and the [`name_hash`] of the path relative
    /// to it (`None`: the empty path), hashed as the walk goes down: no path
    /// is kept.
    depth: u64,
    path: Option<u32>,
    /// Asked for by name: passes any filter.
    explicit: bool,
    /// The client's trees under the same name (see [`Edge`]); a root tree
    /// pairs with the edge's roots.
    edge: Vec<ObjectId>,
}

/// Depth-first walk of trees from `roots` (with whether each was asked for by
/// name: such objects pass any filter), calling `emit` for every object not in
/// `skip` and not yet in `seen` (which collects what was emitted) that `filter`
/// admits. A tree goes out and is walked into as the filter says, each on its
/// own (`object:type=blob` walks trees it does not send); one met again
/// higher up than it was walked is walked again when the filter counts depth
/// (`tree:<depth>`), as git does. With `edge`, the client's trees under the
/// same names are read before each tree's entries are looked at, and what they
/// hold is passed over too.
pub(super) fn walk_trees(
    graph: &mut Graph<'_>,
    roots: Vec<(ObjectId, Kind, bool)>,
    seen: &mut HashSet<ObjectId>,
    skip: &Skip<'_>,
    filter: Option<&Filter>,
    mut edge: Option<&mut Edge>,
    mut emit: impl FnMut(WalkObject),
) -> Result<()> {
    // Reversed so the first root (the newest commit's tree) is walked first.
    let mut stack: Vec<Queued> = roots
        .into_iter()
        .rev()
        .map(|(id, kind, explicit)| Queued {
            id,
            kind,
            depth: 0,
            path: None,
            explicit,
            edge: Vec::new(),
        })
        .collect();
    let mut buf = Vec::new();
    let sparse = graph.db.has_sparse_packs();
    let had = |edge: &Option<&mut Edge>, id: &ObjectId| {
        edge.as_ref().is_some_and(|edge| edge.have.contains(id))
    };
    // Under a filter, the trees walked into and the least depth each was
    // walked at (without one, a tree is walked where it is emitted: `seen`).
    let mut walked: HashMap<ObjectId, u64> = HashMap::default();
    let depth_matters = filter.is_some_and(Filter::depth_matters);
    let first_decides = filter.is_some_and(Filter::first_meeting_decides);
    // Whether `id` at `depth` was visited before, so it is passed over: emitted
    // or walked into, and not now higher up than it was walked.
    let visited =
        |seen: &HashSet<ObjectId>, walked: &HashMap<ObjectId, u64>, id: &ObjectId, depth: u64| {
            let higher = walked
                .get(id)
                .is_some_and(|&at| depth_matters && depth < at);
            (seen.contains(id) || walked.contains_key(id)) && !higher
        };
    while let Some(queued) = stack.pop() {
        let Queued {
            id,
            kind,
            depth,
            path,
            explicit,
            edge: paired,
        } = queued;
        // A child was checked against `skip` and the edge when it was queued
        // (`skip` does not change during the walk; what the edge marks later
        // could only spare bytes): only a root is checked here, so what the
        // client's history holds is asked once an object.
        if visited(seen, &walked, &id, depth)
            || (depth == 0 && (had(&edge, &id) || skip.has(&id, explicit)?))
        {
            continue;
        }
        let (sends, enters) = match (filter, explicit) {
            (Some(filter), false) => {
                let sends = !seen.contains(&id) && {
                    let reader = &mut graph.reader;
                    filter.admits(kind, depth, &mut || reader.size(&id))?
                };
                (sends, kind == Kind::Tree && filter.enters(depth))
            }
            _ => (!seen.contains(&id), kind == Kind::Tree),
        };
        if sends {
            seen.insert(id);
            emit(WalkObject {
                id,
                kind,
                name_hash: path.unwrap_or(0),
            });
        }
        // A tree sent or walked into is marked with its depth (one sent at
        // the filter's last depth is not entered, but higher up it would be);
        // what is neither is not marked: the same object higher up a tree
        // may still go out.
        if filter.is_some() && (first_decides || (kind == Kind::Tree && (sends || enters))) {
            walked.insert(id, depth);
        }
        if !enters {
            continue;
        }
        // What the client has here first: its entries are then passed over.
        if let Some(edge) = edge.as_deref_mut() {
            match depth {
                0 => edge.read_roots(graph)?,
                _ => edge.read(graph, &paired, path)?,
            }
        }
        parse_tree(graph, &id, &mut buf)?;
        // Children are pushed in tree order, then that run is reversed so the
        // stack pops them in tree order; no entry list is allocated.
        let first_child = stack.len();
        for entry in entries(id, &buf) {
            let (name, child, is_tree) = entry?;
            let child_kind = if is_tree { Kind::Tree } else { Kind::Blob };
            // What the filter refuses at any size (blob:none, tree:<depth>) and
            // does not walk into is not even queued; size-dependent refusals
            // are decided when popped.
            if let Some(filter) = filter {
                let walks = is_tree && filter.enters(depth + 1);
                if !walks && !filter.admits(child_kind, depth + 1, &mut || Ok(0))? {
                    if first_decides {
                        walked.insert(child, depth + 1);
                    }
                    continue;
                }
            }
            if visited(seen, &walked, &child, depth + 1)
                || had(&edge, &child)
                || skip.has(&child, false)?
            {
                continue;
            }
            let child_path = match path {
                Some(hash) => Some(name_hash_after(name_hash_after(hash, b"/"), name)),
                None if name.is_empty() => None,
                None => Some(name_hash(name)),
            };
            let child_edge = match (&edge, is_tree) {
                (Some(edge), true) if depth == 0 => edge.below_roots(name),
                (Some(edge), true) => edge.below(&paired, name),
                _ => Vec::new(),
            };
            stack.push(Queued {
                id: child,
                kind: child_kind,
                depth: depth + 1,
                path: child_path,
                explicit: false,
                edge: child_edge,
            });
        }
        stack[first_child..].reverse();
        if sparse {
            // Read by ranges: the subtrees, and the client's trees under the
            // same names, come down in one batch now, not in a round trip each
            // as the walk reaches them.
            let mut subtrees: Vec<ObjectId> = Vec::new();
            for queued in stack[first_child..].iter().filter(|q| q.kind == Kind::Tree) {
                subtrees.push(queued.id);
                if let Some(edge) = edge.as_ref() {
                    subtrees.extend(edge.unread(&queued.edge));
                }
            }
            if subtrees.len() > 1 {
                graph.db.prefetch(&subtrees)?;
            }
        }
    }
    Ok(())
}
