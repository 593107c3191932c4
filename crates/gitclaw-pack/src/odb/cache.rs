//! A memory-bounded cache of inflated commits, trees and tags shared by every
//! reader of every repository, because fetches walk the same recent history over
//! and over and inflating it again is most of a walk's cost.

use std::sync::{
    atomic::{AtomicU64, Ordering},
    Arc,
};

use gix_hash::{oid, ObjectId};
use gix_object::Kind;

/// Inflated commits, trees and tags, shared by readers across requests so
/// repeated walks skip inflating and delta-resolving them. Content-addressed by
/// object id, so an entry is never stale; a reader consults it only for objects
/// its own repository has (after [`ObjectDb::locate`](super::ObjectDb::locate)),
/// so no repository sees another's objects through it. Bounded near `max_bytes`
/// by two generations: when the young one passes half the budget, the old one is
/// dropped and the young one takes its place; a hit in the old one moves the
/// entry to the young.
pub struct ObjectCache {
    max_bytes: usize,
    inner: std::sync::Mutex<Generations>,
    /// Commits as walks use them (tree, parents, time), parsed once for every
    /// request: a walk through thousands of commits (a want deep in the history
    /// the client has) then costs a lookup per commit, as git's commit-graph
    /// makes it. Bounded by count, two generations like the objects.
    commits: std::sync::Mutex<CommitGenerations>,
    hits: AtomicU64,
    misses: AtomicU64,
    /// Entries dropped with the old generation.
    evicted: AtomicU64,
}

/// What an [`ObjectCache`] has done since it was made, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheCounts {
    pub hits: u64,
    pub misses: u64,
    pub evicted: u64,
}

/// What a history walk needs of a commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitInfo {
    pub tree: ObjectId,
    pub parents: Box<[ObjectId]>,
    /// Committer time, seconds since the epoch.
    pub time: i64,
}

/// Bytes one parsed commit is counted as in the budget (entry, parents, map overhead).
const COMMIT_ENTRY_BYTES: usize = 128;

/// A parsed commit, and the checksum of the pack it was read from (none for a
/// loose one): a repository whose pack list holds that pack has the commit,
/// which is cheaper to tell than looking the commit up in its indexes.
pub(super) type CachedCommit = (Arc<CommitInfo>, Option<ObjectId>);

#[derive(Default)]
struct CommitGenerations {
    young: gix_hashtable::HashMap<ObjectId, CachedCommit>,
    old: gix_hashtable::HashMap<ObjectId, CachedCommit>,
}

#[derive(Default)]
struct Generations {
    young: gix_hashtable::HashMap<ObjectId, (Kind, Arc<[u8]>)>,
    young_bytes: usize,
    old: gix_hashtable::HashMap<ObjectId, (Kind, Arc<[u8]>)>,
    old_bytes: usize,
}

impl ObjectCache {
    pub fn new(max_bytes: usize) -> Self {
        ObjectCache {
            max_bytes,
            inner: Default::default(),
            commits: Default::default(),
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn get(&self, id: &oid) -> Option<(Kind, Arc<[u8]>)> {
        let mut g = self.lock();
        if let Some(hit) = g.young.get(id) {
            self.hits.fetch_add(1, Ordering::Relaxed);
            return Some(hit.clone());
        }
        let Some(hit) = g.old.remove(id) else {
            self.misses.fetch_add(1, Ordering::Relaxed);
            return None;
        };
        self.hits.fetch_add(1, Ordering::Relaxed);
        g.old_bytes -= hit.1.len();
        self.admit(&mut g, id.to_owned(), hit.clone());
        Some(hit)
    }

    pub(super) fn insert(&self, id: &oid, kind: Kind, data: &[u8]) {
        // One object may not take a large share of the budget.
        if data.len() > self.max_bytes / 64 {
            return;
        }
        let mut g = self.lock();
        if !g.young.contains_key(id) {
            self.admit(&mut g, id.to_owned(), (kind, Arc::from(data)));
        }
    }

    fn admit(&self, g: &mut Generations, id: ObjectId, entry: (Kind, Arc<[u8]>)) {
        g.young_bytes += entry.1.len();
        g.young.insert(id, entry);
        if g.young_bytes > self.max_bytes / 2 {
            self.evicted
                .fetch_add(g.old.len() as u64, Ordering::Relaxed);
            g.old = std::mem::take(&mut g.young);
            g.old_bytes = std::mem::take(&mut g.young_bytes);
        }
    }

    /// Most parsed commits kept: an eighth of the budget.
    fn commit_capacity(&self) -> usize {
        (self.max_bytes / 8 / COMMIT_ENTRY_BYTES).max(1)
    }

    /// A parsed commit, if some request parsed it before. The caller must check its
    /// repository has the commit (as for [`ObjectCache::get`]).
    pub(super) fn commit(&self, id: &oid) -> Option<CachedCommit> {
        let mut g = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(hit) = g.young.get(id) {
            return Some(hit.clone());
        }
        let hit = g.old.remove(id)?;
        self.admit_commit(&mut g, id.to_owned(), hit.clone());
        Some(hit)
    }

    pub(super) fn insert_commit(&self, id: &oid, info: CachedCommit) {
        let mut g = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        if !g.young.contains_key(id) {
            self.admit_commit(&mut g, id.to_owned(), info);
        }
    }

    fn admit_commit(&self, g: &mut CommitGenerations, id: ObjectId, info: CachedCommit) {
        g.young.insert(id, info);
        if g.young.len() > self.commit_capacity() / 2 {
            g.old = std::mem::take(&mut g.young);
        }
    }

    /// Parsed commits held now.
    pub fn commits_held(&self) -> usize {
        let g = self.commits.lock().unwrap_or_else(|p| p.into_inner());
        g.young.len() + g.old.len()
    }

    /// Lookups that found their object, lookups that did not, entries evicted.
    pub fn counts(&self) -> CacheCounts {
        CacheCounts {
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            evicted: self.evicted.load(Ordering::Relaxed),
        }
    }

    /// The most bytes it holds.
    pub fn capacity(&self) -> usize {
        self.max_bytes
    }

    /// Bytes of object data held now, parsed commits counted at a fixed size each.
    pub fn size(&self) -> usize {
        let g = self.lock();
        g.young_bytes + g.old_bytes + self.commits_held() * COMMIT_ENTRY_BYTES
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;

    fn id(n: u32) -> ObjectId {
        let mut bytes = [0u8; 20];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        ObjectId::from_bytes_or_panic(&bytes)
    }

    #[test]
    fn the_object_cache_stays_near_its_budget_and_keeps_what_is_used() {
        let cache = ObjectCache::new(64 * 1024);
        let data = vec![7u8; 1000];
        cache.insert(&id(0), Kind::Tree, &data);
        for n in 1..500 {
            cache.insert(&id(n), Kind::Tree, &data);
            // Object 0 is used all the time: it never leaves.
            assert_eq!(
                cache.get(&id(0)).map(|(k, d)| (k, d.len())),
                Some((Kind::Tree, 1000))
            );
            assert!(cache.size() <= 64 * 1024 + 1000, "{}", cache.size());
        }
        assert!(cache.get(&id(1)).is_none(), "long unused entries went");
        assert!(cache.get(&id(499)).is_some());
        cache.insert(&id(9999), Kind::Blob, &vec![0u8; 64 * 1024]);
        assert!(
            cache.get(&id(9999)).is_none(),
            "an object too large for the budget is not kept"
        );
    }
    #[test]
    fn parsed_commits_stay_within_their_share_and_keep_what_is_used() {
        let cache = ObjectCache::new(64 * 1024);
        let info = |n: u32| {
            let commit = CommitInfo {
                tree: id(n),
                parents: vec![id(n + 1)].into(),
                time: i64::from(n),
            };
            (Arc::new(commit), Some(id(7)))
        };
        cache.insert_commit(&id(0), info(0));
        for n in 1..1000 {
            cache.insert_commit(&id(n), info(n));
            assert_eq!(
                cache.commit(&id(0)),
                Some(info(0)),
                "used all the time: kept"
            );
            assert!(cache.commits_held() <= cache.commit_capacity() + 1);
        }
        assert!(cache.commit(&id(1)).is_none(), "long unused entries went");
        assert_eq!(cache.commit(&id(999)), Some(info(999)));
    }
}
