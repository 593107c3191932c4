//! What the client has at the edge of a fetch, read only where it matters.
//!
//! The commits at the edge of what the client has hold trees the client has
//! whole. Reading every one of them costs a walk of the repository's whole
//! checkout for each fetch, however small. Like git's sparse walk
//! (`pack.useSparse`), the walk of what to send reads them in step with the
//! trees it sends, name by name from the roots ([`Edge`]): before it looks at
//! the entries of a tree to send, it reads the client's trees under the same
//! name, and marks what they hold as had. A directory both sides hold alike is
//! then passed over by its id, unread; the client's side of it is never read
//! either. What this leaves unmarked is an object the client has only deeper in
//! a directory the commits to send did not change, or moved between
//! directories; it goes out again (bytes, never correctness) unless
//! compaction's records prove the client's history holds it (see `history`).

use gix_hash::ObjectId;
use gix_hashtable::{HashMap, HashSet};
use gix_object::Kind;

use super::{
    enumerate::WalkObject,
    graph::Graph,
    tree_walk::{entries, name_hash_after, parse_tree},
};
use crate::Result;

/// The client's trees at the edge, read as the walk of what to send reaches
/// their names.
pub(super) struct Edge {
    /// The root trees of the commits at the edge: what a root tree to send is
    /// paired with.
    roots: Vec<ObjectId>,
    /// The subtrees of all of them by [`name_key`], sorted, once read: a
    /// fetch of many commits pairs each one's root tree with the same roots.
    root_subtrees: Option<Vec<(u64, ObjectId)>>,
    /// What the client has: what it named, the edge's roots and everything in
    /// the edge's trees read so far.
    pub(super) have: HashSet<ObjectId>,
    /// The edge's roots and what its trees read so far hold, with the
    /// path-name hashes they were met at: bases a thin pack's delta search may
    /// try for the objects sent at those paths.
    pub(super) bases: Vec<WalkObject>,
    /// For each tree of the edge read: its subtrees, by [`name_key`], sorted.
    subtrees: HashMap<ObjectId, Vec<(u64, ObjectId)>>,
    buf: Vec<u8>,
}

impl Edge {
    /// The edge of `roots` (the root trees of the commits at the edge), the
    /// client having `have` besides (objects it named).
    pub(super) fn new(roots: Vec<ObjectId>, mut have: HashSet<ObjectId>) -> Self {
        let mut bases = Vec::with_capacity(roots.len());
        for root in &roots {
            if have.insert(*root) {
                bases.push(WalkObject::new(*root, Kind::Tree));
            }
        }
        Edge {
            roots,
            root_subtrees: None,
            have,
            bases,
            subtrees: HashMap::default(),
            buf: Vec::new(),
        }
    }

    /// Read the trees of `edge` (the client's trees at the path whose
    /// [`name_hash`](super::tree_walk::name_hash) is `path`, `None` for the
    /// root, where the walk is about to look at a tree to send) not read yet:
    /// mark what they hold.
    pub(super) fn read(
        &mut self,
        graph: &mut Graph<'_>,
        edge: &[ObjectId],
        path: Option<u32>,
    ) -> Result<()> {
        let prefix = match path {
            None => 0,
            Some(hash) => name_hash_after(hash, b"/"),
        };
        for tree in edge {
            if self.subtrees.contains_key(tree) {
                continue;
            }
            parse_tree(graph, tree, &mut self.buf)?;
            let mut below = Vec::new();
            for entry in entries(*tree, &self.buf) {
                let (name, id, is_tree) = entry?;
                if self.have.insert(id) {
                    let kind = if is_tree { Kind::Tree } else { Kind::Blob };
                    self.bases.push(WalkObject {
                        id,
                        kind,
                        name_hash: name_hash_after(prefix, name),
                    });
                }
                if is_tree {
                    below.push((name_key(name), id));
                }
            }
            below.sort_unstable();
            self.subtrees.insert(*tree, below);
        }
        Ok(())
    }

    /// [`Self::read`] the edge's roots, once: what a root tree to send pairs with.
    pub(super) fn read_roots(&mut self, graph: &mut Graph<'_>) -> Result<()> {
        if self.root_subtrees.is_some() {
            return Ok(());
        }
        let roots = std::mem::take(&mut self.roots);
        self.read(graph, &roots, None)?;
        let mut all: Vec<(u64, ObjectId)> = roots
            .iter()
            .filter_map(|root| self.subtrees.get(root))
            .flatten()
            .copied()
            .collect();
        all.sort_unstable();
        all.dedup();
        self.root_subtrees = Some(all);
        self.roots = roots;
        Ok(())
    }

    /// The client's subtrees named `name` in the edge's roots (once
    /// [`Self::read_roots`] read them).
    pub(super) fn below_roots(&self, name: &[u8]) -> Vec<ObjectId> {
        let mut out = Vec::new();
        if let Some(all) = &self.root_subtrees {
            named(all, name_key(name), &mut out);
        }
        out
    }

    /// The client's subtrees named `name` in `edge` (trees [`Self::read`] read).
    pub(super) fn below(&self, edge: &[ObjectId], name: &[u8]) -> Vec<ObjectId> {
        let key = name_key(name);
        let mut out = Vec::new();
        for tree in edge {
            if let Some(below) = self.subtrees.get(tree) {
                named(below, key, &mut out);
            }
        }
        if edge.len() > 1 {
            out.sort_unstable();
            out.dedup();
        }
        out
    }

    /// Those of `edge` not read yet: what a pack read by ranges should bring
    /// in with the trees to send.
    pub(super) fn unread<'a>(
        &'a self,
        edge: &'a [ObjectId],
    ) -> impl Iterator<Item = ObjectId> + 'a {
        edge.iter()
            .filter(|id| !self.subtrees.contains_key(*id))
            .copied()
    }
}

/// Add to `out` the ids of `key` in `sorted` (sorted by key).
fn named(sorted: &[(u64, ObjectId)], key: u64, out: &mut Vec<ObjectId>) {
    let start = sorted.partition_point(|(k, _)| *k < key);
    out.extend(
        sorted[start..]
            .iter()
            .take_while(|(k, _)| *k == key)
            .map(|(_, id)| *id),
    );
}

/// A name's key among its siblings (FNV-1a). Two names of one key would only
/// pair more of the client's trees than needed.
fn name_key(name: &[u8]) -> u64 {
    name.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
