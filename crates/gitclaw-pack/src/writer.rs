//! Streams a version-2 pack for a list of objects.
//!
//! Stored entries are copied verbatim (CRC-checked against their index): whole
//! objects as they are, deltas when their base goes out in the same pack — as an
//! OFS_DELTA when the base was already written and the client speaks `ofs-delta`,
//! else as a REF_DELTA. A delta whose base is not sent is inflated and sent whole,
//! as are loose objects. Objects go out grouped by pack in offset order, so stored
//! delta bases usually precede their deltas.
//!
//! Not here: choosing the objects (see [`crate::walk`]) or new delta search.

use std::io::Write;

use gix_hash::ObjectId;
use gix_hashtable::HashMap;
use gix_pack::data::entry::Header;
use sha1::Digest;

use crate::{
    entry::{kind_type, write_ofs_distance, write_type_and_size, OBJ_OFS_DELTA, OBJ_REF_DELTA},
    odb::{Location, ObjectDb},
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
}

impl Default for WriteOptions {
    fn default() -> Self {
        WriteOptions {
            ofs_delta: true,
            compression: 6,
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
    pub bytes: u64,
    pub checksum: Option<ObjectId>,
}

/// Progress of a pack being written: objects done out of total.
pub type ProgressFn<'a> = &'a mut dyn FnMut(u32, u32);

struct HashingWriter<'a> {
    inner: &'a mut dyn Write,
    hasher: sha1::Sha1,
    written: u64,
}

impl HashingWriter<'_> {
    fn put(&mut self, bytes: &[u8]) -> Result<()> {
        self.hasher.update(bytes);
        self.written += bytes.len() as u64;
        self.inner
            .write_all(bytes)
            .map_err(PackError::io("sending pack data"))
    }
}

struct Item {
    id: ObjectId,
    kind: gix_object::Kind,
    loc: Location,
}

/// Write a pack holding exactly `objects` to `out`.
pub fn write_pack(
    db: &ObjectDb,
    objects: &[WalkObject],
    options: &WriteOptions,
    out: &mut dyn Write,
    progress: ProgressFn<'_>,
) -> Result<WriteStats> {
    let mut items = Vec::with_capacity(objects.len());
    for obj in objects {
        let loc = db.locate(&obj.id).ok_or(PackError::MissingObject(obj.id))?;
        items.push(Item {
            id: obj.id,
            kind: obj.kind,
            loc,
        });
    }
    let packs = db.packs();
    items.sort_by_key(|item| match item.loc {
        Location::Packed { pack, index } => (0u8, pack, packs[pack].offset_at(index)),
        Location::Loose => (1u8, 0, 0),
    });
    let position: HashMap<ObjectId, usize> = items
        .iter()
        .enumerate()
        .map(|(i, item)| (item.id, i))
        .collect();
    let total = u32::try_from(items.len())
        .map_err(|_| PackError::InvalidPack("too many objects for one pack".into()))?;

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
    let mut written_at: Vec<Option<u64>> = vec![None; items.len()];
    let mut reader = db.reader();
    let mut buf = Vec::new();
    let mut head = Vec::with_capacity(32);
    for (i, item) in items.iter().enumerate() {
        let here = w.written;
        let mut whole = true;
        if let Location::Packed { pack, index } = item.loc {
            let handle = &packs[pack];
            let raw = handle.raw_entry(index)?;
            let base = match raw.header {
                Header::OfsDelta { base_distance } => {
                    let offset = handle.offset_at(index);
                    let base_offset = offset.checked_sub(base_distance).ok_or_else(|| {
                        PackError::Corrupt(format!(
                            "delta of {} points before the pack start",
                            item.id
                        ))
                    })?;
                    Some(handle.oid_at_offset(base_offset).ok_or_else(|| {
                        PackError::Corrupt(format!("delta base of {} is not an entry", item.id))
                    })?)
                }
                Header::RefDelta { base_id } => Some(base_id),
                _ => None,
            };
            match base {
                None => {
                    w.put(raw.whole)?;
                    stats.reused += 1;
                    whole = false;
                }
                Some(base_id) => {
                    if let Some(&j) = position.get(&base_id) {
                        head.clear();
                        match (options.ofs_delta, written_at[j]) {
                            (true, Some(base_pos)) => {
                                write_type_and_size(
                                    &mut head,
                                    OBJ_OFS_DELTA,
                                    raw.decompressed_size,
                                );
                                write_ofs_distance(&mut head, here - base_pos);
                            }
                            _ => {
                                write_type_and_size(
                                    &mut head,
                                    OBJ_REF_DELTA,
                                    raw.decompressed_size,
                                );
                                head.extend_from_slice(base_id.as_bytes());
                            }
                        }
                        w.put(&head)?;
                        w.put(raw.compressed)?;
                        stats.reused += 1;
                        stats.reused_deltas += 1;
                        whole = false;
                    }
                }
            }
        }
        if whole {
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
            let mut enc = flate2::write::ZlibEncoder::new(
                Vec::with_capacity(buf.len() / 2 + 64),
                flate2::Compression::new(options.compression.min(9)),
            );
            enc.write_all(&buf).map_err(PackError::io("compressing"))?;
            let compressed = enc.finish().map_err(PackError::io("compressing"))?;
            w.put(&compressed)?;
        }
        written_at[i] = Some(here);
        if i % 1024 == 0 {
            progress(i as u32, total);
        }
    }
    progress(total, total);
    let checksum = ObjectId::from_bytes_or_panic(&w.hasher.clone().finalize());
    w.put(checksum.as_bytes())?;
    stats.bytes = w.written;
    stats.checksum = Some(checksum);
    w.inner
        .flush()
        .map_err(PackError::io("sending pack data"))?;
    Ok(stats)
}
