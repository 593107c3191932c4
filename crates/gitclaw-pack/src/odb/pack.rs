//! One stored pack, opened from its local `.pack` and `.idx` files (mmapped by
//! gix-pack): looking objects up by id, decoding them, and handing out stored
//! entries as raw bytes so the pack writer can copy them without re-deflating.

use std::{path::Path, sync::OnceLock};

use gix_hash::{oid, ObjectId};
use gix_object::Kind;
use gix_pack::data::entry::Header;

use super::{
    order::{radix_sort, EarlyOrder, PackOrder, SortedOffsets},
    recorded::RecordedOrder,
    sparse::{RangeSource, SparseFile},
};
use crate::{
    commit_graph::{CommitGraph, NO_BASE},
    kinds::{bits_of, PackedKinds, ALL_KINDS},
    PackError, Result,
};

/// Bytes past an entry's start that hold its header and enough of its zlib
/// stream to read a delta's sizes (see [`PackHandle::object_header`]).
const HEADER_FILL_BYTES: u64 = 4096;

/// The most entries of one delta chain read ahead from a recorded delta-base
/// table (see [`PackHandle::recorded_chain`]): git writes chains at most 4095
/// deep; a longer one (or a damaged table's loop) is followed entry by entry.
const MAX_RECORDED_CHAIN: usize = 4096;

fn gix_err(context: &str) -> impl FnOnce(gix_error::Error) -> PackError + '_ {
    move |err| PackError::Corrupt(format!("{context}: {err}"))
}

/// One opened pack with its index.
pub struct PackHandle {
    hash: ObjectId,
    bundle: gix_pack::Bundle,
    /// The entries in pack order, built on first need.
    by_offset: OnceLock<PackOrder>,
    /// Every entry's object type, in pack order, read from headers on first need.
    kinds: OnceLock<PackedKinds>,
    /// How many entries are of each type (see [`bits_of`]), counted on first need.
    kind_counts: OnceLock<[usize; 4]>,
    /// For a pack read by ranges: where its missing bytes come from.
    sparse: Option<SparseFile>,
    /// For an index read by ranges: where its missing ids come from.
    sparse_index: Option<RangedIndexFile>,
    /// The index's fanout table (`None`: not a version 2 index, searched by
    /// gix-pack).
    fan: Option<Fanout>,
    /// The commit-graph of the pack's commits, when compaction wrote one.
    commit_graph: Option<CommitGraph>,
}

impl std::fmt::Debug for PackHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackHandle")
            .field("hash", &self.hash)
            .finish()
    }
}

/// Bytes a block of an index read by ranges ([`RangedIndexFile`]).
const INDEX_BLOCK_BYTES: u64 = 64 << 10;
/// A version 2 index's signature and version, then its fanout table.
const INDEX_V2_START: [u8; 8] = [0xff, b't', b'O', b'c', 0, 0, 0, 2];
const INDEX_HEADER_BYTES: u64 = 8 + 256 * 4;
/// Bytes an object in a version 2 index: its id, CRC and 32-bit offset.
const INDEX_ENTRY_BYTES: u64 = 20 + 4 + 4;
/// The checksums closing an index: the pack's, then its own.
const INDEX_TRAILER_BYTES: u64 = 40;

/// Where the ids of index positions `positions` lie in a version 2 index.
fn id_bytes(positions: std::ops::Range<u32>) -> std::ops::Range<u64> {
    INDEX_HEADER_BYTES + 20 * u64::from(positions.start)
        ..INDEX_HEADER_BYTES + 20 * u64::from(positions.end)
}

/// A version 2 index's fanout table: where the ids of each first byte end, in
/// index positions.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Fanout(Box<[u32; 256]>);

impl Fanout {
    /// The table of an index starting with `header` (its first
    /// [`INDEX_HEADER_BYTES`]), if it is a version 2 index whose counts rise.
    fn parse(header: &[u8]) -> Option<Self> {
        let (start, fan) = header.split_at_checked(INDEX_V2_START.len())?;
        if start != INDEX_V2_START || fan.len() != 256 * 4 {
            return None;
        }
        let mut table = Box::new([0u32; 256]);
        for (slot, bytes) in table.iter_mut().zip(fan.chunks_exact(4)) {
            *slot = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
        }
        table
            .windows(2)
            .all(|pair| pair[0] <= pair[1])
            .then_some(Fanout(table))
    }

    /// The table of the index file at `path`, read from its start.
    fn read(path: &Path) -> Option<Self> {
        use std::io::Read;
        let mut header = [0u8; INDEX_HEADER_BYTES as usize];
        std::fs::File::open(path)
            .and_then(|mut file| file.read_exact(&mut header))
            .ok()?;
        Self::parse(&header)
    }

    /// How many ids the index holds.
    fn total(&self) -> u32 {
        self.0[255]
    }

    /// The index positions of the ids that begin with `id`'s first byte.
    fn bucket(&self, id: &oid) -> std::ops::Range<u32> {
        let first = usize::from(id.first_byte());
        let start = first.checked_sub(1).map_or(0, |before| self.0[before]);
        start..self.0[first].max(start)
    }
}

/// An id's first 8 bytes as a number: ids sort as their keys do, but for ids
/// whose first 8 bytes are the same.
fn id_key(id: &oid) -> u64 {
    u64::from_be_bytes(id.as_bytes().first_chunk().copied().unwrap_or_default())
}

/// `a` against `b`, their keys first: most pairs differ there, and the full
/// comparison (a call to `memcmp`) is left for the few that do not.
fn compare_ids(a: &oid, b: &oid) -> std::cmp::Ordering {
    id_key(a).cmp(&id_key(b)).then_with(|| a.cmp(b))
}

/// Guesses of where an id lies before a search falls back to halving: with
/// ids spread evenly (they are hashes), two or three guesses come within a few
/// entries of it; ids made to cluster cost at most these.
const INTERPOLATION_GUESSES: usize = 4;
/// A range this short is halved rather than guessed in.
const INTERPOLATION_MIN_LEN: u32 = 16;

/// Where `id` lies among the ids `id_at` gives for positions `range`, which
/// rise and all lie within `keys` (of [`id_key`]): its position if it is one of
/// them, and the first position whose id is not below it.
///
/// An interpolation search: an index's ids are hashes, spread evenly, so the
/// position `id`'s key takes between the keys at the range's ends is a close
/// guess of where it lies. Each guess narrows the range (and the keys at its
/// ends) like a halving step; after a few the range is halved. At millions of
/// objects a halving search touches ~14 places of a table far larger than the
/// CPU's caches, and the guesses 2–4.
fn interpolation_search<'a>(
    id: &oid,
    range: std::ops::Range<u32>,
    keys: std::ops::RangeInclusive<u64>,
    id_at: impl Fn(u32) -> &'a oid,
) -> (Option<u32>, u32) {
    use std::cmp::Ordering;
    let (mut lo, mut hi) = (range.start, range.end.max(range.start));
    let (mut lo_key, mut hi_key) = keys.into_inner();
    for _ in 0..INTERPOLATION_GUESSES {
        let len = hi - lo;
        if len < INTERPOLATION_MIN_LEN {
            break;
        }
        // Within the range: a key past its end guesses its last entry.
        let ahead = expected_distance(id, &(lo..hi), &(lo_key..=hi_key));
        let guess = lo + ahead.min(u64::from(len - 1)) as u32;
        let at = id_at(guess);
        match compare_ids(at, id) {
            Ordering::Equal => return (Some(guess), guess),
            Ordering::Less => (lo, lo_key) = (guess + 1, id_key(at)),
            Ordering::Greater => (hi, hi_key) = (guess, id_key(at)),
        }
    }
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        match compare_ids(id_at(mid), id) {
            Ordering::Equal => return (Some(mid), mid),
            Ordering::Less => lo = mid + 1,
            Ordering::Greater => hi = mid,
        }
    }
    (None, lo)
}

/// Where an id a search of `range` (ids within `keys`) looks for is expected
/// from its key: this many entries past the range's start.
fn expected_distance(
    id: &oid,
    range: &std::ops::Range<u32>,
    keys: &std::ops::RangeInclusive<u64>,
) -> u64 {
    let (key, (low, high)) = (id_key(id), (*keys.start(), *keys.end()));
    if key <= low || high < low {
        return 0;
    }
    let len = range.end.saturating_sub(range.start);
    (u128::from(key - low) * u128::from(len) / (u128::from(high - low) + 1)) as u64
}

/// Below this expected distance (see [`expected_distance`]) a search from
/// where the last one ended gallops rather than guesses: measured on sorted
/// batches among 2.5M ids, galloping took 11 ms for 400k lookups a few entries
/// apart against 18 guessing, and 183 µs for 1,000 far apart against 70.
const GALLOP_BELOW: u64 = 64;

/// [`interpolation_search`]'s answer by galloping from the range's start:
/// steps of 1, 2, 4, … to a bound past `id`, then halving between the last two.
fn gallop_search<'a>(
    id: &oid,
    range: std::ops::Range<u32>,
    id_at: impl Fn(u32) -> &'a oid,
) -> (Option<u32>, u32) {
    use std::cmp::Ordering;
    let end = range.end.max(range.start);
    let below = |i: u32| compare_ids(id_at(i), id) == Ordering::Less;
    let (mut lo, mut step) = (range.start, 1u32);
    while lo < end && below(lo) {
        let next = lo.saturating_add(step).min(end);
        if next == end || !below(next) {
            // `id` lies in (lo, next]: halve there.
            let (mut a, mut b) = (lo + 1, next);
            while a < b {
                let mid = a + (b - a) / 2;
                if below(mid) {
                    a = mid + 1;
                } else {
                    b = mid;
                }
            }
            lo = a;
            break;
        }
        lo = next;
        step = step.saturating_mul(2);
    }
    let hit = (lo < end && id_at(lo) == id).then_some(lo);
    (hit, lo)
}

/// The keys of ids beginning with `first`.
fn keys_of_first_byte(first: u8) -> std::ops::RangeInclusive<u64> {
    let start = u64::from(first) << 56;
    start..=start | ((1 << 56) - 1)
}

/// A pack's index read by ranges, beside a pack read by ranges on a fresh
/// instance: opening reads its header and fanout and every table after the
/// object ids (CRCs, offsets, trailer: 8 of its 28 bytes an object), and a
/// lookup reads the ids of one fanout bucket (a 256th of them). A fetch of a
/// few new commits so waits for a fraction of the index, not all of it (280 MB
/// at 10M objects); the rest can come down behind it
/// ([`PackHandle::fill_index`]). See [`PackHandle::open_ranged_index`].
pub struct RangedIndexFile {
    file: SparseFile,
    path: std::path::PathBuf,
    /// The pack's entry order, built from the offsets read (`None`: a pack of
    /// 2 GiB or more, whose order is built when first needed).
    order: Option<EarlyOrder>,
}

impl RangedIndexFile {
    /// Create (or truncate) `index_path`, `index_len` bytes long, to be filled
    /// from `source`, and read all of it but the object ids.
    pub fn create(index_path: &Path, index_len: u64, source: Box<dyn RangeSource>) -> Result<Self> {
        let file =
            SparseFile::create_with_blocks(index_path, index_len, INDEX_BLOCK_BYTES, source)?;
        // The number of objects as the length tells it when there are no large
        // offsets (a pack under 2 GiB): the header and the tables after the ids
        // then come down in one batch, and otherwise the tables in a second.
        let guess = index_len
            .checked_sub(INDEX_HEADER_BYTES + INDEX_TRAILER_BYTES)
            .filter(|bytes| bytes % INDEX_ENTRY_BYTES == 0)
            .map(|bytes| bytes / INDEX_ENTRY_BYTES);
        let mut first = vec![
            0..INDEX_HEADER_BYTES,
            index_len.saturating_sub(INDEX_TRAILER_BYTES)..index_len,
        ];
        first.extend(guess.map(|n| INDEX_HEADER_BYTES + 20 * n..index_len));
        file.prefetch(&first)?;
        let Some(fan) = Fanout::parse(&file.read(0..INDEX_HEADER_BYTES)?) else {
            // Another version, or too short: read whole, for gix-pack to judge.
            file.fill_all()?;
            return Ok(RangedIndexFile {
                file,
                path: index_path.to_owned(),
                order: None,
            });
        };
        let n = u64::from(fan.total());
        if guess != Some(n) {
            file.prefetch(std::slice::from_ref(
                &(INDEX_HEADER_BYTES + 20 * n..index_len),
            ))?;
        }
        // Built here, while the pack and commit-graph are opened beside it,
        // rather than by the first request to need it.
        let offsets = INDEX_HEADER_BYTES + 24 * n..INDEX_HEADER_BYTES + 28 * n;
        let order = EarlyOrder::build(&file.read(offsets)?).ok();
        Ok(RangedIndexFile {
            file,
            path: index_path.to_owned(),
            order,
        })
    }
}

/// A local pack file filled only as its bytes are needed, with what opening
/// it reads (its header and trailer) read already: see [`PackHandle::open_ranged`].
pub struct RangedPackFile(SparseFile);

impl RangedPackFile {
    /// Create (or truncate) `pack_path`, `pack_len` bytes long, to be filled
    /// from `source`, and read the blocks holding its header and trailer.
    pub fn create(pack_path: &Path, pack_len: u64, source: Box<dyn RangeSource>) -> Result<Self> {
        let sparse = SparseFile::create(pack_path, pack_len, source)?;
        // Opening reads the pack's header; its trailer is its checksum. Both
        // in one batch: a round trip each to the store otherwise.
        sparse.prefetch(&[0..12, pack_len.saturating_sub(20)..pack_len])?;
        Ok(RangedPackFile(sparse))
    }
}

/// Where an entry lies in its pack's order, and the CRC its index records
/// for it (see [`PackHandle::places_of`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct EntryPlace {
    pub(crate) pos: u32,
    pub(crate) crc: Option<u32>,
}

/// Where a stored delta's base lies, as its entry's header tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StoredBase {
    /// An OFS_DELTA's: the base's place in pack order.
    Place(usize),
    /// A REF_DELTA's: the base's id.
    Id(ObjectId),
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

/// See [`PackHandle::sorted_lookups`].
pub struct SortedLookups<'a> {
    pack: &'a PackHandle,
    from: u32,
}

impl SortedLookups<'_> {
    /// The index position of `id`, no smaller than any id looked up before.
    pub fn lookup(&mut self, id: &oid) -> Result<Option<u32>> {
        let (found, next) = self.pack.lookup_from(id, self.from)?;
        self.from = next;
        Ok(found)
    }
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
        // The table gix-pack read too, read again here (it keeps its own
        // private): searches start from it.
        let fan = Fanout::read(index_path).filter(|fan| fan.total() == bundle.index.num_objects());
        Ok(PackHandle {
            hash,
            bundle,
            by_offset: OnceLock::new(),
            kinds: OnceLock::new(),
            kind_counts: OnceLock::new(),
            sparse: None,
            sparse_index: None,
            fan,
            commit_graph: None,
        })
    }

    /// Look the pack's commits up in `graph` (written for exactly this pack's
    /// commits) instead of parsing them.
    pub fn with_commit_graph(mut self, graph: CommitGraph) -> Self {
        self.commit_graph = Some(graph);
        self
    }

    /// The commit-graph of this pack's commits, if it has one.
    pub fn commit_graph(&self) -> Option<&CommitGraph> {
        self.commit_graph.as_ref()
    }

    /// Open a pack whose `.idx` is at `index_path` and whose `.pack` beside it
    /// is `pack_len` bytes long but filled only as its bytes are needed, from
    /// `source` (see the `sparse` module). The file is created (or truncated) here.
    pub fn open_sparse(
        index_path: &Path,
        pack_len: u64,
        source: Box<dyn RangeSource>,
    ) -> Result<Self> {
        let file = RangedPackFile::create(&index_path.with_extension("pack"), pack_len, source)?;
        Self::open_ranged(index_path, file)
    }

    /// [`Self::open_sparse`] with the pack file made beforehand (beside
    /// `index_path`, named as its `.pack`): made while the index downloads,
    /// its first read does not wait for the index.
    pub fn open_ranged(index_path: &Path, file: RangedPackFile) -> Result<Self> {
        let mut handle = Self::open(index_path)?;
        handle.sparse = Some(file.0);
        Ok(handle)
    }

    /// [`Self::open_ranged`] with the index read by ranges too: a request
    /// reads the ids it looks up, not the whole index (see [`RangedIndexFile`]).
    pub fn open_ranged_index(mut index: RangedIndexFile, file: RangedPackFile) -> Result<Self> {
        let mut handle = Self::open_ranged(&index.path, file)?;
        if let Some(order) = index.order.take() {
            handle = handle.with_order(order);
        }
        handle.sparse_index = Some(index);
        Ok(handle)
    }

    /// For an index read by ranges, read the rest of it (a no-op otherwise):
    /// what a fresh instance does behind its first request, so later ones find
    /// every id local.
    pub fn fill_index(&self) -> Result<()> {
        match &self.sparse_index {
            Some(index) => index.file.fill_all(),
            None => Ok(()),
        }
    }

    /// For an index read by ranges, its bytes read so far (`None`: the whole
    /// index is a local file).
    pub fn index_filled_bytes(&self) -> Option<u64> {
        self.sparse_index.as_ref().map(|i| i.file.filled_bytes())
    }

    /// For an index read by ranges, read the fanout buckets of these ids into
    /// the index file now, side by side (a no-op otherwise): the objects a
    /// request is about to look up one after another (its wants and haves),
    /// each a round trip to the store when looked up as it comes.
    pub fn prefetch_lookups<'a>(&self, ids: impl IntoIterator<Item = &'a ObjectId>) -> Result<()> {
        let Some(index) = &self.sparse_index else {
            return Ok(());
        };
        let ranges: Vec<_> = ids
            .into_iter()
            .filter_map(|id| self.bucket(id))
            .map(id_bytes)
            .collect();
        index.file.prefetch(&ranges)
    }

    /// Make sure the ids of index positions `positions` are in the index file.
    fn fill_ids(&self, positions: std::ops::Range<u32>) -> Result<()> {
        match &self.sparse_index {
            Some(index) if positions.start < positions.end => index.file.fill(id_bytes(positions)),
            _ => Ok(()),
        }
    }

    /// The index positions of the ids that begin with `id`'s first byte (its
    /// fanout bucket).
    fn bucket(&self, id: &oid) -> Option<std::ops::Range<u32>> {
        self.fan.as_ref().map(|fan| fan.bucket(id))
    }

    /// The most memory this handle comes to hold, in bytes: its pack order and
    /// entry types once a request builds them (12¼ bytes an object in a pack
    /// under 4 GiB, 20¼ in a larger one; a recorded order read in place holds
    /// the blocks read, as much at most, and twice that only when a damaged
    /// record is answered from the sort too), its
    /// commit-graph's tables, and for a pack read by ranges a bit a block. The
    /// index and pack themselves are mapped files, not counted.
    pub fn heap_bytes_at_most(&self) -> u64 {
        let pack_len = self.bundle.pack.pack_end() as u64;
        let n = self.num_objects() as usize;
        let tables = n * PackOrder::bytes_an_entry(pack_len) + PackedKinds::heap_bytes(n);
        let graph = self
            .commit_graph
            .as_ref()
            .map_or(0, CommitGraph::heap_bytes);
        let blocks = self
            .sparse
            .iter()
            .chain(self.sparse_index.as_ref().map(|index| &index.file))
            .map(|sparse| sparse.blocks().div_ceil(8))
            .sum::<u64>()
            + self.sparse_index.as_ref().map_or(0, |_| 256 * 4);
        tables as u64 + graph + blocks
    }

    /// Whether the pack is read by ranges (see [`Self::open_sparse`]).
    pub fn is_sparse(&self) -> bool {
        self.sparse.is_some()
    }

    /// For a pack read by ranges, the bytes read so far (`None`: the whole
    /// pack is a local file).
    pub fn filled_bytes(&self) -> Option<u64> {
        self.sparse.as_ref().map(SparseFile::filled_bytes)
    }

    /// Make sure the bytes of `range` are in the local file.
    fn fill(&self, range: std::ops::Range<u64>) -> Result<()> {
        match &self.sparse {
            Some(sparse) => sparse.fill(range),
            None => Ok(()),
        }
    }

    /// For a pack read by ranges, read the entries at these index positions
    /// into the local file now, side by side, rather than one block at a time
    /// as a writer reaches them (a no-op for a local pack): whole, or (`whole`
    /// false) as far as their headers and delta sizes.
    pub fn prefetch_entries(
        &self,
        indices: impl IntoIterator<Item = u32>,
        whole: bool,
    ) -> Result<()> {
        let Some(sparse) = &self.sparse else {
            return Ok(());
        };
        let ranges: Vec<_> = indices
            .into_iter()
            .map(|index| self.entry_range(self.offset_at(index), whole))
            .collect();
        sparse.prefetch(&ranges)
    }

    /// For a pack read by ranges, read the entries at these index positions and
    /// the entries of their delta chains into the local file now, whole: one
    /// batch of side-by-side reads per step down the chains, where reading them
    /// as they are reached costs a round trip each (a no-op for a local pack).
    pub fn prefetch_chains(&self, indices: impl IntoIterator<Item = u32>) -> Result<()> {
        // Once everything is local, following the chains would be work for nothing.
        let Some(sparse) = self.sparse.as_ref().filter(|s| !s.is_complete()) else {
            return Ok(());
        };
        if self.has_recorded_chains() {
            // Every chain's entries known at once: one batch for all of them.
            let mut seen = std::collections::HashSet::new();
            let mut ranges = Vec::new();
            for index in indices {
                for pos in self.recorded_chain(self.position_of(index)?)? {
                    if seen.insert(pos) {
                        ranges.push(self.range_at_pos(pos, true));
                    }
                }
            }
            return sparse.prefetch(&ranges);
        }
        let mut offsets: Vec<u64> = indices.into_iter().map(|i| self.offset_at(i)).collect();
        let mut visited = std::collections::HashSet::new();
        // A chain is no longer than the pack; a corrupt one looping is cut there.
        for _ in 0..=self.num_objects() {
            offsets.retain(|offset| visited.insert(*offset));
            if offsets.is_empty() {
                break;
            }
            let ranges: Vec<_> = offsets
                .iter()
                .map(|&offset| self.entry_range(offset, true))
                .collect();
            sparse.prefetch(&ranges)?;
            let mut bases = Vec::new();
            for &offset in &offsets {
                let entry = self.entry_at(offset)?;
                let base = match entry.header {
                    Header::OfsDelta { base_distance } => offset.checked_sub(base_distance),
                    Header::RefDelta { base_id } => {
                        self.lookup(&base_id)?.map(|base| self.offset_at(base))
                    }
                    _ => None,
                };
                bases.extend(base);
            }
            offsets = bases;
        }
        Ok(())
    }

    /// Make sure the whole pack is in the local file.
    fn fill_all(&self) -> Result<()> {
        match &self.sparse {
            Some(sparse) => sparse.fill_all(),
            None => Ok(()),
        }
    }

    /// Where the entry starting at `offset` ends (the next entry, or the trailer).
    fn entry_end(&self, offset: u64) -> u64 {
        let sorted = self.sorted_offsets();
        sorted
            .get(sorted.starting_by(offset))
            .map(|(o, _)| o)
            .unwrap_or(self.bundle.pack.pack_end() as u64)
    }

    /// Whether the pack's commit-graph records where each entry's delta base
    /// lies (see [`CommitGraph::delta_base`]).
    fn has_recorded_chains(&self) -> bool {
        self.commit_graph
            .as_ref()
            .and_then(CommitGraph::delta_base_count)
            == Some(self.num_objects())
    }

    /// The places in pack order of the entry at place `pos` and of the
    /// entries of its delta chain, as the commit-graph records them, without
    /// reading the entries (just `pos` without a record). Only for reading
    /// ahead: a reader still follows each entry's own header.
    fn recorded_chain(&self, mut pos: usize) -> Result<Vec<usize>> {
        let mut chain = vec![pos];
        let Some(graph) = self
            .commit_graph
            .as_ref()
            .filter(|_| self.has_recorded_chains())
        else {
            return Ok(chain);
        };
        while chain.len() < MAX_RECORDED_CHAIN {
            // Both fit: a pack holds at most u32::MAX entries.
            match graph.delta_base(pos as u32)? {
                Some(base) if base as usize != pos => {
                    pos = base as usize;
                    chain.push(pos);
                }
                _ => break,
            }
        }
        Ok(chain)
    }

    /// The bytes of the entry at place `pos` in pack order (see [`Self::entry_range`]).
    fn range_at_pos(&self, pos: usize, whole: bool) -> std::ops::Range<u64> {
        match self.sorted_offsets().get(pos) {
            Some((offset, _)) => self.entry_range(offset, whole),
            None => 0..0,
        }
    }

    /// The bytes of the entry starting at `offset`: whole, or (`whole` false)
    /// as far as its header and delta size.
    fn entry_range(&self, offset: u64, whole: bool) -> std::ops::Range<u64> {
        let end = self.entry_end(offset);
        match whole {
            true => offset..end,
            false => offset..end.min(offset.saturating_add(HEADER_FILL_BYTES)),
        }
    }

    /// Make sure the entry at index position `index` and the entries of its
    /// delta chain in this pack are in the local file: whole, or (`whole`
    /// false) as far as their headers and delta sizes.
    fn fill_chain(&self, index: u32, whole: bool) -> Result<()> {
        let Some(sparse) = &self.sparse else {
            return Ok(());
        };
        let mut offset = self.offset_at(index);
        let mut read_ahead = self.has_recorded_chains();
        // A chain is no longer than the pack; a corrupt one looping is cut there.
        for _ in 0..=self.num_objects() {
            let range = self.entry_range(offset, whole);
            // At the first entry not read yet, the rest of the chain, when it
            // is recorded, comes down in one batch; the steps after it find
            // their entries local.
            if read_ahead && !sparse.holds(range.clone()) {
                read_ahead = false;
                if let Some(pos) = self.sorted_offsets().find(offset) {
                    let ranges: Vec<_> = self
                        .recorded_chain(pos)?
                        .into_iter()
                        .map(|pos| self.range_at_pos(pos, whole))
                        .collect();
                    sparse.prefetch(&ranges)?;
                }
            }
            self.fill(range)?;
            let entry = self.entry_at(offset)?;
            offset = match entry.header {
                Header::OfsDelta { base_distance } => match offset.checked_sub(base_distance) {
                    Some(base) => base,
                    None => return Ok(()),
                },
                Header::RefDelta { base_id } => match self.lookup(&base_id)? {
                    Some(base) => self.offset_at(base),
                    None => return Ok(()),
                },
                _ => return Ok(()),
            };
        }
        Ok(())
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
        self.fill_chain(index, true)?;
        let (data, _) = self
            .bundle
            .get_object_by_index(index, buf, &mut state.inflate, &mut state.cache)
            .map_err(|err| {
                let object = match self.oid_at(index) {
                    Ok(id) => id.to_string(),
                    Err(_) => format!("at index position {index}"),
                };
                PackError::Corrupt(format!("object {object} in pack {}: {err}", self.hash))
            })?;
        Ok(data.kind)
    }

    /// The index position of an object in this pack (an error only when an
    /// index read by ranges cannot be read).
    pub fn lookup(&self, id: &oid) -> Result<Option<u32>> {
        let Some(bucket) = self.bucket(id) else {
            return Ok(self.bundle.index.lookup(id));
        };
        self.fill_ids(bucket.clone())?;
        let index = &self.bundle.index;
        let keys = keys_of_first_byte(id.first_byte());
        Ok(interpolation_search(id, bucket, keys, |i| index.oid_at_index(i)).0)
    }

    /// [`Self::lookup`] of an id no smaller than any looked up since `from`
    /// was returned (start at 0): the search goes on from there. Also
    /// returns where the next such search starts.
    pub fn lookup_from(&self, id: &oid, from: u32) -> Result<(Option<u32>, u32)> {
        let index = &self.bundle.index;
        // Ids before `id`'s fanout bucket are smaller, those after it larger:
        // read by ranges, only the bucket's are read and compared.
        let (start, end) = match self.bucket(id) {
            Some(bucket) => {
                let start = from.max(bucket.start);
                (start, bucket.end.max(start))
            }
            None => (from, index.num_objects()),
        };
        self.fill_ids(start..end)?;
        let id_at = |i: u32| index.oid_at_index(i);
        // The keys of the ids searched: no smaller than the one before them,
        // and within those of `id`'s first byte when the bucket is known.
        let after = start
            .checked_sub(1)
            .map_or(0, |before| id_key(id_at(before)));
        let keys = match self.bucket(id) {
            Some(_) => {
                let (low, high) = keys_of_first_byte(id.first_byte()).into_inner();
                low.max(after)..=high
            }
            None => after..=u64::MAX,
        };
        // Ids of a large sorted batch lie a few entries apart: galloping from
        // where the last search ended reads neighbouring entries only.
        if expected_distance(id, &(start..end), &keys) < GALLOP_BELOW {
            return Ok(gallop_search(id, start..end, id_at));
        }
        Ok(interpolation_search(id, start..end, keys, id_at))
    }

    /// Lookups of ids in ascending order (repeats allowed), each going on from
    /// where the last ended ([`Self::lookup_from`]): a sorted batch reads the
    /// index front to back instead of some four places of it far apart an id.
    pub fn sorted_lookups(&self) -> SortedLookups<'_> {
        SortedLookups {
            pack: self,
            from: 0,
        }
    }

    /// The ids of this pack that start with `prefix`, in id order, at most
    /// `limit` of them (a binary search, then the run of matches).
    pub fn ids_with_prefix(
        &self,
        prefix: &gix_hash::Prefix,
        limit: usize,
    ) -> Result<Vec<ObjectId>> {
        // Within the prefix's fanout bucket where it is known (read by ranges,
        // only that bucket's ids are read): the first id no smaller than the
        // prefix padded with zeros.
        let bucket = self
            .bucket(prefix.as_oid())
            .unwrap_or(0..self.num_objects());
        self.fill_ids(bucket.clone())?;
        let (mut low, mut high) = (bucket.start, bucket.end);
        while low < high {
            let middle = low + (high - low) / 2;
            if self.oid_at(middle)?.as_ref() < prefix.as_oid() {
                low = middle + 1;
            } else {
                high = middle;
            }
        }
        let mut found = Vec::new();
        for index in low..bucket.end {
            let id = self.oid_at(index)?;
            if found.len() == limit || prefix.cmp_oid(&id) != std::cmp::Ordering::Equal {
                break;
            }
            found.push(id);
        }
        Ok(found)
    }

    /// The id of the object at index position `index`.
    pub fn oid_at(&self, index: u32) -> Result<ObjectId> {
        self.fill_ids(index..index.saturating_add(1))?;
        Ok(self.bundle.index.oid_at_index(index).to_owned())
    }

    pub fn offset_at(&self, index: u32) -> u64 {
        self.bundle.index.pack_offset_at_index(index)
    }

    /// Every object id of the pack, in index order.
    pub fn oids(&self) -> Result<impl Iterator<Item = ObjectId> + '_> {
        self.fill_index()?;
        let index = &self.bundle.index;
        Ok((0..self.num_objects()).map(|i| index.oid_at_index(i).to_owned()))
    }

    fn order(&self) -> &PackOrder {
        self.by_offset.get_or_init(|| {
            let n = self.num_objects();
            self.order_in_place()
                .or_else(|| self.recorded_order())
                .unwrap_or_else(|| PackOrder::new(n, |i| self.offset_at(i)))
        })
    }

    /// The pack order compaction recorded in the pack's commit-graph, read in
    /// place (see [`RecordedOrder`]), if the graph has it for this pack: its
    /// record names the pack and holds each of its entries.
    fn order_in_place(&self) -> Option<PackOrder> {
        let graph = self.commit_graph.as_ref()?;
        let tables = match graph.pack_order() {
            Ok(tables) => tables?,
            Err(err) => {
                tracing::warn!(pack = %self.hash, %err, "the recorded pack order cannot be read in place");
                return None;
            }
        };
        let index_path = self.bundle.index.path().to_owned();
        let pack = tables.pack;
        match RecordedOrder::new(self.num_objects(), tables.keys, tables.places, index_path) {
            Some(recorded) if pack == self.hash => Some(PackOrder::in_place(recorded)),
            _ => {
                tracing::warn!(pack = %self.hash, "the pack order recorded to be read in place is not this pack's");
                None
            }
        }
    }

    /// The pack order compaction recorded in the pack's commit-graph, if it
    /// did and it is this pack's. Only a shortcut: without it (or when it
    /// cannot be read) the order is built from the index.
    fn recorded_order(&self) -> Option<PackOrder> {
        let places = match self.commit_graph.as_ref()?.pack_places() {
            Ok(places) => places?,
            Err(err) => {
                tracing::warn!(pack = %self.hash, %err, "the recorded pack order cannot be read; sorting the index's offsets");
                return None;
            }
        };
        let pack_len = self.bundle.pack.pack_end() as u64;
        let built =
            PackOrder::recorded(self.num_objects(), places, pack_len, |i| self.offset_at(i));
        if built.is_none() {
            tracing::warn!(pack = %self.hash, "the recorded pack order is not this pack's; sorting the index's offsets");
        }
        built
    }

    /// Take the pack order built ahead from this pack's index ([`EarlyOrder`]),
    /// unless it is not this pack's: another number of entries, or one of 64
    /// entries spread over the index placed elsewhere.
    pub fn with_order(self, order: EarlyOrder) -> Self {
        let n = self.num_objects();
        let order = order.0;
        // A few entries checked against the index: a table read from the wrong
        // place would disagree.
        let agrees = order.sorted.len() == n as usize
            && (0..n).step_by((n as usize / 64).max(1)).all(|index| {
                order.place(index).and_then(|pos| order.get(pos as usize))
                    == Some((self.offset_at(index), index))
            });
        if agrees {
            // Only just opened: nothing has built the order yet.
            let _ = self.by_offset.set(order);
        }
        self
    }

    /// `(offset, index)` of every entry, in pack order.
    pub(crate) fn sorted_offsets(&self) -> &SortedOffsets {
        &self.order().sorted
    }

    /// Where the entry of index position `index` lies in pack order (its place
    /// in [`Self::sorted_offsets`]).
    pub(crate) fn position_of(&self, index: u32) -> Result<usize> {
        match self.order().place(index) {
            Some(pos) => Ok(pos as usize),
            None => Err(PackError::Corrupt(format!(
                "pack {}: index position {index} has no place in pack order",
                self.hash
            ))),
        }
    }

    /// Each entry in pack order as `offset << 32 | index position`, for a pack
    /// under 4 GiB (what compaction records, see `commit_graph::PackEntries`).
    pub(crate) fn order_keys(&self) -> Option<Vec<u64>> {
        u32::try_from(self.bundle.pack.pack_end()).ok()?;
        Some(
            self.sorted_offsets()
                .iter()
                .map(|(offset, index)| (offset << 32) | u64::from(index))
                .collect(),
        )
    }

    /// Index positions of the entries in the order they are stored: decoding in
    /// this order finds delta bases fresh in the cache.
    pub fn indices_in_pack_order(&self) -> impl Iterator<Item = u32> + '_ {
        self.sorted_offsets().iter().map(|(_, index)| index)
    }

    /// Every object with its type, in pack order. Reads entry headers only: a
    /// delta has its base's type, which an earlier entry (or, for a REF_DELTA to a
    /// later one, a header walk down its chain) tells.
    pub fn kinds(&self) -> Result<Vec<(ObjectId, Kind)>> {
        let kinds = self.kinds_in_pack_order()?;
        self.fill_index()?;
        self.sorted_offsets()
            .iter()
            .zip(kinds.iter())
            .map(|((_, index), kind)| Ok((self.oid_at(index)?, kind)))
            .collect()
    }

    /// How many entries are of the types `kept` keeps (what a partial clone
    /// takes of it): from the count of each type, made once per opened pack
    /// (each partial clone answered from the pack would otherwise go through
    /// every entry's type for it).
    pub fn count_of(&self, kept: impl Fn(Kind) -> bool) -> Result<usize> {
        let counts = match self.kind_counts.get() {
            Some(counts) => counts,
            None => {
                let counts = self.kinds_in_pack_order()?.counts();
                self.kind_counts.get_or_init(|| counts)
            }
        };
        Ok(ALL_KINDS
            .iter()
            .filter(|kind| kept(**kind))
            .map(|kind| counts[usize::from(bits_of(*kind))])
            .sum())
    }

    /// Every entry's type, in pack order (as [`Self::kinds`]), worked out once
    /// per opened pack: two bits an object.
    pub(crate) fn kinds_in_pack_order(&self) -> Result<&PackedKinds> {
        if let Some(kinds) = self.kinds.get() {
            return Ok(kinds);
        }
        // Recorded by compaction beside the pack's commits: for a pack read by
        // ranges, the header scan below would read all of it.
        let recorded = match &self.commit_graph {
            Some(graph) => graph.pack_kinds()?,
            None => None,
        };
        if let Some(kinds) = recorded.filter(|k| k.len() == self.num_objects() as usize) {
            return Ok(self.kinds.get_or_init(|| kinds));
        }
        self.fill_all()?;
        let sorted = self.sorted_offsets();
        let mut kinds: Vec<Option<Kind>> = vec![None; sorted.len()];
        let mut state = DecodeState::default();
        for (pos, (offset, index)) in sorted.iter().enumerate() {
            let (header, _) = self.entry_header(index)?;
            let stored = match header {
                Header::Commit => Some(Kind::Commit),
                Header::Tree => Some(Kind::Tree),
                Header::Blob => Some(Kind::Blob),
                Header::Tag => Some(Kind::Tag),
                Header::OfsDelta { .. } | Header::RefDelta { .. } => None,
            };
            let base_kind = match stored {
                Some(_) => None,
                None => self
                    .base_position(offset, &header)?
                    .and_then(|base| kinds.get(base).copied().flatten()),
            };
            let kind = match stored.or(base_kind) {
                Some(kind) => kind,
                None => self.object_header(index, &mut state)?.0,
            };
            kinds[pos] = Some(kind);
        }
        let kinds = PackedKinds::from_kinds(kinds.into_iter().map(|k| k.unwrap_or(Kind::Blob)));
        Ok(self.kinds.get_or_init(|| kinds))
    }

    /// Where each entry's delta base lies in pack order, for every entry in
    /// pack order ([`NO_BASE`] for one stored whole): what compaction records
    /// in the pack's commit-graph, so that a fresh instance reading the pack
    /// by ranges learns a chain's entries without reading them one by one.
    /// Reads every entry's header.
    pub fn delta_bases_in_pack_order(&self) -> Result<Vec<u32>> {
        self.fill_all()?;
        self.sorted_offsets()
            .iter()
            .map(|(offset, index)| {
                let (header, _) = self.entry_header(index)?;
                // Both fit: a pack holds at most u32::MAX entries.
                Ok(self
                    .base_position(offset, &header)?
                    .map_or(NO_BASE, |base| base as u32))
            })
            .collect()
    }

    /// Where the delta base of the entry at `offset`, with `header`, lies in
    /// pack order: `None` for an entry stored whole, or whose base is not an
    /// entry of this pack.
    fn base_position(&self, offset: u64, header: &Header) -> Result<Option<usize>> {
        Ok(match *header {
            Header::OfsDelta { base_distance } => offset
                .checked_sub(base_distance)
                .and_then(|base| self.sorted_offsets().find(base)),
            Header::RefDelta { base_id } => match self.lookup(&base_id)? {
                Some(i) => Some(self.position_of(i)?),
                None => None,
            },
            _ => None,
        })
    }

    /// The object id of the entry starting at `offset`, if an entry starts there.
    pub fn oid_at_offset(&self, offset: u64) -> Result<Option<ObjectId>> {
        let sorted = self.sorted_offsets();
        sorted
            .find(offset)
            .and_then(|pos| sorted.get(pos))
            .map(|(_, index)| self.oid_at(index))
            .transpose()
    }

    /// The inflated size of the object at index position `index`, following deltas
    /// only as far as their headers.
    pub fn object_size(&self, index: u32, state: &mut DecodeState) -> Result<u64> {
        self.object_header(index, state).map(|(_, size)| size)
    }

    /// The type and inflated size of the object at index position `index`.
    pub fn object_header(&self, index: u32, state: &mut DecodeState) -> Result<(Kind, u64)> {
        self.fill_chain(index, false)?;
        let entry = self.entry_at(self.offset_at(index))?;
        let outcome = self
            .bundle
            .pack
            .decode_header(entry, &mut state.inflate, &|id| {
                // The chain's REF_DELTA bases were looked up (their ids read)
                // by `fill_chain`; one that cannot be is not found.
                self.lookup(id)
                    .ok()
                    .flatten()
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
        self.fill_all()?;
        let len = self.bundle.pack.data_len() as u64;
        self.bundle
            .pack
            .entry_slice(0..len)
            .ok_or_else(|| PackError::Corrupt(format!("pack {} cannot be mapped whole", self.hash)))
    }

    /// Whether any entry of the pack is an OFS_DELTA (which needs the client's `ofs-delta`).
    pub fn has_ofs_deltas(&self) -> Result<bool> {
        self.fill_all()?;
        for index in 0..self.num_objects() {
            if matches!(self.entry_header(index)?.0, Header::OfsDelta { .. }) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The header of the stored entry at index position `index`, without reading its data.
    pub fn entry_header(&self, index: u32) -> Result<(Header, u64)> {
        let offset = self.offset_at(index);
        if self.sparse.is_some() {
            self.fill(self.entry_range(offset, false))?;
        }
        let entry = self.entry_at(self.offset_at(index))?;
        Ok((entry.header, entry.decompressed_size))
    }

    /// The inflated size of the stored entry at `index` (see
    /// [`Self::entry_header`]) and the id of its delta base (`None` for a whole
    /// object): an OFS_DELTA's base found by its offset.
    pub fn entry_base(&self, index: u32) -> Result<(u64, Option<ObjectId>)> {
        let (header, size) = self.entry_header(index)?;
        let base = match header {
            Header::OfsDelta { base_distance } => {
                let offset = self.offset_at(index);
                let base_offset = offset.checked_sub(base_distance).ok_or_else(|| {
                    PackError::Corrupt(format!(
                        "pack {}: delta at {offset} points before the pack start",
                        self.hash
                    ))
                })?;
                Some(self.oid_at_offset(base_offset)?.ok_or_else(|| {
                    PackError::Corrupt(format!(
                        "pack {}: the base of the delta at {offset} is not an entry",
                        self.hash
                    ))
                })?)
            }
            Header::RefDelta { base_id } => Some(base_id),
            _ => None,
        };
        Ok((size, base))
    }

    /// The entry starting at `offset`, its header read.
    fn entry_at(&self, offset: u64) -> Result<gix_pack::data::Entry> {
        self.bundle
            .pack
            .entry(offset)
            .map_err(gix_err("reading pack entry"))
    }

    /// `(offset, index)` of the entry at place `pos` in pack order.
    fn at_pos(&self, pos: usize) -> Result<(u64, u32)> {
        self.sorted_offsets().get(pos).ok_or_else(|| {
            PackError::Corrupt(format!("pack {}: no entry at position {pos}", self.hash))
        })
    }

    /// [`Self::entry_base`] of the entry at `place` (see [`Self::places_of`]),
    /// an OFS_DELTA's base given as its place in pack order, found by
    /// searching back from the entry ([`SortedOffsets::find_before`]).
    pub(crate) fn entry_base_at(&self, place: EntryPlace) -> Result<(u64, Option<StoredBase>)> {
        let pos = place.pos as usize;
        let sorted = self.sorted_offsets();
        let (offset, _) = self.at_pos(pos)?;
        if self.sparse.is_some() {
            self.fill(self.range_at_pos(pos, false))?;
        }
        let entry = self.entry_at(offset)?;
        let base = match entry.header {
            Header::OfsDelta { base_distance } => {
                let base = offset
                    .checked_sub(base_distance)
                    .and_then(|base| sorted.find_before(base, pos))
                    .ok_or_else(|| {
                        PackError::Corrupt(format!(
                            "pack {}: the base of the delta at {offset} is not an entry before it",
                            self.hash
                        ))
                    })?;
                Some(StoredBase::Place(base))
            }
            Header::RefDelta { base_id } => Some(StoredBase::Id(base_id)),
            _ => None,
        };
        Ok((entry.decompressed_size, base))
    }

    /// The object id of the entry at place `pos` in pack order.
    pub(crate) fn oid_at_pos(&self, pos: usize) -> Result<ObjectId> {
        self.oid_at(self.at_pos(pos)?.1)
    }

    /// The stored entry at `offset`, with its compressed bytes, CRC-checked against the index.
    pub fn raw_entry(&self, index: u32) -> Result<RawEntry<'_>> {
        self.raw_entry_at_pos(self.position_of(index)?)
    }

    /// The stored entry at position `pos` in pack order (see [`Self::raw_entry`]).
    pub(crate) fn raw_entry_at_pos(&self, pos: usize) -> Result<RawEntry<'_>> {
        let index = self.sorted_offsets().get(pos).map(|(_, index)| index);
        let crc = index.and_then(|index| self.bundle.index.crc32_at_index(index));
        self.raw_entry_at(EntryPlace {
            pos: pos.try_into().unwrap_or(u32::MAX),
            crc,
        })
    }

    /// Where the entries at index positions `indices` lie in pack order, each
    /// with the CRC its index records, in the order asked. Looked up in index
    /// order, whatever the order asked: both tables are in index order, and a
    /// request's objects, visited as they come, cost a cache miss each in
    /// both (a fifth of the server CPU of a 400k-object clone).
    pub(crate) fn places_of(&self, indices: &[u32]) -> Result<Vec<EntryPlace>> {
        let asked: Vec<(u32, u32)> = indices.iter().copied().zip(0u32..).collect();
        let by_index = radix_sort(
            asked,
            |(index, _)| u64::from(index),
            u64::from(self.num_objects()),
        );
        let mut places = vec![EntryPlace::default(); indices.len()];
        for (index, at) in by_index {
            places[at as usize] = EntryPlace {
                // Fits: a pack holds at most u32::MAX entries.
                pos: self.position_of(index)? as u32,
                crc: self.bundle.index.crc32_at_index(index),
            };
        }
        Ok(places)
    }

    /// The stored entry at `place` (see [`Self::places_of`]), checked against
    /// the CRC given.
    pub(crate) fn raw_entry_at(&self, place: EntryPlace) -> Result<RawEntry<'_>> {
        let pos = place.pos as usize;
        let sorted = self.sorted_offsets();
        let (offset, _) = self.at_pos(pos)?;
        let end = sorted
            .get(pos + 1)
            .map(|(o, _)| o)
            .unwrap_or(self.bundle.pack.pack_end() as u64);
        self.fill(offset..end)?;
        let entry = self.entry_at(offset)?;
        let whole = self.bundle.pack.entry_slice(offset..end).ok_or_else(|| {
            PackError::Corrupt(format!(
                "pack {}: entry at {offset} is out of bounds",
                self.hash
            ))
        })?;
        if let Some(expected) = place.crc {
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
    cache_bytes: usize,
}

impl Default for DecodeState {
    fn default() -> Self {
        DecodeState::with_cache_bytes(super::DELTA_CACHE_BYTES)
    }
}

impl DecodeState {
    /// Keep at most `bytes` of decoded delta bases.
    pub fn with_cache_bytes(bytes: usize) -> Self {
        DecodeState {
            inflate: gix_zlib::Inflate::default(),
            cache: gix_pack::cache::lru::MemoryCappedHashmap::new(bytes),
            cache_bytes: bytes,
        }
    }

    /// Drop the cached delta bases (the bound stays).
    pub fn release_cache(&mut self) {
        self.cache = gix_pack::cache::lru::MemoryCappedHashmap::new(self.cache_bytes);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use std::sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc,
    };

    use gix_hash::ObjectId;

    use super::{
        gallop_search, interpolation_search, keys_of_first_byte, DecodeState, EarlyOrder, Kind,
        PackError, PackHandle, PackOrder, RangeSource, RangedIndexFile, RangedPackFile,
        SortedOffsets, INDEX_BLOCK_BYTES,
    };

    /// What a store was asked for: bytes, and batches of ranges.
    #[derive(Default)]
    struct Asked {
        bytes: AtomicU64,
        batches: AtomicU64,
    }

    /// A stored file served by ranges, counting what it is asked for; it fails
    /// every read while `down` is set.
    struct Stored {
        data: Vec<u8>,
        read: Arc<Asked>,
        down: Arc<AtomicBool>,
    }

    impl RangeSource for Stored {
        fn read_range(&self, range: std::ops::Range<u64>) -> crate::Result<Vec<u8>> {
            if self.down.load(Ordering::SeqCst) {
                return Err(PackError::Corrupt("the store is down".into()));
            }
            self.read
                .bytes
                .fetch_add(range.end - range.start, Ordering::SeqCst);
            Ok(self.data[range.start as usize..range.end as usize].to_vec())
        }

        fn read_ranges(&self, ranges: &[std::ops::Range<u64>]) -> crate::Result<Vec<Vec<u8>>> {
            self.read.batches.fetch_add(1, Ordering::SeqCst);
            ranges.iter().map(|r| self.read_range(r.clone())).collect()
        }
    }

    /// A pack of `n` small distinct blobs, written whole into `dir`.
    fn blobs_pack(n: u32, dir: &std::path::Path) -> crate::ingest::IngestedPack {
        use crate::writer::{write_whole_pack, WholeObject};
        let contents: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                format!("object {i}\n")
                    .repeat(i as usize % 5 + 1)
                    .into_bytes()
            })
            .collect();
        let objects: Vec<WholeObject<'_>> = contents
            .iter()
            .map(|content| WholeObject {
                id: gix_object::compute_hash(gix_hash::Kind::Sha1, Kind::Blob, content).unwrap(),
                kind: Kind::Blob,
                content,
            })
            .collect();
        write_whole_pack(&objects, 1, dir).unwrap()
    }

    /// [`blobs_pack`], and the pack opened from its local files.
    fn opened_blobs_pack(
        n: u32,
        dir: &std::path::Path,
    ) -> (crate::ingest::IngestedPack, PackHandle) {
        let written = blobs_pack(n, dir);
        let whole = PackHandle::open(&written.index_path).unwrap();
        (written, whole)
    }

    #[test]
    fn each_reader_keeps_its_delta_bases_under_the_bound_its_object_db_was_given() {
        use crate::odb::{NoLoose, ObjectDb, DELTA_CACHE_BYTES};
        let dir = tempfile::tempdir().unwrap();
        let (written, pack) = opened_blobs_pack(10, dir.path());
        let db = ObjectDb::new(vec![Arc::new(pack)], Arc::new(NoLoose));
        assert_eq!(db.reader().state.cache_bytes, DELTA_CACHE_BYTES);
        let small = db.clone().with_delta_cache_bytes(1 << 20);
        // Kept by clones (a compaction's walks each clone the db they are given).
        for db in [&small, &small.clone()] {
            let mut reader = db.reader();
            assert_eq!(reader.state.cache_bytes, 1 << 20);
            reader.release_cache();
            assert_eq!(reader.state.cache_bytes, 1 << 20);
            let mut buf = Vec::new();
            assert!(reader
                .read(&written.objects[0].id, &mut buf)
                .unwrap()
                .is_some());
        }
        assert_eq!(db.reader().state.cache_bytes, DELTA_CACHE_BYTES);
    }

    #[test]
    fn entries_found_in_a_batch_read_as_one_by_one_and_a_changed_byte_fails_its_crc() {
        let dir = tempfile::tempdir().unwrap();
        let (written, pack) = opened_blobs_pack(3000, dir.path());
        // Asked out of index order, some twice.
        let asked: Vec<u32> = (0..3000u32)
            .map(|i| (i * 7919) % 3000)
            .chain([5, 5])
            .collect();
        let places = pack.places_of(&asked).unwrap();
        assert_eq!(places.len(), asked.len());
        for (&index, place) in asked.iter().zip(&places) {
            assert_eq!(place.pos as usize, pack.position_of(index).unwrap());
            assert!(place.crc.is_some());
            let (one, batch) = (
                pack.raw_entry(index).unwrap(),
                pack.raw_entry_at(*place).unwrap(),
            );
            assert_eq!(one.whole, batch.whole);
            assert_eq!(one.compressed, batch.compressed);
        }

        // One byte of an entry's data changed: it no longer reads.
        let pack_path = written.index_path.with_extension("pack");
        let mut bytes = std::fs::read(&pack_path).unwrap();
        let index = asked[100];
        let (offset, end) = (pack.offset_at(index), pack.entry_end(pack.offset_at(index)));
        bytes[(offset + end) as usize / 2] ^= 0x40;
        let copy = dir.path().join("copy");
        std::fs::create_dir_all(&copy).unwrap();
        let copy_index = copy.join(written.index_path.file_name().unwrap());
        std::fs::copy(&written.index_path, &copy_index).unwrap();
        std::fs::write(copy_index.with_extension("pack"), &bytes).unwrap();
        let changed = PackHandle::open(&copy_index).unwrap();
        let err = changed
            .raw_entry_at(places[100])
            .err()
            .expect("a CRC failure");
        assert!(err.to_string().contains("CRC"), "{err}");
        assert!(changed.raw_entry_at(places[101]).is_ok());
    }

    #[test]
    fn every_id_of_a_pack_is_found_where_gix_finds_it_and_an_absent_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let n = 5000u32;
        let (_, pack) = opened_blobs_pack(n, dir.path());
        assert!(pack.fan.is_some(), "a version 2 index's fanout is read");
        let gix = &pack.bundle.index;
        let mut from = 0;
        for i in 0..n {
            let id = pack.oid_at(i).unwrap();
            assert_eq!(pack.lookup(&id).unwrap(), Some(i));
            // One after another in id order, as a batch looks them up.
            let (found, next) = pack.lookup_from(&id, from).unwrap();
            assert_eq!((found, next), (Some(i), i));
            from = next;
            // An id just past this one (its last byte one more) is absent,
            // unless it is the next id; where it would go is after this one.
            let mut bytes = id.as_bytes().to_vec();
            if bytes[19] == 0xff {
                continue;
            }
            bytes[19] += 1;
            let near = ObjectId::from_bytes_or_panic(&bytes);
            assert_eq!(pack.lookup(&near).unwrap(), gix.lookup(near));
            let expected = gix.lookup(near).unwrap_or(i + 1);
            assert_eq!(pack.lookup_from(&near, i).unwrap().1, expected);
        }
        for byte in [0u8, 0x5a, 0xff] {
            let absent = ObjectId::from_bytes_or_panic(&[byte; 20]);
            assert_eq!(pack.lookup(&absent).unwrap(), None);
            let (found, at) = pack.lookup_from(&absent, 0).unwrap();
            assert_eq!(found, None);
            assert!((0..at).all(|i| gix.oid_at_index(i) < absent.as_ref()));
            assert!((at..n).all(|i| gix.oid_at_index(i) > absent.as_ref()));
        }
    }

    #[test]
    fn sorted_lookups_find_what_single_lookups_find_repeats_and_absent_ids_included() {
        let dir = tempfile::tempdir().unwrap();
        let (_, pack) = opened_blobs_pack(3000, dir.path());
        // Every third id, each twice, and beside each an id one past it (absent,
        // or the next id), as the batches of compaction's lookups look.
        let mut ids = Vec::new();
        for i in (0..3000).step_by(3) {
            let id = pack.oid_at(i).unwrap();
            let mut past = id.as_bytes().to_vec();
            past[19] = past[19].wrapping_add(1);
            ids.extend([id, id, ObjectId::from_bytes_or_panic(&past)]);
        }
        ids.extend([[0u8; 20], [0xff; 20]].map(|b| ObjectId::from_bytes_or_panic(&b)));
        ids.sort();
        let mut lookups = pack.sorted_lookups();
        let mut found = 0;
        for id in &ids {
            let by_batch = lookups.lookup(id).unwrap();
            assert_eq!(by_batch, pack.lookup(id).unwrap(), "{id}");
            found += usize::from(by_batch.is_some());
        }
        assert!(found >= 2000, "every listed id twice: {found}");
    }

    /// Ids spread evenly, as hashes are: `n` of them from a seeded generator
    /// (splitmix64), sorted.
    fn even_ids(n: usize, seed: u64) -> Vec<ObjectId> {
        let mut state = seed;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut ids: Vec<ObjectId> = (0..n)
            .map(|_| {
                let mut bytes = [0u8; 24];
                for chunk in bytes.chunks_mut(8) {
                    chunk.copy_from_slice(&next().to_be_bytes());
                }
                ObjectId::from_bytes_or_panic(&bytes[..20])
            })
            .collect();
        ids.sort();
        ids
    }

    #[test]
    fn guesses_find_an_id_among_evenly_spread_ids_in_a_few_reads() {
        // One fanout bucket of an index of ~16M objects.
        let first = 0x42u8;
        let ids: Vec<ObjectId> = even_ids(65_536, 7)
            .into_iter()
            .map(|id| {
                let mut bytes = id.as_bytes().to_vec();
                bytes[0] = first;
                ObjectId::from_bytes_or_panic(&bytes)
            })
            .collect();
        let mut sorted = ids.clone();
        sorted.sort();
        let reads = std::cell::Cell::new(0u64);
        let id_at = |i: u32| {
            reads.set(reads.get() + 1);
            sorted[i as usize].as_ref()
        };
        let all = 0..sorted.len() as u32;
        for (i, id) in sorted.iter().enumerate().step_by(7) {
            let found = interpolation_search(id, all.clone(), keys_of_first_byte(first), id_at);
            assert_eq!(found, (Some(i as u32), i as u32));
        }
        let lookups = sorted.len().div_ceil(7) as u64;
        // Halving takes 16 reads here; the guesses come within a few ids.
        let mean = reads.get() as f64 / lookups as f64;
        assert!(mean < 6.0, "{mean} reads a lookup");
    }

    proptest! {
        /// Whatever the ids (spread evenly, or sharing long prefixes as few
        /// hashes do), the range and the keys said to bound it (right or
        /// wrong), the search answers as a halving search of the range does, and
        /// so does galloping from the range's start.
        #[test]
        fn an_interpolation_search_answers_as_a_halving_one(
            count in 0usize..3000,
            seed in any::<u64>(),
            shared in 0usize..=20,
            clustered in 0usize..3000,
            probe in any::<proptest::sample::Index>(),
            present in any::<bool>(),
            cut in (any::<proptest::sample::Index>(), any::<proptest::sample::Index>()),
            keys in (any::<u64>(), any::<u64>()),
        ) {
            // Some ids forced to share their first `shared` bytes.
            let mut ids = even_ids(count, seed);
            let lead = ids.first().map(|id| id.as_bytes()[..shared].to_vec());
            for id in ids.iter_mut().take(clustered) {
                let mut bytes = id.as_bytes().to_vec();
                bytes[..shared].copy_from_slice(lead.as_deref().unwrap_or_default());
                *id = ObjectId::from_bytes_or_panic(&bytes);
            }
            ids.sort();
            ids.dedup();
            let absent = even_ids(1, !seed)[0];
            let id = match (present, ids.is_empty()) {
                (true, false) => ids[probe.index(ids.len())],
                _ => absent,
            };
            let (a, b) = (cut.0.index(ids.len() + 1), cut.1.index(ids.len() + 1));
            let (start, end) = (a.min(b), a.max(b));
            let keys = keys.0.min(keys.1)..=keys.0.max(keys.1);
            let got = interpolation_search(&id, start as u32..end as u32, keys, |i| {
                ids[i as usize].as_ref()
            });
            let expected = match ids[start..end].binary_search(&id) {
                Ok(i) => (Some((start + i) as u32), (start + i) as u32),
                Err(i) => (None, (start + i) as u32),
            };
            prop_assert_eq!(got, expected);
            let galloped = gallop_search(&id, start as u32..end as u32, |i| ids[i as usize].as_ref());
            prop_assert_eq!(galloped, expected);
        }
    }

    /// The pack at `index_path` as a fresh instance opens it from the store:
    /// pack and index read by ranges into `dir`; the index's reads counted.
    fn ranged_copy(
        index_path: &std::path::Path,
        dir: &std::path::Path,
        read: &Arc<Asked>,
        down: &Arc<AtomicBool>,
    ) -> PackHandle {
        let stored = |path: &std::path::Path, read: &Arc<Asked>| {
            Box::new(Stored {
                data: std::fs::read(path).unwrap(),
                read: read.clone(),
                down: down.clone(),
            })
        };
        std::fs::create_dir_all(dir).unwrap();
        let copy = dir.join(index_path.file_name().unwrap());
        let index_len = std::fs::metadata(index_path).unwrap().len();
        let index = RangedIndexFile::create(&copy, index_len, stored(index_path, read)).unwrap();
        let pack_path = index_path.with_extension("pack");
        let pack_len = std::fs::metadata(&pack_path).unwrap().len();
        let pack = RangedPackFile::create(
            &copy.with_extension("pack"),
            pack_len,
            stored(&pack_path, &Arc::default()),
        )
        .unwrap();
        PackHandle::open_ranged_index(index, pack).unwrap()
    }

    #[test]
    fn an_index_read_by_ranges_answers_as_the_whole_one_reading_a_bucket_a_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let n = 20_000u32;
        let (written, whole) = opened_blobs_pack(n, dir.path());
        let index = std::fs::read(&written.index_path).unwrap();
        let (read, down) = (Arc::<Asked>::default(), Arc::new(AtomicBool::new(false)));
        let handle = ranged_copy(&written.index_path, &dir.path().join("a"), &read, &down);

        // Opening read the header, the tables after the ids and the trailer,
        // each block-rounded: most ids not.
        let opened = read.bytes.load(Ordering::SeqCst);
        let after_ids = 8 * u64::from(n) + 40;
        assert!(
            opened <= after_ids + 3 * INDEX_BLOCK_BYTES && opened < index.len() as u64 / 2,
            "opening read {opened} of {} bytes",
            index.len()
        );
        assert_eq!(handle.num_objects(), n);
        assert_eq!(handle.hash(), whole.hash());
        assert!(handle.by_offset.get().is_some(), "the order built at open");
        assert_eq!(handle.sorted_offsets(), whole.sorted_offsets());

        // A few lookups far apart read a block or two each, not the index.
        for i in [n / 8, n / 2, n - n / 8] {
            let before = read.bytes.load(Ordering::SeqCst);
            assert_eq!(handle.lookup(&whole.oid_at(i).unwrap()).unwrap(), Some(i));
            assert!(
                read.bytes.load(Ordering::SeqCst) - before <= 2 * INDEX_BLOCK_BYTES,
                "a lookup reads the blocks of its bucket"
            );
        }
        let partly = handle.index_filled_bytes().unwrap();
        assert!(
            partly < index.len() as u64,
            "{partly} bytes of the index read"
        );
        // Ids about to be looked up come down together, and are then local.
        let soon = [n / 4, n / 3, 3 * n / 4];
        let ids: Vec<ObjectId> = soon.iter().map(|&i| whole.oid_at(i).unwrap()).collect();
        handle.prefetch_lookups(&ids).unwrap();
        let prefetched = read.bytes.load(Ordering::SeqCst);
        for (id, i) in ids.iter().zip(soon) {
            assert_eq!(handle.lookup(id).unwrap(), Some(i));
        }
        assert_eq!(
            read.bytes.load(Ordering::SeqCst),
            prefetched,
            "nothing more read"
        );

        let mut state = DecodeState::default();
        let (mut got, mut want) = (Vec::new(), Vec::new());
        for i in (0..n).step_by(997) {
            let id = whole.oid_at(i).unwrap();
            assert_eq!(handle.lookup(&id).unwrap(), Some(i));
            assert_eq!(handle.oid_at(i).unwrap(), id);
            assert_eq!(handle.lookup_from(&id, 0).unwrap(), (Some(i), i));
            assert_eq!(handle.lookup_from(&id, i).unwrap(), (Some(i), i));
            assert_eq!(handle.offset_at(i), whole.offset_at(i));
            handle.decode(i, &mut got, &mut state).unwrap();
            whole.decode(i, &mut want, &mut state).unwrap();
            assert_eq!(got, want);
        }
        // Abbreviated ids: the same answers, reading a bucket's blocks at most.
        for i in [n / 5, n / 2 + 7, n - 3] {
            let hex = whole.oid_at(i).unwrap().to_string();
            for len in [4, 6, 40] {
                let prefix = gix_hash::Prefix::from_hex(&hex[..len]).unwrap();
                let before = read.bytes.load(Ordering::SeqCst);
                let got = handle.ids_with_prefix(&prefix, 64).unwrap();
                assert!(
                    read.bytes.load(Ordering::SeqCst) - before <= 2 * INDEX_BLOCK_BYTES,
                    "a prefix reads the blocks of its bucket"
                );
                assert_eq!(got, whole.ids_with_prefix(&prefix, 64).unwrap());
                assert!(got.iter().all(|id| id.to_string().starts_with(&hex[..len])));
                assert!(got.contains(&whole.oid_at(i).unwrap()));
            }
        }
        let absent = ObjectId::from_bytes_or_panic(&[0x5a; 20]);
        assert_eq!(handle.lookup(&absent).unwrap(), None);
        assert_eq!(
            handle.lookup_from(&absent, 0).unwrap(),
            whole.lookup_from(&absent, 0).unwrap()
        );
        // The rest comes down on demand; the file is then the index.
        handle.fill_index().unwrap();
        assert_eq!(handle.index_filled_bytes(), Some(index.len() as u64));
        assert_eq!(std::fs::read(handle.index_path()).unwrap(), index);
        assert!(handle.oids().unwrap().eq(whole.oids().unwrap()));
    }

    #[test]
    fn a_batch_of_lookups_reads_the_buckets_it_needs_in_one_go() {
        let dir = tempfile::tempdir().unwrap();
        let n = 20_000u32;
        let (written, whole) = opened_blobs_pack(n, dir.path());
        let far_apart = [n / 9, n / 3, n / 2, 4 * n / 5];
        let ids: Vec<ObjectId> = far_apart
            .iter()
            .map(|&i| whole.oid_at(i).unwrap())
            .collect();
        let down = Arc::new(AtomicBool::new(false));
        for (name, prefetch) in [("locate_many", false), ("prefetch", true)] {
            let read = Arc::<Asked>::default();
            let handle = ranged_copy(&written.index_path, &dir.path().join(name), &read, &down);
            let db = super::super::ObjectDb::new(
                vec![Arc::new(handle)],
                Arc::new(super::super::NoLoose),
            );
            let opened = read.batches.load(Ordering::SeqCst);
            // What a tree walk does with a tree's subtrees, and a pack writer
            // with what it sends: ids in four buckets, one batch of reads.
            let found = if prefetch {
                db.prefetch(&ids).unwrap();
                ids.iter().map(|id| db.locate(id).unwrap()).collect()
            } else {
                db.locate_many(&ids).unwrap()
            };
            assert_eq!(read.batches.load(Ordering::SeqCst), opened + 1, "{name}");
            let want: Vec<_> = far_apart
                .iter()
                .map(|&index| Some(super::super::Location::Packed { pack: 0, index }))
                .collect();
            assert_eq!(found, want, "{name}");
        }
    }

    #[test]
    fn an_id_that_cannot_be_read_is_an_error_not_an_absent_object() {
        let dir = tempfile::tempdir().unwrap();
        let n = 20_000u32;
        let (written, whole) = opened_blobs_pack(n, dir.path());
        let (read, down) = (Arc::<Asked>::default(), Arc::new(AtomicBool::new(false)));
        let handle = ranged_copy(&written.index_path, &dir.path().join("a"), &read, &down);
        let middle = n / 2;
        let id = whole.oid_at(middle).unwrap();

        down.store(true, Ordering::SeqCst);
        assert!(handle.lookup(&id).is_err());
        assert!(handle.lookup_from(&id, 0).is_err());
        assert!(handle.oid_at(middle).is_err());
        assert!(handle.oids().is_err());
        let db =
            super::super::ObjectDb::new(vec![Arc::new(handle)], Arc::new(super::super::NoLoose));
        assert!(db.contains(&id).is_err());
        assert!(db.locate_many(&[id]).is_err());

        // Nothing sticks: once the store answers, so does the pack.
        down.store(false, Ordering::SeqCst);
        assert!(db.contains(&id).unwrap());
        assert_eq!(db.packs()[0].lookup(&id).unwrap(), Some(middle));
    }

    #[test]
    fn an_order_built_from_the_index_offset_table_is_the_packs_own() {
        let dir = tempfile::tempdir().unwrap();
        let written = blobs_pack(200, dir.path());
        let index_path = written.index_path.clone();
        let index = std::fs::read(&index_path).unwrap();
        let pack_len = std::fs::metadata(&written.pack_path).unwrap().len();

        let range = EarlyOrder::offsets_range(pack_len, index.len() as u64).unwrap();
        let early = EarlyOrder::build(&index[range.start as usize..range.end as usize]).unwrap();
        let handle = PackHandle::open(&index_path).unwrap().with_order(early);
        let own = PackHandle::open(&index_path).unwrap();
        assert!(
            handle.by_offset.get().is_some(),
            "the early order was taken"
        );
        assert_eq!(own.num_objects(), 200);
        assert_eq!(handle.sorted_offsets(), own.sorted_offsets());
        for index in 0..own.num_objects() {
            assert_eq!(
                handle.position_of(index).unwrap(),
                own.position_of(index).unwrap()
            );
        }

        // The table of another shape of index is refused, or not taken.
        assert_eq!(EarlyOrder::offsets_range(1 << 31, index.len() as u64), None);
        assert_eq!(
            EarlyOrder::offsets_range(pack_len, index.len() as u64 + 8),
            None
        );
        assert!(EarlyOrder::build(&[0, 0, 0]).is_err());
        assert!(EarlyOrder::build(&[0x80, 0, 0, 0]).is_err());
        let shifted = &index[range.start as usize - 4..range.end as usize - 4];
        let wrong = PackHandle::open(&index_path).unwrap().with_order(
            EarlyOrder::build(shifted).unwrap_or_else(|_| {
                EarlyOrder::build(&vec![0; (range.end - range.start) as usize]).unwrap()
            }),
        );
        assert!(
            wrong.by_offset.get().is_none(),
            "a table from the wrong place is not taken"
        );
        assert_eq!(wrong.sorted_offsets(), own.sorted_offsets());
    }

    /// A pack's order as compaction records it in a graph (keys in pack
    /// order, then each index position's place, as the two chunks hold them),
    /// written to `path` big-endian; returns where the places begin.
    fn write_order(own: &PackHandle, path: &std::path::Path) -> u64 {
        let keys = own.order_keys().unwrap();
        let mut bytes: Vec<u8> = keys.iter().flat_map(|key| key.to_be_bytes()).collect();
        let places_at = bytes.len() as u64;
        for index in 0..own.num_objects() {
            bytes.extend_from_slice(&(own.position_of(index).unwrap() as u32).to_be_bytes());
        }
        std::fs::write(path, bytes).unwrap();
        places_at
    }

    /// The recorded order, read in place in blocks of 256 entries.
    fn read_in_place(
        own: &PackHandle,
        path: &std::path::Path,
        places_at: u64,
        index_path: &std::path::Path,
    ) -> PackOrder {
        use super::{super::recorded::BlockTable, RecordedOrder};
        let n = own.num_objects();
        let open = || std::fs::File::open(path).unwrap();
        let keys = BlockTable::with_blocks_of(open(), 0, n, 256);
        let places = BlockTable::with_blocks_of(open(), places_at, n, 256);
        PackOrder::in_place(RecordedOrder::new(n, keys, places, index_path.to_owned()).unwrap())
    }

    #[test]
    fn an_order_read_in_place_answers_as_the_sort_and_a_damaged_block_from_the_sort() {
        let dir = tempfile::tempdir().unwrap();
        let (written, own) = opened_blobs_pack(3000, dir.path());
        let n = own.num_objects();
        let record = dir.path().join("order");
        let places_at = write_order(&own, &record);
        let agrees = |order: &PackOrder| {
            assert_eq!(&order.sorted, own.sorted_offsets());
            for index in 0..n {
                assert_eq!(
                    order.place(index),
                    Some(own.position_of(index).unwrap() as u32)
                );
            }
            assert_eq!(order.place(n), None);
            assert_eq!(order.get(n as usize), None);
            for pos in [0, 1, 700, 2999] {
                let (offset, _) = own.sorted_offsets().get(pos).unwrap();
                assert_eq!(order.sorted.find(offset), Some(pos));
                assert_eq!(
                    order.sorted.find(offset + 1),
                    own.sorted_offsets().find(offset + 1)
                );
                assert_eq!(order.sorted.find_before(offset, pos + 1), Some(pos));
                assert_eq!(order.sorted.find_before(offset, pos), None);
            }
        };
        let order = read_in_place(&own, &record, places_at, &written.index_path);
        assert!(matches!(order.sorted, SortedOffsets::Recorded(_)));
        agrees(&order);
        // Only the blocks asked for are read.
        let order = read_in_place(&own, &record, places_at, &written.index_path);
        assert_eq!(order.get(5), own.sorted_offsets().get(5));
        let SortedOffsets::Recorded(recorded) = &order.sorted else {
            unreachable!()
        };
        assert_eq!(recorded.blocks_read(), (1, 0));

        // Two keys swapped in one block, a place past the pack in another: the
        // blocks fail their checks and are answered from the index's sort.
        let mut bytes = std::fs::read(&record).unwrap();
        bytes[8 * 600..8 * 602].rotate_left(8);
        let past = places_at as usize + 4 * 2100;
        bytes[past..past + 4].copy_from_slice(&n.to_be_bytes());
        std::fs::write(&record, &bytes).unwrap();
        agrees(&read_in_place(
            &own,
            &record,
            places_at,
            &written.index_path,
        ));

        // Without an index to sort, a damaged block answers nothing (never a
        // wrong place); the others as recorded.
        let order = read_in_place(&own, &record, places_at, &dir.path().join("gone.idx"));
        assert_eq!(order.get(600), None);
        assert_eq!(order.place(2100), None);
        assert_eq!(order.get(0), own.sorted_offsets().get(0));
        assert_eq!(order.get(2999), own.sorted_offsets().get(2999));
        assert_eq!(order.place(0), Some(own.position_of(0).unwrap() as u32));
    }

    #[test]
    fn a_pack_takes_the_order_its_graph_records_in_place_only_when_it_names_the_pack() {
        use crate::commit_graph::{write, CommitGraph, PackEntries};
        let dir = tempfile::tempdir().unwrap();
        let (written, own) = opened_blobs_pack(500, dir.path());
        let keys = own.order_keys().unwrap();
        let places: Vec<u32> = (0..own.num_objects())
            .map(|index| own.position_of(index).unwrap() as u32)
            .collect();
        let info = crate::odb::CommitInfo {
            tree: ObjectId::empty_tree(gix_hash::Kind::Sha1),
            parents: Vec::new().into(),
            time: 1_600_000_000,
        };
        let commit = ObjectId::from_bytes_or_panic(&[7; 20]);
        let opened_with = |pack: ObjectId| {
            let graph = dir.path().join(pack.to_string());
            let entries = PackEntries {
                places: &places,
                order: Some((pack, &keys)),
                ..Default::default()
            };
            assert!(write(&[(commit, &info)], &[], &entries, &graph).unwrap());
            PackHandle::open(&written.index_path)
                .unwrap()
                .with_commit_graph(CommitGraph::open(&graph).unwrap())
        };
        let handle = opened_with(*own.hash());
        assert!(matches!(
            handle.sorted_offsets(),
            SortedOffsets::Recorded(_)
        ));
        assert_eq!(handle.sorted_offsets(), own.sorted_offsets());
        // Another pack's record: the places are checked as taken instead.
        let handle = opened_with(ObjectId::from_bytes_or_panic(&[1; 20]));
        assert!(matches!(handle.sorted_offsets(), SortedOffsets::Packed(_)));
        assert_eq!(handle.sorted_offsets(), own.sorted_offsets());
    }
}
