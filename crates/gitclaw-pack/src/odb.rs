//! A read view over one repository's objects: its packs and its loose objects.
//!
//! Packs are local `.pack` + `.idx` files (mmapped by gix-pack); where they come
//! from (the filesystem store, a disk cache of S3) is the caller's business. Loose
//! objects come through [`LooseSource`], which the caller backs with its object
//! store and its loose-object index. Every lookup is scoped to the packs and loose
//! objects given here, so one repository never sees another's objects.

use std::{
    path::Path,
    sync::{Arc, OnceLock},
};

use gix_hash::{oid, ObjectId};
use gix_object::Kind;
use gix_pack::data::entry::Header;

use crate::{PackError, Result};

/// Loose objects of one repository, as the caller stores them.
pub trait LooseSource: Send + Sync {
    /// Whether the repository has this loose object (an index lookup, no store access).
    fn contains(&self, id: &oid) -> bool;
    /// Read and verify a loose object; `Ok(None)` when the repository has no such object.
    fn read(&self, id: &oid) -> Result<Option<(Kind, Vec<u8>)>>;
    /// Every loose object with its type, for compaction.
    fn list(&self) -> Vec<(ObjectId, Kind)>;
    /// The inflated size of a loose object, from an index when the source has one.
    fn size(&self, id: &oid) -> Result<Option<u64>> {
        Ok(self.header(id)?.map(|(_, size)| size))
    }
    /// The type and inflated size of a loose object, from an index when the source has one.
    fn header(&self, id: &oid) -> Result<Option<(Kind, u64)>> {
        Ok(self.read(id)?.map(|(kind, data)| (kind, data.len() as u64)))
    }
    /// Open a loose object for streaming: for objects too big to hold whole. The
    /// stream is verified as it ends (a mismatch is an error instead of the end).
    fn open(&self, id: &oid) -> Result<Option<ObjectStream>> {
        Ok(self.read(id)?.map(|(kind, data)| ObjectStream {
            kind,
            size: data.len() as u64,
            content: Box::new(std::io::Cursor::new(data)),
        }))
    }
}

/// An object's content as a stream, with its type and size known up front.
pub struct ObjectStream {
    pub kind: Kind,
    pub size: u64,
    pub content: Box<dyn std::io::Read + Send>,
}

/// A repository with no loose objects.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoLoose;

impl LooseSource for NoLoose {
    fn contains(&self, _id: &oid) -> bool {
        false
    }
    fn read(&self, _id: &oid) -> Result<Option<(Kind, Vec<u8>)>> {
        Ok(None)
    }
    fn list(&self) -> Vec<(ObjectId, Kind)> {
        Vec::new()
    }
}

fn gix_err(context: &str) -> impl FnOnce(gix_error::Error) -> PackError + '_ {
    move |err| PackError::Corrupt(format!("{context}: {err}"))
}

/// One opened pack with its index.
pub struct PackHandle {
    hash: ObjectId,
    bundle: gix_pack::Bundle,
    /// `(offset, index)` pairs sorted by offset, built on first need.
    by_offset: OnceLock<Vec<(u64, u32)>>,
}

impl std::fmt::Debug for PackHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackHandle")
            .field("hash", &self.hash)
            .finish()
    }
}

/// A stored pack entry as it lies in the pack file.
pub struct RawEntry<'a> {
    pub header: Header,
    /// Size of the inflated entry data (the object, or the delta instructions).
    pub decompressed_size: u64,
    /// The zlib stream of the entry, without the entry header.
    pub compressed: &'a [u8],
    /// The whole entry (header included), for CRC checks.
    pub whole: &'a [u8],
}

impl PackHandle {
    /// Open a pack given the path of its `.idx` (the `.pack` must lie beside it).
    pub fn open(index_path: &Path) -> Result<Self> {
        let bundle = gix_pack::Bundle::at(index_path, gix_hash::Kind::Sha1).map_err(|err| {
            PackError::Corrupt(format!("cannot open pack {}: {err}", index_path.display()))
        })?;
        let hash = bundle.index.pack_checksum().to_owned();
        if bundle.pack.num_objects() != bundle.index.num_objects() {
            return Err(PackError::Corrupt(format!(
                "pack {hash} holds {} objects but its index lists {}",
                bundle.pack.num_objects(),
                bundle.index.num_objects()
            )));
        }
        Ok(PackHandle {
            hash,
            bundle,
            by_offset: OnceLock::new(),
        })
    }

    /// The pack's checksum, which is also its name.
    pub fn hash(&self) -> &ObjectId {
        &self.hash
    }

    pub fn num_objects(&self) -> u32 {
        self.bundle.index.num_objects()
    }

    /// Path of the `.idx` file this pack was opened from.
    pub fn index_path(&self) -> &Path {
        self.bundle.index.path()
    }

    /// Decode the object at index position `index` into `buf`, resolving deltas in this pack.
    pub fn decode(&self, index: u32, buf: &mut Vec<u8>, state: &mut DecodeState) -> Result<Kind> {
        let (data, _) = self
            .bundle
            .get_object_by_index(index, buf, &mut state.inflate, &mut state.cache)
            .map_err(|err| {
                PackError::Corrupt(format!(
                    "object {} in pack {}: {err}",
                    self.oid_at(index),
                    self.hash
                ))
            })?;
        Ok(data.kind)
    }

    /// The index position of an object in this pack.
    pub fn lookup(&self, id: &oid) -> Option<u32> {
        self.bundle.index.lookup(id)
    }

    pub fn oid_at(&self, index: u32) -> ObjectId {
        self.bundle.index.oid_at_index(index).to_owned()
    }

    pub fn offset_at(&self, index: u32) -> u64 {
        self.bundle.index.pack_offset_at_index(index)
    }

    /// Every object id of the pack, in index order.
    pub fn oids(&self) -> impl Iterator<Item = ObjectId> + '_ {
        (0..self.num_objects()).map(|i| self.oid_at(i))
    }

    fn sorted_offsets(&self) -> &[(u64, u32)] {
        self.by_offset.get_or_init(|| {
            let mut v: Vec<(u64, u32)> = (0..self.num_objects())
                .map(|i| (self.offset_at(i), i))
                .collect();
            v.sort_unstable();
            v
        })
    }

    /// Index positions of the entries in the order they are stored: decoding in
    /// this order finds delta bases fresh in the cache.
    pub fn indices_in_pack_order(&self) -> impl Iterator<Item = u32> + '_ {
        self.sorted_offsets().iter().map(|(_, index)| *index)
    }

    /// Every object with its type, in pack order. Reads entry headers only: a
    /// delta has its base's type, which an earlier entry (or, for a REF_DELTA to a
    /// later one, a header walk down its chain) tells.
    pub fn kinds(&self) -> Result<Vec<(ObjectId, Kind)>> {
        let sorted = self.sorted_offsets();
        let mut kinds: Vec<Option<Kind>> = vec![None; sorted.len()];
        let mut out = Vec::with_capacity(sorted.len());
        let mut state = DecodeState::default();
        for (pos, &(offset, index)) in sorted.iter().enumerate() {
            let (header, _) = self.entry_header(index)?;
            let base_pos = match header {
                Header::OfsDelta { base_distance } => offset
                    .checked_sub(base_distance)
                    .and_then(|base| sorted.binary_search_by_key(&base, |(o, _)| *o).ok()),
                Header::RefDelta { base_id } => self.lookup(&base_id).and_then(|i| {
                    sorted
                        .binary_search_by_key(&self.offset_at(i), |(o, _)| *o)
                        .ok()
                }),
                Header::Commit => {
                    kinds[pos] = Some(Kind::Commit);
                    None
                }
                Header::Tree => {
                    kinds[pos] = Some(Kind::Tree);
                    None
                }
                Header::Blob => {
                    kinds[pos] = Some(Kind::Blob);
                    None
                }
                Header::Tag => {
                    kinds[pos] = Some(Kind::Tag);
                    None
                }
            };
            let kind = match (kinds[pos], base_pos.and_then(|b| kinds[b])) {
                (Some(kind), _) | (None, Some(kind)) => kind,
                (None, None) => self.object_header(index, &mut state)?.0,
            };
            kinds[pos] = Some(kind);
            out.push((self.oid_at(index), kind));
        }
        Ok(out)
    }

    /// The object id of the entry starting at `offset`, if an entry starts there.
    pub fn oid_at_offset(&self, offset: u64) -> Option<ObjectId> {
        let sorted = self.sorted_offsets();
        sorted
            .binary_search_by_key(&offset, |(o, _)| *o)
            .ok()
            .map(|pos| self.oid_at(sorted[pos].1))
    }

    /// The inflated size of the object at index position `index`, following deltas
    /// only as far as their headers.
    pub fn object_size(&self, index: u32, state: &mut DecodeState) -> Result<u64> {
        self.object_header(index, state).map(|(_, size)| size)
    }

    /// The type and inflated size of the object at index position `index`.
    pub fn object_header(&self, index: u32, state: &mut DecodeState) -> Result<(Kind, u64)> {
        let entry = self
            .bundle
            .pack
            .entry(self.offset_at(index))
            .map_err(gix_err("reading pack entry"))?;
        let outcome = self
            .bundle
            .pack
            .decode_header(entry, &mut state.inflate, &|id| {
                self.bundle
                    .index
                    .lookup(id)
                    .map(|i| {
                        self.bundle
                            .pack
                            .entry(self.offset_at(i))
                            .map(gix_pack::data::decode::header::ResolvedBase::InPack)
                    })
                    .transpose()
            })
            .map_err(gix_err("reading an object header"))?;
        Ok((outcome.kind, outcome.object_size))
    }

    /// The content of the object at index position `index` as a stream when it is
    /// stored whole (not as a delta): inflated as it is read, never held whole.
    /// `None` for deltas. The stream checks the inflated length against the entry.
    pub fn stream_whole(&self, index: u32) -> Result<Option<(Kind, u64, impl std::io::Read + '_)>> {
        let raw = self.raw_entry(index)?;
        let kind = match raw.header {
            Header::Commit => Kind::Commit,
            Header::Tree => Kind::Tree,
            Header::Blob => Kind::Blob,
            Header::Tag => Kind::Tag,
            Header::OfsDelta { .. } | Header::RefDelta { .. } => return Ok(None),
        };
        let size = raw.decompressed_size;
        Ok(Some((
            kind,
            size,
            ExactInflate {
                inner: flate2::read::ZlibDecoder::new(raw.compressed),
                remaining: size,
                size,
            },
        )))
    }

    /// The whole pack file: header, entries and trailing checksum.
    pub fn raw_pack(&self) -> Result<&[u8]> {
        let len = self.bundle.pack.data_len() as u64;
        self.bundle
            .pack
            .entry_slice(0..len)
            .ok_or_else(|| PackError::Corrupt(format!("pack {} cannot be mapped whole", self.hash)))
    }

    /// Whether any entry of the pack is an OFS_DELTA (which needs the client's `ofs-delta`).
    pub fn has_ofs_deltas(&self) -> Result<bool> {
        for index in 0..self.num_objects() {
            if matches!(self.entry_header(index)?.0, Header::OfsDelta { .. }) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The header of the stored entry at index position `index`, without reading its data.
    pub fn entry_header(&self, index: u32) -> Result<(Header, u64)> {
        let entry = self
            .bundle
            .pack
            .entry(self.offset_at(index))
            .map_err(gix_err("reading pack entry"))?;
        Ok((entry.header, entry.decompressed_size))
    }

    /// The stored entry at `offset`, with its compressed bytes, CRC-checked against the index.
    pub fn raw_entry(&self, index: u32) -> Result<RawEntry<'_>> {
        let offset = self.offset_at(index);
        let sorted = self.sorted_offsets();
        let pos = sorted
            .binary_search_by_key(&offset, |(o, _)| *o)
            .map_err(|_| {
                PackError::Corrupt(format!("pack {}: no entry at offset {offset}", self.hash))
            })?;
        let end = sorted
            .get(pos + 1)
            .map(|(o, _)| *o)
            .unwrap_or(self.bundle.pack.pack_end() as u64);
        let entry = self
            .bundle
            .pack
            .entry(offset)
            .map_err(gix_err("reading pack entry"))?;
        let whole = self.bundle.pack.entry_slice(offset..end).ok_or_else(|| {
            PackError::Corrupt(format!(
                "pack {}: entry at {offset} is out of bounds",
                self.hash
            ))
        })?;
        if let Some(expected) = self.bundle.index.crc32_at_index(index) {
            let actual = crc32fast::hash(whole);
            if actual != expected {
                return Err(PackError::Corrupt(format!(
                    "pack {}: entry at offset {offset} fails its CRC check",
                    self.hash
                )));
            }
        }
        let header_len = usize::try_from(entry.data_offset - offset)
            .map_err(|_| PackError::Corrupt("entry header too long".into()))?;
        let compressed = whole.get(header_len..).ok_or_else(|| {
            PackError::Corrupt(format!(
                "pack {}: entry at {offset} is truncated",
                self.hash
            ))
        })?;
        Ok(RawEntry {
            header: entry.header,
            decompressed_size: entry.decompressed_size,
            compressed,
            whole,
        })
    }
}

/// Inflates a zlib stream that must yield exactly `size` bytes.
struct ExactInflate<R> {
    inner: R,
    remaining: u64,
    size: u64,
}

impl<R: std::io::Read> std::io::Read for ExactInflate<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let invalid = |detail: String| std::io::Error::new(std::io::ErrorKind::InvalidData, detail);
        if self.remaining == 0 {
            let mut extra = [0u8; 1];
            return match self.inner.read(&mut extra)? {
                0 => Ok(0),
                _ => Err(invalid(format!(
                    "entry inflates to more than {} bytes",
                    self.size
                ))),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 && want > 0 {
            return Err(invalid(format!(
                "entry inflates to {} bytes, its header says {}",
                self.size - self.remaining,
                self.size
            )));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

/// Scratch state for decoding pack entries: an inflater and a cache of delta bases.
pub struct DecodeState {
    inflate: gix_zlib::Inflate,
    cache: gix_pack::cache::lru::MemoryCappedHashmap,
}

impl Default for DecodeState {
    fn default() -> Self {
        DecodeState::with_cache_bytes(64 * 1024 * 1024)
    }
}

impl DecodeState {
    /// Keep at most `bytes` of decoded delta bases.
    pub fn with_cache_bytes(bytes: usize) -> Self {
        DecodeState {
            inflate: gix_zlib::Inflate::default(),
            cache: gix_pack::cache::lru::MemoryCappedHashmap::new(bytes),
        }
    }
}

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

/// Inflated commits, trees and tags, shared by readers across requests so
/// repeated walks skip inflating and delta-resolving them. Content-addressed by
/// object id, so an entry is never stale; a reader consults it only for objects
/// its own repository has (after [`ObjectDb::locate`]), so no repository sees
/// another's objects through it. Bounded near `max_bytes` by two generations:
/// when the young one passes half the budget, the old one is dropped and the
/// young one takes its place; a hit in the old one moves the entry to the young.
pub struct ObjectCache {
    max_bytes: usize,
    inner: std::sync::Mutex<Generations>,
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
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Generations> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn get(&self, id: &oid) -> Option<(Kind, Arc<[u8]>)> {
        let mut g = self.lock();
        if let Some(hit) = g.young.get(id) {
            return Some(hit.clone());
        }
        let hit = g.old.remove(id)?;
        g.old_bytes -= hit.1.len();
        self.admit(&mut g, id.to_owned(), hit.clone());
        Some(hit)
    }

    fn insert(&self, id: &oid, kind: Kind, data: &[u8]) {
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
            g.old = std::mem::take(&mut g.young);
            g.old_bytes = std::mem::take(&mut g.young_bytes);
        }
    }

    /// Bytes of object data held now.
    pub fn size(&self) -> usize {
        let g = self.lock();
        g.young_bytes + g.old_bytes
    }
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
}

impl ObjectDb {
    pub fn new(packs: Vec<Arc<PackHandle>>, loose: Arc<dyn LooseSource>) -> Self {
        ObjectDb {
            packs,
            loose,
            cache: None,
            closures: Vec::new(),
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

    pub fn packs(&self) -> &[Arc<PackHandle>] {
        &self.packs
    }

    pub fn loose(&self) -> &Arc<dyn LooseSource> {
        &self.loose
    }

    /// Where the object lives; packs are searched in the order given, then loose objects.
    pub fn locate(&self, id: &oid) -> Option<Location> {
        for (pack, handle) in self.packs.iter().enumerate() {
            if let Some(index) = handle.lookup(id) {
                return Some(Location::Packed { pack, index });
            }
        }
        self.loose.contains(id).then_some(Location::Loose)
    }

    pub fn contains(&self, id: &oid) -> bool {
        self.locate(id).is_some()
    }

    /// A reader with its own inflate state and delta-base cache.
    pub fn reader(&self) -> ObjectReader<'_> {
        ObjectReader {
            db: self,
            state: DecodeState::default(),
        }
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

/// Reads whole objects from an [`ObjectDb`], resolving deltas.
pub struct ObjectReader<'a> {
    db: &'a ObjectDb,
    state: DecodeState,
}

impl ObjectReader<'_> {
    /// Read an object into `buf`; `Ok(None)` when the repository does not have it.
    pub fn read(&mut self, id: &oid, buf: &mut Vec<u8>) -> Result<Option<Kind>> {
        match self.db.locate(id) {
            Some(loc) => self.read_at(id, loc, buf).map(Some),
            None => Ok(None),
        }
    }

    /// Read an object whose location is known.
    pub fn read_at(&mut self, id: &oid, loc: Location, buf: &mut Vec<u8>) -> Result<Kind> {
        let Some(cache) = self.db.cache.clone() else {
            return self.decode_at(id, loc, buf);
        };
        if let Some((kind, data)) = cache.get(id) {
            buf.clear();
            buf.extend_from_slice(&data);
            return Ok(kind);
        }
        let kind = self.decode_at(id, loc, buf)?;
        if matches!(kind, Kind::Commit | Kind::Tree | Kind::Tag) {
            cache.insert(id, kind, buf);
        }
        Ok(kind)
    }

    fn decode_at(&mut self, id: &oid, loc: Location, buf: &mut Vec<u8>) -> Result<Kind> {
        match loc {
            Location::Packed { pack, index } => {
                let handle = self
                    .db
                    .packs
                    .get(pack)
                    .ok_or_else(|| PackError::Corrupt(format!("no pack #{pack}")))?;
                handle.decode(index, buf, &mut self.state)
            }
            Location::Loose => match self.db.loose.read(id)? {
                Some((kind, data)) => {
                    buf.clear();
                    buf.extend_from_slice(&data);
                    Ok(kind)
                }
                None => Err(PackError::Store(format!(
                    "loose object {id} is indexed but missing"
                ))),
            },
        }
    }

    /// The inflated size of an object that must exist.
    pub fn size(&mut self, id: &oid) -> Result<u64> {
        match self.db.locate(id) {
            Some(Location::Packed { pack, index }) => {
                self.db.packs[pack].object_size(index, &mut self.state)
            }
            Some(Location::Loose) => self
                .db
                .loose
                .size(id)?
                .ok_or_else(|| PackError::MissingObject(id.to_owned())),
            None => Err(PackError::MissingObject(id.to_owned())),
        }
    }

    /// The type and inflated size of an object without reading its content
    /// (delta headers and the loose index only); `Ok(None)` when the repository
    /// does not have it.
    pub fn header(&mut self, id: &oid) -> Result<Option<(Kind, u64)>> {
        match self.db.locate(id) {
            Some(Location::Packed { pack, index }) => self.db.packs[pack]
                .object_header(index, &mut self.state)
                .map(Some),
            Some(Location::Loose) => self.db.loose.header(id),
            None => Ok(None),
        }
    }

    /// Read an object that must exist.
    pub fn read_existing(&mut self, id: &oid, buf: &mut Vec<u8>) -> Result<Kind> {
        self.read(id, buf)?
            .ok_or_else(|| PackError::MissingObject(id.to_owned()))
    }

    /// Follow annotated tags until a non-tag object; returns its id and kind.
    pub fn peel(&mut self, id: &oid) -> Result<(ObjectId, Kind)> {
        let mut current = id.to_owned();
        let mut buf = Vec::new();
        // Bounded so a tag cycle (impossible with honest hashes) cannot spin forever.
        for _ in 0..64 {
            // The header first: a tag may name a big blob, which is never read whole.
            let (kind, _) = self
                .header(&current)?
                .ok_or(PackError::MissingObject(current))?;
            if kind != Kind::Tag {
                return Ok((current, kind));
            }
            self.read_existing(&current, &mut buf)?;
            let tag = gix_object::TagRefIter::from_bytes(&buf, gix_hash::Kind::Sha1);
            current = tag.target_id().map_err(|err| PackError::MalformedObject {
                oid: current,
                detail: err.to_string(),
            })?;
        }
        Err(PackError::Corrupt(format!(
            "tag chain from {id} is too long"
        )))
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
