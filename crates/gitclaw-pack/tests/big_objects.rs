//! Packs holding big objects (stored whole above `BIG_OBJECT_BYTES`) are indexed
//! by streaming them; git is the oracle for the result.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
};

use common::git;
use gitclaw_pack::{
    entry::{write_ofs_distance, write_type_and_size},
    ingest::{ingest_file, IngestOptions},
    odb::{NoLoose, ObjectDb, PackHandle},
    BIG_OBJECT_BYTES,
};

/// `git pack-objects` of `revs` (one per line) into `dir/name.pack`.
fn pack_objects(repo: &Path, revs: &str, extra: &[&str], dest: &Path) -> PathBuf {
    let mut args = vec!["pack-objects", "--revs", "--stdout"];
    args.extend_from_slice(extra);
    let mut child = Command::new("git")
        .args(&args)
        .current_dir(repo)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(revs.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    std::fs::write(dest, out.stdout).unwrap();
    dest.to_owned()
}

/// A text of a few KiB, varied by `n`, so versions of it delta well.
fn text(n: usize) -> String {
    (0..200)
        .map(|i| {
            if i == n * 7 {
                format!("line {i} changed in version {n}\n")
            } else {
                format!("line {i}: the quick brown fox jumps over the lazy dog\n")
            }
        })
        .collect()
}

/// Two commits: small texts, then a big blob of zeros and new versions of the texts.
fn history(dir: &Path) -> (String, String) {
    git(dir, &["init", "-q", "-b", "main", "."]);
    for f in ["a.txt", "b.txt"] {
        std::fs::write(dir.join(f), format!("{f}\n{}", text(0))).unwrap();
    }
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "one"]);
    let first = git(dir, &["rev-parse", "HEAD"]).trim().to_string();
    let big = std::fs::File::create(dir.join("big.bin")).unwrap();
    big.set_len(BIG_OBJECT_BYTES + 4096).unwrap();
    for f in ["a.txt", "b.txt"] {
        std::fs::write(dir.join(f), format!("{f}\n{}", text(1))).unwrap();
    }
    git(dir, &["add", "."]);
    git(dir, &["commit", "-q", "-m", "two"]);
    let second = git(dir, &["rev-parse", "HEAD"]).trim().to_string();
    (first, second)
}

/// Object ids of the `.idx` at `path`, as git lists them.
fn listed(dir: &Path, idx: &Path) -> Vec<String> {
    let mut ids = Vec::new();
    let out = Command::new("git")
        .args(["show-index"])
        .current_dir(dir)
        .stdin(std::fs::File::open(idx).unwrap())
        .output()
        .unwrap();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        ids.push(line.split_whitespace().nth(1).unwrap().to_string());
    }
    ids.sort();
    ids
}

/// git's own index of `pack` (written in `dir`) is byte for byte `ours`.
fn assert_index_is_gits(dir: &Path, pack: &Path, ours: &Path) {
    let theirs = dir.join("git.idx");
    git(
        dir,
        &["index-pack", "-o", "git.idx", pack.to_str().unwrap()],
    );
    assert!(
        std::fs::read(ours).unwrap() == std::fs::read(&theirs).unwrap(),
        "{}: the index differs from git's",
        pack.display()
    );
    std::fs::remove_file(theirs).unwrap();
}

#[test]
fn packs_with_big_objects_get_the_index_git_would_write() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let (_, second) = history(&repo);
    // OFS_DELTA and REF_DELTA packs of the whole history.
    for (name, extra) in [("ofs", &["--delta-base-offset"][..]), ("ref", &[][..])] {
        let pack = pack_objects(
            &repo,
            &format!("{second}\n"),
            extra,
            &work.path().join(format!("{name}.pack")),
        );
        let out = work.path().join(format!("{name}-out"));
        std::fs::create_dir(&out).unwrap();
        let db = ObjectDb::new(Vec::new(), Arc::new(NoLoose));
        let ingested = ingest_file(&pack, &out, &db, &IngestOptions::default())
            .unwrap()
            .expect("a pack");
        assert_eq!(ingested.objects.len(), 9, "{name}: every object");
        assert_index_is_gits(work.path(), &pack, &ingested.index_path);
        // The pack file is small (the big blob is zeros): it went to the
        // indexer at once, which refused the big blob, and was indexed again
        // by streaming, leaving nothing of the first attempt behind.
        assert!(std::fs::metadata(&pack).unwrap().len() < BIG_OBJECT_BYTES);
        assert_eq!(files(&out), 2, "{name}: the pack and its index only");
        let big = ingested
            .objects
            .iter()
            .find(|o| o.size > BIG_OBJECT_BYTES)
            .expect("the big blob");
        assert_eq!(
            big.id.to_string(),
            git(&repo, &["rev-parse", "HEAD:big.bin"]).trim()
        );
    }
}

/// A repository holding `first` (one pack, indexed by git, in `work`), and
/// the thin pack a push of `second` to it sends.
fn thin_push(work: &Path, repo: &Path, first: &str, second: &str) -> (ObjectDb, PathBuf) {
    let base = pack_objects(repo, &format!("{first}\n"), &[], &work.join("base.pack"));
    git(work, &["index-pack", base.to_str().unwrap()]);
    let db = ObjectDb::new(
        vec![Arc::new(PackHandle::open(&work.join("base.idx")).unwrap())],
        Arc::new(NoLoose),
    );
    let thin = pack_objects(
        repo,
        &format!("{second}\n^{first}\n"),
        &["--thin", "--delta-base-offset"],
        &work.join("thin.pack"),
    );
    (db, thin)
}

#[test]
fn thin_packs_with_big_objects_are_completed_from_the_repository() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let (first, second) = history(&repo);
    let (db, thin) = thin_push(work.path(), &repo, &first, &second);
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let ingested = ingest_file(&thin, &out, &db, &IngestOptions::default())
        .unwrap()
        .expect("a pack");
    // git accepts the completed pack and our index of it.
    git(
        work.path(),
        &["verify-pack", ingested.index_path.to_str().unwrap()],
    );
    let ours = listed(work.path(), &ingested.index_path);
    let check = work.path().join("check.idx");
    git(
        work.path(),
        &[
            "index-pack",
            "-o",
            check.to_str().unwrap(),
            ingested.pack_path.to_str().unwrap(),
        ],
    );
    assert_eq!(
        ours,
        listed(work.path(), &check),
        "git indexes the same objects"
    );
    assert!(
        ingested.objects.iter().any(|o| o.already_stored),
        "the thin pack's bases were appended"
    );
    assert!(ingested.objects.iter().any(|o| o.size > BIG_OBJECT_BYTES));
}

/// Files in `dir`.
fn files(dir: &Path) -> usize {
    std::fs::read_dir(dir).unwrap().count()
}

#[test]
fn a_thin_pack_changing_a_big_object_a_little_is_completed_from_the_repository() {
    // A big file whose new version is a small delta of the stored one: no
    // object of the pack is stored whole above the bound, but its base and
    // its result are above it.
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main", "."]);
    let mut content: Vec<u8> = (0..BIG_OBJECT_BYTES + 4096)
        .map(|i| (i % 251) as u8)
        .collect();
    std::fs::write(repo.join("big.bin"), &content).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "one"]);
    let first = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    content[1000..1010].copy_from_slice(b"changed!!!");
    std::fs::write(repo.join("big.bin"), &content).unwrap();
    git(&repo, &["commit", "-q", "-am", "two"]);
    let second = git(&repo, &["rev-parse", "HEAD"]).trim().to_string();
    let (db, thin) = thin_push(work.path(), &repo, &first, &second);
    assert!(
        std::fs::metadata(&thin).unwrap().len() < 64 << 10,
        "a delta"
    );
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let ingested = ingest_file(&thin, &out, &db, &IngestOptions::default())
        .unwrap()
        .expect("a pack");
    assert_eq!(files(&out), 2, "the pack and its index only");
    git(
        work.path(),
        &["verify-pack", ingested.index_path.to_str().unwrap()],
    );
    let new_blob = git(&repo, &["rev-parse", "HEAD:big.bin"]);
    let new_blob = gitclaw_pack::ObjectId::from_hex(new_blob.trim().as_bytes()).unwrap();
    let blob = ingested
        .objects
        .iter()
        .find(|o| o.id == new_blob)
        .expect("the new version");
    assert_eq!(blob.size, content.len() as u64);
    assert!(!blob.already_stored);
}

/// Entry types of a pack a test writes by hand.
const BLOB: u8 = 3;
/// A delta of the entry before it.
const OFS_DELTA: u8 = 6;

/// A pack of `entries` (type, and the bytes the entry inflates to, its
/// header claiming their length), as a client could write it; with the
/// offset of each entry.
fn raw_pack(entries: &[(u8, &[u8])]) -> (Vec<u8>, Vec<u64>) {
    use sha1::Digest;
    use std::io::Write;
    let mut bytes = b"PACK".to_vec();
    bytes.extend_from_slice(&2u32.to_be_bytes());
    bytes.extend_from_slice(&(entries.len() as u32).to_be_bytes());
    let mut offsets: Vec<u64> = Vec::new();
    for &(kind, data) in entries {
        let at = bytes.len() as u64;
        write_type_and_size(&mut bytes, kind, data.len() as u64);
        if kind == OFS_DELTA {
            let back = at - offsets.last().expect("a delta follows its base");
            write_ofs_distance(&mut bytes, back);
        }
        let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::fast());
        z.write_all(data).unwrap();
        bytes.extend_from_slice(&z.finish().unwrap());
        offsets.push(at);
    }
    let trailer: [u8; 20] = sha1::Sha1::digest(&bytes).into();
    bytes.extend_from_slice(&trailer);
    (bytes, offsets)
}

/// `ingest_file` of `bytes` written to a file, with objects up to `max` bytes;
/// the error, and how many files were left in the output directory.
fn refused(bytes: &[u8], max: u64) -> (gitclaw_pack::PackError, usize) {
    let work = tempfile::tempdir().unwrap();
    let pack = work.path().join("sent.pack");
    std::fs::write(&pack, bytes).unwrap();
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let db = ObjectDb::new(Vec::new(), Arc::new(NoLoose));
    let options = IngestOptions {
        max_object_bytes: max as usize,
        ..IngestOptions::default()
    };
    match ingest_file(&pack, &out, &db, &options) {
        Ok(_) => panic!("the pack was accepted"),
        Err(err) => (err, files(&out)),
    }
}

/// A delta of a 5-byte base claiming a 900 MB result and making nothing.
const LYING_DELTA: [u8; 6] = [5, 0x80, 0xd2, 0x93, 0xad, 0x03];

/// A pack of `entries` ending in a 5-byte blob and [`LYING_DELTA`] of it is
/// refused as the client's fault, naming the lie at its offset, and leaves
/// nothing behind.
fn lie_is_refused(entries: &[(u8, &[u8])]) {
    let mut entries = entries.to_vec();
    entries.extend([(BLOB, &b"hello"[..]), (OFS_DELTA, &LYING_DELTA[..])]);
    let (bytes, at) = raw_pack(&entries);
    let (err, left) = refused(&bytes, 1 << 30);
    assert!(err.is_client_error(), "{err}");
    assert!(
        err.to_string().contains(&format!(
            "delta at {}: delta produced 0 bytes, its header says 900000000",
            at[at.len() - 1]
        )),
        "{err}"
    );
    assert_eq!(left, 0, "nothing left behind");
}

#[test]
fn a_delta_claiming_a_result_its_instructions_do_not_make_is_refused_before_it_is_allocated() {
    // A blob of 5 bytes, then the lying delta of it: a pack of some 50 bytes.
    // The indexer would allocate the claimed result before applying the
    // delta; the look-through refuses it.
    lie_is_refused(&[]);
}

#[test]
fn a_lying_delta_after_a_big_object_is_refused_by_the_streaming_indexer() {
    // The look-through stops at the big object (the pack is then indexed by
    // streaming); the streaming indexer's own read refuses the lie rather than
    // hand the pack to an indexer that would allocate the claimed 900 MB.
    let zeros = vec![0u8; (BIG_OBJECT_BYTES + 4096) as usize];
    lie_is_refused(&[(BLOB, &zeros)]);
}

/// `len` bytes no compression shrinks.
fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut out = vec![0u8; len];
    let mut x = seed | 1;
    for chunk in out.chunks_mut(8) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
    }
    out
}

#[test]
fn a_pack_file_above_the_bound_without_big_objects_gets_the_index_git_would_write() {
    // Indexed by gix behind the look-through, on two threads: the result is
    // git's index byte for byte.
    let (first, second) = (noise(10 << 20, 3), noise(9 << 20, 5));
    let mut grown = first.clone();
    grown.extend_from_slice(b"and a little more");
    let delta = gitclaw_pack::delta::encode(&first, &grown);
    let (bytes, _) = raw_pack(&[(BLOB, &second), (BLOB, &first), (OFS_DELTA, &delta)]);
    assert!(bytes.len() as u64 > BIG_OBJECT_BYTES);
    let work = tempfile::tempdir().unwrap();
    let pack = work.path().join("sent.pack");
    std::fs::write(&pack, &bytes).unwrap();
    let out = work.path().join("out");
    std::fs::create_dir(&out).unwrap();
    let db = ObjectDb::new(Vec::new(), Arc::new(NoLoose));
    let ingested = ingest_file(&pack, &out, &db, &IngestOptions::default())
        .unwrap()
        .expect("a pack");
    assert_eq!(ingested.objects.len(), 3);
    assert_index_is_gits(work.path(), &pack, &ingested.index_path);
}

#[test]
fn objects_above_the_limit_are_refused_by_their_size_on_every_path() {
    use gitclaw_pack::PackError::ObjectTooLarge;
    let too_large = |bytes: &[u8], max: u64| match refused(bytes, max) {
        (
            ObjectTooLarge {
                offset,
                size,
                limit,
            },
            0,
        ) => (offset, size, limit),
        (err, left) => panic!("{err:?}, {left} files left"),
    };
    // A limit below the big-object bound: a blob above it, and a delta
    // claiming a result above it (its base within it).
    let base = text(0);
    let result = format!("{base}{base}");
    let delta = gitclaw_pack::delta::encode(base.as_bytes(), result.as_bytes());
    let limit = base.len() as u64 + 10;
    let (bytes, at) = raw_pack(&[(BLOB, result.as_bytes())]);
    assert_eq!(
        too_large(&bytes, limit),
        (at[0], result.len() as u64, limit)
    );
    let (bytes, at) = raw_pack(&[(BLOB, base.as_bytes()), (OFS_DELTA, &delta)]);
    assert_eq!(
        too_large(&bytes, limit),
        (at[1], result.len() as u64, limit)
    );
    // The message names both sizes.
    let message = refused(&bytes, limit).0.to_string();
    assert!(
        message.contains(&format!("is an object of {} bytes", result.len()))
            && message.contains(&format!("at most {limit} bytes")),
        "{message}"
    );

    // A limit above the bound: a big object within it is indexed (streamed),
    // one above it refused; in a small pack file (the first attempt fails,
    // the look-through names it) and behind a big object in a pack file
    // above the bound (the streaming indexer's read names it).
    let limit = BIG_OBJECT_BYTES + (4 << 20);
    let within = vec![0u8; (BIG_OBJECT_BYTES + 4096) as usize];
    let above = vec![0u8; limit as usize + 1];
    let (bytes, at) = raw_pack(&[(BLOB, b"small"), (BLOB, &above)]);
    assert_eq!(too_large(&bytes, limit), (at[1], limit + 1, limit));
    let noise = noise((BIG_OBJECT_BYTES + 4096) as usize, 7);
    let (bytes, at) = raw_pack(&[(BLOB, &noise), (BLOB, &above)]);
    assert!(
        bytes.len() as u64 > BIG_OBJECT_BYTES,
        "a pack file above the bound"
    );
    assert_eq!(too_large(&bytes, limit), (at[1], limit + 1, limit));
    let (bytes, _) = raw_pack(&[(BLOB, &noise), (BLOB, &within)]);
    let work = tempfile::tempdir().unwrap();
    let pack = work.path().join("within.pack");
    std::fs::write(&pack, &bytes).unwrap();
    let db = ObjectDb::new(Vec::new(), Arc::new(NoLoose));
    let options = IngestOptions {
        max_object_bytes: limit as usize,
        ..IngestOptions::default()
    };
    let ingested = ingest_file(&pack, work.path(), &db, &options)
        .unwrap()
        .expect("a pack");
    assert_eq!(ingested.objects.len(), 2);
}

#[test]
fn corrupt_packs_with_big_objects_are_refused_not_panicked_on() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    let (_, second) = history(&repo);
    let pack = pack_objects(
        &repo,
        &format!("{second}\n"),
        &["--delta-base-offset"],
        &work.path().join("p.pack"),
    );
    let bytes = std::fs::read(&pack).unwrap();
    let db = ObjectDb::new(Vec::new(), Arc::new(NoLoose));
    for (i, cut) in [bytes.len() - 1, bytes.len() / 2, 40]
        .into_iter()
        .enumerate()
    {
        let bad = work.path().join(format!("cut{i}.pack"));
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        let out = work.path().join(format!("cut{i}"));
        std::fs::create_dir(&out).unwrap();
        assert!(ingest_file(&bad, &out, &db, &IngestOptions::default()).is_err());
    }
    for (i, at) in [bytes.len() / 2, bytes.len() - 30].into_iter().enumerate() {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x40;
        let bad = work.path().join(format!("flip{i}.pack"));
        std::fs::write(&bad, &flipped).unwrap();
        let out = work.path().join(format!("flip{i}"));
        std::fs::create_dir(&out).unwrap();
        assert!(ingest_file(&bad, &out, &db, &IngestOptions::default()).is_err());
    }
}

/// One big loose blob that may only be streamed: reading it whole is a bug.
struct StreamOnly {
    id: gitclaw_pack::ObjectId,
    content: Arc<Vec<u8>>,
}

impl gitclaw_pack::odb::LooseSource for StreamOnly {
    fn contains(&self, id: &gitclaw_pack::oid) -> bool {
        id == self.id
    }
    fn read(
        &self,
        _id: &gitclaw_pack::oid,
    ) -> Result<Option<(gitclaw_pack::Kind, Vec<u8>)>, gitclaw_pack::PackError> {
        panic!("a big loose object was read whole");
    }
    fn list(&self) -> Vec<(gitclaw_pack::ObjectId, gitclaw_pack::Kind)> {
        vec![(self.id, gitclaw_pack::Kind::Blob)]
    }
    fn header(
        &self,
        id: &gitclaw_pack::oid,
    ) -> Result<Option<(gitclaw_pack::Kind, u64)>, gitclaw_pack::PackError> {
        Ok(self
            .contains(id)
            .then_some((gitclaw_pack::Kind::Blob, self.content.len() as u64)))
    }
    fn open(
        &self,
        id: &gitclaw_pack::oid,
    ) -> Result<Option<gitclaw_pack::odb::ObjectStream>, gitclaw_pack::PackError> {
        struct Shared(Arc<Vec<u8>>, usize);
        impl std::io::Read for Shared {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = (&self.0[self.1..]).read(buf)?;
                self.1 += n;
                Ok(n)
            }
        }
        Ok(self.contains(id).then(|| gitclaw_pack::odb::ObjectStream {
            kind: gitclaw_pack::Kind::Blob,
            size: self.content.len() as u64,
            content: Box::new(Shared(self.content.clone(), 0)),
        }))
    }
}

#[test]
fn big_loose_objects_are_streamed_into_packs_never_read_whole() {
    use std::io::Read;
    let content: Vec<u8> = (0..BIG_OBJECT_BYTES as usize + 1)
        .map(|i| (i % 253) as u8 ^ (i >> 12) as u8)
        .collect();
    let id = {
        use sha1::Digest;
        let mut h = sha1::Sha1::new();
        h.update(format!("blob {}\0", content.len()).as_bytes());
        h.update(&content);
        gitclaw_pack::ObjectId::from_bytes_or_panic(&h.finalize())
    };
    let db = ObjectDb::new(
        Vec::new(),
        Arc::new(StreamOnly {
            id,
            content: Arc::new(content.clone()),
        }),
    );
    let mut pack = Vec::new();
    gitclaw_pack::writer::write_pack(
        &db,
        &[gitclaw_pack::walk::WalkObject::new(
            id,
            gitclaw_pack::Kind::Blob,
        )],
        None,
        &gitclaw_pack::writer::WriteOptions::default(),
        &mut pack,
        &mut |_, _, _| {},
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    git(work.path(), &["init", "-q", "--bare", "."]);
    let mut child = Command::new("git")
        .args(["index-pack", "--stdin", "--strict"])
        .current_dir(work.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&pack).unwrap();
    assert!(
        child.wait_with_output().unwrap().status.success(),
        "git takes the pack"
    );
    let mut back = Command::new("git")
        .args(["cat-file", "blob", &id.to_string()])
        .current_dir(work.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut data = Vec::new();
    back.stdout.take().unwrap().read_to_end(&mut data).unwrap();
    assert!(back.wait().unwrap().success());
    assert!(data == content, "git reads the blob back whole");
}
