//! Commits and tags as the walk reads them: one [`Graph`] per request parses each
//! commit once and keeps its tree, parents and time, because every part of the
//! walk (shallow plan, commit walk, negotiation) asks about the same commits again
//! and again.

use gix_hash::ObjectId;
use gix_hashtable::HashMap;
use gix_object::{CommitRef, Kind};

use crate::{
    odb::{ObjectDb, ObjectReader},
    PackError, Result,
};

use std::sync::Arc;

use crate::odb::CommitInfo;

/// Reads and memoizes commits during one request.
pub struct Graph<'a> {
    pub(super) reader: ObjectReader<'a>,
    pub(super) db: &'a ObjectDb,
    commits: HashMap<ObjectId, Arc<CommitInfo>>,
    buf: Vec<u8>,
    /// Commits and trees parsed so far, and who wants to hear about it.
    parsed: u64,
    on_progress: Option<Box<dyn FnMut(u64) + 'a>>,
    /// What the refs' tag objects finally peel to, as the caller knows it.
    peeled_tags: HashMap<ObjectId, ObjectId>,
}

impl<'a> Graph<'a> {
    pub fn new(db: &'a ObjectDb) -> Self {
        Graph {
            reader: db.reader(),
            db,
            commits: HashMap::default(),
            buf: Vec::new(),
            parsed: 0,
            on_progress: None,
            peeled_tags: HashMap::default(),
        }
    }

    /// Tell the walk what tag objects finally peel to (the refs' peeled ids,
    /// learned when they were first advertised): a tag whose peeled commit
    /// decides nothing is then not read. On a fresh instance reading a tag is a
    /// round trip to the object store. The pairs must be true: each names a tag
    /// and the object at the end of its chain.
    pub fn know_peeled_tags(&mut self, pairs: impl IntoIterator<Item = (ObjectId, ObjectId)>) {
        self.peeled_tags.extend(pairs);
    }

    /// What tag `id` finally peels to, if the caller said so (see
    /// [`Self::know_peeled_tags`]); the tags between are not known.
    pub(super) fn peeled_tag(&self, id: &ObjectId) -> Option<ObjectId> {
        self.peeled_tags.get(id).copied()
    }

    /// The commit tag `id` finally peels to by the caller's word, when that
    /// commit is known without reading the pack: nothing of the tag is read.
    pub(super) fn peeled_commit(&mut self, id: &ObjectId) -> Result<Option<ObjectId>> {
        match self.peeled_tag(id) {
            Some(target) if self.known_commit(&target)? => Ok(Some(target)),
            _ => Ok(None),
        }
    }

    /// Drop the scratch memory of reading (cached delta bases, the object
    /// buffer), keeping what was learned of the commits: for a request about to
    /// wait, so that waiting requests hold little memory.
    pub fn release_scratch(&mut self) {
        self.reader.release_cache();
        self.buf = Vec::new();
    }

    /// Call `f` with the number of commits and trees parsed so far, after each
    /// one (for progress lines and keepalives; `f` decides by the clock when to speak).
    pub fn on_progress(&mut self, f: impl FnMut(u64) + 'a) {
        self.on_progress = Some(Box::new(f));
    }

    /// Offer the progress callback every parsed object: a single object can take
    /// seconds (a slow store), so the callback decides by the clock, not by count.
    pub(super) fn count_parsed(&mut self) {
        self.parsed += 1;
        if let Some(f) = self.on_progress.as_mut() {
            f(self.parsed);
        }
    }

    pub fn db(&self) -> &'a ObjectDb {
        self.db
    }

    /// The first-parent intervals of those of `ids` that the first commit-graph
    /// of the packs holds (see [`crate::commit_graph::CommitGraph::first_parent_span`]).
    pub(super) fn first_parent_spans(
        &self,
        ids: &[ObjectId],
    ) -> Result<Vec<crate::commit_graph::FirstParentSpan>> {
        let Some(g) = self.db.packs().iter().find_map(|p| p.commit_graph()) else {
            return Ok(Vec::new());
        };
        let mut spans = Vec::new();
        for pos in ids.iter().filter_map(|id| g.position(id)) {
            spans.extend(g.first_parent_span(pos)?);
        }
        Ok(spans)
    }

    /// Remove from `ids` the commits the commit-graph's first-parent
    /// intervals show reachable from one of `from` (a walk finds the rest).
    pub(super) fn remove_first_parent_reached(
        &self,
        ids: &mut gix_hashtable::HashSet<ObjectId>,
        from: &[ObjectId],
    ) -> Result<()> {
        let spans = self.first_parent_spans(from)?;
        if spans.is_empty() {
            return Ok(());
        }
        let mut reached = Vec::new();
        for id in ids.iter() {
            let span = self.first_parent_spans(std::slice::from_ref(id))?;
            if span
                .first()
                .is_some_and(|s| spans.iter().any(|f| s.holds(f)))
            {
                reached.push(*id);
            }
        }
        for id in reached {
            ids.remove(&id);
        }
        Ok(())
    }

    pub(super) fn commit(&mut self, id: &ObjectId) -> Result<&CommitInfo> {
        if !self.known_commit(id)? {
            self.count_parsed();
            let loc = self.db.locate(id)?.ok_or(PackError::MissingObject(*id))?;
            let kind = self.reader.read_at(id, loc, &mut self.buf)?;
            if kind != Kind::Commit {
                return Err(PackError::MalformedObject {
                    oid: *id,
                    detail: format!("expected a commit, found a {kind}"),
                });
            }
            let commit = CommitRef::from_bytes(&self.buf, gix_hash::Kind::Sha1).map_err(|err| {
                PackError::MalformedObject {
                    oid: *id,
                    detail: err.to_string(),
                }
            })?;
            let info = Arc::new(CommitInfo {
                tree: commit.tree(),
                parents: commit.parents().collect(),
                time: commit.time().map(|t| t.seconds).unwrap_or(0),
            });
            self.db.remember_commit(id, loc, info.clone());
            self.commits.insert(*id, info);
        }
        self.commits
            .get(id)
            .map(|c| &**c)
            .ok_or(PackError::MissingObject(*id))
    }

    /// Whether `id` is a commit known without reading the pack: parsed before (by
    /// this request or, in the shared cache, another) or in a commit-graph. Kept
    /// for the walk that follows. The commit-graph first: a lookup in a mapped
    /// file, not kept in the shared cache (whose lookups take its lock).
    pub(super) fn known_commit(&mut self, id: &ObjectId) -> Result<bool> {
        if self.commits.contains_key(id) {
            return Ok(true);
        }
        let info = match self.db.graph_commit(id)? {
            Some(info) => Arc::new(info),
            None => match self.db.cached_commit(id) {
                Some(info) => info,
                None => return Ok(false),
            },
        };
        self.count_parsed();
        self.commits.insert(*id, info);
        Ok(true)
    }

    /// The kind of `id`: a commit known without the pack needs no read; any
    /// other object, its entry header.
    pub(super) fn kind(&mut self, id: &ObjectId) -> Result<Kind> {
        if self.known_commit(id)? {
            return Ok(Kind::Commit);
        }
        let (kind, _) = self
            .reader
            .header(id)?
            .ok_or(PackError::MissingObject(*id))?;
        Ok(kind)
    }

    /// Peel tags; returns the final object and its kind, plus the tags passed on the way.
    pub(super) fn peel(&mut self, id: &ObjectId) -> Result<(ObjectId, Kind, Vec<ObjectId>)> {
        let mut tags = Vec::new();
        let mut current = *id;
        for _ in 0..64 {
            // A commit known without the pack (parsed before, or in a commit-graph)
            // needs no read of its header: on a fresh instance that read is a
            // round trip to the object store.
            if self.known_commit(&current)? {
                return Ok((current, Kind::Commit, tags));
            }
            // The header first: a want may be a big blob, which is never read whole.
            let (kind, _) = self
                .reader
                .header(&current)?
                .ok_or(PackError::MissingObject(current))?;
            if kind != Kind::Tag {
                return Ok((current, kind, tags));
            }
            self.reader.read_existing(&current, &mut self.buf)?;
            tags.push(current);
            let tag =
                gix_object::TagRef::from_bytes(&self.buf, gix_hash::Kind::Sha1).map_err(|err| {
                    PackError::MalformedObject {
                        oid: current,
                        detail: err.to_string(),
                    }
                })?;
            current = tag.target();
        }
        Err(PackError::Corrupt(format!(
            "tag chain from {id} is too long"
        )))
    }

    /// The commit a want or have names, if it peels to one.
    pub fn peel_to_commit(&mut self, id: &ObjectId) -> Result<Option<ObjectId>> {
        // The tags on the way do not matter here.
        if let Some(target) = self.peeled_commit(id)? {
            return Ok(Some(target));
        }
        let (target, kind, _) = self.peel(id)?;
        Ok((kind == Kind::Commit).then_some(target))
    }

    /// The tree, parents and time of commit `id`.
    pub fn commit_info(&mut self, id: &ObjectId) -> Result<Arc<CommitInfo>> {
        self.commit(id)?;
        self.commits
            .get(id)
            .cloned()
            .ok_or(PackError::MissingObject(*id))
    }

    pub fn commit_time(&mut self, id: &ObjectId) -> Result<i64> {
        Ok(self.commit(id)?.time)
    }

    /// The parents of commit `id`, shared with what this walk knows of it (a
    /// walk of many thousand commits copies no parent list).
    pub(super) fn parents(&mut self, id: &ObjectId) -> Result<Parents> {
        self.commit(id)?;
        self.commits
            .get(id)
            .cloned()
            .map(Parents)
            .ok_or(PackError::MissingObject(*id))
    }
}

/// A commit's parents: a slice, or an iterator of ids by value.
pub(super) struct Parents(Arc<CommitInfo>);

impl std::ops::Deref for Parents {
    type Target = [ObjectId];

    fn deref(&self) -> &[ObjectId] {
        &self.0.parents
    }
}

impl IntoIterator for Parents {
    type Item = ObjectId;
    type IntoIter = ParentsIter;

    fn into_iter(self) -> ParentsIter {
        ParentsIter {
            info: self.0,
            next: 0,
        }
    }
}

pub(super) struct ParentsIter {
    info: Arc<CommitInfo>,
    next: usize,
}

impl Iterator for ParentsIter {
    type Item = ObjectId;

    fn next(&mut self) -> Option<ObjectId> {
        let id = *self.info.parents.get(self.next)?;
        self.next += 1;
        Some(id)
    }
}
