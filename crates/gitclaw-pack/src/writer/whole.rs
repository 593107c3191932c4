//! A pack of whole objects handed over in memory, without deltas: how objects
//! that come from outside any pack (the legacy object table) enter the store.
//! The result is indexed and verified by [`crate::ingest`] like a received
//! pack; compaction delta-compresses it later.

use std::io::Write;

use gix_hash::ObjectId;
use gix_object::Kind;
use sha1::Digest;

use crate::{
    entry::{kind_type, write_type_and_size},
    PackError, Result,
};

/// Write a version-2 pack of `objects` (type and content each) to `out`,
/// deflated at zlib `level`; returns the pack's checksum (its name).
pub fn write_whole_objects<'a>(
    objects: impl ExactSizeIterator<Item = (Kind, &'a [u8])>,
    level: u32,
    out: &mut dyn Write,
) -> Result<ObjectId> {
    let count = u32::try_from(objects.len())
        .map_err(|_| PackError::InvalidPack("more than 2^32 objects in one pack".into()))?;
    let mut hasher = sha1::Sha1::new();
    let mut put = |bytes: &[u8]| -> Result<()> {
        hasher.update(bytes);
        out.write_all(bytes)
            .map_err(PackError::io("writing a pack of whole objects"))
    };
    let mut header = Vec::with_capacity(12);
    header.extend_from_slice(b"PACK");
    header.extend_from_slice(&2u32.to_be_bytes());
    header.extend_from_slice(&count.to_be_bytes());
    put(&header)?;
    let mut entry = Vec::new();
    for (kind, content) in objects {
        entry.clear();
        write_type_and_size(&mut entry, kind_type(kind), content.len() as u64);
        let mut enc =
            flate2::write::ZlibEncoder::new(entry, flate2::Compression::new(level.min(9)));
        enc.write_all(content)
            .map_err(PackError::io("compressing an object"))?;
        entry = enc
            .finish()
            .map_err(PackError::io("compressing an object"))?;
        put(&entry)?;
    }
    let checksum = ObjectId::from_bytes_or_panic(&hasher.finalize());
    out.write_all(checksum.as_bytes())
        .map_err(PackError::io("writing a pack of whole objects"))?;
    Ok(checksum)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ingest::IngestOptions, odb::NoLoose};

    #[test]
    fn git_and_the_ingest_read_back_every_object() {
        let objects: Vec<(Kind, Vec<u8>)> = vec![
            (Kind::Blob, b"hello\n".to_vec()),
            (Kind::Blob, Vec::new()),
            (Kind::Blob, vec![7u8; 100_000]),
            (Kind::Tree, Vec::new()),
        ];
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("whole.pack");
        let mut file = std::fs::File::create(&path).unwrap();
        let checksum = write_whole_objects(
            objects.iter().map(|(k, c)| (*k, c.as_slice())),
            1,
            &mut file,
        )
        .unwrap();
        drop(file);
        let db = crate::odb::ObjectDb::new(Vec::new(), std::sync::Arc::new(NoLoose));
        let work = dir.path().join("work");
        std::fs::create_dir_all(&work).unwrap();
        let ingested = crate::ingest::ingest_file(&path, &work, &db, &IngestOptions::default())
            .unwrap()
            .expect("a pack with objects");
        assert_eq!(*ingested.pack.hash(), checksum);
        assert_eq!(ingested.objects.len(), objects.len());
        for (kind, content) in &objects {
            let id = gix_object::compute_hash(gix_hash::Kind::Sha1, *kind, content).unwrap();
            assert!(ingested.contains(&id), "{kind} of {} bytes", content.len());
        }
        // And git agrees.
        let verify = std::process::Command::new("git")
            .args(["index-pack", "-o"])
            .arg(dir.path().join("check.idx"))
            .arg(&path)
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stderr)
        );
    }
}
