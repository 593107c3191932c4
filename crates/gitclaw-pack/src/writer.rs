//! Streams a version-2 pack for a list of objects.
//!
//! Reuse first: stored entries are copied verbatim (CRC-checked against their
//! index) — whole objects as they are, deltas when their base goes out in the same
//! pack, as an OFS_DELTA when the base was already written and the client speaks
//! `ofs-delta`, else as a REF_DELTA. Objects with nothing to reuse (loose objects,
//! deltas whose base is not sent) go through a delta search over a sliding window,
//! as git does it: sorted by type, path-name hash and size, each is tried against
//! the previous `window` objects, and the smallest delta under half the object's
//! size wins, within a maximum chain depth. What finds no delta goes out whole.
//! Objects go out grouped by pack in offset order, so stored bases precede their
//! deltas. A pack may also start with every entry of a stored pack closed under
//! reachability ([`write_pack_after`]); the listed objects follow it and may keep
//! their stored deltas against its entries.
//!
//! Not here: choosing the objects (see [`crate::walk`]).

use std::{
    collections::VecDeque,
    io::{Read, Write},
};

use gix_hash::ObjectId;
use gix_hashtable::HashMap;
use gix_object::Kind;
use gix_pack::data::entry::Header;
use sha1::Digest;
use std::collections::{HashMap as StdHashMap, HashSet as StdHashSet};

use crate::{
    delta::BaseIndex,
    entry::{kind_type, write_ofs_distance, write_type_and_size, OBJ_OFS_DELTA, OBJ_REF_DELTA},
    odb::{Location, ObjectDb, PackHandle},
    walk::WalkObject,
    PackError, Result,
};

/// How to write the pack.
#[derive(Debug, Clone)]
pub struct WriteOptions {
    /// The client understands OFS_DELTA entries.
    pub ofs_delta: bool,
    /// zlib level for objects that are deflated anew.
    pub compression: u32,
    /// Objects each delta candidate is compared with (git's `pack.window`); 0 disables the search.
    pub window: usize,
    /// Longest chain of new deltas (git's `pack.depth`).
    pub max_depth: u32,
    /// Objects larger than this are never delta-searched, and go out from a loose
    /// object streamed, never read whole (git's `core.bigFileThreshold`).
    pub max_delta_object_bytes: u64,
    /// The client asked for a thin pack: stored deltas against objects it has may be
    /// sent as they are (REF_DELTA to a base outside the pack).
    pub thin: bool,
    /// Threads the delta search may use (git's `pack.threads`); capped by the cores.
    pub threads: usize,
    /// Fewest objects worth a search thread of their own.
    pub objects_per_thread: usize,
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            ofs_delta: true,
            compression: 6,
            window: 10,
            max_depth: 50,
            max_delta_object_bytes: crate::BIG_OBJECT_BYTES,
            thin: false,
            threads: usize::MAX,
            objects_per_thread: 2048,
        }
    }
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct WriteStats {
    pub objects: u32,
    /// Entries copied verbatim from stored packs.
    pub reused: u32,
    /// Of those, deltas.
    pub reused_deltas: u32,
    /// Deltas found by the delta search.
    pub new_deltas: u32,
    pub bytes: u64,
    pub checksum: Option<ObjectId>,
    /// The pack went out as one stored pack file, untouched.
    pub whole_pack: bool,
}

/// The phases of writing a pack that report progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The delta search: objects searched out of those that need a delta.
    Compressing,
    /// Entries written out of all entries of the pack.
    Writing,
}

/// Progress of a pack being written: phase, done, total. It is offered often
/// (during a long delta search at least every quarter second, from the calling
/// thread); the callee decides by the clock when to speak.
pub type ProgressFn<'a> = &'a mut dyn FnMut(Phase, u32, u32);

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

/// How one object goes out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    /// Copy the stored whole object.
    ReuseWhole,
    /// Copy the stored delta; its base (item index) goes out too.
    ReuseDelta { base: usize },
    /// Copy the stored delta against a base the client has (thin pack).
    ReuseThin { base: ObjectId },
    /// Copy the stored delta against a base in the pack that went out first, at
    /// this offset of the output.
    ReusePrefix { base: ObjectId, offset: u64 },
    /// Nothing to reuse: deflate anew (or delta, if the search finds one).
    Fresh,
}

struct Item {
    id: ObjectId,
    kind: Kind,
    name_hash: u32,
    loc: Location,
    plan: Plan,
    /// Inflated size, where known without reading the object.
    size: Option<u64>,
    /// A loose object above the big-object threshold: streamed, never searched.
    big: bool,
}

impl Item {
    /// Nothing to reuse, and of a kind that deltas pay for: the delta search's work.
    fn needs_search(&self) -> bool {
        self.plan == Plan::Fresh && matches!(self.kind, Kind::Blob | Kind::Tree)
    }
}

/// When one stored pack holds exactly `objects` (a full clone of a compacted
/// repository), copy the pack file as it is: no per-entry work at all.
fn whole_pack(
    db: &ObjectDb,
    objects: &[WalkObject],
    options: &WriteOptions,
) -> Result<Option<usize>> {
    let Some(first) = objects.first() else {
        return Ok(None);
    };
    let Some(Location::Packed { pack, .. }) = db.locate(&first.id) else {
        return Ok(None);
    };
    let handle = &db.packs()[pack];
    if handle.num_objects() as usize != objects.len() {
        return Ok(None);
    }
    // Equal counts and every object found in this pack: the sets are equal (ids are unique).
    if !objects.iter().all(|o| handle.lookup(&o.id).is_some()) {
        return Ok(None);
    }
    if !options.ofs_delta && handle.has_ofs_deltas()? {
        return Ok(None);
    }
    Ok(Some(pack))
}

/// Send a stored pack file as it is (it must suit the client: see
/// [`PackHandle::has_ofs_deltas`] for clients without `ofs-delta`).
pub fn stream_pack(
    handle: &PackHandle,
    out: &mut dyn Write,
    progress: ProgressFn<'_>,
) -> Result<WriteStats> {
    let bytes = handle.raw_pack()?;
    let count = handle.num_objects();
    progress(Phase::Writing, 0, count);
    for chunk in bytes.chunks(1 << 20) {
        out.write_all(chunk)
            .map_err(PackError::io("sending pack data"))?;
    }
    out.flush().map_err(PackError::io("sending pack data"))?;
    progress(Phase::Writing, count, count);
    Ok(WriteStats {
        objects: count,
        reused: count,
        reused_deltas: 0,
        new_deltas: 0,
        bytes: bytes.len() as u64,
        checksum: Some(*handle.hash()),
        whole_pack: true,
    })
}

/// Write a pack holding exactly `objects` to `out`. `client_has` (used when
/// `options.thin`) names objects the client already has.
pub fn write_pack(
    db: &ObjectDb,
    objects: &[WalkObject],
    client_has: Option<&gix_hashtable::HashSet<ObjectId>>,
    options: &WriteOptions,
    out: &mut dyn Write,
    progress: ProgressFn<'_>,
) -> Result<WriteStats> {
    if let Some(pack) = whole_pack(db, objects, options)? {
        return stream_pack(&db.packs()[pack], out, progress);
    }
    write_entries(db, None, objects, client_has, options, out, progress)
}

/// Write a pack of every entry of the stored pack `first`, copied as it is, then
/// `objects` (none of which `first` holds): the answer to a clone whose history
/// `first` holds all of but the newest part. Deltas of `objects` may use bases in
/// `first`. `first` must suit the client (see [`PackHandle::has_ofs_deltas`]).
pub fn write_pack_after(
    db: &ObjectDb,
    first: &PackHandle,
    objects: &[WalkObject],
    options: &WriteOptions,
    out: &mut dyn Write,
    progress: ProgressFn<'_>,
) -> Result<WriteStats> {
    write_entries(db, Some(first), objects, None, options, out, progress)
}

fn write_entries(
    db: &ObjectDb,
    first: Option<&PackHandle>,
    objects: &[WalkObject],
    client_has: Option<&gix_hashtable::HashSet<ObjectId>>,
    options: &WriteOptions,
    out: &mut dyn Write,
    progress: ProgressFn<'_>,
) -> Result<WriteStats> {
    let packs = db.packs();
    let mut items = Vec::with_capacity(objects.len());
    for obj in objects {
        let loc = db.locate(&obj.id).ok_or(PackError::MissingObject(obj.id))?;
        // The loose index knows sizes: big loose objects stay out of the delta
        // search and are streamed. (Only bigness is kept: the search order of
        // loose objects, which keeps bases ahead of their deltas, stays as it is.)
        let big = match loc {
            Location::Loose => db
                .loose()
                .size(&obj.id)?
                .is_some_and(|size| size > options.max_delta_object_bytes),
            Location::Packed { .. } => false,
        };
        items.push(Item {
            id: obj.id,
            kind: obj.kind,
            name_hash: obj.name_hash,
            loc,
            plan: Plan::Fresh,
            size: None,
            big,
        });
    }
    items.sort_by_key(|item| match item.loc {
        Location::Packed { pack, index } => (0u8, pack, packs[pack].offset_at(index)),
        Location::Loose => (1u8, 0, 0),
    });
    let position: HashMap<ObjectId, usize> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.id, i))
        .collect();
    let prefix_count = first.map_or(0, |p| u64::from(p.num_objects()));
    let total = u32::try_from(items.len() as u64 + prefix_count)
        .map_err(|_| PackError::InvalidPack("too many objects for one pack".into()))?;
    let thin_bases = if options.thin { client_has } else { None };
    classify(db, &mut items, &position, thin_bases, first)?;

    let new_deltas = if options.window > 0 {
        delta_search(db, &items, options, progress)?
    } else {
        StdHashMap::new()
    };
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
    if let Some(first) = first {
        // Its entries keep their offsets: both packs start with a 12-byte header.
        let raw = first.raw_pack()?;
        let body = raw
            .get(12..raw.len().saturating_sub(20))
            .ok_or_else(|| PackError::Corrupt("stored pack is too short".into()))?;
        for chunk in body.chunks(1 << 20) {
            w.put(chunk)?;
        }
        stats.reused += first.num_objects();
    }
    let mut written_at: Vec<Option<u64>> = vec![None; items.len()];
    let mut buf = Vec::new();
    let mut head = Vec::with_capacity(32);
    for (i, item) in items.iter().enumerate() {
        let here = w.written;
        let delta_base = |base: usize, head: &mut Vec<u8>, size: u64| {
            head.clear();
            match (options.ofs_delta, written_at[base]) {
                (true, Some(base_pos)) => {
                    write_type_and_size(head, OBJ_OFS_DELTA, size);
                    write_ofs_distance(head, here - base_pos);
                }
                _ => {
                    write_type_and_size(head, OBJ_REF_DELTA, size);
                    head.extend_from_slice(items[base].id.as_bytes());
                }
            }
        };
        match (item.plan, item.loc) {
            (Plan::ReuseWhole, Location::Packed { pack, index }) => {
                w.put(packs[pack].raw_entry(index)?.whole)?;
                stats.reused += 1;
            }
            (Plan::ReuseThin { base }, Location::Packed { pack, index }) => {
                let raw = packs[pack].raw_entry(index)?;
                head.clear();
                write_type_and_size(&mut head, OBJ_REF_DELTA, raw.decompressed_size);
                head.extend_from_slice(base.as_bytes());
                w.put(&head)?;
                w.put(raw.compressed)?;
                stats.reused += 1;
                stats.reused_deltas += 1;
            }
            (Plan::ReusePrefix { base, offset }, Location::Packed { pack, index }) => {
                let raw = packs[pack].raw_entry(index)?;
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
            (Plan::ReuseDelta { base }, Location::Packed { pack, index }) => {
                let raw = packs[pack].raw_entry(index)?;
                delta_base(base, &mut head, raw.decompressed_size);
                w.put(&head)?;
                w.put(raw.compressed)?;
                stats.reused += 1;
                stats.reused_deltas += 1;
            }
            _ => match new_deltas.get(&i) {
                Some((base, delta)) => {
                    delta_base(*base, &mut head, delta.len() as u64);
                    w.put(&head)?;
                    w.put(&deflate(delta, options.compression)?)?;
                    stats.new_deltas += 1;
                }
                None if item.big => {
                    stream_loose(db, item, options.compression, &mut w)?;
                }
                None => {
                    let kind = reader.read_at(&item.id, item.loc, &mut buf)?;
                    if kind != item.kind {
                        return Err(PackError::Corrupt(format!(
                            "object {} is a {kind}, expected a {}",
                            item.id, item.kind
                        )));
                    }
                    head.clear();
                    write_type_and_size(&mut head, kind_type(kind), buf.len() as u64);
                    w.put(&head)?;
                    w.put(&deflate(&buf, options.compression)?)?;
                }
            },
        }
        written_at[i] = Some(here);
        if i % 1024 == 0 {
            progress(Phase::Writing, i as u32 + prefix_count as u32, total);
        }
    }
    progress(Phase::Writing, total, total);
    let checksum = ObjectId::from_bytes_or_panic(&w.hasher.clone().finalize());
    w.put(checksum.as_bytes())?;
    stats.bytes = w.written;
    stats.checksum = Some(checksum);
    w.inner
        .flush()
        .map_err(PackError::io("sending pack data"))?;
    Ok(stats)
}

/// Write a big loose object as a whole pack entry, inflating the loose bytes and
/// deflating the entry in pieces: the object is never held whole. The stream is
/// verified as it ends, so corrupt stored bytes fail the pack before its checksum.
fn stream_loose(db: &ObjectDb, item: &Item, level: u32, w: &mut HashingWriter<'_>) -> Result<()> {
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
    Ok(())
}

fn deflate(data: &[u8], level: u32) -> Result<Vec<u8>> {
    let mut enc = flate2::write::ZlibEncoder::new(
        Vec::with_capacity(data.len() / 2 + 64),
        flate2::Compression::new(level.min(9)),
    );
    enc.write_all(data).map_err(PackError::io("compressing"))?;
    enc.finish().map_err(PackError::io("compressing"))
}

/// Decide for every packed item whether its stored entry can be copied.
fn classify(
    db: &ObjectDb,
    items: &mut [Item],
    position: &HashMap<ObjectId, usize>,
    thin_bases: Option<&gix_hashtable::HashSet<ObjectId>>,
    first: Option<&PackHandle>,
) -> Result<()> {
    let packs = db.packs();
    let in_first = |id: &ObjectId| first.and_then(|p| p.lookup(id).map(|i| p.offset_at(i)));
    for item in items.iter_mut() {
        let Location::Packed { pack, index } = item.loc else {
            continue;
        };
        let handle = &packs[pack];
        let (header, size) = handle.entry_header(index)?;
        let base = match header {
            Header::OfsDelta { base_distance } => {
                let offset = handle.offset_at(index);
                let base_offset = offset.checked_sub(base_distance).ok_or_else(|| {
                    PackError::Corrupt(format!("delta of {} points before the pack start", item.id))
                })?;
                Some(handle.oid_at_offset(base_offset).ok_or_else(|| {
                    PackError::Corrupt(format!("delta base of {} is not an entry", item.id))
                })?)
            }
            Header::RefDelta { base_id } => Some(base_id),
            _ => None,
        };
        item.plan = match base {
            None => {
                item.size = Some(size);
                Plan::ReuseWhole
            }
            Some(base_id) => match position.get(&base_id) {
                Some(&base) => Plan::ReuseDelta { base },
                None if in_first(&base_id).is_some() => Plan::ReusePrefix {
                    base: base_id,
                    offset: in_first(&base_id).unwrap_or_default(),
                },
                None if thin_bases.is_some_and(|has| has.contains(&base_id)) => {
                    Plan::ReuseThin { base: base_id }
                }
                None => Plan::Fresh,
            },
        };
    }
    Ok(())
}

/// Deltas found by the search: item → (base item, delta).
type NewDeltas = StdHashMap<usize, (usize, Vec<u8>)>;

struct WindowEntry {
    item: usize,
    data: Vec<u8>,
    depth: u32,
    /// Built the first time the entry serves as a base, then kept.
    index: Option<BaseIndex>,
}

/// Find deltas for the items with nothing to reuse. Returns item → (base item, delta).
///
/// Bases are only objects written whole or as new deltas (never reused stored
/// deltas), and always earlier in the search order, so no cycle can form. The
/// search order is cut into one segment per thread, at changes of path-name hash
/// so similar objects stay together, and the segments are searched in parallel,
/// each with its own window and object reader.
fn delta_search(
    db: &ObjectDb,
    items: &[Item],
    options: &WriteOptions,
    progress: ProgressFn<'_>,
) -> Result<NewDeltas> {
    // Stored whole objects help as bases only near a candidate's path.
    let wanted_hashes: StdHashSet<(u8, u32)> = items
        .iter()
        .filter(|item| item.needs_search())
        .filter(|item| {
            !item.big
                && item
                    .size
                    .is_none_or(|size| size <= options.max_delta_object_bytes)
        })
        .map(|item| (kind_type(item.kind), item.name_hash))
        .collect();
    // Big objects are never read for the search (git's core.bigFileThreshold).
    let small = |i: usize| {
        !items[i].big
            && items[i]
                .size
                .is_none_or(|size| size <= options.max_delta_object_bytes)
    };
    let mut order: Vec<usize> = (0..items.len())
        .filter(|&i| small(i))
        .filter(|&i| match items[i].plan {
            Plan::Fresh => items[i].needs_search(),
            Plan::ReuseWhole => {
                wanted_hashes.contains(&(kind_type(items[i].kind), items[i].name_hash))
            }
            Plan::ReuseDelta { .. } | Plan::ReuseThin { .. } | Plan::ReusePrefix { .. } => false,
        })
        .collect();
    let total = order
        .iter()
        .filter(|&&i| items[i].plan == Plan::Fresh)
        .count();
    if total == 0 {
        return Ok(StdHashMap::new());
    }
    let total = u32::try_from(total).unwrap_or(u32::MAX);
    let group = |i: usize| (kind_type(items[i].kind), items[i].name_hash);
    order.sort_by_key(|&i| (group(i), std::cmp::Reverse(items[i].size.unwrap_or(0))));

    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(options.threads.max(1))
        .min(order.len() / options.objects_per_thread.max(1))
        .max(1);
    let mut segments = Vec::with_capacity(threads);
    let mut rest: &[usize] = &order;
    for t in (1..=threads).rev() {
        let mut cut = rest.len() / t;
        while cut > 0 && cut < rest.len() && group(rest[cut]) == group(rest[cut - 1]) {
            cut += 1;
        }
        let (segment, tail) = rest.split_at(cut.min(rest.len()));
        segments.push(segment);
        rest = tail;
    }
    // The search runs on worker threads; this one reports their progress, so the
    // caller can keep its connection alive however long the search takes.
    let done = std::sync::atomic::AtomicU32::new(0);
    let (sender, results) = std::sync::mpsc::channel::<Result<NewDeltas>>();
    progress(Phase::Compressing, 0, total);
    let mut found = StdHashMap::new();
    let mut failure = None;
    std::thread::scope(|s| {
        for segment in segments.into_iter().filter(|segment| !segment.is_empty()) {
            let (sender, done) = (sender.clone(), &done);
            s.spawn(move || {
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    search_segment(db, items, segment, options, done)
                }))
                .unwrap_or_else(|_| Err(PackError::Corrupt("delta search thread failed".into())));
                let _ = sender.send(result);
            });
        }
        // Every worker holds a sender: the channel closes when the last one ends.
        drop(sender);
        loop {
            match results.recv_timeout(std::time::Duration::from_millis(250)) {
                Ok(Ok(deltas)) => found.extend(deltas),
                Ok(Err(err)) => {
                    failure.get_or_insert(err);
                }
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            }
            let now = done.load(std::sync::atomic::Ordering::Relaxed).min(total);
            progress(Phase::Compressing, now, total);
        }
    });
    match failure {
        Some(err) => Err(err),
        None => Ok(found),
    }
}

/// The sliding-window search over one segment of the search order.
fn search_segment(
    db: &ObjectDb,
    items: &[Item],
    order: &[usize],
    options: &WriteOptions,
    done: &std::sync::atomic::AtomicU32,
) -> Result<NewDeltas> {
    let mut reader = db.reader();
    let mut found: NewDeltas = StdHashMap::new();
    let mut window: VecDeque<WindowEntry> = VecDeque::with_capacity(options.window + 1);
    let mut buf = Vec::new();
    for &i in order {
        let item = &items[i];
        reader.read_at(&item.id, item.loc, &mut buf)?;
        let size = buf.len();
        let mut depth = 0;
        if item.plan == Plan::Fresh && size >= 64 && size as u64 <= options.max_delta_object_bytes {
            let mut best: Option<(usize, Vec<u8>, u32)> = None;
            for entry in window.iter_mut().rev() {
                if items[entry.item].kind != item.kind || entry.depth >= options.max_depth {
                    continue;
                }
                let base_len = entry.data.len();
                // Bases far smaller or larger than the target rarely pay off.
                if base_len < size / 32 || size < base_len / 32 {
                    continue;
                }
                let limit = match &best {
                    Some((_, delta, _)) => delta.len().saturating_sub(1),
                    None => (size / 2).saturating_sub(20),
                };
                if limit == 0 {
                    break;
                }
                let index = entry
                    .index
                    .get_or_insert_with(|| BaseIndex::new(&entry.data));
                if let Some(delta) = index.encode(&entry.data, &buf, limit) {
                    best = Some((entry.item, delta, entry.depth + 1));
                }
            }
            if let Some((base, delta, d)) = best {
                depth = d;
                found.insert(i, (base, delta));
            }
        }
        if item.plan == Plan::Fresh {
            done.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        if size as u64 <= options.max_delta_object_bytes {
            if window.len() == options.window {
                window.pop_front();
            }
            window.push_back(WindowEntry {
                item: i,
                data: std::mem::take(&mut buf),
                depth,
                index: None,
            });
        }
    }
    Ok(found)
}
