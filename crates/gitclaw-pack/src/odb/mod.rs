//! A read view over one repository's objects: its packs and its loose objects.
//!
//! Packs are local `.pack` + `.idx` files (mmapped by gix-pack); where they come
//! from (the filesystem store, a disk cache of S3) is the caller's business. Loose
//! objects come through [`LooseSource`], which the caller backs with its object
//! store and its loose-object index. Every lookup is scoped to the packs and loose
//! objects given here, so one repository never sees another's objects.
//!
//! One job per module:
//! - `loose`: the loose objects the caller supplies ([`LooseSource`]).
//! - `pack`: one opened pack and its index ([`PackHandle`]).
//! - `sparse`: a pack file read from the store by ranges as it is needed.
//! - `cache`: inflated commits, trees and tags shared across requests
//!   ([`ObjectCache`]).
//! - `reader`: reads objects from whichever of those holds them ([`ObjectReader`]).
//!
//! [`ObjectDb`] itself, here, says which packs and loose objects make up the
//! repository and where each object lives.

mod cache;
mod loose;
mod order;
mod pack;
mod reader;
mod recorded;
mod sparse;

use std::sync::Arc;

use gix_hash::{oid, ObjectId};

pub use cache::{CacheCounts, CommitInfo, ObjectCache};
pub use loose::{LooseSource, NoLoose, ObjectStream};
pub use order::EarlyOrder;
pub use pack::{DecodeState, PackHandle, RangedIndexFile, RangedPackFile, RawEntry, SortedLookups};
pub(crate) use pack::{EntryPlace, StoredBase};
pub use reader::ObjectReader;
pub(crate) use recorded::{BlockTable, RecordedTables};
pub(crate) use sparse::SparseFile;
pub use sparse::{RangeSource, BLOCK_BYTES};

/// Where an object of the repository lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Location {
    /// In `packs[pack]` at index position `index`.
    Packed {
        pack: usize,
        index: u32,
    },
    Loose,
}

/// All objects of one repository.
#[derive(Clone)]
pub struct ObjectDb {
    packs: Vec<Arc<PackHandle>>,
    loose: Arc<dyn LooseSource>,
    cache: Option<Arc<ObjectCache>>,
    /// Packs known to hold exactly the objects reachable from a set of tips,
    /// by that set's [`closure_key`](crate::repack::closure_key).
    closures: Vec<(ObjectId, Arc<PackHandle>)>,
    /// The most bytes of decoded delta bases each [`reader`](Self::reader) keeps.
    delta_cache_bytes: usize,
}

/// What a reader keeps of decoded delta bases unless told otherwise (see
/// [`ObjectDb::with_delta_cache_bytes`]).
pub const DELTA_CACHE_BYTES: usize = 64 << 20;

impl ObjectDb {
    pub fn new(packs: Vec<Arc<PackHandle>>, loose: Arc<dyn LooseSource>) -> Self {
        ObjectDb {
            packs,
            loose,
            cache: None,
            closures: Vec::new(),
            delta_cache_bytes: DELTA_CACHE_BYTES,
        }
    }

    /// Record that the pack at `pack` (an index into [`ObjectDb::packs`]) holds
    /// exactly the objects reachable from the tips whose closure key is `key`.
    pub fn with_closure(mut self, pack: usize, key: ObjectId) -> Self {
        if let Some(handle) = self.packs.get(pack) {
            self.closures.push((key, handle.clone()));
        }
        self
    }

    /// The packs known to hold exactly the closure of some tips, with their keys.
    pub fn closure_packs(&self) -> &[(ObjectId, Arc<PackHandle>)] {
        &self.closures
    }

    /// The pack holding exactly the objects reachable from the tips with closure key `key`.
    pub fn closure_pack(&self, key: &ObjectId) -> Option<&Arc<PackHandle>> {
        self.closures.iter().find(|(k, _)| k == key).map(|(_, p)| p)
    }

    /// Share inflated commits, trees and tags through `cache`.
    pub fn with_cache(mut self, cache: Arc<ObjectCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Let each reader keep at most `bytes` of decoded delta bases (a reader
    /// per request, or per thread of a compaction): what a walk through
    /// history holds beside its own lists.
    pub fn with_delta_cache_bytes(mut self, bytes: usize) -> Self {
        self.delta_cache_bytes = bytes;
        self
    }

    /// The bound each reader keeps its delta bases under.
    pub fn delta_cache_bytes(&self) -> usize {
        self.delta_cache_bytes
    }

    pub fn packs(&self) -> &[Arc<PackHandle>] {
        &self.packs
    }

    pub fn loose(&self) -> &Arc<dyn LooseSource> {
        &self.loose
    }

    /// Where the object lives; packs are searched in the order given, then
    /// loose objects (an error only when an index read by ranges cannot be read).
    pub fn locate(&self, id: &oid) -> crate::Result<Option<Location>> {
        for (pack, handle) in self.packs.iter().enumerate() {
            if let Some(index) = handle.lookup(id)? {
                return Ok(Some(Location::Packed { pack, index }));
            }
        }
        Ok(self.loose.contains(id).then_some(Location::Loose))
    }

    /// [`Self::locate`] for many objects at once: each pack's index is searched
    /// in id order, each search going on from where the last one ended, so a
    /// batch reads the index front to back instead of once at random per object.
    pub fn locate_many(&self, ids: &[ObjectId]) -> crate::Result<Vec<Option<Location>>> {
        // In id order; the leading 8 bytes compare as one number.
        let mut order: Vec<(u64, &ObjectId, usize)> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let lead = id.as_bytes().first_chunk().copied().unwrap_or_default();
                (u64::from_be_bytes(lead), id, i)
            })
            .collect();
        order.sort_unstable();
        let mut found: Vec<Option<Location>> = vec![None; ids.len()];
        for (pack, handle) in self.packs.iter().enumerate() {
            // An index read by ranges: every bucket the batch needs in one go.
            handle.prefetch_lookups(ids)?;
            let mut lookups = handle.sorted_lookups();
            for &(_, id, i) in &order {
                let slot = &mut found[i];
                if slot.is_none() {
                    *slot = lookups
                        .lookup(id)?
                        .map(|index| Location::Packed { pack, index });
                }
            }
        }
        for (slot, id) in found.iter_mut().zip(ids) {
            if slot.is_none() && self.loose.contains(id) {
                *slot = Some(Location::Loose);
            }
        }
        Ok(found)
    }

    /// The repository's objects whose ids start with `prefix` (an abbreviated
    /// id), each once, in id order: at most `limit`, so a short prefix in a big
    /// repository costs no more than that.
    pub fn ids_with_prefix(
        &self,
        prefix: &gix_hash::Prefix,
        limit: usize,
    ) -> crate::Result<Vec<ObjectId>> {
        let mut found = std::collections::BTreeSet::new();
        for pack in &self.packs {
            found.extend(pack.ids_with_prefix(prefix, limit)?);
        }
        found.extend(
            self.loose
                .list()
                .into_iter()
                .map(|(id, _)| id)
                .filter(|id| prefix.cmp_oid(id).is_eq()),
        );
        Ok(found.into_iter().take(limit).collect())
    }

    /// `id` abbreviated as git abbreviates it (`find_unique_abbrev`): to `len`
    /// hex digits (at least 4), or, with none given, to git's automatic length
    /// for this many packed objects (half the bits of their count, rounded
    /// up, in hex digits, at least 7); then longer until no other object of
    /// the repository starts the same.
    pub fn abbreviate(&self, id: &ObjectId, len: Option<usize>) -> crate::Result<String> {
        let hex = id.to_hex().to_string();
        let mut len = match len {
            Some(len) => len.max(4),
            None => self.auto_abbrev_len(),
        };
        while len < hex.len() {
            let prefix = gix_hash::Prefix::new(id, len).map_err(|err| {
                crate::PackError::Corrupt(format!("abbreviating {id} to {len}: {err}"))
            })?;
            if self.ids_with_prefix(&prefix, 2)?.len() < 2 {
                break;
            }
            len += 1;
        }
        Ok(hex[..len.min(hex.len())].to_string())
    }

    /// git's automatic abbreviation length (`core.abbrev` unset) for this
    /// many packed objects: `msb(count) + 1` bits, halved and rounded up, in
    /// hex digits, at least 7.
    pub fn auto_abbrev_len(&self) -> usize {
        let count: u64 = self.packs.iter().map(|p| u64::from(p.num_objects())).sum();
        let bits = (u64::BITS - count.leading_zeros()).max(1) as usize;
        bits.div_ceil(2).max(7)
    }

    /// Whether some pack is read by ranges (a fresh instance on S3): reads of it
    /// may be round trips to the object store.
    pub fn has_sparse_packs(&self) -> bool {
        self.packs.iter().any(|pack| pack.is_sparse())
    }

    /// For packs read by ranges: read these objects' stored entries and their
    /// delta chains into the local files now, side by side
    /// ([`PackHandle::prefetch_chains`]); objects elsewhere are passed over.
    pub fn prefetch(&self, ids: &[ObjectId]) -> crate::Result<()> {
        for pack in self.packs.iter().filter(|pack| pack.is_sparse()) {
            // Their ids first, side by side, where the index is read by ranges.
            pack.prefetch_lookups(ids)?;
            let mut found = Vec::with_capacity(ids.len());
            for id in ids {
                found.extend(pack.lookup(id)?);
            }
            pack.prefetch_chains(found)?;
        }
        Ok(())
    }

    /// For indexes read by ranges: read where these ids would be into the
    /// local files now, side by side ([`PackHandle::prefetch_lookups`]).
    pub fn prefetch_lookups(&self, ids: &[ObjectId]) -> crate::Result<()> {
        for pack in &self.packs {
            pack.prefetch_lookups(ids)?;
        }
        Ok(())
    }

    /// Commit `id` as the commit-graph of a pack holding it describes it, if
    /// one of the packs that have a graph holds it.
    pub fn graph_commit(&self, id: &oid) -> crate::Result<Option<CommitInfo>> {
        for pack in &self.packs {
            if let Some(graph) = pack.commit_graph() {
                if let Some(info) = graph.commit(id)? {
                    return Ok(Some(info));
                }
            }
        }
        Ok(None)
    }

    /// Whether the repository has the object.
    pub fn contains(&self, id: &oid) -> crate::Result<bool> {
        Ok(self.locate(id)?.is_some())
    }

    /// A commit some request parsed before, when this repository has it.
    pub fn cached_commit(&self, id: &oid) -> Option<Arc<CommitInfo>> {
        let (info, pack) = self.cache.as_ref()?.commit(id)?;
        // Only for this repository's objects: another's never show through. Read
        // from one of its packs, or else found in it.
        let ours = pack.is_some_and(|hash| self.packs.iter().any(|p| *p.hash() == hash))
            // An index that cannot be read now: not used, the commit is read
            // (and the error met) where it is stored.
            || self.contains(id).unwrap_or(false);
        ours.then_some(info)
    }

    /// Keep a commit parsed from `loc` for later requests (with a shared cache).
    pub fn remember_commit(&self, id: &oid, loc: Location, info: Arc<CommitInfo>) {
        if let Some(cache) = &self.cache {
            let pack = match loc {
                Location::Packed { pack, .. } => self.packs.get(pack).map(|p| *p.hash()),
                Location::Loose => None,
            };
            cache.insert_commit(id, (info, pack));
        }
    }

    /// A reader with its own inflate state and delta-base cache (of
    /// [`delta_cache_bytes`](Self::delta_cache_bytes)).
    pub fn reader(&self) -> ObjectReader<'_> {
        self.reader_with_cache_bytes(self.delta_cache_bytes)
    }

    /// A reader keeping at most `bytes` of decoded delta bases (for reads in
    /// pack order, or few reads, where a large cache only holds memory).
    pub fn reader_with_cache_bytes(&self, bytes: usize) -> ObjectReader<'_> {
        ObjectReader {
            db: self,
            state: DecodeState::with_cache_bytes(bytes),
        }
    }
}
