//! The commit a push scenario sends, built in memory, and the pack that
//! carries it: a blob of random bytes, a tree holding it as `load.bin`, a commit
//! of that tree (on top of the default branch's tip, or a root commit), written
//! as a version 2 pack — header, zlib-deflated whole entries, SHA-1 trailer.

use std::io::Write;

use flate2::{write::ZlibEncoder, Compression};
use gitclaw_protocol::ObjectId;
use gix_object::Kind;
use sha1::{Digest, Sha1};

/// An object's id: the SHA-1 of `"<type> <size>\0"` and its content.
pub fn object_id(kind: Kind, data: &[u8]) -> ObjectId {
    let mut hasher = Sha1::new();
    hasher.update(kind.as_bytes());
    hasher.update(format!(" {}\0", data.len()).as_bytes());
    hasher.update(data);
    ObjectId::from_bytes_or_panic(&hasher.finalize())
}

fn type_number(kind: Kind) -> u8 {
    match kind {
        Kind::Commit => 1,
        Kind::Tree => 2,
        Kind::Blob => 3,
        Kind::Tag => 4,
    }
}

/// A pack of whole (undeltified) objects, in the order given.
pub fn write_pack(objects: &[(Kind, &[u8])]) -> Vec<u8> {
    let mut pack = Vec::new();
    pack.extend_from_slice(b"PACK");
    pack.extend_from_slice(&2u32.to_be_bytes());
    pack.extend_from_slice(&(objects.len() as u32).to_be_bytes());
    for &(kind, data) in objects {
        // Entry header: type and the low 4 bits of the size, then 7 bits a byte,
        // the high bit saying another byte follows.
        let mut size = data.len() as u64;
        let mut byte = (type_number(kind) << 4) | (size & 0x0f) as u8;
        size >>= 4;
        while size > 0 {
            pack.push(byte | 0x80);
            byte = (size & 0x7f) as u8;
            size >>= 7;
        }
        pack.push(byte);
        let mut encoder = ZlibEncoder::new(&mut pack, Compression::fast());
        // Writing into a Vec cannot fail.
        let _ = encoder.write_all(data);
        let _ = encoder.finish();
    }
    let trailer = Sha1::digest(&pack);
    pack.extend_from_slice(&trailer);
    pack
}

/// A commit ready to push.
#[derive(Debug, Clone)]
pub struct NewCommit {
    pub commit: ObjectId,
    pub tree: ObjectId,
    pub blob: ObjectId,
    /// The pack of the blob, the tree and the commit.
    pub pack: Vec<u8>,
}

/// The blob, tree and commit of a commit of one file, `load.bin`, holding
/// `content`, with `parent` (or none), dated `time` (seconds since the epoch).
pub fn commit_objects(
    parent: Option<ObjectId>,
    content: &[u8],
    message: &str,
    time: u64,
) -> [(Kind, Vec<u8>); 3] {
    let blob = object_id(Kind::Blob, content);
    let mut tree = b"100644 load.bin\0".to_vec();
    tree.extend_from_slice(blob.as_slice());
    let mut commit = format!("tree {}\n", object_id(Kind::Tree, &tree));
    if let Some(parent) = parent {
        commit.push_str(&format!("parent {parent}\n"));
    }
    let who = "gitclaw-load <load@gitclaw.invalid>";
    commit.push_str(&format!(
        "author {who} {time} +0000\ncommitter {who} {time} +0000\n\n{message}\n"
    ));
    [
        (Kind::Blob, content.to_vec()),
        (Kind::Tree, tree),
        (Kind::Commit, commit.into_bytes()),
    ]
}

/// [`commit_objects`], with their ids and their pack.
pub fn new_commit(parent: Option<ObjectId>, content: &[u8], message: &str, time: u64) -> NewCommit {
    let objects = commit_objects(parent, content, message, time);
    let [blob, tree, commit] = objects
        .each_ref()
        .map(|(kind, data)| object_id(*kind, data));
    let borrowed = objects
        .each_ref()
        .map(|(kind, data)| (*kind, data.as_slice()));
    NewCommit {
        commit,
        tree,
        blob,
        pack: write_pack(&borrowed),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use gitclaw_pack::{
        ingest::{ingest, IngestOptions},
        odb::{NoLoose, ObjectDb},
        PackError,
    };

    use super::*;

    #[test]
    fn ids_are_gits() {
        // `git hash-object -t blob /dev/null` and `printf 'hello\n' | git hash-object --stdin`.
        assert_eq!(
            object_id(Kind::Blob, b"").to_string(),
            "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"
        );
        assert_eq!(
            object_id(Kind::Blob, b"hello\n").to_string(),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        // The empty tree.
        assert_eq!(
            object_id(Kind::Tree, b"").to_string(),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    #[test]
    fn a_root_commit_pack_indexes_with_the_ids_it_promised() {
        let content: Vec<u8> = (0..5000u32).map(|i| (i * 7919 % 251) as u8).collect();
        let made = new_commit(None, &content, "load test", 1_700_000_000);
        let work = tempfile::tempdir().unwrap();
        let db = ObjectDb::new(Vec::new(), Arc::new(NoLoose));
        let ingested = ingest(
            &mut made.pack.as_slice(),
            work.path(),
            &db,
            &IngestOptions::default(),
        )
        .unwrap()
        .expect("three objects");
        let mut ids: Vec<_> = ingested.objects.iter().map(|o| (o.id, o.kind)).collect();
        ids.sort();
        let mut expected = vec![
            (made.blob, Kind::Blob),
            (made.tree, Kind::Tree),
            (made.commit, Kind::Commit),
        ];
        expected.sort();
        assert_eq!(ids, expected);
        let blob = ingested.objects.iter().find(|o| o.id == made.blob).unwrap();
        assert_eq!(blob.size, 5000);
    }

    #[test]
    fn a_commit_on_a_parent_names_it() {
        let parent = object_id(Kind::Blob, b"stand-in");
        let made = new_commit(Some(parent), b"x", "on top", 1);
        let work = tempfile::tempdir().unwrap();
        let db = ObjectDb::new(Vec::new(), Arc::new(NoLoose));
        // Without the parent the pack is incomplete, and says which object is missing.
        match ingest(
            &mut made.pack.as_slice(),
            work.path(),
            &db,
            &IngestOptions::default(),
        ) {
            Err(PackError::MissingObject(id)) => assert_eq!(id, parent),
            other => panic!(
                "expected the parent to be missing, got {:?}",
                other.map(|p| p.is_some())
            ),
        }
    }

    #[test]
    fn sizes_past_four_bits_take_more_header_bytes() {
        let big = vec![b'a'; 1 << 20];
        let pack = write_pack(&[(Kind::Blob, &big)]);
        // 1 MiB = 0x100000: low nibble 0, then 0x10000 in 7-bit groups.
        assert_eq!(&pack[12..16], &[0xb0, 0x80, 0x80, 0x04]);
        let work = tempfile::tempdir().unwrap();
        let db = ObjectDb::new(Vec::new(), Arc::new(NoLoose));
        let ingested = ingest(
            &mut pack.as_slice(),
            work.path(),
            &db,
            &IngestOptions::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(ingested.objects[0].id, object_id(Kind::Blob, &big));
    }
}
