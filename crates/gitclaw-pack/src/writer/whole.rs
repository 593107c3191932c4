//! A pack of whole objects handed over in memory, without deltas, with its
//! version-2 index: how objects that come from outside any pack (the legacy
//! object table) enter the store. The caller has hashed every object (its id
//! is the SHA-1 of its type, size and content), so the index is written as the
//! pack is — no second pass inflating and hashing it all again; compaction
//! delta-compresses the result later.

use std::io::Write;
use std::path::Path;

use gix_hash::ObjectId;
use gix_object::Kind;
use sha1::Digest;

use super::zlib::deflate_into;
use crate::{
    entry::{kind_type, write_type_and_size},
    ingest::{IngestedObject, IngestedPack},
    odb::PackHandle,
    PackError, Result,
};

/// One object for [`write_whole_pack`]: its id (already checked by the
/// caller to be the SHA-1 of `kind`, the length and `content`), type and content.
pub struct WholeObject<'a> {
    pub id: ObjectId,
    pub kind: Kind,
    pub content: &'a [u8],
}

/// Write `objects` as `pack-{checksum}.pack` and `.idx` in `dir`, entries
/// deflated at zlib `level`, and open the result.
pub fn write_whole_pack(
    objects: &[WholeObject<'_>],
    level: u32,
    dir: &Path,
) -> Result<IngestedPack> {
    let count = u32::try_from(objects.len())
        .map_err(|_| PackError::InvalidPack("more than 2^32 objects in one pack".into()))?;
    let io = |what: &'static str| PackError::io(what);
    let tmp_pack = dir.join("whole.pack.tmp");
    let file = std::fs::File::create(&tmp_pack).map_err(io("writing a pack of whole objects"))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut hasher = sha1::Sha1::new();
    let mut put = |bytes: &[u8]| -> Result<()> {
        hasher.update(bytes);
        out.write_all(bytes)
            .map_err(io("writing a pack of whole objects"))
    };
    let mut header = Vec::with_capacity(12);
    header.extend_from_slice(b"PACK");
    header.extend_from_slice(&2u32.to_be_bytes());
    header.extend_from_slice(&count.to_be_bytes());
    put(&header)?;
    // (id, offset, crc32) of every entry, for the index.
    let mut entries: Vec<(ObjectId, u64, u32)> = Vec::with_capacity(objects.len());
    let mut offset = header.len() as u64;
    let mut entry = Vec::new();
    // One compressor for all: setting one up per object (its window and hash
    // tables allocated and zeroed) cost more than compressing small objects.
    let mut deflate = flate2::Compress::new(flate2::Compression::new(level.min(9)), true);
    for object in objects {
        entry.clear();
        write_type_and_size(
            &mut entry,
            kind_type(object.kind),
            object.content.len() as u64,
        );
        deflate_into(&mut deflate, object.content, &mut entry)?;
        put(&entry)?;
        entries.push((object.id, offset, crc32fast::hash(&entry)));
        offset += entry.len() as u64;
    }
    let checksum = ObjectId::from_bytes_or_panic(&hasher.finalize());
    out.write_all(checksum.as_bytes())
        .map_err(io("writing a pack of whole objects"))?;
    // A local work file, uploaded next: no need to wait for the disk.
    out.flush().map_err(io("writing a pack of whole objects"))?;
    drop(out);

    entries.sort_by_key(|entry| entry.0);
    if let Some(pair) = entries.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(PackError::InvalidPack(format!(
            "object {} given twice",
            pair[0].0
        )));
    }
    let name = format!("pack-{checksum}");
    let pack_path = dir.join(format!("{name}.pack"));
    let index_path = dir.join(format!("{name}.idx"));
    write_index(&entries, &checksum, &index_path)?;
    std::fs::rename(&tmp_pack, &pack_path).map_err(io("naming a pack of whole objects"))?;
    let pack = PackHandle::open(&index_path)?;
    Ok(IngestedPack {
        pack,
        pack_path,
        index_path,
        objects: objects
            .iter()
            .map(|o| IngestedObject {
                id: o.id,
                kind: o.kind,
                size: o.content.len() as u64,
                already_stored: false,
            })
            .collect(),
        roots: None,
    })
}

/// A version-2 pack index of `entries` (sorted by id) to `path`.
fn write_index(entries: &[(ObjectId, u64, u32)], pack: &ObjectId, path: &Path) -> Result<()> {
    let mut idx = Vec::with_capacity(8 + 256 * 4 + entries.len() * 28 + 40);
    idx.extend_from_slice(b"\xfftOc");
    idx.extend_from_slice(&2u32.to_be_bytes());
    let mut fanout = [0u32; 256];
    for (id, _, _) in entries {
        fanout[id.as_bytes()[0] as usize] += 1;
    }
    let mut running = 0u32;
    for n in fanout {
        running += n;
        idx.extend_from_slice(&running.to_be_bytes());
    }
    for (id, _, _) in entries {
        idx.extend_from_slice(id.as_bytes());
    }
    for (_, _, crc) in entries {
        idx.extend_from_slice(&crc.to_be_bytes());
    }
    // Offsets past 2^31 go to the table of 64-bit offsets.
    let mut large = Vec::new();
    for (_, offset, _) in entries {
        if *offset < 0x8000_0000 {
            idx.extend_from_slice(&(*offset as u32).to_be_bytes());
        } else {
            let slot = 0x8000_0000 | large.len() as u32;
            idx.extend_from_slice(&slot.to_be_bytes());
            large.push(*offset);
        }
    }
    for offset in large {
        idx.extend_from_slice(&offset.to_be_bytes());
    }
    idx.extend_from_slice(pack.as_bytes());
    let own = sha1::Sha1::digest(&idx);
    idx.extend_from_slice(&own);
    std::fs::write(path, &idx).map_err(PackError::io("writing a pack index"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(kind: Kind, content: &[u8]) -> ObjectId {
        gix_object::compute_hash(gix_hash::Kind::Sha1, kind, content).unwrap()
    }

    #[test]
    fn git_writes_the_same_index_and_reads_back_every_object() {
        let contents: Vec<(Kind, Vec<u8>)> = (0..300u32)
            .map(|i| {
                (
                    Kind::Blob,
                    format!("object {i}\n").repeat(i as usize % 7).into_bytes(),
                )
            })
            .chain([
                (Kind::Blob, Vec::new()),
                (Kind::Blob, vec![7u8; 100_000]),
                (Kind::Tree, Vec::new()),
            ])
            .collect();
        let objects: Vec<WholeObject<'_>> = contents
            .iter()
            .map(|(kind, content)| WholeObject {
                id: id(*kind, content),
                kind: *kind,
                content,
            })
            .collect();
        // Every distinct object once.
        let mut seen = std::collections::HashSet::new();
        let objects: Vec<_> = objects.into_iter().filter(|o| seen.insert(o.id)).collect();
        let dir = tempfile::tempdir().unwrap();
        let written = write_whole_pack(&objects, 1, dir.path()).unwrap();
        assert_eq!(written.pack.num_objects() as usize, objects.len());
        for object in &objects {
            let index = written.pack.lookup(&object.id).unwrap().expect("indexed");
            let mut buf = Vec::new();
            let mut state = crate::odb::DecodeState::default();
            let kind = written.pack.decode(index, &mut buf, &mut state).unwrap();
            assert_eq!((kind, buf.as_slice()), (object.kind, object.content));
        }
        // git's own index of the pack is byte for byte ours.
        let theirs = dir.path().join("git.idx");
        let out = std::process::Command::new("git")
            .arg("index-pack")
            .arg("-o")
            .arg(&theirs)
            .arg(&written.pack_path)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            std::fs::read(&theirs).unwrap(),
            std::fs::read(&written.index_path).unwrap()
        );
    }

    #[test]
    fn an_object_given_twice_is_refused() {
        let content = b"same".to_vec();
        let object = || WholeObject {
            id: id(Kind::Blob, &content),
            kind: Kind::Blob,
            content: &content,
        };
        let dir = tempfile::tempdir().unwrap();
        let err = write_whole_pack(&[object(), object()], 1, dir.path())
            .err()
            .expect("refused");
        assert!(err.to_string().contains("given twice"), "{err}");
    }
}
