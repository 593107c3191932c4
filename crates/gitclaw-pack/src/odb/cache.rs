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

    /// Bytes of object data held now.
    pub fn size(&self) -> usize {
        let g = self.lock();
        g.young_bytes + g.old_bytes
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
}
