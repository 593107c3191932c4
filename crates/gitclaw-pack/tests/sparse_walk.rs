//! Walks over a pack read by ranges, as a fresh instance on S3 reads its packs:
//! each read that misses the local file is a round trip to the object store, so
//! what a walk costs is counted in batches of reads. And walks over what
//! compaction records beside a pack: entry types, delta bases, and the commits
//! that brought its objects.

mod common;

use std::{
    collections::BTreeSet,
    ops::Range,
    path::{Path, PathBuf},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
};

use common::{
    client_at, client_copy, fix_thin_and_check, git, git_stdin, new_repo, write_fetch_pack,
};
use gitclaw_pack::{
    odb::{NoLoose, ObjectDb, PackHandle, RangeSource, BLOCK_BYTES},
    walk::{enumerate, ok_to_give_up, unreachable_wants, Graph, ShallowPlan, WalkOptions},
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

/// `git gc` with a commit no ref keeps packed among the rest, so that
/// compaction ([`compact`]) writes a new pack rather than keep this one.
fn gc_with_an_unreachable_commit(repo: &Path) {
    git(repo, &["checkout", "-q", "-b", "gone"]);
    git(
        repo,
        &["commit", "-q", "--allow-empty", "-m", "soon unreachable"],
    );
    git(repo, &["checkout", "-q", "main"]);
    git(repo, &["gc", "-q"]);
    git(repo, &["branch", "-q", "-D", "gone"]);
}

/// The compacted pack (and its commit-graph) `gitclaw gc` would write for the
/// repository at `repo` (every ref a tip), written under `work`: the paths of
/// its index and of its graph.
fn compact(repo: &Path, work: &Path) -> (PathBuf, PathBuf) {
    compact_for(repo, work, &[])
}

/// [`compact`] with `shallow_tips` (the branch heads most cloned, the default
/// branch first, as `gitclaw gc` passes them).
fn compact_for(repo: &Path, work: &Path, shallow_tips: &[ObjectId]) -> (PathBuf, PathBuf) {
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
    let tips: Vec<ObjectId> = git(repo, &["for-each-ref", "--format=%(objectname)"])
        .lines()
        .map(|l| ObjectId::from_hex(l.trim().as_bytes()).unwrap())
        .collect();
    let repacked = gitclaw_pack::repack::repack(
        &db,
        &tips,
        shallow_tips,
        work,
        &gitclaw_pack::writer::WriteOptions::default(),
    )
    .unwrap();
    let closure = repacked.reachable.expect("a compacted pack");
    let graph = repacked.commit_graph.expect("a commit-graph beside it");
    (closure.index_path, graph)
}

/// What `git rev-list --objects ARGS` lists in `repo`.
fn rev_list_objects(repo: &Path, args: &[&str]) -> BTreeSet<ObjectId> {
    let mut all = vec!["rev-list", "--objects"];
    all.extend_from_slice(args);
    git(repo, &all)
        .lines()
        .map(|l| ObjectId::from_hex(l.split(' ').next().unwrap().as_bytes()).unwrap())
        .collect()
}

/// The pack of `index` as a fresh instance opens it: its index copied into
/// `dir`, the pack read by ranges (each batch of reads counted), with the
/// commit-graph at `graph` if given.
fn sparse_copy(dir: &Path, index: &Path, graph: Option<&Path>) -> (PackHandle, Arc<AtomicU64>) {
    let data = std::fs::read(index.with_extension("pack")).unwrap();
    std::fs::create_dir_all(dir).unwrap();
    let copy = dir.join(index.file_name().unwrap());
    std::fs::copy(index, &copy).unwrap();
    let batches = Arc::new(AtomicU64::new(0));
    let len = data.len() as u64;
    let source = Counted {
        data,
        batches: batches.clone(),
    };
    let mut handle = PackHandle::open_sparse(&copy, len, Box::new(source)).unwrap();
    if let Some(graph) = graph {
        handle =
            handle.with_commit_graph(gitclaw_pack::commit_graph::CommitGraph::open(graph).unwrap());
    }
    (handle, batches)
}

#[test]
fn a_walk_over_a_pack_read_by_ranges_reads_a_trees_subtrees_in_one_batch() {
    // 24 directories, each a tree and a 300 KB blob that does not compress.
    let (tmp, repo) = new_repo();
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
    let (handle, batches) = sparse_copy(
        &tmp.path().join("sparse"),
        &pack_path.with_extension("idx"),
        None,
    );
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
    let (tmp, repo) = new_repo();
    for i in 0..8u64 {
        std::fs::write(repo.join("big.bin"), noise(400_000, i + 1)).unwrap();
        std::fs::write(repo.join("small.txt"), format!("version {i}\n")).unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", &format!("version {i}")]);
    }
    git(&repo, &["tag", "-a", "v1", "-m", "the first release"]);
    gc_with_an_unreachable_commit(&repo);
    let (closure_index, graph_path) = compact(&repo, &tmp.path().join("work"));
    let local = PackHandle::open(&closure_index).unwrap();
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
    let data = std::fs::read(closure_index.with_extension("pack")).unwrap();
    assert!(data.len() as u64 > 3 * BLOCK_BYTES, "{} bytes", data.len());
    let sparse = |dir: &str, with_graph: bool| {
        let graph = with_graph.then_some(graph_path.as_path());
        sparse_copy(&tmp.path().join(dir), &closure_index, graph)
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

#[test]
fn tags_peeled_by_the_refs_are_read_only_when_they_go_out_or_a_want_is_inside_a_chain() {
    // Four commits with long messages (1.6 MB of commits) ahead of the tags
    // in the compacted pack, and a 1.2 MB file after them: reading a tag is a
    // read past what opening reads.
    let (tmp, repo) = new_repo();
    std::fs::write(repo.join("big.bin"), noise(1_200_000, 99)).unwrap();
    for i in 0..4u64 {
        std::fs::write(repo.join("file.txt"), format!("version {i}\n")).unwrap();
        // A file only the first commit has: stored last, after the trees.
        match i {
            0 => std::fs::write(repo.join("old.bin"), noise(1_200_000, 98)).unwrap(),
            1 => std::fs::remove_file(repo.join("old.bin")).unwrap(),
            _ => {}
        }
        let message: String = noise(400_000, i + 1)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(
            tmp.path().join("message"),
            format!("version {i}\n\n{message}\n"),
        )
        .unwrap();
        git(&repo, &["add", "-A"]);
        let message = tmp.path().join("message");
        git(&repo, &["commit", "-q", "-F", message.to_str().unwrap()]);
    }
    git(
        &repo,
        &["tag", "-a", "old", "main~3", "-m", "an old release"],
    );
    git(
        &repo,
        &["tag", "-a", "new", "main", "-m", "the newest release"],
    );
    // A tag of a tag: its chain holds `new`.
    git(
        &repo,
        &[
            "-c",
            "advice.nestedTag=false",
            "tag",
            "-a",
            "outer",
            "new",
            "-m",
            "nested",
        ],
    );
    gc_with_an_unreachable_commit(&repo);
    let id =
        |rev: &str| ObjectId::from_hex(git(&repo, &["rev-parse", rev]).trim().as_bytes()).unwrap();
    let (tip, parent, first) = (id("main"), id("main~1"), id("main~3"));
    let (old, new, outer) = (id("old"), id("new"), id("outer"));
    let (index, graph_path) = compact(&repo, &tmp.path().join("work"));
    let layout = git(
        &repo,
        &[
            "verify-pack",
            "-v",
            index.with_extension("pack").to_str().unwrap(),
        ],
    );
    let pack_len = std::fs::metadata(index.with_extension("pack"))
        .unwrap()
        .len();
    for line in layout
        .lines()
        .filter(|l| l.split_whitespace().nth(1) == Some("tag"))
    {
        let offset: u64 = line.split_whitespace().nth(4).unwrap().parse().unwrap();
        assert!(
            offset >= BLOCK_BYTES && offset / BLOCK_BYTES != (pack_len - 1) / BLOCK_BYTES,
            "the fixture's tags lie where opening does not read: {line}"
        );
    }
    // What the refs say the tags peel to, as the server has them.
    let peeled = [(old, first), (new, tip), (outer, tip)];
    let tips = [tip, old, new, outer];
    let open = |dir: &str| {
        let (handle, batches) = sparse_copy(&tmp.path().join(dir), &index, Some(&graph_path));
        (
            ObjectDb::new(vec![Arc::new(handle)], Arc::new(NoLoose)),
            batches,
        )
    };

    // A fetch's negotiation wanting the tags whose commits the client has:
    // ready at once, reading no tag.
    let (db, batches) = open("negotiation");
    let mut graph = Graph::new(&db);
    graph.know_peeled_tags(peeled);
    assert!(ok_to_give_up(&mut graph, &[old, new, outer], &[tip], false).unwrap());
    assert!(
        unreachable_wants(&mut graph, &tips, &[old, new, outer, tip, parent])
            .unwrap()
            .is_empty()
    );
    assert_eq!(batches.load(Ordering::SeqCst), 1, "only the opening batch");
    // Without the refs' word each tag is read.
    let (db, batches) = open("negotiation-unpeeled");
    let mut graph = Graph::new(&db);
    assert!(ok_to_give_up(&mut graph, &[old, new, outer], &[tip], false).unwrap());
    assert!(batches.load(Ordering::SeqCst) > 1);

    // A want inside a chain is found there: `new` is reachable from `outer`
    // alone, though no ref's peeled id names it.
    let (db, _) = open("chain");
    let mut graph = Graph::new(&db);
    graph.know_peeled_tags(peeled);
    assert!(unreachable_wants(&mut graph, &[outer], &[new])
        .unwrap()
        .is_empty());
    assert_eq!(
        unreachable_wants(&mut graph, &[old], &[new]).unwrap(),
        vec![new],
        "a tag no tip's chain holds stays unreachable"
    );

    // include-tag on a fetch of the newest commit: the tags naming it go out
    // (both of the nested chain), the old one stays behind, as without the
    // refs' word.
    let fetched = |peeled: &[(ObjectId, ObjectId)], dir: &str| {
        let (db, _) = open(dir);
        let mut graph = Graph::new(&db);
        graph.know_peeled_tags(peeled.iter().copied());
        let options = WalkOptions {
            include_tags: vec![old, new, outer],
            ..WalkOptions::default()
        };
        let outcome = enumerate(
            &mut graph,
            &[tip],
            &[parent],
            &ShallowPlan::default(),
            &options,
        )
        .unwrap();
        let mut ids: Vec<ObjectId> = outcome.objects.iter().map(|o| o.id).collect();
        ids.sort();
        ids
    };
    // A fetch wanting the newest commit and its tags, from a client holding
    // the one before: the tags to send and the root trees of both commits
    // come down in one batch of reads, as the walk starts.
    let fetch_tags = |peeled: &[(ObjectId, ObjectId)], dir: &str| {
        let (db, batches) = open(dir);
        let mut graph = Graph::new(&db);
        graph.know_peeled_tags(peeled.iter().copied());
        let wants = [tip, new, outer];
        let outcome = enumerate(
            &mut graph,
            &wants,
            &[parent],
            &ShallowPlan::default(),
            &WalkOptions::default(),
        )
        .unwrap();
        let mut ids: Vec<ObjectId> = outcome.objects.iter().map(|o| o.id).collect();
        ids.sort();
        (ids, batches.load(Ordering::SeqCst) - 1)
    };
    let (sent, batches) = fetch_tags(&peeled, "fetch-tags");
    assert!(sent.contains(&new) && sent.contains(&outer) && sent.contains(&tip));
    assert_eq!(batches, 1, "one batch of reads after opening");
    // Read as the walk reached them: the tags, then the trees (the fixture
    // keeps them in different blocks); the same objects either way.
    let (unpeeled, batches) = fetch_tags(&[], "fetch-tags-unpeeled");
    assert_eq!(unpeeled, sent);
    assert!(batches > 1, "{batches}");

    let with_word = fetched(&peeled, "include-tag");
    assert!(with_word.contains(&new) && with_word.contains(&outer) && !with_word.contains(&old));
    assert_eq!(with_word, fetched(&[], "include-tag-unpeeled"));
}

#[test]
fn a_delta_chain_across_blocks_comes_down_in_one_batch_with_the_bases_compaction_records() {
    // A file of 16 parts of 200 KB that do not compress, of which each commit
    // rewrites one more: each version is nearest the next, so the versions are
    // stored as chains, each delta holding a new part, and a chain's deltas
    // run over several blocks of the pack.
    let (tmp, repo) = new_repo();
    let mut parts: Vec<Vec<u8>> = (0..16).map(|at| noise(200_000, at + 1)).collect();
    let mut versions = Vec::new();
    for version in 1..=14u64 {
        parts[version as usize] = noise(200_000, 1000 + version);
        let content = parts.concat();
        std::fs::write(repo.join("data.bin"), &content).unwrap();
        git(&repo, &["add", "-A"]);
        git(
            &repo,
            &["commit", "-q", "-m", &format!("version {version}")],
        );
        let id = git(&repo, &["rev-parse", "main:data.bin"]);
        versions.push((ObjectId::from_hex(id.trim().as_bytes()).unwrap(), content));
    }
    gc_with_an_unreachable_commit(&repo);
    let (closure_index, graph_path) = compact(&repo, &tmp.path().join("work"));

    // The fixture's premise: some version's chain, as the entries' headers
    // tell it, runs through several blocks of the pack. The one through the
    // most is read below.
    let local = PackHandle::open(&closure_index).unwrap();
    let chain_blocks = |start: ObjectId| {
        let mut blocks = BTreeSet::new();
        let mut at = Some(start);
        while let Some(id) = at {
            let index = local.lookup(&id).unwrap().unwrap();
            blocks.insert(local.offset_at(index) / BLOCK_BYTES);
            at = local.entry_base(index).unwrap().1;
        }
        blocks
    };
    let (wanted, content, blocks) = versions
        .iter()
        .map(|(id, content)| (*id, content, chain_blocks(*id)))
        .max_by_key(|(_, _, blocks)| blocks.len())
        .unwrap();
    assert!(
        blocks.len() >= 3,
        "the longest chain lies in blocks {blocks:?}"
    );
    // What compaction recorded is what the entries' headers say.
    let graph = gitclaw_pack::commit_graph::CommitGraph::open(&graph_path).unwrap();
    let in_pack_order: Vec<u32> = local.indices_in_pack_order().collect();
    for (pos, &index) in in_pack_order.iter().enumerate() {
        let recorded = graph.delta_base(pos as u32).unwrap();
        let recorded = recorded.map(|base| local.oid_at(in_pack_order[base as usize]).unwrap());
        assert_eq!(recorded, local.entry_base(index).unwrap().1, "entry {pos}");
    }
    // And the pack order it recorded is the one sorting the index gives, which
    // a pack opened with its graph then takes.
    let mut places = vec![0u32; in_pack_order.len()];
    for (pos, &index) in in_pack_order.iter().enumerate() {
        places[index as usize] = pos as u32;
    }
    assert_eq!(graph.pack_places().unwrap(), Some(places));
    let with_graph = PackHandle::open(&closure_index)
        .unwrap()
        .with_commit_graph(gitclaw_pack::commit_graph::CommitGraph::open(&graph_path).unwrap());
    assert!(with_graph
        .indices_in_pack_order()
        .eq(in_pack_order.iter().copied()));

    let decode = |dir: &str, graph: Option<&Path>| {
        let (handle, batches) = sparse_copy(&tmp.path().join(dir), &closure_index, graph);
        let opened = batches.load(Ordering::SeqCst);
        let mut buf = Vec::new();
        let mut state = gitclaw_pack::odb::DecodeState::default();
        let index = handle.lookup(&wanted).unwrap().unwrap();
        assert_eq!(
            handle.decode(index, &mut buf, &mut state).unwrap(),
            Kind::Blob
        );
        assert!(&buf == content, "the version as committed");
        batches.load(Ordering::SeqCst) - opened
    };
    // Without the record, each entry's header names the next: a batch a block
    // not read yet.
    let by_headers = decode("by-headers", None);
    assert!(
        by_headers >= 2,
        "read entry by entry: {by_headers} batches for blocks {blocks:?}"
    );
    // With the graph compaction wrote, the whole chain at once.
    assert_eq!(decode("recorded", Some(&graph_path)), 1);

    // A walk's read-ahead of the same object ([`ObjectDb::prefetch`]) is one
    // batch too, and reading it after that reads nothing more.
    let (handle, batches) = sparse_copy(
        &tmp.path().join("prefetch"),
        &closure_index,
        Some(&graph_path),
    );
    let db = ObjectDb::new(vec![Arc::new(handle)], Arc::new(NoLoose));
    let opened = batches.load(Ordering::SeqCst);
    db.prefetch(&[wanted]).unwrap();
    assert_eq!(batches.load(Ordering::SeqCst) - opened, 1);
    let mut data = Vec::new();
    let kind = db.reader().read(&wanted, &mut data).unwrap();
    assert_eq!(kind, Some(Kind::Blob));
    assert!(&data == content, "the version as committed");
    assert_eq!(batches.load(Ordering::SeqCst) - opened, 1);
}

#[test]
fn a_fetch_leaves_out_what_the_clients_older_history_holds_as_git_with_bitmaps_does() {
    // `main`: 30 commits, each rewriting one of five files. `side`, branched
    // at main's commit 5, then takes main's trees of commits 10 to 12 (as a
    // copy of those changes would) and adds a file of its own. A client with
    // main's whole history that fetches `side` lacks side's commits and that
    // file; the walk's edge is commit 5, whose tree is not those trees.
    let (tmp, repo) = new_repo();
    for i in 0..30usize {
        let text = format!("main {i}\n{}", "line\n".repeat(i));
        std::fs::write(repo.join(format!("f{}.txt", i % 5)), text).unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", &format!("main {i}")]);
    }
    git(&repo, &["checkout", "-q", "-b", "side", "main~24"]);
    for i in [10usize, 11, 12] {
        let commit = format!("main~{}", 29 - i);
        git(&repo, &["read-tree", "-u", "--reset", &commit]);
        git(
            &repo,
            &["commit", "-q", "-m", &format!("side copy of main {i}")],
        );
    }
    std::fs::write(repo.join("side.txt"), "only on side\n").unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "side's own"]);
    git(&repo, &["checkout", "-q", "main"]);
    gc_with_an_unreachable_commit(&repo);
    let at = |spec: &str| {
        ObjectId::from_hex(git(&repo, &["rev-parse", spec]).trim().as_bytes()).unwrap()
    };
    let (main, side) = (at("main"), at("side"));
    let (index, graph_path) = compact_for(&repo, &tmp.path().join("work"), &[main]);
    let objects = |args: &[&str]| rev_list_objects(&repo, args);
    // Exactly what the client lacks: side's objects not in main's history.
    let lacking: BTreeSet<ObjectId> = objects(&["side"])
        .difference(&objects(&["main"]))
        .copied()
        .collect();

    let handle = PackHandle::open(&index)
        .unwrap()
        .with_commit_graph(gitclaw_pack::commit_graph::CommitGraph::open(&graph_path).unwrap());
    let db = ObjectDb::new(vec![Arc::new(handle)], Arc::new(NoLoose));
    let fetch = |history_complete: bool| {
        let mut graph = Graph::new(&db);
        let plan =
            gitclaw_pack::walk::plan_shallow(&mut graph, &[side], &Default::default()).unwrap();
        let options = WalkOptions {
            history_complete,
            ..Default::default()
        };
        enumerate(&mut graph, &[side], &[main], &plan, &options).unwrap()
    };
    let ids = |outcome: &gitclaw_pack::walk::WalkOutcome| -> BTreeSet<ObjectId> {
        outcome.objects.iter().map(|o| o.id).collect()
    };
    // By the edge alone (git's walk without bitmaps), main's trees of commits
    // 10 to 12 and what they hold go out again.
    let by_edge = ids(&fetch(false));
    assert!(
        by_edge.is_superset(&lacking) && by_edge.len() >= lacking.len() + 6,
        "{} sent by the edge, {} lacking",
        by_edge.len(),
        lacking.len()
    );
    // With the commits compaction recorded, exactly what the client lacks.
    let outcome = fetch(true);
    assert_eq!(ids(&outcome), lacking);
    // An object of the client's history asked for by name (a partial clone's
    // lazy fetch of a blob it never received) still goes out.
    let old_blob = at("main~20:f0.txt");
    let mut graph = Graph::new(&db);
    let asked = enumerate(
        &mut graph,
        &[old_blob],
        &[main],
        &ShallowPlan::default(),
        &WalkOptions {
            history_complete: true,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!(ids(&asked), BTreeSet::from([old_blob]));

    // The thin pack of that fetch completes against a copy of the client's
    // repository (main's history only), and side is then whole there.
    let client = tmp.path().join("client.git");
    client_copy(&repo, &client, Some("main"));
    let (pack, _) = write_fetch_pack(&db, &outcome, true);
    fix_thin_and_check(&client, &pack, "side", &side.to_string());
    assert_eq!(
        git(&client, &["rev-list", "--objects", "side"])
            .lines()
            .count(),
        objects(&["side"]).len()
    );
}

#[test]
fn a_fetch_of_recent_commits_reads_the_clients_trees_from_one_run_of_the_compacted_pack() {
    // 16 directories three levels down, each with a file of four 60 KB parts
    // that do not compress; each of 24 commits rewrites one part of one
    // directory's file and appends to its notes. Every version of a file is
    // a 60 KB delta against the next: history's blobs fill blocks of the pack,
    // and the older versions of the directories' trees are small.
    let (tmp, repo) = new_repo();
    let leaves: Vec<String> = (0..16)
        .map(|n| format!("a{}/b{}/c{}", n / 8, (n / 4) % 2, n % 4))
        .collect();
    let mut parts: Vec<Vec<Vec<u8>>> = (0..16u64)
        .map(|n| (0..4u64).map(|p| noise(60_000, n * 4 + p + 1)).collect())
        .collect();
    let write = |leaf: &str, parts: &[Vec<u8>], note: &str| {
        let dir = repo.join(leaf);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("data.bin"), parts.concat()).unwrap();
        let notes = dir.join("notes.txt");
        let mut text = std::fs::read_to_string(&notes).unwrap_or_default();
        text.push_str(note);
        std::fs::write(notes, text).unwrap();
    };
    for (n, leaf) in leaves.iter().enumerate() {
        write(leaf, &parts[n], &format!("{leaf} begins\n"));
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "sixteen directories"]);
    for c in 0..24u64 {
        let n = (c as usize * 5) % 16;
        parts[n][c as usize % 4] = noise(60_000, 1000 + c);
        write(&leaves[n], &parts[n], &format!("change {c}\n"));
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", &format!("change {c}")]);
    }
    gc_with_an_unreachable_commit(&repo);
    let at = |spec: &str| {
        ObjectId::from_hex(git(&repo, &["rev-parse", spec]).trim().as_bytes()).unwrap()
    };
    let main = at("main");
    let (index, graph_path) = compact_for(&repo, &tmp.path().join("work"), &[main]);
    let local = PackHandle::open(&index).unwrap();
    assert!(
        std::fs::metadata(index.with_extension("pack"))
            .unwrap()
            .len()
            > 4 * BLOCK_BYTES,
        "the fixture's pack spans many blocks"
    );

    // The trees of the last commits that the tip's tree does not hold: the
    // client's side of a fetch of a few commits. They lie in one run of the
    // pack, trees only, within a block.
    let listed = |args: &[&str]| rev_list_objects(&repo, args);
    let kinds = local.kinds().unwrap();
    let kind_of: std::collections::HashMap<ObjectId, Kind> = kinds.iter().copied().collect();
    let tip_objects = listed(&["--no-walk", "main"]);
    let older_trees: BTreeSet<ObjectId> = listed(&["main~24..main"])
        .difference(&tip_objects)
        .copied()
        .filter(|id| kind_of[id] == Kind::Tree)
        .collect();
    assert!(
        older_trees.len() >= 24 * 3,
        "{} older trees",
        older_trees.len()
    );
    let offsets: BTreeSet<u64> = older_trees
        .iter()
        .map(|id| local.offset_at(local.lookup(id).unwrap().unwrap()))
        .collect();
    let (first, last) = (*offsets.first().unwrap(), *offsets.last().unwrap());
    let between: Vec<Kind> = kinds
        .into_iter()
        .filter(|(id, _)| {
            (first..=last).contains(&local.offset_at(local.lookup(id).unwrap().unwrap()))
        })
        .map(|(_, kind)| kind)
        .collect();
    assert!(
        between.iter().all(|kind| *kind == Kind::Tree),
        "only trees between the first and the last of them"
    );
    assert!(
        last - first < BLOCK_BYTES / 4,
        "they span {} bytes",
        last - first
    );

    // A fresh instance's fetch for a client one and eight commits behind:
    // the walk finds exactly what the client lacks in two batches of reads at
    // most (the block of the commits and the tip's trees, that run's) — not a
    // batch for each level of directories (4 for the client eight behind,
    // when the older trees lay among the blobs' delta families).
    for behind in [1usize, 8] {
        let have = at(&format!("main~{behind}"));
        let (handle, batches) = sparse_copy(
            &tmp.path().join(format!("fresh-{behind}")),
            &index,
            Some(&graph_path),
        );
        let db = ObjectDb::new(vec![Arc::new(handle)], Arc::new(NoLoose));
        let opened = batches.load(Ordering::SeqCst);
        let mut graph = Graph::new(&db);
        let plan =
            gitclaw_pack::walk::plan_shallow(&mut graph, &[main], &Default::default()).unwrap();
        let options = WalkOptions {
            history_complete: true,
            ..Default::default()
        };
        let outcome = enumerate(&mut graph, &[main], &[have], &plan, &options).unwrap();
        let sent: BTreeSet<ObjectId> = outcome.objects.iter().map(|o| o.id).collect();
        assert_eq!(
            sent,
            listed(&["main", &format!("^{have}")]),
            "{behind} behind"
        );
        let walked = batches.load(Ordering::SeqCst) - opened;
        assert!(walked <= 2, "{behind} behind: {walked} batches of reads");
        // Writing the thin pack reads what it sends and the client's objects
        // at the same paths (its delta bases) in one batch more at most (2,
        // for the client eight behind, when the bases were read as the
        // search's size checks reached them).
        let (pack, _) = write_fetch_pack(&db, &outcome, true);
        let written = batches.load(Ordering::SeqCst) - opened - walked;
        assert!(written <= 1, "{behind} behind: {written} batches to write");
        // And the client completes it and has main.
        let client = tmp.path().join(format!("client-{behind}.git"));
        client_at(&repo, &client, &have.to_string());
        fix_thin_and_check(&client, &pack, "main", &main.to_string());
    }
}
