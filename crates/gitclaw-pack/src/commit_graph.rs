//! Git's commit-graph file (`gitformat-commit-graph`) for the commits of one
//! pack: each commit's tree, parents, committer time and generation number,
//! found by binary search in a mapped file instead of by inflating and parsing
//! the commit. Compaction writes one beside the pack it writes (whose commits'
//! parents are all in it), so a walk through old history costs a lookup per
//! commit from the first request after a start on, on any instance.
//!
//! The file is git's own (version 1, SHA-1, no base graphs, topological
//! levels as generation numbers): `git commit-graph verify` checks one, and
//! gix-commitgraph reads it here. Chunks of our own follow git's (git skips
//! chunks it does not know): each commit's interval in the first-parent
//! forest (`GCFP`, see [`CommitGraph::first_parent_span`]), the type of
//! every entry of the pack in pack order (`GCKD`, see
//! `CommitGraph::pack_kinds`), where each entry's delta base lies (`GCDB`,
//! see [`CommitGraph::delta_base`]), which commit brought each object
//! (`GCIN`), the pack order (`GCPP`, and `GCPO` read in place, see
//! `odb::recorded`) and the pack's [`tip entries`](crate::tip_entries).

use std::{io::Write, path::Path};

use gix_hash::{oid, ObjectId};
use gix_hashtable::HashMap;
use sha1::Digest;

use crate::{
    kinds::PackedKinds,
    odb::{BlockTable, CommitInfo, RecordedTables},
    tip_entries::{TipEntries, TipEntry},
    PackError, Result,
};

/// Largest topological level the format holds (30 bits).
const MAX_GENERATION: u32 = 0x3FFF_FFFF;
/// Commit times the format holds: 34 bits, unsigned.
const MAX_TIME: i64 = (1 << 34) - 1;
const NO_PARENT: u32 = 0x7000_0000;
const EXTRA_EDGES: u32 = 0x8000_0000;
const HASH_LEN: usize = 20;

/// What a graph records of its pack's entries beside the commits, each list
/// in pack order (an empty list: not recorded).
#[derive(Debug, Clone, Copy, Default)]
pub struct PackEntries<'a> {
    /// Each entry's object type.
    pub kinds: &'a [gix_object::Kind],
    /// Each entry's delta base, as its place in pack order ([`NO_BASE`]: the
    /// entry is stored whole).
    pub delta_bases: &'a [u32],
    /// For each entry, a commit whose tree holds its object, as its place in
    /// the graph (ids in order; [`NO_BASE`]: none, as for a commit or a tag).
    pub introduced_by: &'a [u32],
    /// The pack order: for each entry of the index, in index order (unlike
    /// the lists above), its place in pack order — the inverse of git's
    /// `.rev`. Opening the pack then takes it instead of sorting every offset
    /// of its index.
    pub places: &'a [u32],
    /// The pack order itself, for a pack under 4 GiB: its entries in pack
    /// order, each as `offset << 32 | index position`, with the pack's id
    /// (see `PACK_ORDER_CHUNK_ID`).
    pub order: Option<(ObjectId, &'a [u64])>,
}

/// In [`PackEntries::delta_bases`]: the entry is not a delta (and in
/// [`PackEntries::introduced_by`]: no commit recorded).
pub const NO_BASE: u32 = u32::MAX;

/// Write the commit-graph of `commits` to `out`. Nothing is written (`false`)
/// when a commit's parent is not among them, or a commit's time is one the
/// format cannot hold exactly (before 1970, or past 2514): a reader must get
/// from the graph exactly what parsing the commit gives.
///
/// `tips` (see [`crate::tip_entries`]) go in a chunk of their own, and so
/// does each list of `entries`.
pub fn write(
    commits: &[(ObjectId, &CommitInfo)],
    tips: &[TipEntry],
    entries: &PackEntries<'_>,
    out: &Path,
) -> Result<bool> {
    let mut sorted: Vec<(ObjectId, &CommitInfo)> = commits.to_vec();
    sorted.sort_unstable_by_key(|c| c.0);
    sorted.dedup_by(|a, b| a.0 == b.0);
    let n = sorted.len();
    if n >= NO_PARENT as usize {
        return Ok(false);
    }
    let position: HashMap<ObjectId, u32> = sorted
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (*id, i as u32))
        .collect();
    let mut parents: Vec<Vec<u32>> = Vec::with_capacity(n);
    for (_, info) in &sorted {
        if !(0..=MAX_TIME).contains(&info.time) {
            return Ok(false);
        }
        let mut of = Vec::with_capacity(info.parents.len());
        for parent in info.parents.iter() {
            match position.get(parent) {
                Some(p) => of.push(*p),
                None => return Ok(false),
            }
        }
        parents.push(of);
    }
    let Some(levels) = topological_levels(&parents) else {
        return Ok(false);
    };

    let mut edges: Vec<u32> = Vec::new();
    let mut cdat = Vec::with_capacity(n * (HASH_LEN + 16));
    for (i, (_, info)) in sorted.iter().enumerate() {
        cdat.extend_from_slice(info.tree.as_bytes());
        let of = &parents[i];
        let first = of.first().copied().unwrap_or(NO_PARENT);
        let second = match of.len() {
            0 | 1 => NO_PARENT,
            2 => of[1],
            _ => {
                let at = EXTRA_EDGES | edges.len() as u32;
                edges.extend_from_slice(&of[1..]);
                if let Some(last) = edges.last_mut() {
                    *last |= EXTRA_EDGES;
                }
                at
            }
        };
        cdat.extend_from_slice(&first.to_be_bytes());
        cdat.extend_from_slice(&second.to_be_bytes());
        let time = info.time as u64;
        let high = (levels[i].min(MAX_GENERATION) << 2) | ((time >> 32) as u32 & 0x3);
        cdat.extend_from_slice(&high.to_be_bytes());
        cdat.extend_from_slice(&(time as u32).to_be_bytes());
    }

    let mut fanout = Vec::with_capacity(256 * 4);
    let mut at = 0usize;
    for byte in 0..=255u8 {
        while at < n && sorted[at].0.as_bytes()[0] <= byte {
            at += 1;
        }
        fanout.extend_from_slice(&(at as u32).to_be_bytes());
    }
    let mut oids = Vec::with_capacity(n * HASH_LEN);
    for (id, _) in &sorted {
        oids.extend_from_slice(id.as_bytes());
    }
    let edge_bytes: Vec<u8> = edges.iter().flat_map(|e| e.to_be_bytes()).collect();
    // Each chunk as the pieces it is kept in.
    let mut chunks: Vec<(&[u8; 4], Vec<&[u8]>)> = vec![
        (b"OIDF", vec![&fanout[..]]),
        (b"OIDL", vec![&oids[..]]),
        (b"CDAT", vec![&cdat[..]]),
    ];
    if !edge_bytes.is_empty() {
        chunks.push((b"EDGE", vec![&edge_bytes[..]]));
    }
    // Before the tip entries: a graph read by ranges reads every chunk but theirs
    // when it is opened.
    let intervals: Vec<u8> = first_parent_intervals(&parents)
        .iter()
        .flat_map(|(pre, post)| pre.to_be_bytes().into_iter().chain(post.to_be_bytes()))
        .collect();
    chunks.push((&FIRST_PARENT_CHUNK_ID, vec![&intervals[..]]));
    let kind_bytes = encode_kinds(entries.kinds);
    if !entries.kinds.is_empty() {
        chunks.push((&PACK_KINDS_CHUNK_ID, vec![&kind_bytes[..]]));
    }
    let base_bytes = encode_table(entries.delta_bases);
    if !entries.delta_bases.is_empty() {
        chunks.push((&DELTA_BASES_CHUNK_ID, vec![&base_bytes[..]]));
    }
    let introduced_bytes = encode_table(entries.introduced_by);
    if !entries.introduced_by.is_empty() {
        chunks.push((&INTRODUCED_BY_CHUNK_ID, vec![&introduced_bytes[..]]));
    }
    let tip_chunk = crate::tip_entries::encode(tips);
    if !tip_chunk.is_empty() {
        chunks.push((&crate::tip_entries::CHUNK_ID, tip_chunk.parts().collect()));
    }
    // Last: a graph read by ranges reads every chunk but this one and the
    // tip entries' data when it is opened.
    let places_bytes = encode_table(entries.places);
    if !entries.places.is_empty() {
        chunks.push((&PACK_PLACES_CHUNK_ID, vec![&places_bytes[..]]));
    }
    let mut order_bytes = Vec::new();
    if let Some((pack, keys)) = entries.order {
        order_bytes.reserve(HASH_LEN + 4 + 8 * keys.len());
        order_bytes.extend_from_slice(pack.as_bytes());
        order_bytes.extend_from_slice(&(keys.len() as u32).to_be_bytes());
        for key in keys {
            order_bytes.extend_from_slice(&key.to_be_bytes());
        }
        chunks.push((&PACK_ORDER_CHUNK_ID, vec![&order_bytes[..]]));
    }

    // The header and table of chunks, then each chunk, written as they are
    // (not first copied into one buffer: the whole file, tens of MB at
    // millions of objects, held a second time), hashed on the way.
    let mut head = Vec::with_capacity(8 + (chunks.len() + 1) * 12);
    head.extend_from_slice(b"CGPH");
    head.extend_from_slice(&[1, 1, chunks.len() as u8, 0]);
    let mut offset = (8 + (chunks.len() + 1) * 12) as u64;
    for (id, parts) in &chunks {
        head.extend_from_slice(*id);
        head.extend_from_slice(&offset.to_be_bytes());
        offset += parts.iter().map(|part| part.len() as u64).sum::<u64>();
    }
    head.extend_from_slice(&[0; 4]);
    head.extend_from_slice(&offset.to_be_bytes());

    let io = |source| PackError::Io {
        context: format!("writing the commit-graph {}", out.display()),
        source,
    };
    let mut file = std::io::BufWriter::new(std::fs::File::create(out).map_err(io)?);
    let mut hasher = sha1::Sha1::new();
    let parts = chunks.iter().flat_map(|(_, parts)| parts.iter().copied());
    for part in std::iter::once(&head[..]).chain(parts) {
        hasher.update(part);
        file.write_all(part).map_err(io)?;
    }
    file.write_all(&hasher.finalize()).map_err(io)?;
    let file = file.into_inner().map_err(|err| io(err.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(true)
}

/// Each commit's topological level (1 for a root, else one more than its
/// highest parent), without recursion; `None` if the parents form a cycle
/// (which hashes make impossible, but the input is only a list).
fn topological_levels(parents: &[Vec<u32>]) -> Option<Vec<u32>> {
    const UNSET: u32 = 0;
    const VISITING: u32 = u32::MAX;
    let mut level = vec![UNSET; parents.len()];
    let mut stack: Vec<u32> = Vec::new();
    for start in 0..parents.len() as u32 {
        if level[start as usize] != UNSET {
            continue;
        }
        stack.push(start);
        while let Some(&at) = stack.last() {
            let i = at as usize;
            if level[i] == UNSET {
                level[i] = VISITING;
            }
            let mut pending = false;
            let mut highest = 0u32;
            for &p in &parents[i] {
                match level[p as usize] {
                    UNSET => {
                        stack.push(p);
                        pending = true;
                    }
                    // A parent still being worked out further down the path: a cycle.
                    VISITING => return None,
                    l => highest = highest.max(l),
                }
            }
            if !pending {
                level[i] = highest.saturating_add(1).min(VISITING - 1);
                stack.pop();
            }
        }
    }
    Some(level)
}

/// Our chunk of first-parent intervals: 8 bytes a commit, in graph order.
const FIRST_PARENT_CHUNK_ID: [u8; 4] = *b"GCFP";

/// Our chunk of the pack's entry types: the entry count (4 bytes), then two
/// bits an entry in pack order, four entries a byte, the first in the low bits.
const PACK_KINDS_CHUNK_ID: [u8; 4] = *b"GCKD";

fn encode_kinds(kinds: &[gix_object::Kind]) -> Vec<u8> {
    let packed = PackedKinds::from_kinds(kinds.iter().copied());
    let mut out = Vec::with_capacity(4 + packed.as_bytes().len());
    out.extend_from_slice(&(kinds.len() as u32).to_be_bytes());
    out.extend_from_slice(packed.as_bytes());
    out
}

/// The entry types of a [`PACK_KINDS_CHUNK_ID`] chunk, `None` if its length
/// does not fit its count.
fn decode_kinds(bytes: &[u8]) -> Option<PackedKinds> {
    let (count, packed) = bytes.split_first_chunk::<4>()?;
    PackedKinds::from_bytes(packed.to_vec(), u32::from_be_bytes(*count) as usize)
}

/// Our chunk of where each entry's delta base lies: the entry count (4
/// bytes), then for each entry in pack order its base's place in pack order
/// (4 bytes, [`NO_BASE`] for an entry stored whole). A reader of a pack read by
/// ranges learns a delta chain's entries from it without reading each
/// entry's header first, so the whole chain comes down in one batch of reads.
const DELTA_BASES_CHUNK_ID: [u8; 4] = *b"GCDB";

/// Our chunk of which commit brought each entry's object into history, laid
/// out as [`DELTA_BASES_CHUNK_ID`]: for each entry in pack order, the place in
/// the graph of a commit whose tree holds the object ([`NO_BASE`] for a commit,
/// a tag or an object no commit's tree holds), found as early in history as
/// compaction's diffs find it (see `repack`). A client that has a first-parent
/// descendant of that commit, with its whole history, has the object: what
/// git learns from its reachability bitmaps, so a fetch neither sends again
/// what the client's older history holds nor searches a delta for an object
/// whose stored base is there.
const INTRODUCED_BY_CHUNK_ID: [u8; 4] = *b"GCIN";

/// Our chunk of the pack order, laid out as [`DELTA_BASES_CHUNK_ID`] but in
/// index order: for each entry of the pack's index, its place in pack order
/// (the inverse of git's `.rev`). Opening the pack takes it instead of sorting
/// every offset of the index (some 70 ms of a first request at 2.5M objects):
/// each offset, read in index order, goes to its place — no sort, and no
/// random reads. It is checked as it is taken (offsets strictly rising); a
/// graph without it, or read by ranges (whose pack order is built beside the
/// index download), sorts.
const PACK_PLACES_CHUNK_ID: [u8; 4] = *b"GCPP";

/// Our chunk of the pack order itself, for a pack under 4 GiB: the pack's id
/// (20 bytes), how many entries (4), then for each entry in pack order
/// `offset << 32 | index position` (8 bytes) — the table the pack order keeps
/// in memory. With [`PACK_PLACES_CHUNK_ID`] it is read where it lies, a block
/// at a time as requests reach its places (`odb::recorded`), instead of
/// filled in memory from the places and the index's offsets: a first request
/// reads the blocks it needs (one, for a `tree:0` clone of the compacted
/// pack) and a first shallow clone reads each table in order, where the fill
/// wrote 20 MB in random order at 2.5M objects. Written after the places, so
/// a graph read by ranges reads neither.
const PACK_ORDER_CHUNK_ID: [u8; 4] = *b"GCPO";

/// A table of our chunks: its length (4 bytes), then 4 bytes an entry.
fn encode_table(values: &[u32]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + 4 * values.len());
    out.extend_from_slice(&(values.len() as u32).to_be_bytes());
    for value in values {
        out.extend_from_slice(&value.to_be_bytes());
    }
    out
}

/// The graph file at `path`, held open, and where the chunk `id` lies, if it
/// has one.
fn open_chunk(path: &Path, id: [u8; 4]) -> Result<Option<(std::fs::File, std::ops::Range<u64>)>> {
    let Some(range) = chunk_range(path, id)? else {
        return Ok(None);
    };
    let file = std::fs::File::open(path).map_err(PackError::io(format!(
        "reading the commit-graph {}",
        path.display()
    )))?;
    Ok(Some((file, range)))
}

/// The graph file at `path`, held open, and where its entry types lie, if it
/// has them. Their length is checked when they are read.
fn pack_kinds_chunk(path: &Path) -> Result<Option<(std::fs::File, std::ops::Range<u64>)>> {
    open_chunk(path, PACK_KINDS_CHUNK_ID)
}

/// The graph file at `path`, held open, where its table `id` lies and how
/// many entries it has, if it has one of a length that fits its count.
fn table_chunk(path: &Path, id: [u8; 4]) -> Result<Option<Table>> {
    use std::os::unix::fs::FileExt;
    let Some((file, range)) = open_chunk(path, id)? else {
        return Ok(None);
    };
    let what = String::from_utf8_lossy(&id).into_owned();
    let mut count = [0u8; 4];
    file.read_exact_at(&mut count, range.start)
        .map_err(PackError::io(format!(
            "reading a commit-graph's {what} chunk"
        )))?;
    let count = u32::from_be_bytes(count);
    if range.end - range.start != 4 + 4 * u64::from(count) {
        return Err(PackError::Corrupt(format!(
            "commit-graph {}: a {what} chunk of {} bytes for {count} entries",
            path.display(),
            range.end - range.start
        )));
    }
    Ok(Some(Table {
        file,
        start: range.start + 4,
        count,
    }))
}

/// One of our tables of 4 bytes an entry (see [`encode_table`]), read an
/// entry at a time from the file held open.
struct Table {
    file: std::fs::File,
    /// Where the first entry lies in the file.
    start: u64,
    count: u32,
}

impl Table {
    /// The entry at `pos`, if the table has one there and it is not [`NO_BASE`].
    fn at(&self, pos: u32) -> Result<Option<u32>> {
        use std::os::unix::fs::FileExt;
        if pos >= self.count {
            return Ok(None);
        }
        let mut bytes = [0u8; 4];
        self.file
            .read_exact_at(&mut bytes, self.start + u64::from(pos) * 4)
            .map_err(PackError::io("reading a commit-graph's table"))?;
        Ok(Some(u32::from_be_bytes(bytes)).filter(|v| *v != NO_BASE))
    }

    /// Every entry (whatever its value), read 64 KiB at a time.
    fn all(&self) -> Result<Vec<u32>> {
        let mut values = Vec::with_capacity(self.count as usize);
        let end = self.start + u64::from(self.count) * 4;
        read_in_parts(&self.file, self.start..end, 64 << 10, |part| {
            values.extend(
                part.chunks_exact(4)
                    .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
            );
        })
        .map_err(PackError::io("reading a commit-graph's table"))?;
        Ok(values)
    }
}

/// Each commit's `(entry, exit)` numbers in a depth-first walk of the forest
/// whose edges go from a commit to its first parent: `a` is a first-parent
/// ancestor of `b` (or `b` itself) exactly when `a`'s interval holds `b`'s.
fn first_parent_intervals(parents: &[Vec<u32>]) -> Vec<(u32, u32)> {
    let n = parents.len();
    // Children by first parent, as offsets into one list.
    let mut starts = vec![0u32; n + 1];
    for of in parents {
        if let Some(&p) = of.first() {
            starts[p as usize + 1] += 1;
        }
    }
    for i in 0..n {
        starts[i + 1] += starts[i];
    }
    let mut fill = starts.clone();
    let mut children = vec![0u32; starts[n] as usize];
    for (child, of) in parents.iter().enumerate() {
        if let Some(&p) = of.first() {
            children[fill[p as usize] as usize] = child as u32;
            fill[p as usize] += 1;
        }
    }
    let mut intervals = vec![(0u32, 0u32); n];
    let mut clock = 0u32;
    // (commit, next child to visit)
    let mut stack: Vec<(u32, u32)> = Vec::new();
    for root in (0..n).filter(|&i| parents[i].is_empty()) {
        intervals[root].0 = clock;
        clock += 1;
        stack.push((root as u32, starts[root]));
        while let Some(top) = stack.last_mut() {
            let (at, next) = (top.0 as usize, top.1);
            if next < starts[at + 1] {
                top.1 += 1;
                let child = children[next as usize];
                intervals[child as usize].0 = clock;
                clock += 1;
                stack.push((child, starts[child as usize]));
            } else {
                intervals[at].1 = clock;
                clock += 1;
                stack.pop();
            }
        }
    }
    intervals
}

/// Where the chunk `id` lies in the graph file at `path`, if it has one (the
/// rest of the layout gix-commitgraph has checked).
fn chunk_range(path: &Path, id: [u8; 4]) -> Result<Option<std::ops::Range<u64>>> {
    use std::os::unix::fs::FileExt;
    let io = PackError::io(format!("reading the commit-graph {}", path.display()));
    let file = std::fs::File::open(path).map_err(io)?;
    let mut head = [0u8; 8];
    let read = |buf: &mut [u8], at: u64| {
        file.read_exact_at(buf, at).map_err(PackError::io(format!(
            "reading the commit-graph {}",
            path.display()
        )))
    };
    read(&mut head, 0)?;
    let count = usize::from(head[6]);
    let mut toc = vec![0u8; (count + 1) * 12];
    read(&mut toc, 8)?;
    let entries: Vec<([u8; 4], u64)> = toc
        .chunks_exact(12)
        .map(|e| {
            let id = [e[0], e[1], e[2], e[3]];
            let offset = u64::from_be_bytes([e[4], e[5], e[6], e[7], e[8], e[9], e[10], e[11]]);
            (id, offset)
        })
        .collect();
    Ok(entries
        .windows(2)
        .find(|w| w[0].0 == id)
        .map(|w| w[0].1..w[1].1))
}

/// Read `range` of `file` in parts of at most `part` bytes, each handed to
/// `each` in order: a large table or file without holding it whole, and
/// without mapping it.
fn read_in_parts(
    file: &std::fs::File,
    range: std::ops::Range<u64>,
    part: usize,
    mut each: impl FnMut(&[u8]),
) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let mut buf =
        vec![0u8; part.min(usize::try_from(range.end.saturating_sub(range.start)).unwrap_or(part))];
    let mut at = range.start;
    while at < range.end {
        let len = buf
            .len()
            .min(usize::try_from(range.end - at).unwrap_or(usize::MAX));
        let bytes = &mut buf[..len];
        file.read_exact_at(bytes, at)?;
        each(bytes);
        at += len as u64;
    }
    Ok(())
}

/// Check the graph file at `path` against its trailing checksum, reading it
/// in parts (not through a mapping: at millions of objects the file is tens of
/// MB, which would stay counted in the process's resident memory) with a plain
/// SHA-1 — a checksum of a file compaction wrote, where collision detection
/// (gix's) would double the cost for nothing.
fn verify_checksum(path: &Path) -> Result<()> {
    use std::os::unix::fs::FileExt;
    let io = || PackError::io(format!("reading the commit-graph {}", path.display()));
    let file = std::fs::File::open(path).map_err(io())?;
    let len = file.metadata().map_err(io())?.len();
    let Some(body) = len.checked_sub(HASH_LEN as u64) else {
        return Err(PackError::Corrupt(format!(
            "commit-graph {}: {len} bytes, too short for its checksum",
            path.display()
        )));
    };
    let mut hasher = sha1::Sha1::new();
    read_in_parts(&file, 0..body, 1 << 20, |part| hasher.update(part)).map_err(io())?;
    let mut recorded = [0u8; HASH_LEN];
    file.read_exact_at(&mut recorded, body).map_err(io())?;
    if hasher.finalize()[..] != recorded {
        return Err(PackError::Corrupt(format!(
            "commit-graph {}: the checksum does not match its content",
            path.display()
        )));
    }
    Ok(())
}

/// Where the tip-entries chunk lies in the graph file at `path`, if it has one.
fn tip_chunk(path: &Path) -> Result<Option<std::ops::Range<u64>>> {
    chunk_range(path, crate::tip_entries::CHUNK_ID)
}

/// A commit-graph file opened for lookups.
pub struct CommitGraph {
    file: gix_commitgraph::File,
    tips: Option<TipEntries>,
    /// The file again and where its first-parent intervals start, when it has
    /// them: read 8 bytes a lookup, as a walk asks about a few commits only.
    first_parent: Option<(std::fs::File, u64)>,
    /// Where the pack's entry types lie in the file, when it has them: read
    /// only when asked for (see [`Self::pack_kinds`]). The file is held open:
    /// a cached download's name may go while a request still reads it.
    pack_kinds: Option<(std::fs::File, std::ops::Range<u64>)>,
    /// Where the pack's entries' delta bases lie, when compaction recorded them.
    delta_bases: Option<Table>,
    /// Which commit brought each entry's object, when compaction recorded it.
    introduced_by: Option<Table>,
    /// The pack order, when compaction recorded it (and the graph is a local
    /// file: see [`PACK_PLACES_CHUNK_ID`]).
    pack_places: Option<Table>,
    /// Where the pack order lies ([`PACK_ORDER_CHUNK_ID`]), if recorded.
    pack_order: Option<(std::fs::File, std::ops::Range<u64>)>,
}

/// A commit's interval in the first-parent forest (see
/// [`CommitGraph::first_parent_span`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FirstParentSpan {
    entry: u32,
    exit: u32,
}

impl FirstParentSpan {
    /// Whether the commit of `other` is this one or one of its first-parent
    /// descendants: whether this commit is reachable from that one.
    pub fn holds(&self, other: &FirstParentSpan) -> bool {
        self.entry <= other.entry && other.exit <= self.exit
    }
}

/// The first-parent intervals of the graph file at `path`, if it has them.
fn first_parent_chunk(path: &Path, commits: u32) -> Result<Option<(std::fs::File, u64)>> {
    let Some((file, range)) = open_chunk(path, FIRST_PARENT_CHUNK_ID)? else {
        return Ok(None);
    };
    if range.end.checked_sub(range.start) != Some(u64::from(commits) * 8) {
        return Err(PackError::Corrupt(format!(
            "commit-graph {}: first-parent chunk of {} bytes for {commits} commits",
            path.display(),
            range.end.saturating_sub(range.start)
        )));
    }
    Ok(Some((file, range.start)))
}

impl std::fmt::Debug for CommitGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CommitGraph")
            .field("commits", &self.file.num_commits())
            .finish()
    }
}

impl CommitGraph {
    /// Open the file at `path`, checking its structure and its checksum: a
    /// graph that came from elsewhere (downloaded from the object store).
    pub fn open(path: &Path) -> Result<Self> {
        verify_checksum(path)?;
        Self::open_trusted(path)
    }

    /// Open the file at `path`, checking its structure but not its checksum:
    /// a graph compaction wrote and checksummed, opened where it was stored,
    /// as the pack and index beside it are opened (neither gix-pack nor git
    /// checks their checksums on open). The check reads the whole file — tens
    /// of MB at millions of objects, a fifth of a first shallow clone's CPU
    /// there — where a request reads a few of its tables.
    pub fn open_trusted(path: &Path) -> Result<Self> {
        let corrupt = |err: gix_error::Error| {
            PackError::Corrupt(format!("commit-graph {}: {err}", path.display()))
        };
        let file = gix_commitgraph::File::at(path).map_err(corrupt)?;
        Self::check_kind(&file, path)?;
        let tips = match tip_chunk(path)? {
            Some(range) => Some(TipEntries::open(path, range)?),
            None => None,
        };
        let first_parent = first_parent_chunk(path, file.num_commits())?;
        Ok(CommitGraph {
            file,
            tips,
            first_parent,
            pack_kinds: pack_kinds_chunk(path)?,
            delta_bases: table_chunk(path, DELTA_BASES_CHUNK_ID)?,
            introduced_by: table_chunk(path, INTRODUCED_BY_CHUNK_ID)?,
            pack_places: table_chunk(path, PACK_PLACES_CHUNK_ID)?,
            pack_order: open_chunk(path, PACK_ORDER_CHUNK_ID)?,
        })
    }

    /// Open a stored graph read by ranges from `source` into a new local file
    /// at `path` of its full length `len`: its commits and the index of its tip
    /// entries are read now, an entry's bytes only when a request sends it (a
    /// fresh instance then downloads what it serves, not up to 16 MiB of
    /// entries). The checksum is not checked — that would read it all — as a
    /// pack read by ranges goes unchecked: the store is trusted with its bytes.
    pub fn open_sparse(
        path: &Path,
        len: u64,
        source: Box<dyn crate::odb::RangeSource>,
    ) -> Result<Self> {
        use std::os::unix::fs::FileExt;
        let sparse = std::sync::Arc::new(crate::odb::SparseFile::create(path, len, source)?);
        let io = || PackError::io(format!("reading the commit-graph {}", path.display()));
        // The header, then the chunk table it sizes.
        sparse.fill(0..8)?;
        let file = std::fs::File::open(path).map_err(io())?;
        let mut head = [0u8; 8];
        file.read_exact_at(&mut head, 0).map_err(io())?;
        sparse.fill(8..8 + (u64::from(head[6]) + 1) * 12)?;
        let Some(chunk) = tip_chunk(path)? else {
            sparse.fill(0..len)?;
            return Self::open(path);
        };
        // Everything but the entries' data: the chunks before theirs, the
        // entries' index, and any chunk after (not the checksum, unread). In
        // reads side by side: at millions of objects the tables before the
        // tip entries are tens of MB, one read of which takes a while.
        sparse.prefetch(std::slice::from_ref(&(0..chunk.start.saturating_add(4))))?;
        let mut count = [0u8; 4];
        file.read_exact_at(&mut count, chunk.start).map_err(io())?;
        let table = u64::from(u32::from_be_bytes(count))
            .saturating_mul(crate::tip_entries::TABLE_BYTES)
            .saturating_add(4 + 8);
        sparse.fill(chunk.start..chunk.start.saturating_add(table).min(chunk.end))?;
        // The chunks after, but the pack order (written last): a pack read by
        // ranges builds its order beside the index download.
        let mut rest = len.saturating_sub(HASH_LEN as u64);
        for id in [PACK_PLACES_CHUNK_ID, PACK_ORDER_CHUNK_ID] {
            if let Some(order) = chunk_range(path, id)? {
                if order.start >= chunk.end {
                    rest = rest.min(order.start);
                }
            }
        }
        sparse.fill(chunk.end..rest)?;
        let file = gix_commitgraph::File::at(path)
            .map_err(|err| PackError::Corrupt(format!("commit-graph {}: {err}", path.display())))?;
        Self::check_kind(&file, path)?;
        // Written before the tip entries, so read above; a graph laid out
        // otherwise has them read now.
        if let Some(range) = chunk_range(path, FIRST_PARENT_CHUNK_ID)? {
            sparse.fill(range)?;
        }
        let first_parent = first_parent_chunk(path, file.num_commits())?;
        // Likewise written before the tip entries.
        for id in [
            PACK_KINDS_CHUNK_ID,
            DELTA_BASES_CHUNK_ID,
            INTRODUCED_BY_CHUNK_ID,
        ] {
            if let Some(range) = chunk_range(path, id)? {
                sparse.fill(range)?;
            }
        }
        let pack_kinds = pack_kinds_chunk(path)?;
        let delta_bases = table_chunk(path, DELTA_BASES_CHUNK_ID)?;
        let introduced_by = table_chunk(path, INTRODUCED_BY_CHUNK_ID)?;
        let tips = TipEntries::open(path, chunk)?.read_by_ranges(sparse);
        Ok(CommitGraph {
            file,
            tips: Some(tips),
            first_parent,
            pack_kinds,
            delta_bases,
            introduced_by,
            // Not read: a pack read by ranges builds its order beside the
            // index download (see `odb::EarlyOrder`).
            pack_places: None,
            pack_order: None,
        })
    }

    fn check_kind(file: &gix_commitgraph::File, path: &Path) -> Result<()> {
        if file.object_hash() != gix_hash::Kind::Sha1 || file.base_graph_count() != 0 {
            return Err(PackError::Corrupt(format!(
                "commit-graph {}: not a single SHA-1 graph",
                path.display()
            )));
        }
        Ok(())
    }

    /// The tip entries stored with the graph, if compaction wrote any.
    pub fn tip_entries(&self) -> Option<&TipEntries> {
        self.tips.as_ref()
    }

    /// Bytes of memory the graph holds: the index of its tip entries (the rest
    /// is read from the mapped file).
    pub fn heap_bytes(&self) -> u64 {
        self.tips.as_ref().map_or(0, TipEntries::heap_bytes)
    }

    pub fn num_commits(&self) -> u32 {
        self.file.num_commits()
    }

    /// Where `id` is in the graph, if it has it: for walks by position
    /// ([`Self::id_at`], [`Self::time_at`], [`Self::parents_at`]).
    pub fn position(&self, id: &oid) -> Option<u32> {
        self.file.lookup(id).map(|pos| pos.0)
    }

    /// The interval of the commit at `pos` in the forest of first-parent
    /// edges, where the graph has them (compaction writes them): the commit
    /// at `a` is reachable from the one at `b` when `a`'s span
    /// [holds](FirstParentSpan::holds) `b`'s. A proof by first parents only —
    /// a commit reachable only through a merge's second parent is not found
    /// so — but it costs a read, where a walk costs every commit between:
    /// a client 50 commits behind that lacks the old branches of a long
    /// history is shown to have them without walking back to them.
    pub fn first_parent_span(&self, pos: u32) -> Result<Option<FirstParentSpan>> {
        use std::os::unix::fs::FileExt;
        let Some((file, start)) = &self.first_parent else {
            return Ok(None);
        };
        if pos >= self.file.num_commits() {
            return Ok(None);
        }
        let mut bytes = [0u8; 8];
        file.read_exact_at(&mut bytes, start + u64::from(pos) * 8)
            .map_err(PackError::io(
                "reading a commit-graph's first-parent intervals",
            ))?;
        let [a, b, c, d, e, f, g, h] = bytes;
        Ok(Some(FirstParentSpan {
            entry: u32::from_be_bytes([a, b, c, d]),
            exit: u32::from_be_bytes([e, f, g, h]),
        }))
    }

    /// The type of every entry of the graph's pack, in pack order, when
    /// compaction recorded them: what a partial clone taking that pack as its
    /// base needs to leave out, and otherwise reads from every entry's header —
    /// the whole pack, for one read by ranges. An error if the chunk is
    /// malformed.
    pub(crate) fn pack_kinds(&self) -> Result<Option<PackedKinds>> {
        use std::os::unix::fs::FileExt;
        let Some((file, range)) = &self.pack_kinds else {
            return Ok(None);
        };
        let mut bytes = vec![0u8; (range.end - range.start) as usize];
        file.read_exact_at(&mut bytes, range.start)
            .map_err(PackError::io("reading a commit-graph's entry types"))?;
        match decode_kinds(&bytes) {
            Some(kinds) => Ok(Some(kinds)),
            None => Err(PackError::Corrupt(format!(
                "commit-graph: an entry-type chunk of {} bytes does not fit its count",
                bytes.len()
            ))),
        }
    }

    /// How many entries the graph's delta-base table has, when compaction
    /// recorded one (see [`Self::delta_base`]).
    pub fn delta_base_count(&self) -> Option<u32> {
        self.delta_bases.as_ref().map(|bases| bases.count)
    }

    /// Where the delta base of the pack's entry at `pos` (its place in pack
    /// order) lies in pack order, as compaction recorded it: `None` for an
    /// entry stored whole, or a place past the table (the caller follows
    /// the entries' own headers, and uses this only to read ahead).
    pub fn delta_base(&self, pos: u32) -> Result<Option<u32>> {
        let Some(bases) = &self.delta_bases else {
            return Ok(None);
        };
        Ok(bases.at(pos)?.filter(|base| *base < bases.count))
    }

    /// How many entries the graph's table of introducing commits has, when
    /// compaction recorded one (see [`Self::introduced_by`]).
    pub fn introduced_count(&self) -> Option<u32> {
        self.introduced_by.as_ref().map(|table| table.count)
    }

    /// The place in the graph of a commit whose tree holds the object of the
    /// pack's entry at `pos` (its place in pack order), as compaction recorded
    /// it: `None` without a record, or for a place past the graph's commits.
    pub fn introduced_by(&self, pos: u32) -> Result<Option<u32>> {
        let Some(table) = &self.introduced_by else {
            return Ok(None);
        };
        Ok(table.at(pos)?.filter(|c| *c < self.file.num_commits()))
    }

    /// The place in pack order of every entry of the graph's pack, in index
    /// order, when compaction recorded them (see `PACK_PLACES_CHUNK_ID`).
    /// Read whole; the caller checks it against the pack's index.
    pub fn pack_places(&self) -> Result<Option<Vec<u32>>> {
        self.pack_places.as_ref().map(Table::all).transpose()
    }

    /// The pack order compaction recorded, to be read in place (see
    /// [`PACK_ORDER_CHUNK_ID`]): the id of the pack it is of, the key of each
    /// entry in pack order and each index position's place in that order, as
    /// tables read a block at a time. `None` without both chunks; an error
    /// when the order's chunk is malformed.
    pub(crate) fn pack_order(&self) -> Result<Option<RecordedTables>> {
        use std::os::unix::fs::FileExt;
        let (Some((file, range)), Some(places)) = (&self.pack_order, &self.pack_places) else {
            return Ok(None);
        };
        let io = || PackError::io("reading a commit-graph's pack order");
        let mut head = [0u8; HASH_LEN + 4];
        file.read_exact_at(&mut head, range.start).map_err(io())?;
        let [id @ .., a, b, c, d] = head;
        let count = u32::from_be_bytes([a, b, c, d]);
        let head_len = head.len() as u64;
        if range.end - range.start != head_len + 8 * u64::from(count) {
            return Err(PackError::Corrupt(format!(
                "commit-graph: a pack order chunk of {} bytes for {count} entries",
                range.end - range.start
            )));
        }
        Ok(Some(RecordedTables {
            pack: ObjectId::from(id),
            keys: BlockTable::new(
                file.try_clone().map_err(io())?,
                range.start + head_len,
                count,
            ),
            places: BlockTable::new(
                places.file.try_clone().map_err(io())?,
                places.start,
                places.count,
            ),
        }))
    }

    /// The id of the commit at `pos` (below [`Self::num_commits`]).
    pub fn id_at(&self, pos: u32) -> ObjectId {
        self.file
            .id_at(gix_commitgraph::file::Position(pos))
            .to_owned()
    }

    /// The committer time of the commit at `pos`.
    pub fn time_at(&self, pos: u32) -> i64 {
        self.file
            .commit_at(gix_commitgraph::file::Position(pos))
            .committer_timestamp() as i64
    }

    /// The positions of the parents of the commit at `pos`, appended to `out`.
    pub fn parents_at(&self, pos: u32, out: &mut Vec<u32>) -> Result<()> {
        let commit = self.file.commit_at(gix_commitgraph::file::Position(pos));
        for parent in commit.iter_parents() {
            let parent = parent.map_err(|err| {
                PackError::Corrupt(format!("commit-graph, commit at {pos}: {err}"))
            })?;
            if parent.0 >= self.file.num_commits() {
                return Err(PackError::Corrupt(format!(
                    "commit-graph, commit at {pos}: parent position {} out of range",
                    parent.0
                )));
            }
            out.push(parent.0);
        }
        Ok(())
    }

    /// The tree, parents and time of `id`, if the graph has it.
    pub fn commit(&self, id: &oid) -> Result<Option<CommitInfo>> {
        let Some(pos) = self.file.lookup(id) else {
            return Ok(None);
        };
        let commit = self.file.commit_at(pos);
        let mut parents = Vec::with_capacity(2);
        for parent in commit.iter_parents() {
            let parent = parent
                .map_err(|err| PackError::Corrupt(format!("commit-graph, commit {id}: {err}")))?;
            if parent.0 >= self.file.num_commits() {
                return Err(PackError::Corrupt(format!(
                    "commit-graph, commit {id}: parent position {} out of range",
                    parent.0
                )));
            }
            parents.push(
                self.file
                    .id_at(gix_commitgraph::file::Position(parent.0))
                    .to_owned(),
            );
        }
        Ok(Some(CommitInfo {
            tree: commit.root_tree_id().to_owned(),
            parents: parents.into(),
            time: commit.committer_timestamp() as i64,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_follow_the_longest_path_to_a_root() {
        // 0 root; 1 -> 0; 2 -> 1; 3 -> (0, 2); 4 -> (3, 1, 0)
        let parents = vec![vec![], vec![0], vec![1], vec![0, 2], vec![3, 1, 0]];
        assert_eq!(topological_levels(&parents), Some(vec![1, 2, 3, 4, 5]));
    }

    #[test]
    fn a_cycle_gives_no_levels() {
        assert_eq!(topological_levels(&[vec![1], vec![0]]), None);
        assert_eq!(topological_levels(&[vec![0]]), None);
    }

    #[test]
    fn no_graph_when_a_parent_is_missing_or_a_time_does_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("g");
        let a = ObjectId::from_hex(b"1111111111111111111111111111111111111111").unwrap();
        let b = ObjectId::from_hex(b"2222222222222222222222222222222222222222").unwrap();
        let tree = ObjectId::empty_tree(gix_hash::Kind::Sha1);
        let orphan = CommitInfo {
            tree,
            parents: vec![b].into(),
            time: 5,
        };
        assert!(!write(&[(a, &orphan)], &[], &Default::default(), &out).unwrap());
        let ancient = CommitInfo {
            tree,
            parents: Vec::new().into(),
            time: -1,
        };
        assert!(!write(&[(a, &ancient)], &[], &Default::default(), &out).unwrap());
        assert!(!out.exists());
    }

    #[test]
    fn first_parent_spans_hold_exactly_the_first_parent_descendants() {
        // Several roots, merges (first parent and others), long chains: commit
        // i's parents are earlier commits, picked by a fixed generator.
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |m: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % m
        };
        let n = 300usize;
        let parents: Vec<Vec<usize>> = (0..n)
            .map(|i| match i {
                0 => Vec::new(),
                _ if next(20) == 0 => Vec::new(),
                _ => {
                    let count = 1 + next(3) as usize;
                    let mut of: Vec<usize> = (0..count).map(|_| next(i as u64) as usize).collect();
                    of.dedup();
                    of
                }
            })
            .collect();
        let ids: Vec<ObjectId> = (0..n)
            .map(|i| {
                let mut bytes = [0u8; 20];
                bytes[..8]
                    .copy_from_slice(&(i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
                ObjectId::from_bytes_or_panic(&bytes)
            })
            .collect();
        let tree = ObjectId::empty_tree(gix_hash::Kind::Sha1);
        let infos: Vec<CommitInfo> = parents
            .iter()
            .enumerate()
            .map(|(i, of)| CommitInfo {
                tree,
                parents: of.iter().map(|&p| ids[p]).collect::<Vec<_>>().into(),
                time: 1_600_000_000 + i as i64,
            })
            .collect();
        let commits: Vec<(ObjectId, &CommitInfo)> = ids.iter().copied().zip(infos.iter()).collect();
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("g");
        assert!(write(&commits, &[], &Default::default(), &out).unwrap());
        let graph = CommitGraph::open(&out).unwrap();
        let span = |i: usize| {
            let pos = graph.position(&ids[i]).unwrap();
            graph
                .first_parent_span(pos)
                .unwrap()
                .expect("spans written")
        };
        let spans: Vec<FirstParentSpan> = (0..n).map(span).collect();
        let mut pairs = 0;
        for b in 0..n {
            // b and its first-parent ancestors, by following first parents.
            let mut chain = vec![b];
            while let Some(&p) = parents[*chain.last().unwrap()].first() {
                chain.push(p);
            }
            for a in 0..n {
                let expected = chain.contains(&a);
                pairs += usize::from(expected);
                assert_eq!(spans[a].holds(&spans[b]), expected, "{a} of {b}");
            }
        }
        assert!(pairs > 2 * n, "long chains: {pairs} ancestor pairs");
    }

    /// Serves the bytes of a file by ranges, counting what it was asked for.
    struct Counted {
        data: Vec<u8>,
        read: std::sync::Arc<std::sync::atomic::AtomicU64>,
        /// Calls of `read_ranges`.
        batches: std::sync::Arc<std::sync::atomic::AtomicU64>,
    }

    impl crate::odb::RangeSource for Counted {
        fn read_range(&self, range: std::ops::Range<u64>) -> Result<Vec<u8>> {
            self.read
                .fetch_add(range.end - range.start, std::sync::atomic::Ordering::SeqCst);
            Ok(self.data[range.start as usize..range.end as usize].to_vec())
        }

        fn read_ranges(&self, ranges: &[std::ops::Range<u64>]) -> Result<Vec<Vec<u8>>> {
            self.batches
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ranges.iter().map(|r| self.read_range(r.clone())).collect()
        }
    }

    #[test]
    fn entry_types_read_back_as_written_and_a_chunk_of_the_wrong_length_is_refused() {
        use gix_object::Kind;
        let all = [Kind::Commit, Kind::Tree, Kind::Blob, Kind::Tag];
        // Every length modulo four, every type at every place in a byte.
        for len in 0..13usize {
            let kinds: Vec<Kind> = (0..len).map(|i| all[(i * 7 + i / 4) % 4]).collect();
            let bytes = encode_kinds(&kinds);
            assert_eq!(bytes.len(), 4 + len.div_ceil(4));
            assert_eq!(
                decode_kinds(&bytes).map(|k| k.iter().collect::<Vec<_>>()),
                Some(kinds.clone())
            );
            let mut long = bytes.clone();
            long.push(0);
            assert_eq!(decode_kinds(&long), None, "{len} types and a byte more");
            if len > 0 {
                assert_eq!(decode_kinds(&bytes[..bytes.len() - 1]), None);
            }
        }
        // A count far past the bytes there (a damaged file) asks for nothing.
        assert_eq!(decode_kinds(&[0xff, 0xff, 0xff, 0xff, 0]), None);
        assert_eq!(decode_kinds(&[0, 0]), None);
    }

    #[test]
    fn entry_tables_read_back_as_written_and_a_place_past_them_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let tree = ObjectId::empty_tree(gix_hash::Kind::Sha1);
        let info = CommitInfo {
            tree,
            parents: Vec::new().into(),
            time: 1_600_000_000,
        };
        let commit = ObjectId::from_bytes_or_panic(&[7; 20]);
        let kinds = [gix_object::Kind::Commit; 5];
        let bases = [NO_BASE, 0, 1, NO_BASE, 7];
        // One commit: a commit past it (3) is no record.
        let introduced = [NO_BASE, 0, 0, 3, 0];
        // Longer than one read of the table (64 KiB), every value kept as it is.
        let places: Vec<u32> = (0..40_000).rev().chain([NO_BASE]).collect();
        // Over one block of the order's reads (64 Ki entries).
        let keys: Vec<u64> = (0..100_000u64).map(|i| (i + 12) << 32 | (i * 7)).collect();
        let pack = ObjectId::from_bytes_or_panic(&[9; 20]);
        let entries = PackEntries {
            kinds: &kinds,
            delta_bases: &bases,
            introduced_by: &introduced,
            places: &places,
            order: Some((pack, &keys)),
        };
        let out = dir.path().join("with");
        assert!(write(&[(commit, &info)], &[], &entries, &out).unwrap());
        let graph = CommitGraph::open(&out).unwrap();
        assert_eq!(graph.delta_base_count(), Some(5));
        let read: Vec<Option<u32>> = (0..6).map(|pos| graph.delta_base(pos).unwrap()).collect();
        // Entry 4's base lies past the table (a damaged record): none; so is
        // anything asked past the table's end.
        assert_eq!(read, [None, Some(0), Some(1), None, None, None]);
        let read = graph.pack_kinds().unwrap().unwrap();
        assert_eq!(read.iter().collect::<Vec<_>>(), kinds.to_vec());
        assert_eq!(graph.introduced_count(), Some(5));
        let read: Vec<Option<u32>> = (0..6)
            .map(|pos| graph.introduced_by(pos).unwrap())
            .collect();
        assert_eq!(read, [None, Some(0), Some(0), None, Some(0), None]);
        assert_eq!(graph.pack_places().unwrap(), Some(places.clone()));
        let recorded = graph.pack_order().unwrap().unwrap();
        let (order, in_place) = (recorded.keys, recorded.places);
        assert_eq!(recorded.pack, pack);
        assert_eq!(order.len(), keys.len());
        let read: Vec<u64> = (0..=keys.len())
            .map_while(|pos| order.get(pos, |_| true))
            .collect();
        assert_eq!(read, keys);
        let read: Vec<u32> = (0..=places.len())
            .map_while(|index| in_place.get(index, |_| true))
            .collect();
        assert_eq!(read, places);

        let out = dir.path().join("without");
        assert!(write(&[(commit, &info)], &[], &Default::default(), &out).unwrap());
        let graph = CommitGraph::open(&out).unwrap();
        assert_eq!(graph.delta_base_count(), None);
        assert_eq!(graph.delta_base(0).unwrap(), None);
        assert_eq!(graph.introduced_by(0).unwrap(), None);
        assert_eq!(graph.pack_places().unwrap(), None);
        assert!(graph.pack_order().unwrap().is_none());
    }

    #[test]
    fn a_graph_whose_bytes_changed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let info = CommitInfo {
            tree: ObjectId::empty_tree(gix_hash::Kind::Sha1),
            parents: Vec::new().into(),
            time: 1_600_000_000,
        };
        let commit = ObjectId::from_bytes_or_panic(&[7; 20]);
        // Over one part of the check's reads (1 MiB).
        let places: Vec<u32> = (0..400_000).collect();
        let entries = PackEntries {
            places: &places,
            ..Default::default()
        };
        let out = dir.path().join("g");
        assert!(write(&[(commit, &info)], &[], &entries, &out).unwrap());
        let data = std::fs::read(&out).unwrap();
        assert!(CommitGraph::open(&out).is_ok());
        // One bit of the table in the second part, then of the checksum.
        for at in [data.len() - 100, data.len() - 1] {
            let mut changed = data.clone();
            changed[at] ^= 1;
            std::fs::write(&out, &changed).unwrap();
            let err = CommitGraph::open(&out).unwrap_err();
            assert!(
                matches!(&err, PackError::Corrupt(m) if m.contains("checksum")),
                "{err}"
            );
        }
    }

    #[test]
    fn a_graph_read_by_ranges_reads_its_commits_and_only_the_tip_entries_asked_for() {
        use crate::{odb::BLOCK_BYTES, tip_entries::TipEntry};
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("g");
        let tree = ObjectId::empty_tree(gix_hash::Kind::Sha1);
        let ids: Vec<ObjectId> = (1..=200u8)
            .map(|b| ObjectId::from_bytes_or_panic(&[b; 20]))
            .collect();
        let infos: Vec<CommitInfo> = (0..ids.len())
            .map(|i| CommitInfo {
                tree,
                parents: if i == 0 { Vec::new() } else { vec![ids[i - 1]] }.into(),
                time: 1_600_000_000 + i as i64,
            })
            .collect();
        let commits: Vec<(ObjectId, &CommitInfo)> = ids.iter().copied().zip(infos.iter()).collect();
        // Entries of incompressible bytes, several blocks of them.
        let mut state = 7u64;
        let tips: Vec<TipEntry> = (0..12u8)
            .map(|i| TipEntry {
                id: ObjectId::from_bytes_or_panic(&[i.wrapping_mul(17).wrapping_add(3); 20]),
                base: None,
                kind: gix_object::Kind::Blob,
                size: 700_000,
                object_size: 700_000,
                peers: 1,
                compressed: (0..700_000)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        state as u8
                    })
                    .collect(),
            })
            .collect();
        // A pack order of a million entries (4 MB), which opening by ranges
        // leaves unread.
        let places: Vec<u32> = (0..1 << 20).collect();
        let entries = PackEntries {
            places: &places,
            ..Default::default()
        };
        assert!(write(&commits, &tips, &entries, &out).unwrap());
        let data = std::fs::read(&out).unwrap();
        let whole = CommitGraph::open(&out).unwrap();
        assert_eq!(whole.pack_places().unwrap(), Some(places));

        let read = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let batches = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let source = Counted {
            data: data.clone(),
            read: read.clone(),
            batches: batches.clone(),
        };
        let sparse_path = dir.path().join("sparse");
        let graph =
            CommitGraph::open_sparse(&sparse_path, data.len() as u64, Box::new(source)).unwrap();
        let opened = read.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            opened <= 3 * BLOCK_BYTES && opened < data.len() as u64 / 2,
            "opening read {opened} of {} bytes",
            data.len()
        );
        assert_eq!(graph.pack_places().unwrap(), None);
        // The commits, and their first-parent intervals, read as from the whole file.
        for id in &ids {
            assert_eq!(graph.commit(id).unwrap(), whole.commit(id).unwrap());
            let span = |g: &CommitGraph| g.first_parent_span(g.position(id).unwrap()).unwrap();
            assert!(span(&whole).is_some());
            assert_eq!(span(&graph), span(&whole));
        }
        assert!(graph
            .first_parent_span(graph.position(&ids[0]).unwrap())
            .unwrap()
            .unwrap()
            .holds(
                &graph
                    .first_parent_span(graph.position(&ids[199]).unwrap())
                    .unwrap()
                    .unwrap()
            ));
        // One entry reads as from the whole file, for a block or two more.
        let (sparse_tips, whole_tips) =
            (graph.tip_entries().unwrap(), whole.tip_entries().unwrap());
        assert_eq!(sparse_tips.len(), tips.len());
        let wanted = tips[5].id;
        let entry = sparse_tips
            .read(sparse_tips.lookup(&wanted).unwrap())
            .unwrap();
        assert_eq!(
            entry,
            whole_tips
                .read(whole_tips.lookup(&wanted).unwrap())
                .unwrap()
        );
        let after = read.load(std::sync::atomic::Ordering::SeqCst);
        assert!(
            after - opened <= 2 * BLOCK_BYTES,
            "one entry read {} bytes",
            after - opened
        );
        assert!(after < data.len() as u64 / 2);

        // Entries a request is about to send are read in one batch, then
        // read as from the whole file without reading more.
        let soon: Vec<ObjectId> = [0, 3, 9, 11].iter().map(|&i| tips[i].id).collect();
        let batches_before = batches.load(std::sync::atomic::Ordering::SeqCst);
        sparse_tips
            .prefetch(soon.iter().map(|id| sparse_tips.lookup(id).unwrap()))
            .unwrap();
        assert_eq!(
            batches.load(std::sync::atomic::Ordering::SeqCst),
            batches_before + 1
        );
        let prefetched = read.load(std::sync::atomic::Ordering::SeqCst);
        assert!(prefetched > after);
        for id in &soon {
            assert_eq!(
                sparse_tips.read(sparse_tips.lookup(id).unwrap()).unwrap(),
                whole_tips.read(whole_tips.lookup(id).unwrap()).unwrap()
            );
        }
        assert_eq!(read.load(std::sync::atomic::Ordering::SeqCst), prefetched);
    }
}
