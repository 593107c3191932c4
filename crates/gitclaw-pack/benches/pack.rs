//! Pack engine benchmarks: delta encoding, and the phases of pack generation
//! (count = the object walk, compress = delta search over loose objects, write =
//! streaming a pack of reused entries) on a repository generated with real git;
//! and what the API's reads cost there (a page of the log, of a path's log, a
//! compare's range and diff, its rename search, a tree listing, an
//! abbreviated id).
//!
//! `cargo bench -p gitclaw-pack` (set GITCLAW_BENCH_COMMITS to change the
//! length of history, GITCLAW_BENCH_FILES the number of files in its tree).

use std::{process::Command, sync::Arc};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gitclaw_pack::{
    delta,
    files::{diff_trees, list_tree},
    ingest::{ingest, ingest_file, IngestOptions},
    odb::{LooseSource, NoLoose, ObjectCache, ObjectDb, PackHandle},
    renames::{detect_renames, RenameLimits},
    walk::{enumerate, log, plan_shallow, range, DeepenRequest, Graph, LogRequest, WalkOptions},
    writer::{write_pack, WriteOptions},
    Kind, ObjectId, PackError,
};

fn source_like(lines: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..lines)
        .flat_map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            format!("fn item_{i}() -> u64 {{ {} }} // {}\n", x % 100_000, x % 7).into_bytes()
        })
        .collect()
}

fn bench_delta(c: &mut Criterion) {
    let base = source_like(4000, 1);
    let mut target = base.clone();
    target.splice(40_000..40_000, b"fn inserted() {}\n".iter().copied());
    target.truncate(target.len() - 5000);
    let mut group = c.benchmark_group("delta");
    group.throughput(Throughput::Bytes(target.len() as u64));
    group.bench_function("encode similar 170KiB", |b| {
        b.iter(|| delta::encode(&base, &target))
    });
    let unrelated = source_like(4000, 99);
    group.bench_function("encode unrelated 170KiB", |b| {
        b.iter(|| delta::encode(&base, &unrelated))
    });
    let d = delta::encode(&base, &target);
    group.bench_function("apply", |b| {
        b.iter(|| delta::apply(&base, &d, u64::MAX).unwrap())
    });
    group.finish();
}

struct Repo {
    dir: tempfile::TempDir,
    db: ObjectDb,
    tips: Vec<ObjectId>,
    /// `main~50`: where a client 50 commits behind stands.
    behind: ObjectId,
    /// `main~1`: a client one commit behind.
    behind_one: ObjectId,
    /// A commit far back in `behind`'s history: a ref the client lacks but whose
    /// commit it has (an old tag), which the walk must find uninteresting.
    deep: ObjectId,
    /// git's pack of the whole history, as a push of it arrives.
    pushed: std::path::PathBuf,
}

/// The objects of `pack`, ingested into `store` (made here).
fn db_of_pack(pack: &[u8], store: &std::path::Path) -> ObjectDb {
    std::fs::create_dir_all(store).unwrap();
    let empty = ObjectDb::new(vec![], Arc::new(NoLoose));
    let ingested = ingest(&mut &pack[..], store, &empty, &IngestOptions::default())
        .unwrap()
        .unwrap();
    ObjectDb::new(
        vec![Arc::new(PackHandle::open(&ingested.index_path).unwrap())],
        Arc::new(NoLoose),
    )
}

/// git's pack of every object `src`'s refs reach, as a push of it arrives.
fn pack_of_all(src: &std::path::Path) -> Vec<u8> {
    Command::new("git")
        .args(["pack-objects", "--stdout", "--revs", "--all", "-q"])
        .current_dir(src)
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
        .stdout
}

fn repo() -> Repo {
    let commits = std::env::var("GITCLAW_BENCH_COMMITS").unwrap_or_else(|_| "1000".into());
    let files = std::env::var("GITCLAW_BENCH_FILES").unwrap_or_else(|_| "300".into());
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bench/make-large-repo.sh"
    );
    assert!(Command::new("bash")
        .arg(script)
        .arg(&src)
        .arg(&commits)
        .arg(&files)
        .status()
        .unwrap()
        .success());
    let pack = pack_of_all(&src);
    let pushed = dir.path().join("pushed.pack");
    std::fs::write(&pushed, &pack).unwrap();
    let db = db_of_pack(&pack, &dir.path().join("store"));
    let rev_parse = |rev: &str| {
        let out = Command::new("git")
            .args(["rev-parse", rev])
            .current_dir(&src)
            .output()
            .unwrap()
            .stdout;
        ObjectId::from_hex(String::from_utf8(out).unwrap().trim().as_bytes()).unwrap()
    };
    let commits: usize = commits.parse().unwrap();
    Repo {
        tips: vec![rev_parse("main")],
        behind: rev_parse("main~50"),
        behind_one: rev_parse("main~1"),
        deep: rev_parse(&format!("main~{}", commits * 4 / 5)),
        pushed,
        dir,
        db,
    }
}

struct Loose(std::collections::HashMap<ObjectId, (Kind, Vec<u8>)>);

impl LooseSource for Loose {
    fn contains(&self, id: &gitclaw_pack::oid) -> bool {
        self.0.contains_key(id)
    }
    fn read(&self, id: &gitclaw_pack::oid) -> Result<Option<(Kind, Vec<u8>)>, PackError> {
        Ok(self.0.get(id).cloned())
    }
    fn list(&self) -> Vec<(ObjectId, Kind)> {
        self.0.iter().map(|(id, (k, _))| (*id, *k)).collect()
    }
}

fn bench_phases(c: &mut Criterion) {
    let r = repo();
    let objects = {
        let mut graph = Graph::new(&r.db);
        let plan = plan_shallow(&mut graph, &r.tips, &DeepenRequest::default()).unwrap();
        enumerate(&mut graph, &r.tips, &[], &plan, &WalkOptions::default())
            .unwrap()
            .objects
    };
    let mut group = c.benchmark_group("pack generation");
    group.sample_size(10);
    group.throughput(Throughput::Elements(objects.len() as u64));
    group.bench_function("count (walk)", |b| {
        b.iter(|| {
            let mut graph = Graph::new(&r.db);
            let plan = plan_shallow(&mut graph, &r.tips, &DeepenRequest::default()).unwrap();
            enumerate(&mut graph, &r.tips, &[], &plan, &WalkOptions::default()).unwrap()
        })
    });
    // The client's tree is read only where the fetched commits changed it.
    for (name, have) in [
        ("count (incremental fetch, 1 commit behind)", r.behind_one),
        ("count (incremental fetch, 50 commits behind)", r.behind),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut graph = Graph::new(&r.db);
                let plan = plan_shallow(&mut graph, &r.tips, &DeepenRequest::default()).unwrap();
                enumerate(&mut graph, &r.tips, &[have], &plan, &WalkOptions::default()).unwrap()
            })
        });
    }
    // Wants deep in the history the client has: every commit between is walked.
    let wants = [r.tips[0], r.deep];
    let deep_fetch = |db: &ObjectDb| {
        let mut graph = Graph::new(db);
        let plan = plan_shallow(&mut graph, &wants, &DeepenRequest::default()).unwrap();
        enumerate(
            &mut graph,
            &wants,
            &[r.behind],
            &plan,
            &WalkOptions::default(),
        )
        .unwrap()
    };
    group.bench_function("count (fetch wanting an old commit the client has)", |b| {
        b.iter(|| deep_fetch(&r.db))
    });
    let cached = ObjectDb::new(r.db.packs().to_vec(), Arc::new(NoLoose))
        .with_cache(Arc::new(ObjectCache::new(256 << 20)));
    deep_fetch(&cached);
    group.bench_function(
        "count (fetch wanting an old commit the client has, commits parsed before)",
        |b| b.iter(|| deep_fetch(&cached)),
    );
    // The same walk over the pack with a commit-graph of its commits, as
    // compaction writes one: nothing parsed before, nothing cached.
    let graphed = {
        let mut graph = Graph::new(&r.db);
        let commits: Vec<(ObjectId, Arc<gitclaw_pack::odb::CommitInfo>)> = objects
            .iter()
            .filter(|o| o.kind == Kind::Commit)
            .map(|o| (o.id, graph.commit_info(&o.id).unwrap()))
            .collect();
        let borrowed: Vec<_> = commits.iter().map(|(id, c)| (*id, &**c)).collect();
        let path = r.dir.path().join("pack.graph");
        assert!(
            gitclaw_pack::commit_graph::write(&borrowed, &[], &Default::default(), &path).unwrap()
        );
        let pack = PackHandle::open(r.db.packs()[0].index_path())
            .unwrap()
            .with_commit_graph(gitclaw_pack::commit_graph::CommitGraph::open(&path).unwrap());
        ObjectDb::new(vec![Arc::new(pack)], Arc::new(NoLoose))
    };
    group.bench_function(
        "count (fetch wanting an old commit the client has, commit-graph)",
        |b| b.iter(|| deep_fetch(&graphed)),
    );
    // A thin pack for a client 50 commits behind: the delta search tries the
    // client's versions of the changed files.
    let incremental = {
        let mut graph = Graph::new(&r.db);
        let plan = plan_shallow(&mut graph, &r.tips, &DeepenRequest::default()).unwrap();
        enumerate(
            &mut graph,
            &r.tips,
            &[r.behind],
            &plan,
            &WalkOptions::default(),
        )
        .unwrap()
    };
    for thin in [false, true] {
        let name = if thin {
            "write (thin fetch, 50 commits behind)"
        } else {
            "write (fetch, 50 commits behind)"
        };
        group.bench_function(name, |b| {
            b.iter_batched(
                Vec::new,
                |mut out| {
                    let options = WriteOptions {
                        thin,
                        ..WriteOptions::default()
                    };
                    write_pack(
                        &r.db,
                        &incremental.objects,
                        Some(incremental.client_has()),
                        &options,
                        &mut out,
                        &mut |_, _, _| {},
                    )
                    .unwrap()
                },
                BatchSize::LargeInput,
            )
        });
    }
    // A `--depth 1` clone of the tip, without and with the tip entries
    // compaction stores for it (the pack is git's: the tip's files that shrank
    // are deltas of older versions the clone lacks).
    let tip_tree = {
        let mut graph = Graph::new(&r.db);
        let deepen = DeepenRequest {
            depth: Some(1),
            ..Default::default()
        };
        let plan = plan_shallow(&mut graph, &r.tips, &deepen).unwrap();
        enumerate(&mut graph, &r.tips, &[], &plan, &WalkOptions::default())
            .unwrap()
            .objects
    };
    let work = r.dir.path().join("repack");
    let repacked =
        gitclaw_pack::repack::repack(&r.db, &r.tips, &r.tips, &work, &WriteOptions::default())
            .unwrap();
    let graph = repacked.commit_graph.clone().expect("a commit-graph");
    // The pack the graph was written for: a new one, or the stored one when
    // that already held exactly what the tips reach.
    let compacted = repacked.reachable.as_ref().map_or_else(
        || r.db.packs()[0].index_path().to_owned(),
        |pack| pack.index_path.clone(),
    );
    let with_tips = {
        let pack = PackHandle::open(r.db.packs()[0].index_path())
            .unwrap()
            .with_commit_graph(gitclaw_pack::commit_graph::CommitGraph::open(&graph).unwrap());
        ObjectDb::new(vec![Arc::new(pack)], Arc::new(NoLoose))
    };
    for (name, db) in [
        ("write (--depth 1 of the tip)", &r.db),
        ("write (--depth 1 of the tip, tip entries)", &with_tips),
    ] {
        group.bench_function(name, |b| {
            b.iter_batched(
                Vec::new,
                |mut out| {
                    write_pack(
                        db,
                        &tip_tree,
                        None,
                        &WriteOptions::default(),
                        &mut out,
                        &mut |_, _, _| {},
                    )
                    .unwrap()
                },
                BatchSize::LargeInput,
            )
        });
    }
    // A pack's entries in pack order, as the first request of a newly opened
    // pack builds them (every read by ranges needs where an entry ends).
    group.throughput(Throughput::Elements(u64::from(
        r.db.packs()[0].num_objects(),
    )));
    group.bench_function("pack order (first use of an opened pack)", |b| {
        b.iter_batched(
            || PackHandle::open(r.db.packs()[0].index_path()).unwrap(),
            |pack| pack.indices_in_pack_order().next(),
            BatchSize::LargeInput,
        )
    });
    // The same for a compacted pack, whose commit-graph records its order: the
    // first entry (one block of the record read), then every entry (all of
    // it, as a first shallow clone reads it) against the order sorted from
    // the same pack's index.
    let compacted_objects = PackHandle::open(&compacted).unwrap().num_objects();
    group.throughput(Throughput::Elements(u64::from(compacted_objects)));
    let with_graph = || {
        PackHandle::open(&compacted)
            .unwrap()
            .with_commit_graph(gitclaw_pack::commit_graph::CommitGraph::open(&graph).unwrap())
    };
    group.bench_function(
        "pack order (first use of an opened pack, recorded by compaction)",
        |b| {
            b.iter_batched(
                with_graph,
                |pack| pack.indices_in_pack_order().next(),
                BatchSize::LargeInput,
            )
        },
    );
    group.bench_function(
        "pack order (every entry, recorded by compaction, read in place)",
        |b| {
            b.iter_batched(
                with_graph,
                |pack| pack.indices_in_pack_order().count(),
                BatchSize::LargeInput,
            )
        },
    );
    group.bench_function("pack order (every entry, sorted from the index)", |b| {
        b.iter_batched(
            || PackHandle::open(&compacted).unwrap(),
            |pack| pack.indices_in_pack_order().count(),
            BatchSize::LargeInput,
        )
    });
    // Every id of the pack looked up, in a scattered order (each a search of
    // the index: an interpolation search from the fanout bucket).
    let pack = &r.db.packs()[0];
    let n = pack.num_objects();
    let scattered: Vec<ObjectId> = (0..n)
        .map(|i| {
            pack.oid_at((u64::from(i) * 7919 % u64::from(n)) as u32)
                .unwrap()
        })
        .collect();
    group.throughput(Throughput::Elements(u64::from(n)));
    group.bench_function("lookup (every id of the pack, scattered)", |b| {
        b.iter(|| {
            scattered
                .iter()
                .filter(|id| pack.lookup(id).unwrap().is_some())
                .count()
        })
    });
    group.throughput(Throughput::Elements(objects.len() as u64));
    // Force the per-entry path (not the whole-pack shortcut) by leaving one object out.
    let partial = &objects[..objects.len() - 1];
    group.bench_function("write (reuse entries)", |b| {
        b.iter_batched(
            || Vec::with_capacity(8 << 20),
            |mut out| {
                write_pack(
                    &r.db,
                    partial,
                    None,
                    &WriteOptions::default(),
                    &mut out,
                    &mut |_, _, _| {},
                )
                .unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    // Compress: the newest 300 blobs and trees as loose objects, delta-searched.
    let mut reader = r.db.reader();
    let mut loose = std::collections::HashMap::new();
    let mut subset = Vec::new();
    for obj in objects.iter().filter(|o| o.kind != Kind::Commit).take(300) {
        let mut buf = Vec::new();
        let kind = reader.read_existing(&obj.id, &mut buf).unwrap();
        loose.insert(obj.id, (kind, buf));
        subset.push(*obj);
    }
    let loose_db = ObjectDb::new(vec![], Arc::new(Loose(loose)));
    group.throughput(Throughput::Elements(subset.len() as u64));
    group.bench_function("compress (delta search, 300 objects)", |b| {
        b.iter_batched(
            Vec::new,
            |mut out| {
                write_pack(
                    &loose_db,
                    &subset,
                    None,
                    &WriteOptions::default(),
                    &mut out,
                    &mut |_, _, _| {},
                )
                .unwrap()
            },
            BatchSize::LargeInput,
        )
    });
    group.finish();
}

/// A push of the whole history into an empty repository: indexed, hashed,
/// every object parsed and checked (what a push's `index_pack` step does).
fn bench_ingest(c: &mut Criterion) {
    let r = repo();
    let empty = ObjectDb::new(vec![], Arc::new(NoLoose));
    let objects = r.db.packs()[0].num_objects();
    let mut group = c.benchmark_group("ingest");
    group.sample_size(10);
    group.throughput(Throughput::Elements(u64::from(objects)));
    group.bench_function("push of the whole history (a received pack file)", |b| {
        b.iter_batched(
            || tempfile::tempdir_in(r.dir.path()).unwrap(),
            |out| {
                ingest_file(&r.pushed, out.path(), &empty, &IngestOptions::default())
                    .unwrap()
                    .unwrap()
            },
            BatchSize::PerIteration,
        )
    });
    // A pack file above BIG_OBJECT_BYTES of many small objects: looked
    // through for big objects (on a second thread, beside the indexer).
    let many = tempfile::tempdir().unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bench/make-many-objects-repo.sh"
    );
    let src = many.path().join("src");
    assert!(Command::new("bash")
        .args([script, src.to_str().unwrap(), "35", "10000", "4"])
        .status()
        .unwrap()
        .success());
    let pack = pack_of_all(&src);
    assert!(pack.len() as u64 > gitclaw_pack::BIG_OBJECT_BYTES);
    let pushed = many.path().join("pushed.pack");
    std::fs::write(&pushed, &pack).unwrap();
    let count = u32::from_be_bytes(pack[8..12].try_into().unwrap());
    group.throughput(Throughput::Elements(u64::from(count)));
    group.bench_function(
        "push of 350k small objects (a pack file above 16 MiB)",
        |b| {
            b.iter_batched(
                || tempfile::tempdir_in(many.path()).unwrap(),
                |out| {
                    ingest_file(&pushed, out.path(), &empty, &IngestOptions::default())
                        .unwrap()
                        .unwrap()
                },
                BatchSize::PerIteration,
            )
        },
    );
    group.finish();
}

/// Two trees of a repository at `dir/r.git` (`refs/heads/before` and
/// `after`) that differ by renames of every kind.
struct RenamedTrees {
    _dir: tempfile::TempDir,
    db: ObjectDb,
    before: ObjectId,
    after: ObjectId,
}

/// 600 files of 40–240 lines; then 150 moved as they are, 150 moved and
/// edited under new names, 100 moved and edited to other directories
/// under their names, 100 deleted, 100 added: 700 changed paths, a
/// 350 × 350 pairwise step. With GITCLAW_BENCH_KEEP_RENAMES=DIR the
/// repository is copied to DIR, where `git diff -M --raw before after` does
/// the same search.
fn renamed_trees() -> RenamedTrees {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("r.git");
    let git = |args: &[&str], input: &[u8]| {
        let mut child = Command::new("git")
            .args(args)
            .current_dir(&repo)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        out.stdout
    };
    std::fs::create_dir_all(&repo).unwrap();
    git(&["init", "-q", "--bare"], b"");
    let content = |i: usize| source_like(40 + i % 200, i as u64);
    let mut stream = Vec::new();
    let file = |stream: &mut Vec<u8>, path: &str, data: &[u8]| {
        write!(stream, "M 100644 inline {path}\ndata {}\n", data.len()).unwrap();
        stream.extend_from_slice(data);
        stream.push(b'\n');
    };
    stream.extend_from_slice(
        b"commit refs/heads/before\ncommitter C <c@example.com> 1700000000 +0000\ndata 0\n",
    );
    for i in 0..600 {
        file(&mut stream, &format!("d{}/f{i}.rs", i % 10), &content(i));
    }
    stream.extend_from_slice(b"commit refs/heads/after\ncommitter C <c@example.com> 1700000000 +0000\ndata 0\ndeleteall\n");
    for i in 0..600 {
        let edited = || {
            let mut data = content(i);
            data.extend_from_slice(format!("// edited {i}\n").as_bytes());
            data
        };
        match i {
            0..150 => file(&mut stream, &format!("moved/f{i}.rs"), &content(i)),
            150..300 => file(&mut stream, &format!("renamed/g{i}.rs"), &edited()),
            300..400 => file(&mut stream, &format!("other/f{i}.rs"), &edited()),
            400..500 => {}
            _ => file(&mut stream, &format!("d{}/f{i}.rs", i % 10), &content(i)),
        }
    }
    for i in 0..100 {
        file(&mut stream, &format!("new/n{i}.rs"), &content(10_000 + i));
    }
    git(&["fast-import", "--quiet"], &stream);
    let pack = pack_of_all(&repo);
    let db = db_of_pack(&pack, &dir.path().join("store"));
    let tree = |rev: &str| {
        let out = git(&["rev-parse", &format!("{rev}^{{tree}}")], b"");
        ObjectId::from_hex(String::from_utf8(out).unwrap().trim().as_bytes()).unwrap()
    };
    let (before, after) = (tree("before"), tree("after"));
    if let Ok(keep) = std::env::var("GITCLAW_BENCH_KEEP_RENAMES") {
        let _ = Command::new("cp")
            .args(["-r"])
            .arg(&repo)
            .arg(keep)
            .status();
    }
    RenamedTrees {
        _dir: dir,
        db,
        before,
        after,
    }
}

/// The API's reads, each as one request makes it (a graph of its own).
fn bench_api(c: &mut Criterion) {
    let r = repo();
    let (main, behind) = (r.tips[0], r.behind);
    let tree_of = |commit: &ObjectId| Graph::new(&r.db).commit_info(commit).unwrap().tree;
    let (main_tree, behind_tree) = (tree_of(&main), tree_of(&behind));
    let mut group = c.benchmark_group("api");
    let page = |path: Option<&'static [u8]>| LogRequest {
        path,
        skip: 0,
        limit: 50,
        max_walked: 100_000,
    };
    group.bench_function("log page of 50", |b| {
        b.iter(|| log(&mut Graph::new(&r.db), main, &page(None)).unwrap())
    });
    group.bench_function("log page of 50 of a directory", |b| {
        b.iter(|| log(&mut Graph::new(&r.db), main, &page(Some(b"src/alpha"))).unwrap())
    });
    group.bench_function("range main~50..main", |b| {
        b.iter(|| range(&mut Graph::new(&r.db), main, behind, 100_000).unwrap())
    });
    group.bench_function("diff main~50 main", |b| {
        b.iter(|| diff_trees(&mut r.db.reader(), behind_tree, main_tree, 3000).unwrap())
    });
    group.bench_function("ls-tree -r main", |b| {
        b.iter(|| list_tree(&mut r.db.reader(), main_tree, b"", true, 100_000).unwrap())
    });
    let moves = renamed_trees();
    group.bench_function("renames among 700 changed files", |b| {
        b.iter(|| {
            let mut reader = moves.db.reader();
            let diff = diff_trees(&mut reader, moves.before, moves.after, 100_000).unwrap();
            detect_renames(
                &moves.db,
                &mut reader,
                diff.changes,
                &RenameLimits::default(),
            )
            .unwrap()
        })
    });
    let prefix = gix_hash::Prefix::from_hex(&main.to_string()[..7]).unwrap();
    group.bench_function("abbreviated id", |b| {
        b.iter(|| r.db.ids_with_prefix(&prefix, 256).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench_delta, bench_phases, bench_ingest, bench_api);
criterion_main!(benches);
