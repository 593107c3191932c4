//! Writing the pack itself: the header, every entry as its reuse plan or the delta
//! search says, and the trailing checksum, hashed as it streams out so the pack
//! is never held whole.

use std::io::{Read, Write};

use gix_hash::ObjectId;
use gix_object::Kind;
use gix_pack::data::entry::Header;
use sha1::Digest;
use std::collections::HashMap as StdHashMap;

use super::{
    delta_search::{delta_search, NewDeltas},
    reuse::{classify, reused_base, Item, Outside, Plan, Positions},
    zlib::Zlib,
    Phase, ProgressFn, WriteOptions, WriteStats,
};
use crate::{
    entry::{kind_type, write_ofs_distance, write_type_and_size, OBJ_OFS_DELTA, OBJ_REF_DELTA},
    kinds::PackedKinds,
    odb::{EntryPlace, Location, ObjectDb, PackHandle},
    tip_entries::TipEntry,
    walk::WalkObject,
    PackError, Result,
};

struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: sha1::Sha1,
    written: u64,
}

impl HashingWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        // In pieces, so a big entry never sits whole in a sink's buffer.
        for piece in bytes.chunks(256 * 1024) {
            self.hasher.update(piece);
            self.written += piece.len() as u64;
            self.inner
                .write_all(piece)
                .map_err(PackError::io("sending pack data"))?;
        }
        Ok(())
    }
}

impl Write for HashingWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.written += buf.len() as u64;
        self.inner.write_all(buf)?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// A stored pack whose entries go out first, all of them or all but its blobs.
pub(super) struct Prefix<'a> {
    pack: &'a PackHandle,
    /// Each entry's type in pack order, when some types stay out.
    kinds: Option<&'a PackedKinds>,
    leave: super::Leave,
    /// Entries that go out.
    count: u32,
}

impl<'a> Prefix<'a> {
    pub(super) fn new(pack: &'a PackHandle, leave: super::Leave) -> Result<Self> {
        let kinds = match leave {
            super::Leave::Nothing => None,
            _ => Some(pack.kinds_in_pack_order()?),
        };
        let count = match kinds {
            // At most the pack's count of entries: a u32.
            Some(_) => pack.count_of(|kind| leave.keeps(kind))? as u32,
            None => pack.num_objects(),
        };
        Ok(Prefix {
            pack,
            kinds,
            leave,
            count,
        })
    }

    /// The stored offset of `id`, when it is an entry that goes out.
    pub(super) fn offset_of(&self, id: &ObjectId) -> Result<Option<u64>> {
        let Some(index) = self.pack.lookup(id)? else {
            return Ok(None);
        };
        let offset = self.pack.offset_at(index);
        Ok(match self.kinds {
            None => Some(offset),
            Some(kinds) => {
                let pos = self.pack.position_of(index)?;
                let kind = kinds.get(pos).ok_or_else(|| {
                    PackError::Corrupt(format!(
                        "pack {}: no type for the entry at place {pos}",
                        self.pack.hash()
                    ))
                })?;
                self.leave.keeps(kind).then_some(offset)
            }
        })
    }

    /// Write the entries; returns where each one (by stored offset) went, when
    /// that differs from where it lies.
    fn write(&self, w: &mut HashingWriter<'_>) -> Result<Option<Moved>> {
        let Some(kinds) = self.kinds else {
            // Its entries keep their offsets: both packs start with a 12-byte header.
            let raw = self.pack.raw_pack()?;
            let body = raw
                .get(12..raw.len().saturating_sub(20))
                .ok_or_else(|| PackError::Corrupt("stored pack is too short".into()))?;
            for chunk in body.chunks(1 << 20) {
                w.put(chunk)?;
            }
            return Ok(None);
        };
        let sorted = self.pack.sorted_offsets();
        let mut moved = Moved(Vec::with_capacity(self.count as usize));
        let mut head = Vec::with_capacity(32);
        // The types alone are gone through, and only until every entry that
        // goes out has: a compacted pack holds its commits and tags first, so
        // a `tree:0` clone reads a few hundred entries' types, not millions.
        let mut left = self.count;
        for (pos, kind) in kinds.iter().enumerate() {
            if left == 0 {
                break;
            }
            if !self.leave.keeps(kind) {
                continue;
            }
            left -= 1;
            let (offset, _) = sorted.get(pos).ok_or_else(|| {
                PackError::Corrupt(format!(
                    "pack {}: an entry's type past its last entry",
                    self.pack.hash()
                ))
            })?;
            let here = w.written;
            let raw = self.pack.raw_entry_at_pos(pos)?;
            match raw.header {
                Header::OfsDelta { base_distance } => {
                    // Its base is of its type, so it went out: at a new place.
                    let base = offset
                        .checked_sub(base_distance)
                        .and_then(|base| moved.get(base))
                        .ok_or_else(|| {
                            PackError::Corrupt(format!(
                                "pack {}: delta at {offset} has no earlier base",
                                self.pack.hash()
                            ))
                        })?;
                    head.clear();
                    write_type_and_size(&mut head, OBJ_OFS_DELTA, raw.decompressed_size);
                    write_ofs_distance(&mut head, here - base);
                    w.put(&head)?;
                    w.put(raw.compressed)?;
                }
                _ => w.put(raw.whole)?,
            }
            // In pack order: `moved` stays sorted by stored offset.
            moved.0.push((offset, here));
        }
        Ok(Some(moved))
    }
}

/// Where a prefix's entries went: `(stored offset, offset written at)`, sorted
/// by stored offset.
struct Moved(Vec<(u64, u64)>);

impl Moved {
    fn get(&self, stored: u64) -> Option<u64> {
        let at = self.0.binary_search_by_key(&stored, |(o, _)| *o).ok()?;
        Some(self.0[at].1)
    }
}

/// The items of a pack to write, with how each goes out.
struct Planned {
    items: Vec<Item>,
    /// Deltas the search found: item → (base item, delta).
    new_deltas: NewDeltas,
    /// Bases of stored deltas that are not items (see [`Outside`]).
    outside: Vec<Outside>,
}

/// Objects located, and their places in their packs looked up, at a time: the
/// lookups' own lists (some 60 bytes an object) then stay this long, not as
/// long as the plan.
const PLAN_BATCH: usize = 1 << 16;

/// List, classify and delta-search the objects of a pack (see [`write_entries`]).
fn plan(
    db: &ObjectDb,
    first: Option<&Prefix<'_>>,
    objects: &[WalkObject],
    client_has: Option<super::ClientHas<'_>>,
    options: &WriteOptions,
    progress: ProgressFn<'_>,
) -> Result<Planned> {
    let packs = db.packs();
    let mut items = Vec::with_capacity(objects.len());
    let mut ids: Vec<ObjectId> = Vec::with_capacity(objects.len().min(PLAN_BATCH));
    for batch in objects.chunks(PLAN_BATCH) {
        ids.clear();
        ids.extend(batch.iter().map(|obj| obj.id));
        for (obj, loc) in batch.iter().zip(db.locate_many(&ids)?) {
            let loc = loc.ok_or(PackError::MissingObject(obj.id))?;
            let mut item = Item::new(obj.id, obj.kind, obj.name_hash, loc, Plan::Fresh)?;
            // The loose index knows sizes: big loose objects stay out of the delta
            // search and are streamed. (Only bigness is kept: the search order of
            // loose objects, which keeps bases ahead of their deltas, stays as it is.)
            item.big = match loc {
                Location::Loose => db
                    .loose()
                    .size(&obj.id)?
                    .is_some_and(|size| size > options.max_delta_object_bytes),
                Location::Packed { .. } => false,
            };
            items.push(item);
        }
    }
    drop(ids);
    locate_in_packs(packs, &mut items)?;
    if !options.keep_order {
        // Keys and places sorted, then the items moved once: a stable sort of
        // the items themselves moves each of them some twenty times.
        items.sort_by_cached_key(|item| match item.loc() {
            Location::Packed { pack, .. } => (0u8, pack, item.place.map_or(0, |p| p.pos)),
            Location::Loose => (1u8, 0, 0),
        });
    }
    let position = Positions::new(&items)?;
    let thin = if options.thin { client_has } else { None };
    // The client's objects the delta search may try: none of a kind its
    // filter may have left out.
    let filtered: Option<Vec<WalkObject>> = thin.filter(|has| has.filter.is_some()).map(|has| {
        has.bases
            .iter()
            .filter(|base| has.holds_every(base.kind))
            .copied()
            .collect()
    });
    let client_bases: &[WalkObject] = match (&filtered, thin) {
        (Some(bases), _) => bases,
        (None, Some(has)) => has.bases,
        (None, None) => &[],
    };
    // Before classifying, every item may be searched: from packs read by
    // ranges, the client's objects at their paths are read as far as their
    // sizes in the same batch as the items' headers.
    let bases: Vec<Location> = match thin {
        Some(_) if db.packs().iter().any(|pack| pack.is_sparse()) => {
            client_base_candidates(db, &items, &position, client_bases, options)
                .into_iter()
                .map(|(_, loc)| loc)
                .collect()
        }
        _ => Vec::new(),
    };
    prefetch_stored(db, &items, &bases, false)?;
    let outside = classify(db, &mut items, &position, thin, first)?;
    if thin.is_some() {
        add_client_bases(db, &mut items, &position, client_bases, options)?;
    }
    drop(position);
    prefetch_stored(db, &items, &[], true)?;
    let new_deltas = if options.window > 0 {
        delta_search(db, &items, options, progress)?
    } else {
        StdHashMap::new()
    };
    // On this thread, which counts the request's store reads: after the
    // search, so an entry it found a delta for instead is not read.
    prefetch_tips(db, &items, &new_deltas)?;
    Ok(Planned {
        items,
        new_deltas,
        outside,
    })
}

/// The items in pack `number`, with their index positions there.
fn in_pack(items: &[Item], number: usize) -> impl Iterator<Item = (usize, &Item, u32)> {
    items
        .iter()
        .enumerate()
        .filter_map(move |(i, item)| match item.loc() {
            Location::Packed { pack, index } if pack == number => Some((i, item, index)),
            _ => None,
        })
}

/// For packs read by ranges (a fresh instance on S3): read the blocks the
/// items' stored entries (and the `others`) are in now, side by side, not one
/// round trip at a time as each is reached. Before classifying (`classified`
/// false) as far as their headers; after, whole, but for those a tip entry
/// replaces.
fn prefetch_stored(
    db: &ObjectDb,
    items: &[Item],
    others: &[Location],
    classified: bool,
) -> Result<()> {
    for (number, pack) in db.packs().iter().enumerate() {
        if pack.is_sparse() {
            let stored = in_pack(items, number)
                .filter(|(_, item, _)| !matches!(item.plan, Plan::ReuseTip { .. }))
                .map(|(_, _, index)| index);
            let others = others.iter().filter_map(|loc| match *loc {
                Location::Packed { pack, index } if pack == number => Some(index),
                _ => None,
            });
            pack.prefetch_entries(stored.chain(others), classified)?;
        }
    }
    Ok(())
}

/// For commit-graphs read by ranges (which they may be when their pack is
/// not): read the tip entries about to be copied, side by side.
fn prefetch_tips(db: &ObjectDb, items: &[Item], new_deltas: &NewDeltas) -> Result<()> {
    for (number, pack) in db.packs().iter().enumerate() {
        if let Some(tips) = pack.commit_graph().and_then(|g| g.tip_entries()) {
            let found = in_pack(items, number)
                .filter(|(i, item, _)| {
                    matches!(item.plan, Plan::ReuseTip { .. }) && !new_deltas.contains_key(i)
                })
                .filter_map(|(_, item, _)| tips.lookup(&item.id));
            tips.prefetch(found)?;
        }
    }
    Ok(())
}

/// The tip entry of `item`, stored with `pack`'s commit-graph.
fn read_tip_entry(pack: &PackHandle, item: &Item) -> Result<TipEntry> {
    pack.commit_graph()
        .and_then(|graph| graph.tip_entries())
        .and_then(|tips| tips.lookup(&item.id).map(|found| tips.read(found)))
        .ok_or_else(|| PackError::Corrupt(format!("tip entry of {} went missing", item.id)))?
}

/// What [`super::tip_entries`] says.
pub(super) fn fresh_entries(
    db: &ObjectDb,
    objects: &[WalkObject],
    options: &WriteOptions,
    max_bytes: u64,
) -> Result<Vec<TipEntry>> {
    let Planned {
        items, new_deltas, ..
    } = plan(db, None, objects, None, options, &mut |_, _, _| {})?;
    let peers = super::delta_search::group_counts(&items, options);
    let peers_of = |item: &Item| {
        peers
            .get(&(kind_type(item.kind), item.name_hash))
            .copied()
            .unwrap_or(1)
    };
    let mut reader = db.reader();
    let mut zlib = Zlib::new(options.compression);
    let mut buf = Vec::new();
    let mut entries = Vec::new();
    let mut total = 0u64;
    for (i, item) in items.iter().enumerate() {
        if total >= max_bytes {
            break;
        }
        let Location::Packed { pack, .. } = item.loc() else {
            continue;
        };
        let entry = match (item.plan, new_deltas.get(&i)) {
            // Worked out by an earlier compaction of the same pack: kept.
            (Plan::ReuseTip { .. }, _) => {
                let mut entry = read_tip_entry(&db.packs()[pack], item)?;
                entry.kind = item.kind;
                entry
            }
            // Fresh and stored: a stored delta whose base is not among the objects.
            (plan, _) if plan != Plan::Fresh => continue,
            (_, Some((base, delta))) => TipEntry {
                id: item.id,
                base: Some(items[*base].id),
                kind: item.kind,
                size: delta.len() as u64,
                object_size: item.size().unwrap_or_default(),
                peers: peers_of(item),
                compressed: zlib.deflate(delta)?,
            },
            (_, None) => {
                if reader.size(&item.id)? > options.max_delta_object_bytes {
                    continue;
                }
                let kind = reader.read_at(&item.id, item.loc(), &mut buf)?;
                TipEntry {
                    id: item.id,
                    base: None,
                    kind,
                    size: buf.len() as u64,
                    object_size: buf.len() as u64,
                    peers: peers_of(item),
                    compressed: zlib.deflate(&buf)?,
                }
            }
        };
        total += entry.compressed.len() as u64 + crate::tip_entries::TABLE_BYTES;
        entries.push(entry);
    }
    Ok(entries)
}

pub(super) fn write_entries(
    db: &ObjectDb,
    first: Option<&Prefix<'_>>,
    objects: &[WalkObject],
    client_has: Option<super::ClientHas<'_>>,
    options: &WriteOptions,
    out: &mut dyn Write,
    progress: ProgressFn<'_>,
) -> Result<WriteStats> {
    let packs = db.packs();
    let prefix_count = first.map_or(0, |p| u64::from(p.count));
    let total = u32::try_from(objects.len() as u64 + prefix_count)
        .map_err(|_| PackError::InvalidPack("too many objects for one pack".into()))?;
    let Planned {
        items,
        new_deltas,
        outside,
    } = plan(db, first, objects, client_has, options, progress)?;
    let mut reader = db.reader();

    let mut w = HashingWriter {
        inner: out,
        hasher: sha1::Sha1::new(),
        written: 0,
    };
    let mut header = Vec::with_capacity(12);
    header.extend_from_slice(b"PACK");
    header.extend_from_slice(&2u32.to_be_bytes());
    header.extend_from_slice(&total.to_be_bytes());
    w.put(&header)?;

    let mut stats = WriteStats {
        objects: total,
        ..Default::default()
    };
    let mut largest_whole = 0u64;
    let mut zlib = Zlib::new(options.compression);
    let mut moved = None;
    if let Some(first) = first {
        moved = first.write(&mut w)?;
        stats.reused += first.count;
    }
    // Where each item went, `NOT_WRITTEN` before (no entry starts there: the
    // pack's header does): 8 bytes an item, where an `Option` took 16.
    const NOT_WRITTEN: u64 = 0;
    let mut written_at: Vec<u64> = vec![NOT_WRITTEN; items.len()];
    // The client's objects at the end are bases only: never written.
    let sent = items.len()
        - items
            .iter()
            .rev()
            .take_while(|item| item.plan == Plan::ClientBase)
            .count();
    let mut buf = Vec::new();
    let mut head = Vec::with_capacity(32);
    let order: Vec<u32> = if options.keep_order {
        compaction_order(&items, sent, &new_deltas, options.lead)
    } else {
        bases_first(&items, sent, &new_deltas)
    };
    for (n, i) in order.iter().map(|&i| i as usize).enumerate() {
        let item = &items[i];
        let here = w.written;
        let delta_base = |base: usize, head: &mut Vec<u8>, size: u64| {
            head.clear();
            match (options.ofs_delta, written_at[base]) {
                (true, base_pos) if base_pos != NOT_WRITTEN => {
                    write_type_and_size(head, OBJ_OFS_DELTA, size);
                    write_ofs_distance(head, here - base_pos);
                }
                _ => {
                    write_type_and_size(head, OBJ_REF_DELTA, size);
                    head.extend_from_slice(items[base].id.as_bytes());
                }
            }
        };
        match (item.plan, item.loc()) {
            (Plan::ReuseWhole, Location::Packed { pack, index })
                if !new_deltas.contains_key(&i) =>
            {
                let raw = stored_entry(&packs[pack], index, item.place)?;
                largest_whole = largest_whole.max(raw.decompressed_size);
                match zlib.smaller(raw.compressed, raw.decompressed_size, options)? {
                    None => w.put(raw.whole)?,
                    Some(data) => {
                        head.clear();
                        write_type_and_size(&mut head, kind_type(item.kind), raw.decompressed_size);
                        w.put(&head)?;
                        w.put(data)?;
                    }
                }
                stats.reused += 1;
            }
            (Plan::ReuseThin { base }, Location::Packed { pack, index }) => {
                let base = outside_base(&outside, base)?;
                let raw = stored_entry(&packs[pack], index, item.place)?;
                head.clear();
                write_type_and_size(&mut head, OBJ_REF_DELTA, raw.decompressed_size);
                head.extend_from_slice(base.id.as_bytes());
                w.put(&head)?;
                w.put(raw.compressed)?;
                stats.reused += 1;
                stats.reused_deltas += 1;
            }
            (Plan::ReusePrefix { base }, Location::Packed { pack, index }) => {
                let Outside { id: base, offset } = outside_base(&outside, base)?;
                let offset = match &moved {
                    Some(moved) => moved.get(offset).ok_or_else(|| {
                        PackError::Corrupt(format!("delta base {base} did not go out"))
                    })?,
                    None => offset,
                };
                let raw = stored_entry(&packs[pack], index, item.place)?;
                head.clear();
                if options.ofs_delta {
                    write_type_and_size(&mut head, OBJ_OFS_DELTA, raw.decompressed_size);
                    write_ofs_distance(&mut head, here - offset);
                } else {
                    write_type_and_size(&mut head, OBJ_REF_DELTA, raw.decompressed_size);
                    head.extend_from_slice(base.as_bytes());
                }
                w.put(&head)?;
                w.put(raw.compressed)?;
                stats.reused += 1;
                stats.reused_deltas += 1;
            }
            (Plan::ReuseTip { base }, Location::Packed { pack, .. })
                if !new_deltas.contains_key(&i) =>
            {
                let entry = read_tip_entry(&packs[pack], item)?;
                match base {
                    Some(base) => delta_base(base as usize, &mut head, entry.size),
                    None => {
                        if entry.kind != item.kind {
                            return Err(PackError::Corrupt(format!(
                                "tip entry of {} is a {}, expected a {}",
                                item.id, entry.kind, item.kind
                            )));
                        }
                        head.clear();
                        write_type_and_size(&mut head, kind_type(entry.kind), entry.size);
                        largest_whole = largest_whole.max(entry.size);
                    }
                }
                w.put(&head)?;
                match zlib.smaller(&entry.compressed, entry.size, options)? {
                    None => w.put(&entry.compressed)?,
                    Some(data) => w.put(data)?,
                }
                stats.reused += 1;
                stats.reused_deltas += u32::from(base.is_some());
            }
            (Plan::ReuseDelta { base }, Location::Packed { pack, index }) => {
                let raw = stored_entry(&packs[pack], index, item.place)?;
                delta_base(base as usize, &mut head, raw.decompressed_size);
                w.put(&head)?;
                match zlib.smaller(raw.compressed, raw.decompressed_size, options)? {
                    None => w.put(raw.compressed)?,
                    Some(data) => w.put(data)?,
                }
                stats.reused += 1;
                stats.reused_deltas += 1;
            }
            _ => match new_deltas.get(&i) {
                Some((base, delta)) => {
                    delta_base(*base, &mut head, delta.len() as u64);
                    w.put(&head)?;
                    w.put(&zlib.deflate(delta)?)?;
                    stats.new_deltas += 1;
                }
                None if item.big => {
                    let size = stream_loose(db, item, options.compression, &mut w)?;
                    largest_whole = largest_whole.max(size);
                }
                None => {
                    let kind = reader.read_at(&item.id, item.loc(), &mut buf)?;
                    if kind != item.kind {
                        return Err(PackError::Corrupt(format!(
                            "object {} is a {kind}, expected a {}",
                            item.id, item.kind
                        )));
                    }
                    head.clear();
                    write_type_and_size(&mut head, kind_type(kind), buf.len() as u64);
                    largest_whole = largest_whole.max(buf.len() as u64);
                    w.put(&head)?;
                    w.put(&zlib.deflate(&buf)?)?;
                }
            },
        }
        written_at[i] = here;
        if n % 1024 == 0 {
            progress(Phase::Writing, n as u32 + prefix_count as u32, total);
        }
    }
    progress(Phase::Writing, total, total);
    let checksum = ObjectId::from_bytes_or_panic(&w.hasher.clone().finalize());
    w.put(checksum.as_bytes())?;
    stats.bytes = w.written;
    stats.checksum = Some(checksum);
    // A stored pack's entries copied ahead were not read one by one.
    stats.largest_whole = first.is_none().then_some(largest_whole);
    w.inner
        .flush()
        .map_err(PackError::io("sending pack data"))?;
    Ok(stats)
}

/// The base item of item `i`'s delta (stored or newly found), when the base
/// goes out in the pack.
fn base_sent(items: &[Item], sent: usize, new_deltas: &NewDeltas, i: usize) -> Option<usize> {
    match new_deltas.get(&i) {
        Some((base, _)) => Some(*base),
        None => reused_base(&items[i]),
    }
    .filter(|&base| base < sent)
}

/// Place `start` (unless placed already) in `order`, after those of the bases
/// down its chain that are not placed yet, deepest first.
fn place_after_bases(
    start: usize,
    base_of: &impl Fn(usize) -> Option<usize>,
    placed: &mut [bool],
    chain: &mut Vec<usize>,
    order: &mut Vec<u32>,
) {
    chain.clear();
    let mut at = start;
    // Down the chain to the first base already placed (or to a whole object).
    while !placed[at] {
        placed[at] = true;
        chain.push(at);
        match base_of(at) {
            Some(base) => at = base,
            None => break,
        }
    }
    order.extend(chain.iter().rev().map(|&i| i as u32));
}

/// The first `sent` items in their order, but for each delta's base (stored or
/// newly found), moved just ahead of the first delta that needs it: every delta
/// follows its base, as git writes a pack. A delta the search found against a
/// later item would otherwise go out as a REF_DELTA naming an object further
/// on, which a reader completing a thin pack takes for one it must add (and
/// then holds twice).
fn bases_first(items: &[Item], sent: usize, new_deltas: &NewDeltas) -> Vec<u32> {
    let base_of = |i: usize| base_sent(items, sent, new_deltas, i);
    let mut placed = vec![false; sent];
    let mut order: Vec<u32> = Vec::with_capacity(sent);
    let mut chain = Vec::new();
    for start in 0..sent {
        place_after_bases(start, &base_of, &mut placed, &mut chain, &mut order);
    }
    order
}

/// The first `sent` items in their order, except that each delta's base (stored
/// or newly found) is moved just ahead of the first delta that needs it, and
/// that the trees and blobs past the first `lead` items go in delta families (see
/// [`super::WriteOptions::keep_order`]): a pack whose deltas all follow their
/// bases (OFS_DELTA throughout, and no base a reader must look for outside what
/// it has read).
fn compaction_order(items: &[Item], sent: usize, new_deltas: &NewDeltas, lead: usize) -> Vec<u32> {
    let base_of = |i: usize| base_sent(items, sent, new_deltas, i);
    let mut placed = vec![false; sent];
    // Item numbers in 32 bits (a pack's entry count is): these lists are
    // as long as the pack.
    let mut order: Vec<u32> = Vec::with_capacity(sent);
    let mut chain = Vec::new();
    let mut in_families: Vec<u32> = Vec::new();
    for (start, item) in items.iter().enumerate().take(sent) {
        if start >= lead && matches!(item.kind, Kind::Tree | Kind::Blob) {
            in_families.push(start as u32);
            continue;
        }
        place_after_bases(start, &base_of, &mut placed, &mut chain, &mut order);
    }
    // Each delta's children, in item order: a first child and a next sibling
    // each (all of them: a family may pass through the lead).
    const NONE: u32 = u32::MAX;
    let mut first_child = vec![NONE; sent];
    let mut next_sibling = vec![NONE; sent];
    for i in (0..sent).rev() {
        if let Some(base) = base_of(i) {
            next_sibling[i] = first_child[base];
            first_child[base] = i as u32;
        }
    }
    let mut stack = Vec::new();
    let mut descended = vec![false; sent];
    // The families of the lead's trees first, right after it, then the other
    // trees', then the same for blobs: the other members (older versions,
    // mostly) of what the lead holds lie as near to it as they can, and every
    // tree before every blob (a walk reads trees: those it reads of history
    // lie together).
    let lead_items = 0..lead.min(sent);
    let of_kind = |kind: Kind| {
        let in_families = &in_families;
        lead_items
            .clone()
            .filter(move |&i| items[i].kind == kind)
            .chain(
                in_families
                    .iter()
                    .map(|&i| i as usize)
                    .filter(move |&i| items[i].kind == kind),
            )
    };
    for object in of_kind(Kind::Tree).chain(of_kind(Kind::Blob)) {
        // Up to the chain's whole object (chains end: see `classify`)...
        let mut root = object;
        for _ in 0..sent {
            match base_of(root) {
                Some(base) => root = base,
                None => break,
            }
        }
        if std::mem::replace(&mut descended[root], true) {
            continue;
        }
        if !placed[root] {
            placed[root] = true;
            order.push(root as u32);
        }
        // ...then down: every delta against a placed object, all of one
        // object's deltas together, then theirs.
        stack.push(root);
        while let Some(at) = stack.pop() {
            let depth_first = stack.len();
            let mut child = first_child[at];
            while child != NONE {
                let at = child as usize;
                if !placed[at] {
                    placed[at] = true;
                    order.push(child);
                }
                stack.push(at);
                child = next_sibling[at];
            }
            stack[depth_first..].reverse();
        }
    }
    debug_assert_eq!(order.len(), sent, "every item is placed once");
    order
}

/// The client's objects at the paths of the items a delta may be found for
/// (those with nothing to reuse or stored whole), at most `options.window` a
/// path-name hash (one too large for the search among them, too), with where
/// they are stored.
fn client_base_candidates<'a>(
    db: &ObjectDb,
    items: &[Item],
    position: &Positions,
    bases: &'a [crate::walk::WalkObject],
    options: &WriteOptions,
) -> Vec<(&'a crate::walk::WalkObject, Location)> {
    let searchable = |item: &Item| {
        !item.big
            && matches!(
                item.plan,
                Plan::Fresh | Plan::ReuseWhole | Plan::ReuseTip { base: None }
            )
            && matches!(item.kind, gix_object::Kind::Blob | gix_object::Kind::Tree)
    };
    let mut wanted: StdHashMap<(gix_object::Kind, u32), usize> = StdHashMap::new();
    for item in items.iter().filter(|item| searchable(item)) {
        wanted.insert((item.kind, item.name_hash), 0);
    }
    let mut found = Vec::new();
    if wanted.is_empty() {
        return found;
    }
    for base in bases {
        let Some(taken) = wanted.get_mut(&(base.kind, base.name_hash)) else {
            continue;
        };
        if *taken >= options.window || position.contains(items, &base.id) {
            continue;
        }
        // One that cannot be looked up now is only a base not offered.
        if let Ok(Some(loc)) = db.locate(&base.id) {
            *taken += 1;
            found.push((base, loc));
        }
    }
    found
}

/// Add, after the items to send, the client's objects at the paths of the
/// items a delta may be found for ([`client_base_candidates`]), none above the
/// delta search's size limit, as bases the search may use: a delta against one
/// goes out as a REF_DELTA naming it, which the client resolves against its own
/// copy (a thin pack).
fn add_client_bases(
    db: &ObjectDb,
    items: &mut Vec<Item>,
    position: &Positions,
    bases: &[crate::walk::WalkObject],
    options: &WriteOptions,
) -> Result<()> {
    let candidates = client_base_candidates(db, items, position, bases, options);
    let mut reader = db.reader();
    for (base, loc) in candidates {
        // Its size from headers alone: a big one is never read for the search.
        let size = reader.size(&base.id)?;
        if size > options.max_delta_object_bytes {
            continue;
        }
        let mut item = Item::new(base.id, base.kind, base.name_hash, loc, Plan::ClientBase)?;
        item.set_size(size);
        items.push(item);
    }
    Ok(())
}

/// The stored entry at index position `index` of `pack`, read at `place`
/// when the plan noted it.
fn stored_entry(
    pack: &PackHandle,
    index: u32,
    place: Option<EntryPlace>,
) -> Result<crate::odb::RawEntry<'_>> {
    match place {
        Some(place) => pack.raw_entry_at(place),
        None => pack.raw_entry(index),
    }
}

/// Note where each packed item's entry lies in its pack, and its CRC (see
/// [`PackHandle::places_of`]): one batch a pack for each [`PLAN_BATCH`] items.
fn locate_in_packs(packs: &[std::sync::Arc<PackHandle>], items: &mut [Item]) -> Result<()> {
    let (mut at, mut indices) = (Vec::new(), Vec::new());
    for some in items.chunks_mut(PLAN_BATCH) {
        for (number, pack) in packs.iter().enumerate() {
            at.clear();
            indices.clear();
            for (i, item) in some.iter().enumerate() {
                if let Location::Packed { pack, index } = item.loc() {
                    if pack == number {
                        at.push(i);
                        indices.push(index);
                    }
                }
            }
            if at.is_empty() {
                continue;
            }
            for (&i, place) in at.iter().zip(pack.places_of(&indices)?) {
                some[i].place = Some(place);
            }
        }
    }
    Ok(())
}

/// The base `number` of the plan's [`Outside`] bases.
fn outside_base(outside: &[Outside], number: u32) -> Result<Outside> {
    outside
        .get(number as usize)
        .copied()
        .ok_or_else(|| PackError::Corrupt(format!("the plan has no outside base {number}")))
}

/// Write a big loose object as a whole pack entry, inflating the loose bytes and
/// deflating the entry in pieces: the object is never held whole. The stream is
/// verified as it ends, so corrupt stored bytes fail the pack before its checksum.
/// Returns the object's size.
fn stream_loose(db: &ObjectDb, item: &Item, level: u32, w: &mut HashingWriter<'_>) -> Result<u64> {
    let mut stream = db.loose().open(&item.id)?.ok_or_else(|| {
        PackError::Store(format!("loose object {} is indexed but missing", item.id))
    })?;
    if stream.kind != item.kind {
        return Err(PackError::Corrupt(format!(
            "object {} is a {}, expected a {}",
            item.id, stream.kind, item.kind
        )));
    }
    let mut head = Vec::with_capacity(16);
    write_type_and_size(&mut head, kind_type(stream.kind), stream.size);
    w.put(&head)?;
    let mut enc = flate2::write::ZlibEncoder::new(w, flate2::Compression::new(level.min(9)));
    let mut buf = vec![0u8; 256 * 1024];
    let mut copied = 0u64;
    loop {
        let n = stream
            .content
            .read(&mut buf)
            .map_err(|err| PackError::Store(format!("reading loose object {}: {err}", item.id)))?;
        if n == 0 {
            break;
        }
        copied += n as u64;
        enc.write_all(&buf[..n])
            .map_err(PackError::io("sending pack data"))?;
    }
    if copied != stream.size {
        return Err(PackError::Store(format!(
            "loose object {} has {copied} bytes, its header says {}",
            item.id, stream.size
        )));
    }
    enc.finish().map_err(PackError::io("sending pack data"))?;
    Ok(copied)
}
