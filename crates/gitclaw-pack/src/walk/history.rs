//! What the client's history holds beyond the edge of a fetch's walk.
//!
//! The walk excludes the trees of the commits at the edge of what the client
//! has, as git's does without bitmaps: an object a wanted branch shares with
//! the client's older history goes out again, and a stored delta whose base
//! lies there cannot go out as it is. Git's bitmaps know every object the
//! client's history holds. Compaction records instead, for each object of the
//! pack it writes, a commit whose tree holds it, as early in history as a diff
//! of each commit against its first parent finds it ([`introducing_commits`],
//! the graph's `GCIN` chunk). A client with a first-parent descendant of that
//! commit and its whole history (not shallow) has the object
//! ([`ClientHistory::has`]): one lookup and two small reads, no walk.

use gix_hash::ObjectId;
use gix_hashtable::HashMap;

use super::{
    graph::Graph,
    tree_walk::{entries, read_tree},
};
use crate::{
    commit_graph::{FirstParentSpan, NO_BASE},
    odb::{CommitInfo, ObjectDb, ObjectReader, PackHandle},
    Result,
};

/// For each entry of `pack` in pack order, the place among `commits` sorted by
/// id (the commit-graph's order) of a commit whose tree holds the entry's
/// object, or [`NO_BASE`] (commits, tags, objects no commit's tree holds).
///
/// The commits of `lead`'s first-parent line come first, from the root on,
/// then every other commit, oldest first; each is diffed against its first
/// parent, and an object gets the first commit whose diff shows it. So an
/// object on the main line gets the commit that brought it there, which any
/// client holding a later commit of that line has.
pub fn introducing_commits(
    db: &ObjectDb,
    pack: &PackHandle,
    commits: &[(ObjectId, &CommitInfo)],
    lead: Option<ObjectId>,
) -> Result<Vec<u32>> {
    let mut ids: Vec<ObjectId> = commits.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    ids.dedup();
    let info: HashMap<ObjectId, &CommitInfo> = commits.iter().copied().collect();
    let mut main_line = Vec::new();
    let mut at = lead.filter(|id| info.contains_key(id));
    while let Some(id) = at {
        // A line is no longer than the history; a cycle (impossible for
        // hashes, possible for a damaged list) ends it.
        if main_line.len() > commits.len() {
            break;
        }
        main_line.push(id);
        at = info[&id]
            .parents
            .first()
            .copied()
            .filter(|p| info.contains_key(p));
    }
    main_line.reverse();
    let on_main: gix_hashtable::HashSet<ObjectId> = main_line.iter().copied().collect();
    let mut rest: Vec<(i64, ObjectId)> = commits
        .iter()
        .filter(|(id, _)| !on_main.contains(id))
        .map(|(id, info)| (info.time, *id))
        .collect();
    rest.sort_unstable();

    let mut introduced = vec![NO_BASE; pack.num_objects() as usize];
    // The objects the diffs show, with the place of the commit that showed
    // them, looked up a sorted batch at a time (the index read in order);
    // sorted stably, so of one object shown twice the first shown comes first.
    let mut shown: Vec<(ObjectId, u32)> = Vec::new();
    let mut settle = |shown: &mut Vec<(ObjectId, u32)>| -> Result<()> {
        shown.sort_by_key(|a| a.0);
        let mut lookups = pack.sorted_lookups();
        for (object, place) in shown.drain(..) {
            if let Some(index) = lookups.lookup(&object)? {
                let slot = &mut introduced[pack.position_of(index)?];
                if *slot == NO_BASE {
                    *slot = place;
                }
            }
        }
        Ok(())
    };
    let mut reader = db.reader();
    let mut diff = TreeDiff::default();
    for id in main_line.iter().chain(rest.iter().map(|(_, id)| id)) {
        let Ok(place) = ids.binary_search(id) else {
            continue;
        };
        let commit = info[id];
        let parent_tree = commit
            .parents
            .first()
            .and_then(|p| info.get(p))
            .map(|parent| parent.tree);
        diff.new_objects(&mut reader, parent_tree, commit.tree, |object| {
            // Fits: a graph holds fewer than 2^31 commits.
            shown.push((object, place as u32));
            Ok(())
        })?;
        if shown.len() >= SHOWN_BATCH {
            settle(&mut shown)?;
        }
    }
    settle(&mut shown)?;
    Ok(introduced)
}

/// Objects [`introducing_commits`] gathers before looking them up (24 bytes
/// each).
const SHOWN_BATCH: usize = 64 << 10;

/// Scratch space for diffing trees.
#[derive(Default)]
struct TreeDiff {
    old: Vec<u8>,
    new: Vec<u8>,
}

impl TreeDiff {
    /// Call `emit` for `new` and every tree and blob under it that is not at the
    /// same path under `old` (submodule entries aside).
    fn new_objects(
        &mut self,
        reader: &mut ObjectReader<'_>,
        old: Option<ObjectId>,
        new: ObjectId,
        mut emit: impl FnMut(ObjectId) -> Result<()>,
    ) -> Result<()> {
        let mut stack = vec![(old, new)];
        while let Some((old, new)) = stack.pop() {
            if old == Some(new) {
                continue;
            }
            emit(new)?;
            read_tree(reader, &new, &mut self.new)?;
            // By name (gix's tables hash object ids only).
            let before: std::collections::HashMap<&[u8], (ObjectId, bool)> = match old {
                Some(old) => {
                    read_tree(reader, &old, &mut self.old)?;
                    entries(old, &self.old)
                        .map(|entry| entry.map(|(name, id, tree)| (name, (id, tree))))
                        .collect::<Result<_>>()?
                }
                None => std::collections::HashMap::new(),
            };
            for entry in entries(new, &self.new) {
                let (name, id, is_tree) = entry?;
                let was = before.get(name).copied();
                if was.map(|(old_id, _)| old_id) == Some(id) {
                    continue;
                }
                if is_tree {
                    let old_tree = was.filter(|(_, tree)| *tree).map(|(old_id, _)| old_id);
                    stack.push((old_tree, id));
                } else {
                    emit(id)?;
                }
            }
        }
        Ok(())
    }
}

/// The most client commits whose first-parent lines are checked: a client
/// naming more is checked against these (its first haves and the walk's edge).
const MAX_CLIENT_LINES: usize = 256;

/// The first-parent lines a client's commits are on, in each pack whose graph
/// records introducing commits: see the module doc.
#[derive(Debug, Default)]
pub struct ClientHistory {
    /// For a pack (its place in the database's list): the spans of the client's
    /// commits in its graph.
    lines: Vec<(usize, Vec<FirstParentSpan>)>,
}

impl ClientHistory {
    /// The lines of `commits`, commits the client has with their whole
    /// history (a shallow client's history is not whole: do not ask).
    pub(super) fn new(graph: &Graph<'_>, commits: &[ObjectId]) -> Result<Self> {
        let mut lines = Vec::new();
        for (at, pack) in graph.db.packs().iter().enumerate() {
            let Some(commit_graph) = pack.commit_graph() else {
                continue;
            };
            if commit_graph.introduced_count() != Some(pack.num_objects()) {
                continue;
            }
            let mut spans = Vec::new();
            for id in commits {
                if spans.len() == MAX_CLIENT_LINES {
                    break;
                }
                if let Some(pos) = commit_graph.position(id) {
                    spans.extend(commit_graph.first_parent_span(pos)?);
                }
            }
            if !spans.is_empty() {
                lines.push((at, spans));
            }
        }
        Ok(ClientHistory { lines })
    }

    /// Whether the client's history holds `id`, as the packs' records prove it
    /// (`false`: not proven, though it may).
    pub fn has(&self, db: &ObjectDb, id: &ObjectId) -> Result<bool> {
        for (at, spans) in &self.lines {
            let Some(pack) = db.packs().get(*at) else {
                continue;
            };
            let (Some(index), Some(graph)) = (pack.lookup(id)?, pack.commit_graph()) else {
                continue;
            };
            let Some(commit) = graph.introduced_by(pack.position_of(index)? as u32)? else {
                continue;
            };
            if let Some(span) = graph.first_parent_span(commit)? {
                if spans.iter().any(|client| span.holds(client)) {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// Whether any pack can prove anything: without, [`Self::has`] is always false.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }
}
