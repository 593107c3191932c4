//! Indexing of received packs that hold big objects, without holding them whole.
//!
//! gix-pack's indexer inflates every whole object into memory to hash it, so a
//! pushed 512 MiB blob costs 512 MiB. A pack with an object stored whole above
//! [`crate::BIG_OBJECT_BYTES`] is indexed here instead, the way git's index-pack
//! does it: one streaming pass over the file finds the entries (offset, CRC-32,
//! the pack checksum) and hashes each whole object as it inflates; deltas are
//! then resolved from the pack file with gix-pack's decoder (their bases come
//! from the pack, or, for a thin pack, from the repository and are appended to
//! complete it); last a version-2 index is written. A delta's result and its
//! base are held whole, bounded by the ingest's object size limit, as in git.
//!
//! Not here: parsing and connectivity checks (the ingest's verify step).

use std::{
    cell::RefCell,
    collections::{HashMap, HashSet},
    io::{BufRead, BufReader, BufWriter, Read, Write},
    path::{Path, PathBuf},
};

use gix_hash::ObjectId;
use gix_object::Kind;
use gix_pack::data::decode::entry::ResolvedBase;
use sha1::{Digest, Sha1};

use crate::{
    delta::DeltaSizes,
    entry::{kind_type, write_type_and_size},
    odb::ObjectDb,
    PackError, Result,
};

/// How an entry is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stored {
    Whole(Kind),
    OfsDelta { base_offset: u64 },
    RefDelta { base: ObjectId },
}

#[derive(Debug, Clone)]
struct ScanEntry {
    offset: u64,
    stored: Stored,
    crc32: u32,
    /// Known once hashed: at once for whole objects, after resolution for deltas.
    id: Option<ObjectId>,
}

struct Scan {
    entries: Vec<ScanEntry>,
    /// Where the entries end (the trailer starts).
    data_end: u64,
    checksum: ObjectId,
}

/// Counts every byte consumed from the pack, and when `hashing`, hashes and
/// CRCs it too.
struct Tracker<R> {
    inner: R,
    hashing: bool,
    pack_hash: Sha1,
    crc: crc32fast::Hasher,
    pos: u64,
}

impl Tracker<BufReader<std::fs::File>> {
    /// The pack file at `path`, read from its start.
    fn open(path: &Path, hashing: bool) -> Result<Self> {
        let file = std::fs::File::open(path).map_err(PackError::io("reading the received pack"))?;
        Ok(Tracker {
            inner: BufReader::with_capacity(1 << 20, file),
            hashing,
            pack_hash: Sha1::new(),
            crc: crc32fast::Hasher::new(),
            pos: 0,
        })
    }
}

impl<R: BufRead> BufRead for Tracker<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }
    fn consume(&mut self, amt: usize) {
        if self.hashing {
            if let Ok(buf) = self.inner.fill_buf() {
                let used = &buf[..amt.min(buf.len())];
                self.pack_hash.update(used);
                self.crc.update(used);
            }
        }
        self.pos += amt as u64;
        self.inner.consume(amt);
    }
}

impl<R: BufRead> Read for Tracker<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let avail = self.fill_buf()?;
        let n = avail.len().min(buf.len());
        buf[..n].copy_from_slice(&avail[..n]);
        self.consume(n);
        Ok(n)
    }
}

fn invalid(detail: impl Into<String>) -> PackError {
    PackError::InvalidPack(detail.into())
}

fn byte(r: &mut impl Read) -> Result<u8> {
    let mut b = [0u8; 1];
    r.read_exact(&mut b)
        .map_err(|_| invalid("pack is truncated in an entry header"))?;
    Ok(b[0])
}

fn object_kind(type_id: u8) -> Option<Kind> {
    Some(match type_id {
        1 => Kind::Commit,
        2 => Kind::Tree,
        3 => Kind::Blob,
        4 => Kind::Tag,
        _ => return None,
    })
}

/// Read the header of the entry at `offset` (where `r` stands): how it is
/// stored and its inflated size.
fn entry_header(r: &mut impl Read, offset: u64) -> Result<(Stored, u64)> {
    let mut c = byte(r)?;
    let type_id = (c >> 4) & 7;
    let mut size = u64::from(c & 0x0f);
    let mut shift = 4;
    while c & 0x80 != 0 {
        c = byte(r)?;
        if shift > 57 {
            return Err(invalid(format!("entry at {offset} has an overlong size")));
        }
        size |= u64::from(c & 0x7f) << shift;
        shift += 7;
    }
    let stored = match type_id {
        6 => {
            let mut c = byte(r)?;
            let mut distance = u64::from(c & 0x7f);
            while c & 0x80 != 0 {
                c = byte(r)?;
                distance = distance
                    .checked_add(1)
                    .and_then(|d| d.checked_mul(128))
                    .map(|d| d | u64::from(c & 0x7f))
                    .ok_or_else(|| invalid(format!("entry at {offset}: bad delta offset")))?;
            }
            let base_offset = offset
                .checked_sub(distance)
                .filter(|_| distance > 0)
                .ok_or_else(|| invalid(format!("delta at {offset} points outside the pack")))?;
            Stored::OfsDelta { base_offset }
        }
        7 => {
            let mut id = [0u8; 20];
            r.read_exact(&mut id)
                .map_err(|_| invalid("pack is truncated in an entry header"))?;
            Stored::RefDelta {
                base: ObjectId::from_bytes_or_panic(&id),
            }
        }
        other => Stored::Whole(
            object_kind(other)
                .ok_or_else(|| invalid(format!("entry at {offset} has unknown type {other}")))?,
        ),
    };
    Ok((stored, size))
}

/// Read a pack's header (from its start): its entry count.
fn pack_header(r: &mut impl Read) -> Result<u32> {
    let mut head = [0u8; 12];
    r.read_exact(&mut head)
        .map_err(|_| invalid("pack is truncated in its header"))?;
    let version = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    if &head[..4] != b"PACK" || !(version == 2 || version == 3) {
        return Err(invalid("not a version 2 pack"));
    }
    Ok(u32::from_be_bytes([head[8], head[9], head[10], head[11]]))
}

/// Inflate the data of the entry at `offset` (where `r` stands, past its
/// header), whose header said `size` bytes, handing it to `each` a piece at a
/// time through `buf`: it must come to exactly `size` (a stream that goes on
/// is not inflated past one byte more).
fn inflate_entry(
    r: &mut impl BufRead,
    offset: u64,
    size: u64,
    buf: &mut [u8],
    mut each: impl FnMut(&[u8]),
) -> Result<()> {
    let mut inflater = flate2::bufread::ZlibDecoder::new(r);
    let mut got = 0u64;
    loop {
        let want = (buf.len() as u64).min(size + 1 - got) as usize;
        let n = inflater
            .read(&mut buf[..want])
            .map_err(|err| invalid(format!("entry at {offset}: {err}")))?;
        if n == 0 {
            break;
        }
        got += n as u64;
        if got > size {
            break;
        }
        each(&buf[..n]);
    }
    if got != size {
        return Err(invalid(format!(
            "entry at {offset} inflates to {got}{} bytes, its header says {size}",
            if got > size { "+" } else { "" }
        )));
    }
    Ok(())
}

/// What a look-through of a pack found.
#[derive(Debug)]
pub(crate) enum Found {
    /// An object stored whole above the bound; the entries after it unread.
    Big,
    /// Every entry read and checked; none stored whole above the bound.
    NoBig,
    /// An entry that does not read cleanly (why), the ones before it checked.
    Unreadable(PackError),
}

/// Look through the pack at `path` for an object stored whole above
/// `big_bytes`: its entries' headers read in turn (each entry inflated, to
/// find the next) up to the first such object, and nothing kept. The scan
/// that indexes such a pack holds some 80 bytes an entry (200 MB for a push
/// of 2.5M objects) and hashes every byte; a pack without one, nearly every
/// pack, needs neither. Every entry before the first big object is checked:
/// an error for one making an object above `max_object_bytes` (whole, or as
/// a delta's claimed result), for a zlib stream padded past
/// [`most_compressed`] and for a delta whose instructions do not make what
/// its header claims (see [`check_delta`]). `checked` is told the offset up
/// to which the pack has been checked, after its header and after each entry.
pub(crate) fn look_through(
    path: &Path,
    big_bytes: u64,
    max_object_bytes: u64,
    checked: &dyn Fn(u64),
) -> Result<Found> {
    let mut t = Tracker::open(path, false)?;
    let count = match pack_header(&mut t) {
        Ok(count) => count,
        Err(why) => return Ok(Found::Unreadable(why)),
    };
    checked(t.pos);
    let mut buf = vec![0u8; 256 * 1024];
    for _ in 0..count {
        let offset = t.pos;
        let (stored, size) = match entry_header(&mut t, offset) {
            Ok(header) => header,
            Err(why) => return Ok(Found::Unreadable(why)),
        };
        if size > max_object_bytes {
            return Err(too_large(offset, size, max_object_bytes));
        }
        if matches!(stored, Stored::Whole(_)) && size > big_bytes {
            return Ok(Found::Big);
        }
        let mut delta = (!matches!(stored, Stored::Whole(_))).then(DeltaSizes::new);
        let data_at = t.pos;
        let inflated = inflate_entry(&mut t, offset, size, &mut buf, |piece| {
            if let Some(delta) = delta.as_mut() {
                delta.feed(piece);
            }
        });
        if let Err(why) = inflated {
            return Ok(Found::Unreadable(why));
        }
        check_compressed(offset, t.pos - data_at, size)?;
        check_delta(delta, offset, max_object_bytes)?;
        checked(t.pos);
    }
    Ok(Found::NoBig)
}

/// Refuse a delta claiming a result above `max_object_bytes`, or whose
/// instructions do not make the result its header claims (within the base it
/// claims): the indexer would allocate the claimed result, up to the object
/// limit, before applying it.
fn check_delta(delta: Option<DeltaSizes>, offset: u64, max_object_bytes: u64) -> Result<()> {
    let Some(delta) = delta else {
        return Ok(());
    };
    if let Some(size) = delta
        .claimed_result()
        .filter(|&size| size > max_object_bytes)
    {
        return Err(too_large(offset, size, max_object_bytes));
    }
    match delta.finish() {
        Err(err) => Err(invalid(format!("delta at {offset}: {err}"))),
        Ok(_) => Ok(()),
    }
}

/// The most compressed bytes an entry inflating to `size` bytes may take. A
/// zlib stream can be padded with empty blocks to any length without changing
/// what it inflates to, and an indexer holding an entry's compressed bytes (as
/// gix's does, for a thin pack) would hold all of it: up to the pack's size
/// for a few inflated bytes. No encoder git clients use comes near this:
/// zlib's worst case, stored blocks, adds 5 bytes in 64 KiB.
fn most_compressed(size: u64) -> u64 {
    size.saturating_mul(2).saturating_add(64 << 10)
}

/// Refuse an entry whose `compressed` bytes are more than [`most_compressed`].
fn check_compressed(offset: u64, compressed: u64, size: u64) -> Result<()> {
    match compressed > most_compressed(size) {
        true => Err(invalid(format!(
            "entry at {offset} takes {compressed} compressed bytes for {size} inflated \
             (a zlib stream padded past twice its data and 64 KiB)"
        ))),
        false => Ok(()),
    }
}

fn too_large(offset: u64, size: u64, limit: u64) -> PackError {
    PackError::ObjectTooLarge {
        offset,
        size,
        limit,
    }
}

/// Read the pack at `path` entry by entry, hashing big whole objects as they
/// inflate (the others are hashed when deltas are resolved, from the file).
fn scan(path: &Path, big_bytes: u64, max_object_bytes: u64) -> Result<Scan> {
    let mut t = Tracker::open(path, true)?;
    let count = pack_header(&mut t)?;
    let mut entries = Vec::with_capacity(count.min(1 << 16) as usize);
    let mut buf = vec![0u8; 256 * 1024];
    for _ in 0..count {
        let offset = t.pos;
        t.crc = crc32fast::Hasher::new();
        let (stored, size) = entry_header(&mut t, offset)?;
        if size > max_object_bytes {
            return Err(too_large(offset, size, max_object_bytes));
        }
        let mut hasher = match stored {
            Stored::Whole(kind) if size > big_bytes => {
                let mut h = Sha1::new();
                h.update(format!("{kind} {size}\0").as_bytes());
                Some(h)
            }
            _ => None,
        };
        let mut delta = (!matches!(stored, Stored::Whole(_))).then(DeltaSizes::new);
        let data_at = t.pos;
        inflate_entry(&mut t, offset, size, &mut buf, |piece| {
            if let Some(h) = hasher.as_mut() {
                h.update(piece);
            }
            if let Some(delta) = delta.as_mut() {
                delta.feed(piece);
            }
        })?;
        check_compressed(offset, t.pos - data_at, size)?;
        check_delta(delta, offset, max_object_bytes)?;
        entries.push(ScanEntry {
            offset,
            stored,
            crc32: t.crc.clone().finalize(),
            id: hasher.map(|h| ObjectId::from_bytes_or_panic(&h.finalize())),
        });
    }
    let data_end = t.pos;
    let computed = ObjectId::from_bytes_or_panic(&t.pack_hash.clone().finalize());
    let mut trailer = [0u8; 20];
    t.inner
        .read_exact(&mut trailer)
        .map_err(|_| invalid("pack is truncated: no checksum"))?;
    let checksum = ObjectId::from_bytes_or_panic(&trailer);
    if checksum != computed {
        return Err(invalid(format!(
            "pack checksum is {checksum}, its content hashes to {computed}"
        )));
    }
    if !t
        .inner
        .fill_buf()
        .map_err(PackError::io("reading the received pack"))?
        .is_empty()
    {
        return Err(invalid("data after the pack's checksum"));
    }
    Ok(Scan {
        entries,
        data_end,
        checksum,
    })
}

fn object_id(kind: Kind, data: &[u8]) -> ObjectId {
    let mut h = Sha1::new();
    h.update(format!("{kind} {}\0", data.len()).as_bytes());
    h.update(data);
    ObjectId::from_bytes_or_panic(&h.finalize())
}

/// The pack and index written by [`index_big_pack`].
pub(crate) struct Indexed {
    pub pack_path: PathBuf,
    pub index_path: PathBuf,
}

/// Index the pack at `path`, which holds an object stored whole above
/// `big_bytes` (see [`look_through`]), into `work_dir`, holding no object
/// stored whole above that bound in memory. A pack that does not read cleanly
/// is refused here: handing it to the ordinary indexer would let a lying
/// delta after the big object make it allocate what the delta claims.
pub(crate) fn index_big_pack(
    path: &Path,
    work_dir: &Path,
    db: &ObjectDb,
    big_bytes: u64,
    max_object_bytes: u64,
) -> Result<Indexed> {
    let mut scan = scan(path, big_bytes, max_object_bytes)?;
    let external = resolve_deltas(path, &mut scan, db, max_object_bytes)?;
    let (pack_path, checksum) = if external.is_empty() {
        let dest = work_dir.join(format!("pack-{}.pack", scan.checksum));
        if std::fs::hard_link(path, &dest).is_err() {
            std::fs::copy(path, &dest).map_err(PackError::io("copying the received pack"))?;
        }
        (dest, scan.checksum)
    } else {
        complete_thin(path, &mut scan, &external, db, work_dir)?
    };
    let index_path = pack_path.with_extension("idx");
    write_scanned_index(&index_path, &scan.entries, &checksum)?;
    Ok(Indexed {
        pack_path,
        index_path,
    })
}

/// Hash every object not hashed yet (small whole objects and deltas, resolved
/// from the pack file) and record its id; returns the ids
/// of bases found only in the repository (a thin pack), in a stable order.
fn resolve_deltas(
    path: &Path,
    scan: &mut Scan,
    db: &ObjectDb,
    max_object_bytes: u64,
) -> Result<Vec<ObjectId>> {
    let corrupt = |err: gix_error::Error| invalid(format!("{err}").replace('\n', " "));
    let data = gix_pack::data::File::at(path, gix_hash::Kind::Sha1)
        .map_err(corrupt)?
        .with_alloc_limit_bytes(Some(
            usize::try_from(max_object_bytes).unwrap_or(usize::MAX),
        ));
    let by_offset: HashMap<u64, usize> = scan
        .entries
        .iter()
        .enumerate()
        .map(|(i, e)| (e.offset, i))
        .collect();
    let mut ids: HashMap<ObjectId, usize> = scan
        .entries
        .iter()
        .enumerate()
        .filter_map(|(i, e)| e.id.map(|id| (id, i)))
        .collect();
    let external: RefCell<Vec<ObjectId>> = RefCell::new(Vec::new());
    let seen_external: RefCell<HashSet<ObjectId>> = RefCell::new(HashSet::new());
    let reader = RefCell::new(db.reader_with_cache_bytes(8 << 20));
    let mut inflate = gix_zlib::Inflate::default();
    let mut cache = gix_pack::cache::lru::MemoryCappedHashmap::new(32 << 20);
    let mut buf = Vec::new();
    // Whole objects first, so every in-pack base named by id is known before
    // its deltas (and never taken from the repository instead).
    let mut pending: Vec<usize> = (0..scan.entries.len())
        .filter(|&i| scan.entries[i].id.is_none())
        .collect();
    pending.sort_by_key(|&i| !matches!(scan.entries[i].stored, Stored::Whole(_)));
    while !pending.is_empty() {
        let mut waiting = Vec::new();
        let mut missing = None;
        for &i in &pending {
            // The chain must end at a base that is known: in the pack, or in the repository.
            let mut at = i;
            let mut ready = true;
            for _ in 0..=scan.entries.len() {
                match scan.entries[at].stored {
                    Stored::Whole(_) => break,
                    Stored::OfsDelta { base_offset } => match by_offset.get(&base_offset) {
                        Some(&base) if scan.entries[base].id.is_some() => break,
                        Some(&base) => at = base,
                        None => {
                            return Err(invalid(format!(
                                "delta at {} has no entry at its base offset",
                                scan.entries[at].offset
                            )))
                        }
                    },
                    Stored::RefDelta { base } => {
                        if !ids.contains_key(&base) && !db.contains(&base)? {
                            ready = false;
                            missing = Some(base);
                        }
                        break;
                    }
                }
            }
            if !ready {
                waiting.push(i);
                continue;
            }
            let entry = data.entry(scan.entries[i].offset).map_err(corrupt)?;
            let resolve = |id: &gix_hash::oid,
                           out: &mut Vec<u8>|
             -> gix_error::Result<Option<ResolvedBase>> {
                if let Some(&j) = ids.get(id) {
                    return data
                        .entry(scan.entries[j].offset)
                        .map(|e| Some(ResolvedBase::InPack(e)));
                }
                match reader.borrow_mut().read(id, out) {
                    Ok(Some(kind)) => {
                        if seen_external.borrow_mut().insert(id.to_owned()) {
                            external.borrow_mut().push(id.to_owned());
                        }
                        Ok(Some(ResolvedBase::OutOfPack {
                            kind,
                            end: out.len(),
                        }))
                    }
                    Ok(None) => Ok(None),
                    Err(err) => Err(gix_error::Error::from_error(std::io::Error::other(
                        err.to_string(),
                    ))),
                }
            };
            let outcome = data
                .decode_entry(entry, &mut buf, &mut inflate, &resolve, &mut cache)
                .map_err(corrupt)?;
            let id = object_id(outcome.kind, &buf);
            scan.entries[i].id = Some(id);
            ids.entry(id).or_insert(i);
        }
        if waiting.len() == pending.len() {
            return Err(PackError::MissingObject(
                missing.unwrap_or_else(|| ObjectId::null(gix_hash::Kind::Sha1)),
            ));
        }
        pending = waiting;
    }
    Ok(external.into_inner())
}

/// Append the repository's `bases` to the pack as whole objects, so it is
/// self-contained; returns the completed pack's path and checksum.
fn complete_thin(
    path: &Path,
    scan: &mut Scan,
    bases: &[ObjectId],
    db: &ObjectDb,
    work_dir: &Path,
) -> Result<(PathBuf, ObjectId)> {
    let io = PackError::io;
    let count = u32::try_from(scan.entries.len() + bases.len())
        .map_err(|_| invalid("too many objects for one pack"))?;
    let tmp = work_dir.join("completing.pack");
    let mut out = BufWriter::with_capacity(
        1 << 20,
        std::fs::File::create(&tmp).map_err(io("completing the pack"))?,
    );
    let mut hash = Sha1::new();
    let mut put = |out: &mut BufWriter<std::fs::File>, bytes: &[u8]| -> Result<()> {
        hash.update(bytes);
        out.write_all(bytes)
            .map_err(PackError::io("completing the pack"))
    };
    let mut input = BufReader::with_capacity(
        1 << 20,
        std::fs::File::open(path).map_err(io("reading the received pack"))?,
    );
    let mut head = [0u8; 12];
    input
        .read_exact(&mut head)
        .map_err(io("reading the received pack"))?;
    head[8..12].copy_from_slice(&count.to_be_bytes());
    put(&mut out, &head)?;
    let mut left = scan.data_end - 12;
    let mut buf = vec![0u8; 1 << 20];
    while left > 0 {
        let want = (buf.len() as u64).min(left) as usize;
        input
            .read_exact(&mut buf[..want])
            .map_err(io("reading the received pack"))?;
        put(&mut out, &buf[..want])?;
        left -= want as u64;
    }
    let mut offset = scan.data_end;
    let mut reader = db.reader_with_cache_bytes(8 << 20);
    let mut data = Vec::new();
    for id in bases {
        let kind = reader.read_existing(id, &mut data)?;
        let mut entry = Vec::with_capacity(data.len() / 2 + 32);
        write_type_and_size(&mut entry, kind_type(kind), data.len() as u64);
        let mut enc = flate2::write::ZlibEncoder::new(entry, flate2::Compression::default());
        enc.write_all(&data).map_err(io("compressing a base"))?;
        let entry = enc.finish().map_err(io("compressing a base"))?;
        put(&mut out, &entry)?;
        scan.entries.push(ScanEntry {
            offset,
            stored: Stored::Whole(kind),
            crc32: crc32fast::hash(&entry),
            id: Some(*id),
        });
        offset += entry.len() as u64;
    }
    let checksum = ObjectId::from_bytes_or_panic(&hash.finalize());
    out.write_all(checksum.as_bytes())
        .map_err(io("completing the pack"))?;
    out.flush().map_err(io("completing the pack"))?;
    drop(out);
    let dest = work_dir.join(format!("pack-{checksum}.pack"));
    std::fs::rename(&tmp, &dest).map_err(io("completing the pack"))?;
    Ok((dest, checksum))
}

/// Write a version-2 pack index of `entries` (all hashed) for the pack `checksum`.
fn write_scanned_index(path: &Path, entries: &[ScanEntry], checksum: &ObjectId) -> Result<()> {
    let objects = entries
        .iter()
        .map(|e| {
            e.id.map(|id| (id, e.crc32, e.offset))
                .ok_or_else(|| invalid("an entry was left unresolved"))
        })
        .collect::<Result<Vec<_>>>()?;
    write_index(path, objects, checksum)
}

/// Write a version-2 pack index of `objects` (id, CRC-32 of the entry, its
/// offset) for the pack `checksum`; refused when an id is there twice.
pub(crate) fn write_index(
    path: &Path,
    objects: impl IntoIterator<Item = (ObjectId, u32, u64)>,
    checksum: &ObjectId,
) -> Result<()> {
    let mut sorted: Vec<(ObjectId, u32, u64)> = objects.into_iter().collect();
    sorted.sort_unstable_by_key(|(id, _, _)| *id);
    let mut twice: Vec<ObjectId> = sorted
        .windows(2)
        .filter(|w| w[0].0 == w[1].0)
        .map(|w| w[0].0)
        .collect();
    if !twice.is_empty() {
        twice.dedup();
        return Err(PackError::DuplicateObjects(twice));
    }
    let io = PackError::io("writing the pack index");
    let mut out = Vec::with_capacity(8 + 1024 + sorted.len() * 28 + 40);
    out.extend_from_slice(b"\xfftOc");
    out.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for (id, _, _) in &sorted {
        fanout[id.as_bytes()[0] as usize] += 1;
    }
    let mut total = 0u32;
    for n in fanout {
        total += n;
        out.extend_from_slice(&total.to_be_bytes());
    }
    for (id, _, _) in &sorted {
        out.extend_from_slice(id.as_bytes());
    }
    for (_, crc, _) in &sorted {
        out.extend_from_slice(&crc.to_be_bytes());
    }
    let mut large = Vec::new();
    for (_, _, offset) in &sorted {
        if *offset < 0x8000_0000 {
            out.extend_from_slice(&(*offset as u32).to_be_bytes());
        } else {
            out.extend_from_slice(&(0x8000_0000u32 | large.len() as u32).to_be_bytes());
            large.push(*offset);
        }
    }
    for offset in large {
        out.extend_from_slice(&offset.to_be_bytes());
    }
    out.extend_from_slice(checksum.as_bytes());
    let own = Sha1::digest(&out);
    out.extend_from_slice(&own);
    std::fs::write(path, out).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A pack file in `dir` of entries given as (type, size in the header, the
    /// bytes after the header before the data, the data inflated).
    fn pack_file(dir: &Path, entries: &[(u8, u64, &[u8], Vec<u8>)]) -> PathBuf {
        padded_pack_file(dir, entries, 0)
    }

    /// [`pack_file`] with the last entry's zlib stream led by `empty_blocks`
    /// empty stored blocks (valid zlib inflating to the same bytes).
    fn padded_pack_file(
        dir: &Path,
        entries: &[(u8, u64, &[u8], Vec<u8>)],
        empty_blocks: usize,
    ) -> PathBuf {
        let mut out = b"PACK".to_vec();
        out.extend_from_slice(&2u32.to_be_bytes());
        out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for (i, (type_id, size, extra, data)) in entries.iter().enumerate() {
            write_type_and_size(&mut out, *type_id, *size);
            out.extend_from_slice(extra);
            let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
            enc.write_all(data).unwrap();
            let stream = enc.finish().unwrap();
            out.extend_from_slice(&stream[..2]);
            if i + 1 == entries.len() {
                for _ in 0..empty_blocks {
                    out.extend_from_slice(&[0x00, 0x00, 0x00, 0xff, 0xff]);
                }
            }
            out.extend_from_slice(&stream[2..]);
        }
        let checksum = Sha1::digest(&out);
        out.extend_from_slice(&checksum);
        let path = dir.join("test.pack");
        std::fs::write(&path, out).unwrap();
        path
    }

    #[test]
    fn only_an_object_stored_whole_above_the_size_makes_a_pack_hold_a_big_one() {
        let dir = tempfile::tempdir().unwrap();
        let (blob, ofs_delta) = (3u8, 6u8);
        let small = vec![b'a'; 50];
        let large = vec![b'b'; 200];
        let holds = |entries: &[(u8, u64, &[u8], Vec<u8>)], max: u64| {
            let found = look_through(&pack_file(dir.path(), entries), 100, max, &|_| {});
            matches!(found.unwrap(), Found::Big)
        };
        // A blob of 200 bytes, after a small one: big at 100.
        let two_blobs = [
            (blob, 50, &[][..], small.clone()),
            (blob, 200, &[][..], large.clone()),
        ];
        assert!(holds(&two_blobs, 1 << 20));
        // Small blobs only.
        let small_blobs = [
            (blob, 50, &[][..], small.clone()),
            (blob, 50, &[][..], small.clone()),
        ];
        assert!(!holds(&small_blobs, 1 << 20));
        // A delta making 200 bytes is not an object stored whole (its base
        // offset is not followed: only headers and sizes are read here).
        let delta = crate::delta::encode(&small, &large);
        let delta_header = [13u8];
        let with_delta = [
            (blob, 50, &[][..], small.clone()),
            (
                ofs_delta,
                delta.len() as u64,
                &delta_header[..],
                delta.clone(),
            ),
        ];
        assert!(!holds(&with_delta, 1 << 20));
        // A delta whose instructions make other than its header claims is
        // refused here, before an indexer allocates what it claims.
        let mut lying = delta.clone();
        lying[1] ^= 0x01;
        let with_lie = [
            (blob, 50, &[][..], small.clone()),
            (ofs_delta, lying.len() as u64, &delta_header[..], lying),
        ];
        let refused = look_through(&pack_file(dir.path(), &with_lie), 100, 1 << 20, &|_| {});
        assert!(
            matches!(&refused, Err(PackError::InvalidPack(why)) if why.starts_with("delta at ")),
            "{refused:?}"
        );
        // An entry above the largest object allowed is refused by its size; a
        // delta claiming a result above it likewise, before its instructions
        // are followed.
        let too_large = |entries: &[(u8, u64, &[u8], Vec<u8>)], big: u64| match look_through(
            &pack_file(dir.path(), entries),
            big,
            150,
            &|_| {},
        ) {
            Err(PackError::ObjectTooLarge { size, limit, .. }) => (size, limit),
            other => panic!("{other:?}"),
        };
        assert_eq!(too_large(&two_blobs, 100), (200, 150));
        let half = vec![b'b'; 100];
        let copying = crate::delta::encode(&half, &large);
        assert!(copying.len() < 20, "a delta of copies");
        let with_small_delta = [
            (blob, 100, &[][..], half.clone()),
            (
                ofs_delta,
                copying.len() as u64,
                &delta_header[..],
                copying.clone(),
            ),
        ];
        assert_eq!(too_large(&with_small_delta, 1000), (200, 150));
        // A stream that inflates to other than its header says cannot be
        // read on: the entries after it stay unchecked.
        let short = [
            (blob, 50, &[][..], small.clone()),
            (blob, 300, &[][..], large.clone()),
        ];
        assert!(
            holds(&short, 1 << 20),
            "the big header is seen before its data"
        );
        let lying = [
            (blob, 60, &[][..], small.clone()),
            (blob, 200, &[][..], large.clone()),
        ];
        let unreadable = |entries: &[(u8, u64, &[u8], Vec<u8>)]| {
            let found = look_through(&pack_file(dir.path(), entries), 100, 1 << 20, &|_| {});
            matches!(found.unwrap(), Found::Unreadable(_))
        };
        assert!(unreadable(&lying));
        // Not a pack, or cut short before the big entry.
        std::fs::write(dir.path().join("junk.pack"), b"not a pack at all").unwrap();
        let junk = look_through(&dir.path().join("junk.pack"), 100, 1 << 20, &|_| {});
        assert!(matches!(junk.unwrap(), Found::Unreadable(_)));
        let path = pack_file(dir.path(), &two_blobs);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..20]).unwrap();
        let cut = look_through(&path, 100, 1 << 20, &|_| {});
        assert!(matches!(cut.unwrap(), Found::Unreadable(_)));
    }

    #[test]
    fn an_entry_padded_past_twice_its_data_is_refused_by_both_reads() {
        let dir = tempfile::tempdir().unwrap();
        let blob = 3u8;
        let data = vec![b'a'; 1000];
        let one = [(blob, 1000, &[][..], data.clone())];
        // Padding within the bound is valid zlib and passes.
        let within = (most_compressed(1000) as usize - 100) / 5;
        let path = padded_pack_file(dir.path(), &one, within);
        let found = look_through(&path, 100_000, 1 << 20, &|_| {}).unwrap();
        assert!(matches!(found, Found::NoBig), "{found:?}");
        // Past it, the look-through refuses it; so does the streaming
        // indexer's read, which the look-through hands a pack with a big
        // object (here, above 500 bytes) before it.
        let past = (most_compressed(1000) as usize + 100) / 5;
        let path = padded_pack_file(dir.path(), &one, past);
        let refused = look_through(&path, 100_000, 1 << 20, &|_| {});
        assert!(
            matches!(&refused, Err(PackError::InvalidPack(why)) if why.contains("compressed bytes for 1000 inflated")),
            "{refused:?}"
        );
        let two = [
            (blob, 1000, &[][..], data.clone()),
            (blob, 1000, &[][..], data.clone()),
        ];
        let path = padded_pack_file(dir.path(), &two, past);
        let found = look_through(&path, 500, 1 << 20, &|_| {}).unwrap();
        assert!(matches!(found, Found::Big), "{found:?}");
        let refused = scan(&path, 500, 1 << 20).map(|_| ());
        assert!(
            matches!(&refused, Err(PackError::InvalidPack(why)) if why.contains("compressed bytes for 1000 inflated")),
            "{refused:?}"
        );
    }
}
