//! Walks over a pack read by ranges, as a fresh instance on S3 reads its packs:
//! each read that misses the local file is a round trip to the object store, so
//! what a walk costs is counted in batches of reads.

mod common;

use std::{
    collections::BTreeSet,
    ops::Range,
    path::PathBuf,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use common::{git, git_stdin};
use gitclaw_pack::{
    odb::{NoLoose, ObjectDb, PackHandle, RangeSource, BLOCK_BYTES},
    walk::{enumerate, Graph, ShallowPlan, WalkOptions},
    Kind, ObjectId, PackError,
};

/// The stored pack, counting the batches of reads made of it.
struct Counted {
    data: Vec<u8>,
    batches: Arc<AtomicU64>,
}

impl RangeSource for Counted {
    fn read_range(&self, range: Range<u64>) -> Result<Vec<u8>, PackError> {
        Ok(self.read_ranges(&[range])?.remove(0))
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> Result<Vec<Vec<u8>>, PackError> {
        self.batches.fetch_add(1, Ordering::SeqCst);
        Ok(ranges
            .iter()
            .map(|r| self.data[r.start as usize..r.end as usize].to_vec())
            .collect())
    }
}

/// Bytes that do not compress (so each blob takes its size in the pack).
fn noise(len: usize, mut state: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect()
}

#[test]
fn a_walk_over_a_pack_read_by_ranges_reads_a_trees_subtrees_in_one_batch() {
    // 24 directories, each a tree and a 300 KB blob that does not compress.
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("src");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    for d in 0..24u64 {
        let dir = repo.join(format!("d{d:02}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("big.bin"), noise(300_000, d + 1)).unwrap();
        std::fs::write(dir.join("small.txt"), format!("directory {d}\n")).unwrap();
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "many directories"]);
    let tip = ObjectId::from_hex(git(&repo, &["rev-parse", "main"]).trim().as_bytes()).unwrap();
    // Packed in the order of a walk of the tree (git's own order for objects
    // listed to it), each directory's tree beside its blob: the trees lie in
    // many blocks of the pack.
    let mut listing = format!(
        "{tip}\n{}\n",
        git(&repo, &["rev-parse", "main^{tree}"]).trim()
    );
    for line in git(&repo, &["ls-tree", "-r", "-t", "main"]).lines() {
        listing.push_str(line.split_whitespace().nth(2).unwrap());
        listing.push('\n');
    }
    let packs = tmp.path().join("packed");
    std::fs::create_dir_all(&packs).unwrap();
    let (ok, _, err) = git_stdin(
        &repo,
        &[
            "pack-objects",
            "-q",
            "--window=0",
            packs.join("pack").to_str().unwrap(),
        ],
        listing.as_bytes(),
    );
    assert!(ok, "{err}");
    let pack_path: PathBuf = std::fs::read_dir(&packs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap();
    let data = std::fs::read(&pack_path).unwrap();
    let blocks_with_trees: BTreeSet<u64> =
        git(&repo, &["verify-pack", "-v", pack_path.to_str().unwrap()])
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split_whitespace().collect();
                (fields.get(1) == Some(&"tree"))
                    .then(|| fields[4].parse::<u64>().unwrap() / BLOCK_BYTES)
            })
            .collect();
    assert!(
        blocks_with_trees.len() >= 5,
        "the fixture spreads its trees over many blocks: {blocks_with_trees:?}"
    );

    // The index is local (downloaded whole); the pack is read by ranges.
    let sparse_dir = tmp.path().join("sparse");
    std::fs::create_dir_all(&sparse_dir).unwrap();
    let index = sparse_dir.join(pack_path.with_extension("idx").file_name().unwrap());
    std::fs::copy(pack_path.with_extension("idx"), &index).unwrap();
    let batches = Arc::new(AtomicU64::new(0));
    let source = Counted {
        data: data.clone(),
        batches: batches.clone(),
    };
    let handle = PackHandle::open_sparse(&index, data.len() as u64, Box::new(source)).unwrap();
    assert_eq!(batches.load(Ordering::SeqCst), 1, "opening is one batch");
    let db = ObjectDb::new(vec![Arc::new(handle)], Arc::new(NoLoose));

    let outcome = enumerate(
        &mut Graph::new(&db),
        &[tip],
        &[],
        &ShallowPlan::default(),
        &WalkOptions::default(),
    )
    .unwrap();
    let count = |kind: Kind| outcome.objects.iter().filter(|o| o.kind == kind).count();
    assert_eq!(
        (count(Kind::Commit), count(Kind::Tree), count(Kind::Blob)),
        (1, 25, 48),
        "every object of the commit is listed"
    );
    // The commit and the root tree, then the 24 subtrees in one batch: not a
    // round trip for each block they lie in.
    let walked = batches.load(Ordering::SeqCst) - 1;
    assert!(
        walked <= 2,
        "the walk took {walked} batches of reads for trees in {} blocks",
        blocks_with_trees.len()
    );
}

#[test]
fn a_compacted_pack_read_by_ranges_tells_its_entry_types_without_reading_its_entries() {
    // Commits each changing a 400 KB file that does not compress, and an
    // annotated tag: a pack of several blocks whose trees and blobs lie after
    // its commits.
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("src");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    for i in 0..8u64 {
        std::fs::write(repo.join("big.bin"), noise(400_000, i + 1)).unwrap();
        std::fs::write(repo.join("small.txt"), format!("version {i}\n")).unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", &format!("version {i}")]);
    }
    git(&repo, &["tag", "-a", "v1", "-m", "the first release"]);
    // A commit no ref keeps, packed with the rest: compaction writes a new pack.
    git(&repo, &["checkout", "-q", "-b", "gone"]);
    git(
        &repo,
        &["commit", "-q", "--allow-empty", "-m", "soon unreachable"],
    );
    git(&repo, &["checkout", "-q", "main"]);
    git(&repo, &["gc", "-q"]);
    git(&repo, &["branch", "-q", "-D", "gone"]);
    let pack_dir = repo.join(".git/objects/pack");
    let index = std::fs::read_dir(&pack_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == "idx"))
        .unwrap();
    let db = ObjectDb::new(
        vec![Arc::new(PackHandle::open(&index).unwrap())],
        Arc::new(NoLoose),
    );
    let tips: Vec<ObjectId> = git(&repo, &["for-each-ref", "--format=%(objectname)"])
        .lines()
        .map(|l| ObjectId::from_hex(l.trim().as_bytes()).unwrap())
        .collect();
    let work = tmp.path().join("work");
    let repacked = gitclaw_pack::repack::repack(
        &db,
        &tips,
        &[],
        &work,
        &gitclaw_pack::writer::WriteOptions::default(),
    )
    .unwrap();
    let closure = repacked.reachable.expect("a compacted pack");
    let graph_path = repacked.commit_graph.expect("a commit-graph beside it");
    let local = PackHandle::open(&closure.index_path).unwrap();
    let from_headers = local.kinds().unwrap();
    let count =
        |kinds: &[(ObjectId, Kind)], kind: Kind| kinds.iter().filter(|k| k.1 == kind).count();
    assert_eq!(
        (
            count(&from_headers, Kind::Commit),
            count(&from_headers, Kind::Tag)
        ),
        (8, 1)
    );
    let data = std::fs::read(closure.index_path.with_extension("pack")).unwrap();
    assert!(data.len() as u64 > 3 * BLOCK_BYTES, "{} bytes", data.len());

    let sparse = |dir: &str, with_graph: bool| {
        let dir = tmp.path().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let index = dir.join(closure.index_path.file_name().unwrap());
        std::fs::copy(&closure.index_path, &index).unwrap();
        let batches = Arc::new(AtomicU64::new(0));
        let source = Counted {
            data: data.clone(),
            batches: batches.clone(),
        };
        let mut handle =
            PackHandle::open_sparse(&index, data.len() as u64, Box::new(source)).unwrap();
        if with_graph {
            let graph = gitclaw_pack::commit_graph::CommitGraph::open(&graph_path).unwrap();
            handle = handle.with_commit_graph(graph);
        }
        (handle, batches)
    };
    // With the graph compaction wrote: the types it recorded, and no read of
    // the pack past opening it.
    let (handle, batches) = sparse("with-graph", true);
    assert_eq!(handle.kinds().unwrap(), from_headers);
    assert_eq!(
        handle
            .count_of(|k| matches!(k, Kind::Commit | Kind::Tag))
            .unwrap(),
        9
    );
    assert_eq!(batches.load(Ordering::SeqCst), 1, "only the opening batch");
    // Without it, the same types from every entry's header: the whole pack.
    let (handle, batches) = sparse("without-graph", false);
    assert_eq!(handle.kinds().unwrap(), from_headers);
    assert!(batches.load(Ordering::SeqCst) > 1);
}
