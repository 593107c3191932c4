//! What the fuzz targets share: an in-memory repository for thin-pack bases and
//! walks, object ids, and a builder of valid-but-hostile packs ([`hostile`]).

pub mod hostile;

use std::{collections::HashMap, sync::Arc};

use gitclaw_pack::{
    odb::{LooseSource, ObjectDb},
    Kind, ObjectId,
};
use sha1::Digest;

/// Loose objects held in memory.
#[derive(Default)]
pub struct MemLoose {
    pub objects: HashMap<ObjectId, (Kind, Vec<u8>)>,
}

impl MemLoose {
    /// Add an object; returns its id.
    pub fn add(&mut self, kind: Kind, data: &[u8]) -> ObjectId {
        let id = object_id(kind, data);
        self.objects.insert(id, (kind, data.to_vec()));
        id
    }
}

impl LooseSource for MemLoose {
    fn contains(&self, id: &gitclaw_pack::oid) -> bool {
        self.objects.contains_key(id)
    }

    fn read(&self, id: &gitclaw_pack::oid) -> gitclaw_pack::Result<Option<(Kind, Vec<u8>)>> {
        Ok(self.objects.get(id).cloned())
    }

    fn list(&self) -> Vec<(ObjectId, Kind)> {
        self.objects.iter().map(|(id, (k, _))| (*id, *k)).collect()
    }
}

/// A repository of only the loose objects in `loose`.
pub fn db_of(loose: MemLoose) -> ObjectDb {
    ObjectDb::new(Vec::new(), Arc::new(loose))
}

/// Git's id of an object: SHA-1 of `"<kind> <size>\0"` and the content.
pub fn object_id(kind: Kind, data: &[u8]) -> ObjectId {
    let mut hasher = sha1::Sha1::new();
    hasher.update(kind.as_bytes());
    hasher.update(format!(" {}\0", data.len()).as_bytes());
    hasher.update(data);
    ObjectId::from_bytes_or_panic(&hasher.finalize())
}

/// The repository thin packs may name as bases: a blob, a tree holding it and a
/// commit of that tree, as git writes them.
pub fn base_repository() -> (MemLoose, Vec<ObjectId>) {
    let mut loose = MemLoose::default();
    let blob = loose.add(Kind::Blob, b"hello, base\nsecond line of the base blob\n");
    let mut tree = b"100644 a.txt\0".to_vec();
    tree.extend_from_slice(blob.as_bytes());
    let tree = loose.add(Kind::Tree, &tree);
    let commit = format!(
        "tree {tree}\nauthor A U Thor <a@example.com> 1700000000 +0000\n\
         committer A U Thor <a@example.com> 1700000000 +0000\n\nbase\n"
    );
    let commit = loose.add(Kind::Commit, commit.as_bytes());
    (loose, vec![blob, tree, commit])
}

/// Cut `data` in pieces at the cut points its first byte chooses, for parsers fed
/// in chunks: each piece is at most `1 + data[0]` bytes long.
pub fn pieces(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    let (step, rest) = match data.split_first() {
        Some((first, rest)) => (usize::from(*first) + 1, rest),
        None => (1, data),
    };
    rest.chunks(step)
}

/// A scratch directory in memory (`/dev/shm`) when there is one: the targets
/// that write files (pack ingest, the server's SQLite) run many times faster
/// without a disk under them.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new()
            .prefix("gitclaw-fuzz")
            .tempdir_in(shm)
        {
            return dir;
        }
    }
    tempfile::tempdir().expect("a scratch directory")
}

/// The largest object an ingest may hold, as a server limits pushed objects:
/// above [`BIG_OBJECT_BYTES`] and [`gitclaw_pack::BIG_OBJECT_BYTES`].
pub const MAX_OBJECT_BYTES: usize = 2 * gitclaw_pack::BIG_OBJECT_BYTES as usize;

/// The size above which an object stored whole is streamed, lowered from the
/// server's 16 MiB so that the small packs a fuzzer makes take every path a
/// push's does: a pack file within it indexed at once with big objects
/// refused, a bigger one looked through beside the indexer, one holding a
/// big object indexed by streaming.
pub const BIG_OBJECT_BYTES: u64 = 512;

/// How the pack targets ingest a received pack (one thread: a fuzzer runs
/// one input at a time).
pub fn ingest_options() -> gitclaw_pack::ingest::IngestOptions {
    gitclaw_pack::ingest::IngestOptions {
        max_object_bytes: MAX_OBJECT_BYTES,
        big_object_bytes: BIG_OBJECT_BYTES,
        threads: 1,
        ..Default::default()
    }
}

/// `bytes` as a push leaves them, a spooled file in `work`, and an empty
/// directory beside it for the ingest's output.
pub fn received_pack(
    work: &tempfile::TempDir,
    bytes: &[u8],
) -> (std::path::PathBuf, std::path::PathBuf) {
    let received = work.path().join("received.pack");
    std::fs::write(&received, bytes).expect("writing the received pack");
    let out = work.path().join("out");
    std::fs::create_dir(&out).expect("an output directory");
    (received, out)
}

/// Every object of a pack `ingest` accepted reads back, from the pack it wrote,
/// as the object its id names (same kind, content hashing to the id).
pub fn assert_reads_back(pack: gitclaw_pack::ingest::IngestedPack) {
    let objects = pack.objects;
    let db = ObjectDb::new(vec![Arc::new(pack.pack)], Arc::new(MemLoose::default()));
    let mut reader = db.reader();
    let mut buf = Vec::new();
    for object in &objects {
        let kind = reader
            .read(&object.id, &mut buf)
            .expect("an accepted object reads back")
            .expect("an accepted object is in its pack");
        assert_eq!(kind, object.kind);
        assert_eq!(object_id(kind, &buf), object.id);
    }
}
