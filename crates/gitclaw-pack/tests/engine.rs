//! The pack engine against real git: packs made by `git pack-objects` are ingested,
//! and packs we write are checked by `git index-pack --strict`.

mod common;

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
    process::Command,
    sync::Arc,
};

use common::{client_at, fix_thin_and_check, git, git_stdin, new_repo, write_fetch_pack};
use gitclaw_pack::{
    files::diff_trees,
    ingest::{ingest, IngestOptions},
    odb::{NoLoose, ObjectDb, PackHandle},
    renames::{detect_renames, Detection, RenameLimits},
    walk::{enumerate, plan_shallow, DeepenRequest, Graph, WalkObject, WalkOptions},
    writer::Leave,
    writer::{write_pack, Phase, WriteOptions},
    ObjectId, PackError,
};

/// A repository with a few commits on two branches, a merge, a tag, and a file that changes a lot (for deltas).
fn make_repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    let big: String = (0..2000)
        .map(|i| format!("line {i} of a long file\n"))
        .collect();
    for i in 0..6 {
        std::fs::write(dir.join("big.txt"), format!("{big}change {i}\n")).unwrap();
        std::fs::write(dir.join(format!("f{i}.txt")), format!("file {i}\n")).unwrap();
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", &format!("commit {i}")]);
    }
    git(dir, &["checkout", "-q", "-b", "side", "HEAD~2"]);
    std::fs::write(dir.join("side.txt"), "side\n").unwrap();
    git(dir, &["add", "-A"]);
    git(dir, &["commit", "-q", "-m", "side"]);
    git(dir, &["checkout", "-q", "main"]);
    git(dir, &["merge", "-q", "--no-edit", "side"]);
    git(dir, &["tag", "-a", "-m", "v1", "v1", "HEAD~1"]);
}

fn pack_of(dir: &Path, revs: &str, thin: bool) -> Vec<u8> {
    let mut args = vec!["pack-objects", "--stdout", "--revs", "-q"];
    if thin {
        args.push("--thin");
    }
    let input = if revs == "--all\n" {
        args.push("--all");
        ""
    } else {
        revs
    };
    let (ok, out, err) = git_stdin(dir, &args, input.as_bytes());
    assert!(ok, "pack-objects: {err}");
    out
}

fn oid(s: &str) -> ObjectId {
    ObjectId::from_hex(s.trim().as_bytes()).expect("oid")
}

fn rev_list_objects(dir: &Path, args: &[&str]) -> BTreeSet<String> {
    let mut full = vec!["rev-list", "--objects"];
    full.extend_from_slice(args);
    git(dir, &full)
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

fn ingest_bytes(
    pack: &[u8],
    work: &Path,
    db: &ObjectDb,
) -> Result<Option<gitclaw_pack::ingest::IngestedPack>, PackError> {
    let mut input = std::io::BufReader::new(pack);
    ingest(&mut input, work, db, &IngestOptions::default())
}

fn empty_db() -> ObjectDb {
    ObjectDb::new(Vec::new(), Arc::new(NoLoose))
}

/// Index a pack with `git index-pack --strict` and list its objects. `objects_from`
/// is a repository whose objects stand for what the client already has, so that
/// connectivity checks of partial packs can pass.
fn index_with_git(pack: &[u8], scratch: &Path, objects_from: Option<&Path>) -> BTreeSet<String> {
    let repo = tempfile::tempdir_in(scratch).unwrap().keep();
    git(&repo, &["init", "-q", "--bare"]);
    if let Some(src) = objects_from {
        std::fs::write(
            repo.join("objects/info/alternates"),
            format!("{}\n", src.join(".git/objects").display()),
        )
        .unwrap();
    }
    let (ok, _, err) = git_stdin(
        &repo,
        &["index-pack", "--strict", "--stdin", "-o", "out.idx"],
        pack,
    );
    assert!(ok, "git index-pack rejected our pack: {err}");
    let idx = std::fs::read(repo.join("out.idx")).unwrap();
    let (ok, out, err) = git_stdin(&repo, &["show-index"], &idx);
    assert!(ok, "{err}");
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect()
}

/// Every object of `repo` as one pack git writes, ingested into `store`.
fn stored_as_packed(repo: &Path, store: &Path) -> ObjectDb {
    std::fs::create_dir_all(store).unwrap();
    let pack = pack_of(repo, "--all\n", false);
    let ingested = ingest_bytes(&pack, store, &empty_db()).unwrap().unwrap();
    ObjectDb::new(
        vec![Arc::new(PackHandle::open(&ingested.index_path).unwrap())],
        Arc::new(NoLoose),
    )
}

struct Fixture {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    scratch: PathBuf,
    db: ObjectDb,
}

fn fixture() -> Fixture {
    fixture_of(make_repo)
}

/// A repository made by `make`, packed by git and ingested.
fn fixture_of(make: impl FnOnce(&Path)) -> Fixture {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("src");
    std::fs::create_dir_all(&repo).unwrap();
    make(&repo);
    let scratch = tmp.path().join("scratch");
    std::fs::create_dir_all(&scratch).unwrap();
    let store = tmp.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let pack = pack_of(&repo, "--all\n", false);
    let ingested = ingest_bytes(&pack, &store, &empty_db())
        .unwrap()
        .expect("non-empty pack");
    let all = rev_list_objects(&repo, &["--all"]);
    let got: BTreeSet<String> = ingested.objects.iter().map(|o| o.id.to_string()).collect();
    assert_eq!(got, all, "ingest lists every object of the pack");
    // Not listed when not asked (a compaction), but counted and all there.
    let unlisted = tmp.path().join("unlisted");
    std::fs::create_dir_all(&unlisted).unwrap();
    let options = IngestOptions {
        list_objects: false,
        ..IngestOptions::default()
    };
    let quiet = ingest(
        &mut std::io::BufReader::new(&pack[..]),
        &unlisted,
        &empty_db(),
        &options,
    )
    .unwrap()
    .expect("non-empty pack");
    assert!(quiet.objects.is_empty());
    assert_eq!(quiet.object_count(), all.len());
    let ids: BTreeSet<String> = quiet
        .ids()
        .unwrap()
        .iter()
        .map(|id| id.to_string())
        .collect();
    assert_eq!(ids, all);
    let db = ObjectDb::new(
        vec![Arc::new(PackHandle::open(&ingested.index_path).unwrap())],
        Arc::new(NoLoose),
    );
    Fixture {
        _tmp: tmp,
        repo,
        scratch,
        db,
    }
}

fn write_for(
    db: &ObjectDb,
    wants: &[ObjectId],
    haves: &[ObjectId],
    deepen: &DeepenRequest,
) -> (Vec<u8>, Vec<ObjectId>, gitclaw_pack::writer::WriteStats) {
    let mut graph = Graph::new(db);
    let plan = plan_shallow(&mut graph, wants, deepen).unwrap();
    let outcome = enumerate(&mut graph, wants, haves, &plan, &WalkOptions::default()).unwrap();
    let mut out = Vec::new();
    let stats = write_pack(
        db,
        &outcome.objects,
        None,
        &WriteOptions::default(),
        &mut out,
        &mut |_, _, _| {},
    )
    .unwrap();
    (out, plan.shallow, stats)
}

#[test]
fn full_clone_pack_holds_exactly_the_reachable_objects() {
    let f = fixture();
    let head = oid(&git(&f.repo, &["rev-parse", "main"]));
    let (pack, shallow, _) = write_for(&f.db, &[head], &[], &DeepenRequest::default());
    assert!(shallow.is_empty());
    let got = index_with_git(&pack, &f.scratch, None);
    assert_eq!(got, rev_list_objects(&f.repo, &["main"]));
}

#[test]
fn a_written_pack_reports_the_largest_object_it_holds_whole_as_git_reads_it() {
    let f = fixture();
    let head = oid(&git(&f.repo, &["rev-parse", "main"]));
    let (pack, _, stats) = write_for(&f.db, &[head], &[], &DeepenRequest::default());
    let repo = tempfile::tempdir_in(&f.scratch).unwrap().keep();
    git(&repo, &["init", "-q", "--bare"]);
    std::fs::write(repo.join("p.pack"), &pack).unwrap();
    git(&repo, &["index-pack", "p.pack"]);
    // `verify-pack -v`: id, type, size, size in pack, offset, and for a delta
    // its depth and base.
    let listing = git(&repo, &["verify-pack", "-v", "p.idx"]);
    let whole: Vec<u64> = listing
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.len() == 5 && fields[0].len() == 40)
        .map(|fields| fields[2].parse().unwrap())
        .collect();
    let deltas = listing
        .lines()
        .filter(|line| line.split_whitespace().count() == 7)
        .count();
    assert!(
        deltas > 0,
        "the fixture's pack holds deltas too:\n{listing}"
    );
    // Whole objects of a few bytes and of the long file's tens of KB.
    assert!(whole.iter().max().unwrap() > &40_000, "{whole:?}");
    assert_eq!(stats.largest_whole, whole.iter().max().copied());
}

#[test]
fn incremental_pack_excludes_what_the_client_has() {
    let f = fixture();
    let head = oid(&git(&f.repo, &["rev-parse", "main"]));
    let old = oid(&git(&f.repo, &["rev-parse", "main~3"]));
    let (pack, _, _) = write_for(&f.db, &[head], &[old], &DeepenRequest::default());
    let all_new = rev_list_objects(&f.repo, &["main"]);
    let have = rev_list_objects(&f.repo, &["main~3"]);
    let expected: BTreeSet<String> = all_new.difference(&have).cloned().collect();
    // The client's pack must resolve on its own: index it against the full repo's objects.
    let got = index_with_git(&pack, &f.scratch, Some(&f.repo));
    assert_eq!(got, expected);
}

#[test]
fn annotated_tag_want_sends_the_tag_and_its_history() {
    let f = fixture();
    let tag = oid(&git(&f.repo, &["rev-parse", "v1"]));
    let (pack, _, _) = write_for(&f.db, &[tag], &[], &DeepenRequest::default());
    let got = index_with_git(&pack, &f.scratch, None);
    let mut expected = rev_list_objects(&f.repo, &["v1^{commit}"]);
    expected.insert(tag.to_string());
    assert_eq!(got, expected);
}

#[test]
fn depth_one_sends_only_the_tip_and_marks_it_shallow() {
    let f = fixture();
    let head = oid(&git(&f.repo, &["rev-parse", "main"]));
    let deepen = DeepenRequest {
        depth: Some(1),
        ..Default::default()
    };
    let (pack, shallow, _) = write_for(&f.db, &[head], &[], &deepen);
    assert_eq!(shallow, vec![head]);
    let got = index_with_git(&pack, &f.scratch, Some(&f.repo));
    let mut expected = rev_list_objects(&f.repo, &["--no-walk", "main"]);
    expected.extend(rev_list_objects(&f.repo, &["main^{tree}"]));
    assert_eq!(got, expected);
}

#[test]
fn ingest_names_the_roots_of_a_pack_that_holds_everything_its_objects_name() {
    let f = fixture();
    let ids =
        |roots: &[ObjectId]| -> BTreeSet<String> { roots.iter().map(|r| r.to_string()).collect() };
    // Every ref: the roots are the tips no other tip reaches.
    let tips: Vec<String> = git(&f.repo, &["for-each-ref", "--format=%(objectname)"])
        .lines()
        .map(str::to_string)
        .collect();
    let expected: BTreeSet<String> = tips
        .iter()
        .filter(|t| {
            !tips
                .iter()
                .filter(|other| other != t)
                .any(|other| rev_list_objects(&f.repo, &[other]).contains(*t))
        })
        .cloned()
        .collect();
    let main = git(&f.repo, &["rev-parse", "main"]).trim().to_string();
    assert!(
        expected.contains(&main) && expected.len() < tips.len(),
        "{expected:?}"
    );
    let store = f.scratch.join("roots");
    std::fs::create_dir_all(&store).unwrap();
    let all = ingest_bytes(&pack_of(&f.repo, "--all\n", false), &store, &empty_db())
        .unwrap()
        .unwrap();
    assert_eq!(ids(all.roots.as_deref().expect("closed")), expected);

    // A blob nothing names, beside main: a root of its own.
    let stray = git_stdin(&f.repo, &["hash-object", "-w", "--stdin"], b"stray\n");
    let stray = String::from_utf8(stray.1).unwrap().trim().to_string();
    let pack = pack_of(&f.repo, &format!("main\n{stray}\n"), false);
    let with_stray = ingest_bytes(&pack, &store, &empty_db()).unwrap().unwrap();
    assert_eq!(
        ids(with_stray.roots.as_deref().expect("closed")),
        BTreeSet::from([main, stray])
    );

    // A thin pack names objects outside it: no roots.
    let thin = pack_of(&f.repo, "main\n^main~1\n", true);
    let thin = ingest_bytes(&thin, &store, &f.db).unwrap().unwrap();
    assert!(thin.roots.is_none());
}

#[test]
fn thin_pack_is_completed_and_connected() {
    let f = fixture();
    let store = f.scratch.join("thin");
    std::fs::create_dir_all(&store).unwrap();
    // A new commit on top of main, sent as a thin pack against main.
    std::fs::write(f.repo.join("big.txt"), "rewritten\n".repeat(3000)).unwrap();
    git(&f.repo, &["commit", "-q", "-am", "more"]);
    let thin = pack_of(&f.repo, "main\n^main~1\n", true);
    let ingested = ingest_bytes(&thin, &store, &f.db)
        .unwrap()
        .expect("objects");
    let new: BTreeSet<String> = ingested.new_objects().map(|o| o.id.to_string()).collect();
    let expected: BTreeSet<String> = rev_list_objects(&f.repo, &["main", "--not", "main~1"]);
    assert_eq!(new, expected);
    // The stored pack resolves on its own (every delta base is inside it).
    let bytes = std::fs::read(&ingested.pack_path).unwrap();
    let repo = tempfile::tempdir_in(&f.scratch).unwrap();
    git(repo.path(), &["init", "-q", "--bare"]);
    let (ok, _, err) = git_stdin(
        repo.path(),
        &["index-pack", "--stdin", "-o", "out.idx"],
        &bytes,
    );
    assert!(ok, "stored pack does not stand alone: {err}");
}

/// A pack whose deltas name their in-pack bases by offset is indexed and
/// verified in one traversal of its deltas; one naming them by id (git's
/// `pack-objects` without `--delta-base-offset`), the two-pass way. Both
/// must come to what git makes of the same objects: its index of the stored
/// pack byte for byte, every object listed as git lists it, and the same
/// roots — for a whole history and for a thin pack.
#[test]
fn packs_with_offset_deltas_and_with_id_deltas_are_ingested_alike() {
    let f = fixture();
    std::fs::write(f.repo.join("big.txt"), "rewritten\n".repeat(3000)).unwrap();
    git(&f.repo, &["commit", "-q", "-am", "more"]);
    for (revs, thin) in [("--all\n", false), ("main\n^main~1\n", true)] {
        let mut ways = Vec::new();
        for by_offset in [true, false] {
            let mut args = vec!["pack-objects", "--stdout", "--revs", "-q"];
            args.extend(thin.then_some("--thin"));
            args.extend(by_offset.then_some("--delta-base-offset"));
            args.extend((revs == "--all\n").then_some("--all"));
            let input = if thin { revs } else { "" };
            let (ok, pack, err) = git_stdin(&f.repo, &args, input.as_bytes());
            assert!(ok, "pack-objects: {err}");
            let store = f.scratch.join(format!("alike-{thin}-{by_offset}"));
            std::fs::create_dir_all(&store).unwrap();
            let db = if thin { &f.db } else { &empty_db() };
            let ingested = ingest_bytes(&pack, &store, db).unwrap().expect("objects");
            // git's index of the pack as stored: ours, byte for byte.
            let check = tempfile::tempdir_in(&f.scratch).unwrap();
            git(check.path(), &["init", "-q", "--bare"]);
            std::fs::copy(&ingested.pack_path, check.path().join("git.pack")).unwrap();
            // A thin pack, completed, still names the client's history: its
            // connectivity is not the pack's alone.
            let mut args = vec!["index-pack"];
            args.extend((!thin).then_some("--strict"));
            args.push("git.pack");
            let (ok, _, err) = git_stdin(check.path(), &args, b"");
            assert!(
                ok,
                "thin {thin}, by offset {by_offset}: git refuses the pack: {err}"
            );
            assert!(
                std::fs::read(check.path().join("git.idx")).unwrap()
                    == std::fs::read(&ingested.index_path).unwrap(),
                "thin {thin}, by offset {by_offset}: the index differs from git's"
            );
            for file in ["git.pack", "git.idx"] {
                let to = check.path().join("objects/pack").join(file);
                std::fs::rename(check.path().join(file), to).unwrap();
            }
            let listing = git(
                check.path(),
                &[
                    "cat-file",
                    "--batch-all-objects",
                    "--batch-check=%(objectname) %(objecttype) %(objectsize)",
                ],
            );
            let gits: BTreeSet<(String, String, u64)> = listing
                .lines()
                .map(|line| {
                    let fields: Vec<&str> = line.split(' ').collect();
                    (
                        fields[0].into(),
                        fields[1].into(),
                        fields[2].parse().unwrap(),
                    )
                })
                .collect();
            let ours: BTreeSet<(String, String, u64)> = ingested
                .objects
                .iter()
                .map(|o| (o.id.to_string(), o.kind.to_string(), o.size))
                .collect();
            assert_eq!(ours, gits, "thin {thin}, by offset {by_offset}");
            let new: BTreeSet<String> = ingested.new_objects().map(|o| o.id.to_string()).collect();
            let roots = ingested.roots.clone();
            ways.push((new, roots));
        }
        assert_eq!(ways[0], ways[1], "thin {thin}: the two ways differ");
        let expected = match thin {
            true => rev_list_objects(&f.repo, &["main", "--not", "main~1"]),
            false => rev_list_objects(&f.repo, &["--all"]),
        };
        assert_eq!(ways[0].0, expected, "thin {thin}");
    }
}

#[test]
fn truncated_pack_is_refused() {
    let f = fixture();
    let pack = pack_of(&f.repo, "--all\n", false);
    let store = f.scratch.join("trunc");
    std::fs::create_dir_all(&store).unwrap();
    let err = ingest_bytes(&pack[..pack.len() / 2], &store, &empty_db())
        .err()
        .expect("error");
    assert!(err.is_client_error(), "{err}");
    let mut corrupt = pack.clone();
    let n = corrupt.len();
    corrupt[n / 2] ^= 0xff;
    let err = ingest_bytes(&corrupt, &store, &empty_db())
        .err()
        .expect("error");
    assert!(err.is_client_error(), "{err}");
}

#[test]
fn pack_missing_history_is_refused() {
    let f = fixture();
    let store = f.scratch.join("missing");
    std::fs::create_dir_all(&store).unwrap();
    // Only the newest commit's objects, into an empty repository: its parent is missing.
    let pack = pack_of(&f.repo, "main\n^main~1\n", false);
    let err = ingest_bytes(&pack, &store, &empty_db())
        .err()
        .expect("error");
    assert!(matches!(err, PackError::MissingObject(_)), "{err}");
}

/// Loose objects held in memory, as a repository that only ever got small pushes.
struct MemLoose(std::collections::HashMap<ObjectId, (gitclaw_pack::Kind, Vec<u8>)>);

impl gitclaw_pack::odb::LooseSource for MemLoose {
    fn contains(&self, id: &gitclaw_pack::oid) -> bool {
        self.0.contains_key(id)
    }
    fn read(
        &self,
        id: &gitclaw_pack::oid,
    ) -> Result<Option<(gitclaw_pack::Kind, Vec<u8>)>, PackError> {
        Ok(self.0.get(id).cloned())
    }
    fn list(&self) -> Vec<(ObjectId, gitclaw_pack::Kind)> {
        self.0.iter().map(|(id, (kind, _))| (*id, *kind)).collect()
    }
}

#[test]
fn loose_objects_are_delta_compressed_and_git_accepts_the_pack() {
    let f = fixture();
    // Every object of the repository, but loose: nothing to reuse.
    let mut loose = std::collections::HashMap::new();
    let mut reader = f.db.reader();
    let mut buf = Vec::new();
    for id in f.db.packs()[0].oids().unwrap() {
        let kind = reader.read_existing(&id, &mut buf).unwrap();
        loose.insert(id, (kind, buf.clone()));
    }
    let raw_size: usize = loose.values().map(|(_, d)| d.len()).sum();
    let db = ObjectDb::new(Vec::new(), Arc::new(MemLoose(loose)));
    let head = oid(&git(&f.repo, &["rev-parse", "main"]));
    let mut graph = Graph::new(&db);
    let plan = plan_shallow(&mut graph, &[head], &DeepenRequest::default()).unwrap();
    let outcome = enumerate(&mut graph, &[head], &[], &plan, &WalkOptions::default()).unwrap();
    // Also with the search split over two threads, however few the objects.
    for (ofs_delta, threads, label) in [(true, 1, "ofs"), (false, 1, "ref"), (true, 2, "parallel")]
    {
        let mut pack = Vec::new();
        let options = WriteOptions {
            ofs_delta,
            threads,
            objects_per_thread: 1,
            ..WriteOptions::default()
        };
        let mut heard = Vec::new();
        let stats = write_pack(
            &db,
            &outcome.objects,
            None,
            &options,
            &mut pack,
            &mut |phase, done, total| heard.push((phase, done, total)),
        )
        .unwrap();
        // The search reports on every blob and tree (all loose here), from 0 to all
        // of them, before the first entry is written; then the writing runs to the end.
        let searched = outcome
            .objects
            .iter()
            .filter(|o| matches!(o.kind, gitclaw_pack::Kind::Blob | gitclaw_pack::Kind::Tree))
            .count() as u32;
        let compressing: Vec<_> = heard
            .iter()
            .take_while(|(phase, _, _)| *phase == Phase::Compressing)
            .collect();
        assert_eq!(
            compressing.first(),
            Some(&&(Phase::Compressing, 0, searched)),
            "{label}"
        );
        assert_eq!(
            compressing.last(),
            Some(&&(Phase::Compressing, searched, searched)),
            "{label}"
        );
        assert!(
            compressing.windows(2).all(|w| w[0].1 <= w[1].1),
            "{label}: {heard:?}"
        );
        let all = outcome.objects.len() as u32;
        assert!(
            heard[compressing.len()..]
                .iter()
                .all(|(phase, _, total)| *phase == Phase::Writing && *total == all),
            "{label}"
        );
        assert_eq!(heard.last(), Some(&(Phase::Writing, all, all)), "{label}");
        assert!(
            stats.new_deltas > 5,
            "{label}: the versions of big.txt delta against each other: {stats:?}"
        );
        assert!(
            pack.len() < raw_size / 4,
            "{label}: pack of {} bytes for {raw_size} bytes of objects",
            pack.len()
        );
        let got = index_with_git(&pack, &f.scratch, None);
        assert_eq!(got, rev_list_objects(&f.repo, &["main"]), "{label}");
    }
}

#[test]
fn every_delta_of_a_written_pack_follows_its_base() {
    // Two versions of one file stored whole, the smaller first. The search
    // (by size, larger first) makes the smaller a delta of the larger, which
    // comes later in the stored order: it must go out ahead of its delta, not
    // be named by id further on.
    let (_tmp, repo) = new_repo();
    let small: String = (0..40).map(|i| format!("line {i} of the file\n")).collect();
    let large = small.clone() + &(40..400).map(|i| format!("line {i}\n")).collect::<String>();
    let mut objects = Vec::new();
    for text in [&small, &large] {
        let (ok, out, _) = git_stdin(&repo, &["hash-object", "-w", "--stdin"], text.as_bytes());
        assert!(ok);
        let mut object = WalkObject::new(
            oid(String::from_utf8(out).unwrap().trim()),
            gitclaw_pack::Kind::Blob,
        );
        object.name_hash = gitclaw_pack::walk::name_hash(b"file.txt");
        objects.push(object);
    }
    // And one object not written: the stored pack is not sent as it is.
    let (_, other, _) = git_stdin(&repo, &["hash-object", "-w", "--stdin"], b"another file\n");
    let listed: String = objects
        .iter()
        .map(|o| format!("{}\n", o.id))
        .collect::<String>()
        + &String::from_utf8(other).unwrap();
    let stored_dir = repo.join("stored");
    std::fs::create_dir_all(&stored_dir).unwrap();
    let (ok, out, err) = git_stdin(
        &repo,
        &["pack-objects", "-q", "--window=0", "stored/pack"],
        listed.as_bytes(),
    );
    assert!(ok, "{err}");
    let index = stored_dir.join(format!(
        "pack-{}.idx",
        String::from_utf8(out).unwrap().trim()
    ));
    let stored = Arc::new(PackHandle::open(&index).unwrap());
    let offset_of = |pack: &PackHandle, id: &ObjectId| {
        pack.offset_at(pack.lookup(id).unwrap().expect("in the pack"))
    };
    assert!(
        offset_of(&stored, &objects[0].id) < offset_of(&stored, &objects[1].id),
        "git stored the smaller version first"
    );
    let db = ObjectDb::new(vec![stored], Arc::new(NoLoose));
    for ofs_delta in [true, false] {
        let mut pack = Vec::new();
        let options = WriteOptions {
            ofs_delta,
            search_whole: true,
            ..WriteOptions::default()
        };
        let stats =
            write_pack(&db, &objects, None, &options, &mut pack, &mut |_, _, _| {}).unwrap();
        assert_eq!(
            stats.new_deltas, 1,
            "the smaller version is a delta of the larger: {stats:?}"
        );
        // Stored where both objects already are (as compaction stores a pack):
        // no delta names an object the reader has not met yet, which it would
        // take for a thin pack's outside base and add a second time.
        let work = repo.join(format!("ofs-{ofs_delta}"));
        std::fs::create_dir_all(&work).unwrap();
        let received = work.join("received.pack");
        std::fs::write(&received, &pack).unwrap();
        let written =
            gitclaw_pack::ingest::ingest_file(&received, &work, &db, &IngestOptions::default())
                .unwrap()
                .expect("a pack of two objects");
        assert_eq!(written.pack.num_objects(), 2, "ofs_delta {ofs_delta}");
        assert!(
            offset_of(&written.pack, &objects[1].id) < offset_of(&written.pack, &objects[0].id),
            "ofs_delta {ofs_delta}: the base goes out first"
        );
    }
}

/// Commit `big` as big.txt's new version and store it as a thin push does:
/// the stored pack holds it as a delta against the previous version. The
/// commits before and after, and the repository with both packs.
fn push_new_big_txt(f: &Fixture, big: &str) -> (ObjectId, ObjectId, ObjectDb) {
    let store = f.scratch.join("thin-store");
    std::fs::create_dir_all(&store).unwrap();
    let old = oid(&git(&f.repo, &["rev-parse", "main"]));
    std::fs::write(f.repo.join("big.txt"), big).unwrap();
    git(&f.repo, &["commit", "-q", "-am", "a new big.txt"]);
    let new = oid(&git(&f.repo, &["rev-parse", "main"]));
    let thin = pack_of(&f.repo, &format!("{new}\n^{old}\n"), true);
    let ingested = ingest_bytes(&thin, &store, &f.db).unwrap().unwrap();
    let mut packs = f.db.packs().to_vec();
    packs.push(Arc::new(PackHandle::open(&ingested.index_path).unwrap()));
    (old, new, ObjectDb::new(packs, Arc::new(NoLoose)))
}

#[test]
fn thin_fetch_reuses_deltas_against_what_the_client_has() {
    let f = fixture();
    // A new version of big.txt, stored as a delta against the previous
    // version, which a client at main~0 already has.
    let mut big = std::fs::read_to_string(f.repo.join("big.txt")).unwrap();
    big.push_str("one more line\n");
    let (old, new, db) = push_new_big_txt(&f, &big);

    let mut graph = Graph::new(&db);
    let plan = plan_shallow(&mut graph, &[new], &DeepenRequest::default()).unwrap();
    let outcome = enumerate(&mut graph, &[new], &[old], &plan, &WalkOptions::default()).unwrap();
    let (fat, _) = write_fetch_pack(&db, &outcome, false);
    let (thin_pack, stats) = write_fetch_pack(&db, &outcome, true);
    assert!(stats.reused_deltas >= 1, "{stats:?}");
    assert!(
        thin_pack.len() * 4 < fat.len(),
        "thin {} vs full {}",
        thin_pack.len(),
        fat.len()
    );
    // The client completes it with the objects it has.
    let got = complete_thin_pack(&f, &thin_pack);
    let expected: BTreeSet<String> = rev_list_objects(&f.repo, &["main", "--not", "main~1"]);
    assert!(expected.is_subset(&got), "every new object arrives");
}

#[test]
fn a_partial_clones_thin_pack_leans_on_no_object_its_filter_left_out() {
    let f = fixture();
    // big.txt shrinks below the client's `blob:limit`: its old version is
    // above it, so the client never got it, and the stored pack holds the
    // new version as a delta against that old one.
    let old_size = std::fs::metadata(f.repo.join("big.txt")).unwrap().len();
    let shrunk: String = (0..1500)
        .map(|i| format!("line {i} of a long file\n"))
        .collect();
    let (old, new, db) = push_new_big_txt(&f, &shrunk);

    let limit = (shrunk.len() as u64 + old_size) / 2;
    let mut graph = Graph::new(&db);
    let plan = plan_shallow(&mut graph, &[new], &DeepenRequest::default()).unwrap();
    let unfiltered = enumerate(&mut graph, &[new], &[old], &plan, &WalkOptions::default()).unwrap();
    let (_, stats) = write_fetch_pack(&db, &unfiltered, true);
    assert!(
        stats.reused_deltas >= 1,
        "without a filter the stored delta goes out: {stats:?}"
    );
    let options = WalkOptions {
        filter: Some(gitclaw_pack::walk::Filter::BlobLimit(limit)),
        ..WalkOptions::default()
    };
    let outcome = enumerate(&mut graph, &[new], &[old], &plan, &options).unwrap();
    let (thin_pack, _) = write_fetch_pack(&db, &outcome, true);

    // The client: the old history as a `blob:limit` clone holds it, and no
    // promisor to fetch a missing base from.
    let client = tempfile::tempdir_in(&f.scratch).unwrap();
    git(client.path(), &["init", "-q", "--bare"]);
    let listed = git(
        &f.repo,
        &[
            "rev-list",
            "--objects",
            &format!("--filter=blob:limit={limit}"),
            &old.to_string(),
        ],
    );
    let ids: String = listed.lines().map(|l| format!("{}\n", &l[..40])).collect();
    let (ok, own, err) = git_stdin(&f.repo, &["pack-objects", "--stdout", "-q"], ids.as_bytes());
    assert!(ok, "{err}");
    let (ok, _, err) = git_stdin(
        client.path(),
        &["index-pack", "--stdin", "-o", "own.idx"],
        &own,
    );
    assert!(ok, "{err}");
    std::fs::rename(
        client.path().join("own.idx"),
        client.path().join("objects/pack/pack-own.idx"),
    )
    .unwrap();
    std::fs::write(client.path().join("objects/pack/pack-own.pack"), &own).unwrap();
    let (ok, err) = fix_thin(client.path(), &thin_pack);
    assert!(ok, "the client resolves the pack with what it holds: {err}");
}

/// `git index-pack --strict --fix-thin` of `thin_pack` in the repository
/// `repo` (into `t.idx` there): whether it took it, and what it said.
fn fix_thin(repo: &Path, thin_pack: &[u8]) -> (bool, String) {
    let args = [
        "index-pack",
        "--strict",
        "--stdin",
        "--fix-thin",
        "-o",
        "t.idx",
    ];
    let (ok, _, err) = git_stdin(repo, &args, thin_pack);
    (ok, err)
}

/// The objects of a thin pack once `git index-pack --fix-thin` completed it from
/// the fixture repository's objects (what the client has), which it must accept.
fn complete_thin_pack(f: &Fixture, thin_pack: &[u8]) -> BTreeSet<String> {
    let repo = tempfile::tempdir_in(&f.scratch).unwrap();
    git(repo.path(), &["init", "-q", "--bare"]);
    std::fs::write(
        repo.path().join("objects/info/alternates"),
        format!("{}\n", f.repo.join(".git/objects").display()),
    )
    .unwrap();
    let (ok, err) = fix_thin(repo.path(), thin_pack);
    assert!(ok, "{err}");
    let (ok, listing, _) = git_stdin(
        repo.path(),
        &["show-index"],
        &std::fs::read(repo.path().join("t.idx")).unwrap(),
    );
    assert!(ok);
    String::from_utf8(listing)
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect()
}

#[test]
fn thin_fetch_deltas_new_versions_against_the_clients_old_ones() {
    // The stored pack holds the newest big.txt whole (git packs the newest version
    // whole and older ones as deltas against it); a client one commit behind has
    // the previous version, so a thin pack sends the new one as a delta against it.
    let f = fixture();
    let new = oid(&git(&f.repo, &["rev-parse", "main^1"]));
    let old = oid(&git(&f.repo, &["rev-parse", "main^1~1"]));
    let blob = oid(&git(&f.repo, &["rev-parse", "main^1:big.txt"]));
    let Some(gitclaw_pack::odb::Location::Packed { pack, index }) = f.db.locate(&blob).unwrap()
    else {
        panic!("big.txt is packed");
    };
    let (header, _) = f.db.packs()[pack].entry_header(index).unwrap();
    assert!(!header.is_delta(), "the newest big.txt is stored whole");

    let mut graph = Graph::new(&f.db);
    let plan = plan_shallow(&mut graph, &[new], &DeepenRequest::default()).unwrap();
    let outcome = enumerate(&mut graph, &[new], &[old], &plan, &WalkOptions::default()).unwrap();
    assert!(outcome.objects.iter().any(|o| o.id == blob));
    let (fat, fat_stats) = write_fetch_pack(&f.db, &outcome, false);
    let (thin_pack, stats) = write_fetch_pack(&f.db, &outcome, true);
    assert_eq!(
        fat_stats.new_deltas, 0,
        "without thin-pack nothing to delta against"
    );
    assert!(stats.new_deltas >= 1, "{stats:?}");
    assert!(
        thin_pack.len() * 4 < fat.len(),
        "thin {} vs full {}",
        thin_pack.len(),
        fat.len()
    );
    // The client completes it with the objects it has, and gets every new object.
    let got = complete_thin_pack(&f, &thin_pack);
    let expected = rev_list_objects(&f.repo, &[&new.to_string(), "--not", &old.to_string()]);
    assert!(expected.is_subset(&got), "every new object arrives");
    assert!(got.contains(&blob.to_string()));
}

/// New deltas in a thin pack of a commit that rewrites a.txt from `old_lines`
/// lines (about 42 bytes each) to `new_lines`, for a client that has the old one,
/// with the delta search's size limit at `limit`. Every object is stored whole.
fn thin_new_deltas(old_lines: usize, new_lines: usize, limit: u64) -> u32 {
    let line = |i: usize| format!("line {i:04} of a file that changes a little\n");
    let old_text: String = (0..old_lines).map(line).collect();
    let new_text: String = (0..new_lines).map(line).collect();
    thin_new_deltas_of(&[("a.txt", &old_text, &new_text)], limit)
}

/// New deltas in the thin pack of a fetch from a client one commit behind, where
/// that commit changed each `(path, old, new)` file: every file stored whole.
fn thin_new_deltas_of(files: &[(&str, &str, &str)], limit: u64) -> u32 {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("src");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    for (path, old, _) in files {
        std::fs::write(repo.join(path), old).unwrap();
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "old"]);
    for (path, _, new) in files {
        std::fs::write(repo.join(path), new).unwrap();
    }
    git(&repo, &["commit", "-q", "-am", "new"]);
    let store = tmp.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    // Stored without deltas, so the new version is a whole object to search for.
    let (ok, pack, err) = git_stdin(
        &repo,
        &[
            "pack-objects",
            "--stdout",
            "--revs",
            "-q",
            "--window=0",
            "--all",
        ],
        b"",
    );
    assert!(ok, "{err}");
    let ingested = ingest_bytes(&pack, &store, &empty_db()).unwrap().unwrap();
    let db = ObjectDb::new(
        vec![Arc::new(PackHandle::open(&ingested.index_path).unwrap())],
        Arc::new(NoLoose),
    );
    let new = oid(&git(&repo, &["rev-parse", "main"]));
    let old = oid(&git(&repo, &["rev-parse", "main~1"]));
    let mut graph = Graph::new(&db);
    let plan = plan_shallow(&mut graph, &[new], &DeepenRequest::default()).unwrap();
    let outcome = enumerate(&mut graph, &[new], &[old], &plan, &WalkOptions::default()).unwrap();
    let options = WriteOptions {
        thin: true,
        max_delta_object_bytes: limit,
        ..WriteOptions::default()
    };
    let mut out = Vec::new();
    write_pack(
        &db,
        &outcome.objects,
        Some(outcome.client_has()),
        &options,
        &mut out,
        &mut |_, _, _| {},
    )
    .unwrap()
    .new_deltas
}

#[test]
fn thin_fetch_bases_above_the_size_limit_are_not_used() {
    // The client has a.txt at 1,050 bytes; the new version is 882. With the delta
    // search's size limit at 2,000 the old version is a base; at 1,000 it is left
    // out, so nothing is deltified against it.
    assert!(
        thin_new_deltas(25, 21, 2000) >= 1,
        "the old version is a base under the limit"
    );
    assert_eq!(
        thin_new_deltas(25, 21, 1000),
        0,
        "above the limit it is not a base"
    );
}

#[test]
fn a_new_version_stored_whole_leans_only_on_a_client_object_at_least_as_large() {
    // As git's repack stores them: of two versions the larger is the base. A file
    // that shrank goes out as a delta against the client's larger old version; one
    // that grew goes out whole, as stored, so the client has no base to read and
    // deflate again to complete the pack.
    assert!(
        thin_new_deltas(25, 21, 1 << 20) >= 1,
        "shrunk: a thin delta"
    );
    assert_eq!(
        thin_new_deltas(21, 25, 1 << 20),
        0,
        "grown: whole, as stored"
    );
}

#[test]
fn a_new_version_stored_whole_leans_on_no_client_object_of_another_path() {
    // The client's old a.txt is what the new b.txt now holds, near enough for a
    // delta, and as large; but it is not a version of b.txt, which git's repack
    // would never have stored as a delta of it: b.txt goes out whole, as stored.
    let line = |i: usize| format!("line {i:04} of a file that moves about\n");
    let shared: String = (0..25).map(line).collect();
    let shrunk: String = (0..21).map(line).collect();
    let other = |tag: &str| -> String {
        (0..3)
            .map(|i| format!("{tag} {i}: nothing like the other file at all\n"))
            .collect()
    };
    let (new_a, old_b) = (other("new a"), other("old b"));
    let files = [
        ("a.txt", shared.as_str(), new_a.as_str()),
        ("b.txt", old_b.as_str(), shrunk.as_str()),
    ];
    assert_eq!(thin_new_deltas_of(&files, 1 << 20), 0);
    // The same content at its own path is a base (the control).
    let files = [("b.txt", shared.as_str(), shrunk.as_str())];
    assert!(thin_new_deltas_of(&files, 1 << 20) >= 1);
}

#[test]
fn v2_acknowledges_no_parent_of_an_earlier_have() {
    // A client walks its history newest first: main, main~1, main~2… Acknowledging
    // main tells it all of them are common; git acknowledges that one alone.
    let f = fixture();
    let chain: Vec<ObjectId> = (1..5)
        .map(|n| oid(&git(&f.repo, &["rev-parse", &format!("main~{n}")])))
        .collect();
    let side = oid(&git(&f.repo, &["rev-parse", "side"]));
    let mut graph = Graph::new(&f.db);
    let acks = gitclaw_pack::walk::to_acknowledge(&mut graph, &chain).unwrap();
    assert_eq!(acks, vec![chain[0]]);
    // Haves that are not parents of an earlier one are acknowledged each; a
    // parent named before its child is too (git marks as it goes).
    let haves = [chain[2], chain[0], side, chain[1], chain[0]];
    let acks = gitclaw_pack::walk::to_acknowledge(&mut graph, &haves).unwrap();
    assert_eq!(acks, vec![chain[2], chain[0], side]);
    assert!(gitclaw_pack::walk::to_acknowledge(&mut graph, &[])
        .unwrap()
        .is_empty());
}

#[test]
fn a_repository_never_reads_another_ones_commits_through_the_shared_cache() {
    let f = fixture();
    let cache = Arc::new(gitclaw_pack::odb::ObjectCache::new(1 << 20));
    let ours = ObjectDb::new(f.db.packs().to_vec(), Arc::new(NoLoose)).with_cache(cache.clone());
    let main = oid(&git(&f.repo, &["rev-parse", "main"]));
    let mut graph = Graph::new(&ours);
    let plan = plan_shallow(&mut graph, &[main], &DeepenRequest::default()).unwrap();
    enumerate(&mut graph, &[main], &[], &plan, &WalkOptions::default()).unwrap();
    assert!(
        cache.commits_held() > 0,
        "the walk parsed commits into the cache"
    );
    assert!(ours.cached_commit(&main).is_some());
    // Another repository, with none of those objects, shares the cache.
    let theirs = ObjectDb::new(Vec::new(), Arc::new(NoLoose)).with_cache(cache.clone());
    assert!(theirs.cached_commit(&main).is_none());
    let mut graph = Graph::new(&theirs);
    assert!(
        graph.peel_to_commit(&main).is_err(),
        "it does not have the commit"
    );
}

#[test]
fn locating_many_objects_at_once_finds_what_locating_each_finds() {
    // Two packs (the older history alone, then everything), objects of both
    // in a scrambled order with repeats, and ids no pack holds.
    let f = fixture();
    let store = f.scratch.join("older");
    std::fs::create_dir_all(&store).unwrap();
    let older = ingest_bytes(&pack_of(&f.repo, "main~3\n", false), &store, &empty_db())
        .unwrap()
        .unwrap();
    let db = ObjectDb::new(
        vec![
            Arc::new(PackHandle::open(&older.index_path).unwrap()),
            f.db.packs()[0].clone(),
        ],
        Arc::new(NoLoose),
    );
    let mut ids: Vec<ObjectId> = db.packs().iter().flat_map(|p| p.oids().unwrap()).collect();
    for n in 0..40u8 {
        ids.push(ObjectId::from_bytes_or_panic(&[n.wrapping_mul(37); 20]));
    }
    // A fixed scramble: every id three times, far apart.
    let len = ids.len();
    let scrambled: Vec<ObjectId> = (0..3 * len).map(|i| ids[(i * 7919) % len]).collect();
    let one_by_one: Vec<_> = scrambled.iter().map(|id| db.locate(id).unwrap()).collect();
    assert_eq!(db.locate_many(&scrambled).unwrap(), one_by_one);
    assert!(one_by_one.iter().any(|l| l.is_none()));
    assert!(one_by_one
        .iter()
        .any(|l| matches!(l, Some(gitclaw_pack::odb::Location::Packed { pack: 1, .. }))));
    assert_eq!(db.locate_many(&[]).unwrap(), Vec::new());
    // Each pack's own ids, in index order, are each found where they are.
    for (number, pack) in db.packs().iter().enumerate() {
        let own: Vec<ObjectId> = pack.oids().unwrap().collect();
        for (index, found) in db.locate_many(&own).unwrap().into_iter().enumerate() {
            match found {
                Some(gitclaw_pack::odb::Location::Packed { pack: p, index: i }) if p < number => {
                    assert_eq!(db.packs()[p].oid_at(i).unwrap(), own[index]);
                }
                other => assert_eq!(
                    other,
                    Some(gitclaw_pack::odb::Location::Packed {
                        pack: number,
                        index: index as u32
                    })
                ),
            }
        }
    }
}

#[test]
fn wants_must_be_reachable_from_the_tips() {
    let f = fixture();
    let main = oid(&git(&f.repo, &["rev-parse", "main"]));
    let old = oid(&git(&f.repo, &["rev-parse", "main~3"]));
    let blob = oid(&git(&f.repo, &["rev-parse", "main~2:big.txt"]));
    let side = oid(&git(&f.repo, &["rev-parse", "side"]));
    let mut graph = Graph::new(&f.db);
    assert!(
        gitclaw_pack::walk::unreachable_wants(&mut graph, &[main], &[main, old, blob])
            .unwrap()
            .is_empty()
    );
    // `side` was merged into main, so it is reachable too; a tag object of v1 is not under main.
    assert!(
        gitclaw_pack::walk::unreachable_wants(&mut graph, &[main], &[side])
            .unwrap()
            .is_empty()
    );
    let tag = oid(&git(&f.repo, &["rev-parse", "v1"]));
    assert_eq!(
        gitclaw_pack::walk::unreachable_wants(&mut graph, &[main], &[tag]).unwrap(),
        vec![tag]
    );
    assert!(
        gitclaw_pack::walk::unreachable_wants(&mut graph, &[tag], &[tag, old])
            .unwrap()
            .is_empty()
    );
}

/// Nested directories, the same tree under several names at different
/// depths (`a/b/T` and `z/T`, and `a/b` is `z`), a file moved deeper, and a tag.
fn make_nested_repo(dir: &Path) {
    git(dir, &["init", "-q", "-b", "main"]);
    let write = |path: &str, text: &str| {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    for i in 0..4 {
        for top in ["a/b", "z"] {
            write(&format!("{top}/T/U/f"), &format!("f {i}\n"));
            write(&format!("{top}/T/g"), "g\n");
        }
        write("top.txt", &"x".repeat(300 * (i + 1)));
        write(&format!("d{i}/e/f{i}.txt"), &format!("file {i}\n"));
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", &format!("commit {i}")]);
    }
    git(dir, &["mv", "top.txt", "d0/e/top.txt"]);
    git(dir, &["commit", "-q", "-m", "deeper"]);
    git(dir, &["tag", "-a", "-m", "v1", "v1", "HEAD~2"]);
}

#[test]
fn partial_clone_filters_match_git_rev_list() {
    let flat = fixture();
    let nested = fixture_of(make_nested_repo);
    let specs = [
        "blob:none",
        "blob:limit=1k",
        "blob:limit=100",
        "tree:0",
        "tree:1",
        "tree:2",
        "tree:3",
        "tree:4",
        "tree:5",
        "object:type=blob",
        "object:type=tree",
        "object:type=commit",
        "object:type=tag",
        "combine:blob:limit=1k+tree:2",
        "combine:tree%3A3+blob:none",
        "combine:object%3Atype%3Dblob+blob:limit=500",
        "combine:object%3Atype%3Dtree+tree:3",
        "combine:object%3Atype%3Dblob+tree:4",
    ];
    for f in [&flat, &nested] {
        let head = oid(&git(&f.repo, &["rev-parse", "main"]));
        let tag = oid(&git(&f.repo, &["rev-parse", "v1"]));
        // A want of a branch, and a want of a branch and an annotated tag:
        // what is named goes out whatever the filter.
        for (wants, revs) in [
            (vec![head], vec!["main"]),
            (vec![head, tag], vec!["main", "v1"]),
        ] {
            for spec in specs {
                let filter = gitclaw_pack::walk::Filter::parse(spec).unwrap();
                let mut graph = Graph::new(&f.db);
                let plan = plan_shallow(&mut graph, &wants, &DeepenRequest::default()).unwrap();
                let options = WalkOptions {
                    filter: Some(filter),
                    ..WalkOptions::default()
                };
                let outcome = enumerate(&mut graph, &wants, &[], &plan, &options).unwrap();
                let got: BTreeSet<String> =
                    outcome.objects.iter().map(|o| o.id.to_string()).collect();
                assert_eq!(got.len(), outcome.objects.len(), "{spec}: listed twice");
                let filter_arg = format!("--filter={spec}");
                let mut args = vec![filter_arg.as_str()];
                args.extend(&revs);
                let expected = rev_list_objects(&f.repo, &args);
                assert!(
                    got == expected,
                    "{spec} of {revs:?}: only GitClaw sends {:?}, only git {:?}",
                    got.difference(&expected).collect::<Vec<_>>(),
                    expected.difference(&got).collect::<Vec<_>>()
                );
            }
        }
    }
    for bad in [
        "blob:some",
        "blob:limit=x",
        "tree:-1",
        "sparse:oid=abc",
        "object:type=",
        "object:type=blobs",
        "combine:",
        "combine:combine:blob:none",
    ] {
        assert!(gitclaw_pack::walk::Filter::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn repack_merges_packs_and_loose_objects_into_one() {
    let f = fixture();
    // A second pack (thin push, completed) and some loose objects.
    let store = f.scratch.join("repack-store");
    std::fs::create_dir_all(&store).unwrap();
    let old = oid(&git(&f.repo, &["rev-parse", "main"]));
    std::fs::write(f.repo.join("big.txt"), "rewritten for repack\n".repeat(500)).unwrap();
    git(&f.repo, &["commit", "-q", "-am", "for repack"]);
    let new = oid(&git(&f.repo, &["rev-parse", "main"]));
    let thin = pack_of(&f.repo, &format!("{new}\n^{old}\n"), true);
    let second = ingest_bytes(&thin, &store, &f.db).unwrap().unwrap();
    let mut loose = std::collections::HashMap::new();
    for text in ["loose one\n", "loose two\n"] {
        let out = git_stdin(&f.repo, &["hash-object", "-w", "--stdin"], text.as_bytes());
        let id = oid(&String::from_utf8(out.1).unwrap());
        loose.insert(id, (gitclaw_pack::Kind::Blob, text.as_bytes().to_vec()));
    }
    let loose_ids: Vec<ObjectId> = loose.keys().copied().collect();
    let packs = vec![
        Arc::new(PackHandle::open(f.db.packs()[0].index_path()).unwrap()),
        Arc::new(PackHandle::open(&second.index_path).unwrap()),
    ];
    let db = ObjectDb::new(packs, Arc::new(MemLoose(loose)));

    let work = f.scratch.join("repack-work");
    std::fs::create_dir_all(&work).unwrap();
    let repacked =
        gitclaw_pack::repack::repack(&db, &[new], &[new], &work, &WriteOptions::default()).unwrap();
    let reachable = repacked.reachable.expect("reachable objects");
    let cruft = repacked.cruft.expect("unreachable objects");
    assert_eq!(
        repacked.closure_of,
        Some(gitclaw_pack::repack::closure_key(&[new, new]))
    );
    let ids = |pack: &gitclaw_pack::ingest::IngestedPack| -> BTreeSet<String> {
        pack.ids()
            .unwrap()
            .iter()
            .map(|id| id.to_string())
            .collect()
    };
    assert_eq!(
        ids(&reachable),
        rev_list_objects(&f.repo, &[&new.to_string()]),
        "the reachable pack is exactly the closure of the tip"
    );
    let mut everything: BTreeSet<String> = rev_list_objects(&f.repo, &["--all"]);
    everything.extend(loose_ids.iter().map(|id| id.to_string()));
    let mut kept = ids(&reachable);
    assert!(ids(&cruft).is_disjoint(&kept));
    kept.extend(ids(&cruft));
    assert_eq!(
        kept, everything,
        "every stored object, reachable or not, is kept"
    );
    // What a shallow clone of the tip sends lies together, after the commits:
    // the tip's trees and blobs (and the bases of those stored as deltas) come
    // before anything only older commits have; every delta follows its base.
    use gix_pack::data::entry::Header;
    let pack = &reachable.pack;
    let tip: BTreeSet<ObjectId> = git(&f.repo, &["rev-list", "--objects", "-n1", &new.to_string()])
        .lines()
        .map(|l| oid(&l[..40]))
        .filter(|id| *id != new)
        .collect();
    let offset = |id: &ObjectId| pack.offset_at(pack.lookup(id).unwrap().expect("in the pack"));
    let mut needed = tip.clone();
    for id in &tip {
        needed.extend(delta_chain(pack, id));
    }
    for index in 0..pack.num_objects() {
        assert!(
            !matches!(pack.entry_header(index).unwrap().0, Header::RefDelta { .. }),
            "a compacted pack's deltas all follow their bases"
        );
    }
    let last_tip = needed.iter().map(offset).max().unwrap();
    let first_older = pack
        .kinds()
        .unwrap()
        .into_iter()
        .filter(|(id, kind)| *kind != gitclaw_pack::Kind::Commit && !needed.contains(id))
        .map(|(id, _)| offset(&id))
        .min()
        .expect("older objects");
    assert!(
        last_tip < first_older,
        "the tip's objects end at {last_tip}, older ones start at {first_older}"
    );

    for pack in [&reachable, &cruft] {
        // git agrees each pack and its index are sound.
        let out = Command::new("git")
            .args(["verify-pack", pack.index_path.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn repack_of_one_pack_splits_off_what_the_tips_do_not_reach() {
    // One pack, nothing loose, but more in it than `main` reaches: not the
    // closure, so every object is looked at and the rest goes to the cruft pack.
    let f = fixture();
    let main = oid(&git(&f.repo, &["rev-parse", "main"]));
    let reached = rev_list_objects(&f.repo, &[&main.to_string()]);
    let everything = rev_list_objects(&f.repo, &["--all"]);
    assert!(
        reached.len() < everything.len(),
        "the fixture has more than main"
    );
    let work = f.scratch.join("repack-one-pack");
    std::fs::create_dir_all(&work).unwrap();
    let repacked =
        gitclaw_pack::repack::repack(&f.db, &[main], &[main], &work, &WriteOptions::default())
            .unwrap();
    assert_eq!(repacked.already_closed, None);
    let ids = |pack: &gitclaw_pack::ingest::IngestedPack| -> BTreeSet<String> {
        pack.ids()
            .unwrap()
            .iter()
            .map(|id| id.to_string())
            .collect()
    };
    let reachable = ids(&repacked.reachable.expect("reachable objects"));
    let cruft = ids(&repacked.cruft.expect("unreachable objects"));
    assert_eq!(reachable, reached);
    assert_eq!(
        cruft,
        everything
            .difference(&reached)
            .cloned()
            .collect::<BTreeSet<_>>()
    );
}

#[test]
fn repack_leaves_a_pack_that_already_is_the_closure() {
    let f = fixture();
    let tips: Vec<ObjectId> = git(&f.repo, &["for-each-ref", "--format=%(objectname)"])
        .lines()
        .map(oid)
        .collect();
    let work = f.scratch.join("repack-closed");
    std::fs::create_dir_all(&work).unwrap();
    let repacked =
        gitclaw_pack::repack::repack(&f.db, &tips, &[], &work, &WriteOptions::default()).unwrap();
    assert!(repacked.reachable.is_none() && repacked.cruft.is_none());
    assert_eq!(repacked.already_closed, Some(*f.db.packs()[0].hash()));
    assert_eq!(
        repacked.closure_of,
        Some(gitclaw_pack::repack::closure_key(&tips))
    );
    // A tip set that leaves objects out does not make the pack its closure.
    let repacked =
        gitclaw_pack::repack::repack(&f.db, &tips[..1], &[], &work, &WriteOptions::default())
            .unwrap();
    assert_eq!(repacked.already_closed, None);
}

#[test]
fn a_pack_holding_exactly_the_clone_is_streamed_as_is() {
    let f = fixture();
    let tips: Vec<ObjectId> = git(&f.repo, &["for-each-ref", "--format=%(objectname)"])
        .lines()
        .map(oid)
        .collect();
    let mut graph = Graph::new(&f.db);
    let plan = plan_shallow(&mut graph, &tips, &DeepenRequest::default()).unwrap();
    let outcome = enumerate(&mut graph, &tips, &[], &plan, &WalkOptions::default()).unwrap();
    let mut pack = Vec::new();
    let stats = write_pack(
        &f.db,
        &outcome.objects,
        None,
        &WriteOptions::default(),
        &mut pack,
        &mut |_, _, _| {},
    )
    .unwrap();
    let stored = std::fs::read(f.db.packs()[0].index_path().with_extension("pack")).unwrap();
    assert!(pack == stored, "the stored pack goes out byte for byte");
    assert_eq!(stats.reused, stats.objects);
    assert_eq!(
        index_with_git(&pack, &f.scratch, None),
        rev_list_objects(&f.repo, &["--all"])
    );
}

/// The pack of `closed` (but for what `leave` says), then `objects`.
fn write_after(
    db: &ObjectDb,
    closed: &PackHandle,
    leave: gitclaw_pack::writer::Leave,
    objects: &[gitclaw_pack::walk::WalkObject],
) -> (Vec<u8>, gitclaw_pack::writer::WriteStats) {
    let mut pack = Vec::new();
    let stats = gitclaw_pack::writer::write_pack_after(
        db,
        closed,
        leave,
        objects,
        &WriteOptions::default(),
        &mut pack,
        &mut |_, _, _| {},
    )
    .unwrap();
    (pack, stats)
}

#[test]
fn a_clone_past_a_closed_pack_sends_it_whole_then_only_what_is_new() {
    let f = fixture();
    // The fixture's one pack is the closure of its refs at this point.
    let old_tips: Vec<ObjectId> = git(&f.repo, &["for-each-ref", "--format=%(objectname)"])
        .lines()
        .map(oid)
        .collect();
    let old_main = oid(&git(&f.repo, &["rev-parse", "main"]));
    // New history on main (a rewritten large file, so its blob is a delta against
    // the old one in the push's pack), pushed as a thin pack and completed.
    std::fs::write(
        f.repo.join("big.txt"),
        "rewritten past the closure\n".repeat(400),
    )
    .unwrap();
    git(&f.repo, &["commit", "-q", "-am", "past the closure"]);
    std::fs::write(f.repo.join("new.txt"), "new file\n").unwrap();
    git(&f.repo, &["add", "new.txt"]);
    git(&f.repo, &["commit", "-q", "-m", "another"]);
    let new_main = oid(&git(&f.repo, &["rev-parse", "main"]));
    let store = f.scratch.join("closed-store");
    std::fs::create_dir_all(&store).unwrap();
    let thin = pack_of(&f.repo, &format!("{new_main}\n^{old_main}\n"), true);
    let second = ingest_bytes(&thin, &store, &f.db).unwrap().unwrap();
    let closed = Arc::new(PackHandle::open(f.db.packs()[0].index_path()).unwrap());
    let db = ObjectDb::new(
        vec![
            closed.clone(),
            Arc::new(PackHandle::open(&second.index_path).unwrap()),
        ],
        Arc::new(NoLoose),
    );
    let wants: Vec<ObjectId> = git(&f.repo, &["for-each-ref", "--format=%(objectname)"])
        .lines()
        .map(oid)
        .collect();

    let mut graph = Graph::new(&db);
    assert!(gitclaw_pack::walk::reaches_all(&mut graph, &wants, &old_tips, 1000).unwrap());
    // A clone of one branch does not reach every old tip: no shortcut for it.
    let side = oid(&git(&f.repo, &["rev-parse", "side"]));
    assert!(!gitclaw_pack::walk::reaches_all(&mut graph, &[side], &old_tips, 1000).unwrap());

    let plan = plan_shallow(&mut graph, &wants, &DeepenRequest::default()).unwrap();
    let options = WalkOptions {
        closed: Some(closed.clone()),
        ..Default::default()
    };
    let outcome = enumerate(&mut graph, &wants, &[], &plan, &options).unwrap();
    let listed: BTreeSet<String> = outcome.objects.iter().map(|o| o.id.to_string()).collect();
    assert_eq!(
        listed,
        rev_list_objects(&f.repo, &[&new_main.to_string(), &format!("^{old_main}")]),
        "the walk lists only what the closed pack lacks"
    );
    let (pack, stats) = write_after(&db, &closed, Leave::Nothing, &outcome.objects);
    assert!(
        stats.reused_deltas >= 1,
        "the new blob's stored delta against the old one is reused: {stats:?}"
    );
    assert_eq!(
        index_with_git(&pack, &f.scratch, None),
        rev_list_objects(&f.repo, &["--all"]),
        "git indexes the pack on its own, and it is the whole clone"
    );

    // A `blob:none` clone: the closed pack's entries but its blobs, copied as
    // they lie (deltas of trees against trees, at new distances), then the rest.
    let tree_deltas = closed
        .kinds()
        .unwrap()
        .iter()
        .filter(|(id, kind)| {
            *kind == gitclaw_pack::Kind::Tree
                && !matches!(
                    closed
                        .entry_header(closed.lookup(id).unwrap().unwrap())
                        .unwrap()
                        .0,
                    gix_pack::data::entry::Header::Tree
                )
        })
        .count();
    assert!(tree_deltas > 0, "the closed pack stores trees as deltas");
    // A `tree:0` clone likewise: the closed pack's commits and tags as they
    // lie, then the newer commits; no tree or blob.
    for (filter, leave, spec) in [
        (
            gitclaw_pack::walk::Filter::BlobNone,
            Leave::Blobs,
            "blob:none",
        ),
        (
            gitclaw_pack::walk::Filter::TreeDepth(0),
            Leave::TreesAndBlobs,
            "tree:0",
        ),
    ] {
        let options = WalkOptions {
            closed: Some(closed.clone()),
            filter: Some(filter),
            ..Default::default()
        };
        let outcome = enumerate(&mut graph, &wants, &[], &plan, &options).unwrap();
        let (pack, stats) = write_after(&db, &closed, leave, &outcome.objects);
        let expected = rev_list_objects(&f.repo, &["--all", &format!("--filter={spec}")]);
        assert_eq!(stats.objects as usize, expected.len(), "{spec}");
        assert!(
            stats.reused as usize >= closed.count_of(|k| leave.keeps(k)).unwrap(),
            "{spec}: the closed pack's entries of the kept types are copied"
        );
        assert_eq!(
            index_with_git(&pack, &f.scratch, Some(&f.repo)),
            expected,
            "git indexes the {spec} pack, and it holds every object the filter keeps"
        );
    }
}

#[test]
fn pack_kinds_come_from_entry_headers_and_match_git() {
    let f = fixture();
    let pack = &f.db.packs()[0];
    let kinds = pack.kinds().unwrap();
    assert_eq!(kinds.len(), pack.num_objects() as usize);
    let input: String = kinds.iter().map(|(id, _)| format!("{id}\n")).collect();
    let (ok, out, err) = git_stdin(
        &f.repo,
        &["cat-file", "--batch-check=%(objecttype)"],
        input.as_bytes(),
    );
    assert!(ok, "{err}");
    let expected: Vec<String> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let got: Vec<String> = kinds.iter().map(|(_, kind)| kind.to_string()).collect();
    assert_eq!(got, expected);
    // The counts a partial clone takes, for every set of types (asked twice:
    // the second answer comes from the counts kept).
    for set in 0u8..16 {
        let keeps = |kind: gitclaw_pack::Kind| {
            let bit = match kind {
                gitclaw_pack::Kind::Commit => 1,
                gitclaw_pack::Kind::Tree => 2,
                gitclaw_pack::Kind::Blob => 4,
                gitclaw_pack::Kind::Tag => 8,
            };
            set & bit != 0
        };
        let counted = kinds.iter().filter(|(_, kind)| keeps(*kind)).count();
        assert_eq!(pack.count_of(keeps).unwrap(), counted, "types {set:04b}");
        assert_eq!(pack.count_of(keeps).unwrap(), counted, "types {set:04b}");
    }
    assert!(
        (0..pack.num_objects()).any(|i| !matches!(
            pack.entry_header(i).unwrap().0,
            gix_pack::data::entry::Header::Commit
                | gix_pack::data::entry::Header::Tree
                | gix_pack::data::entry::Header::Blob
                | gix_pack::data::entry::Header::Tag
        )),
        "the fixture pack has deltas, so their types were resolved"
    );
}

#[test]
fn compaction_writes_a_commit_graph_git_verifies_and_walks_read_it_instead_of_commits() {
    use gitclaw_pack::commit_graph::CommitGraph;
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("src");
    std::fs::create_dir_all(&repo).unwrap();
    make_repo(&repo);
    // An octopus merge: a third parent goes to the graph's extra edge list.
    for name in ["o1", "o2", "o3"] {
        git(&repo, &["checkout", "-q", "-b", name, "main~3"]);
        std::fs::write(repo.join(format!("{name}.txt")), name).unwrap();
        git(&repo, &["add", "-A"]);
        git(&repo, &["commit", "-q", "-m", name]);
    }
    git(&repo, &["checkout", "-q", "main"]);
    git(&repo, &["merge", "-q", "--no-edit", "o1", "o2", "o3"]);
    let db = stored_as_packed(&repo, &tmp.path().join("store"));
    let tips: Vec<ObjectId> = git(&repo, &["for-each-ref", "--format=%(objectname)"])
        .lines()
        .map(oid)
        .collect();
    let work = tmp.path().join("work");
    let repacked =
        gitclaw_pack::repack::repack(&db, &tips, &[], &work, &WriteOptions::default()).unwrap();
    assert!(repacked.already_closed.is_some());
    let graph_path = repacked
        .commit_graph
        .expect("a commit-graph for the closed pack");

    // Git itself checks it against the repository's commits.
    let info = repo.join(".git/objects/info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::copy(&graph_path, info.join("commit-graph")).unwrap();
    git(&repo, &["commit-graph", "verify"]);

    // Every commit reads back as git describes it.
    let graph = CommitGraph::open(&graph_path).unwrap();
    let commits = git(&repo, &["log", "--all", "--format=%H %T %ct %P"]);
    assert_eq!(graph.num_commits() as usize, commits.lines().count());
    for line in commits.lines() {
        let mut fields = line.split(' ');
        let id = oid(fields.next().unwrap());
        let tree = oid(fields.next().unwrap());
        let time: i64 = fields.next().unwrap().parse().unwrap();
        let parents: Vec<ObjectId> = fields.filter(|p| !p.is_empty()).map(oid).collect();
        let got = graph
            .commit(&id)
            .unwrap()
            .expect("every commit is in the graph");
        assert_eq!(
            (got.tree, got.time, got.parents.to_vec()),
            (tree, time, parents)
        );
    }

    // A walk over the pack with its graph finds what one parsing commits finds.
    let with_graph = ObjectDb::new(
        vec![Arc::new(
            PackHandle::open(db.packs()[0].index_path())
                .unwrap()
                .with_commit_graph(graph),
        )],
        Arc::new(NoLoose),
    );
    let main = oid(git(&repo, &["rev-parse", "main"]).trim());
    let old = oid(git(&repo, &["rev-parse", "main~2"]).trim());
    let objects = |db: &ObjectDb| {
        let mut graph = Graph::new(db);
        let plan = plan_shallow(&mut graph, &[main], &DeepenRequest::default()).unwrap();
        let outcome =
            enumerate(&mut graph, &[main], &[old], &plan, &WalkOptions::default()).unwrap();
        let mut ids: Vec<ObjectId> = outcome.objects.iter().map(|o| o.id).collect();
        ids.sort();
        ids
    };
    assert_eq!(objects(&with_graph), objects(&db));

    // A graph whose bytes changed is refused, not read.
    let mut bytes = std::fs::read(&graph_path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    let bad = tmp.path().join("bad.graph");
    std::fs::write(&bad, bytes).unwrap();
    assert!(matches!(
        CommitGraph::open(&bad),
        Err(PackError::Corrupt(_))
    ));
}

/// The chain of delta bases below the stored entry of `id` (empty: stored whole).
fn delta_chain(pack: &PackHandle, id: &ObjectId) -> Vec<ObjectId> {
    let mut chain = Vec::new();
    let mut at = pack.lookup(id).unwrap().expect("in the pack");
    while let (_, Some(base)) = pack.entry_base(at).unwrap() {
        chain.push(base);
        at = pack.lookup(&base).unwrap().expect("base in the pack");
    }
    chain
}

#[test]
fn compaction_stores_tip_entries_so_a_shallow_clone_of_a_branch_head_searches_for_no_delta() {
    use gitclaw_pack::commit_graph::CommitGraph;
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("src");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q", "-b", "main"]);
    // A file that shrinks: git stores the newer, smaller version as a delta
    // against the older, larger one — a base a shallow clone of the tip lacks.
    let lines: Vec<String> = (0..3000)
        .map(|i| format!("line {i} of a shrinking file\n"))
        .collect();
    std::fs::write(repo.join("shrinks.txt"), lines.concat()).unwrap();
    std::fs::write(repo.join("grows.txt"), lines[..1000].concat()).unwrap();
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "old"]);
    std::fs::write(repo.join("shrinks.txt"), lines[..2000].concat()).unwrap();
    std::fs::write(repo.join("grows.txt"), lines[..1500].concat()).unwrap();
    git(&repo, &["commit", "-q", "-am", "new"]);
    let tip = oid(&git(&repo, &["rev-parse", "main"]));
    let tip_objects: BTreeSet<ObjectId> =
        git(&repo, &["rev-list", "--objects", "-n1", &tip.to_string()])
            .lines()
            .map(|l| oid(&l[..40]))
            .filter(|id| *id != tip)
            .collect();
    let shrunk = oid(&git(&repo, &["rev-parse", "main:shrinks.txt"]));
    let leans_outside = |pack: &PackHandle| {
        delta_chain(pack, &shrunk)
            .iter()
            .any(|base| !tip_objects.contains(base))
    };
    // Two pushes: the old commit, then the tip as a thin pack against it.
    let store = tmp.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let first = ingest_bytes(&pack_of(&repo, "main~1\n", false), &store, &empty_db())
        .unwrap()
        .unwrap();
    let first = Arc::new(PackHandle::open(&first.index_path).unwrap());
    let db = ObjectDb::new(vec![first.clone()], Arc::new(NoLoose));
    let thin = pack_of(&repo, "main\n^main~1\n", true);
    let second = ingest_bytes(&thin, &store, &db).unwrap().unwrap();
    let second = Arc::new(PackHandle::open(&second.index_path).unwrap());
    assert!(
        leans_outside(&second),
        "as pushed, the tip's version of the shrinking file leans on an older one"
    );
    let db = ObjectDb::new(vec![first, second], Arc::new(NoLoose));
    let repack = |db: &ObjectDb, shallow_tips: &[ObjectId], dir: &str| {
        let work = tmp.path().join(dir);
        gitclaw_pack::repack::repack(db, &[tip], shallow_tips, &work, &WriteOptions::default())
            .unwrap()
    };
    let deepen = DeepenRequest {
        depth: Some(1),
        ..Default::default()
    };
    let mut sent = tip_objects.clone();
    sent.insert(tip);
    let sent: BTreeSet<String> = sent.iter().map(|id| id.to_string()).collect();
    // A `--depth 1` clone of the tip from `pack` (with its commit-graph, when
    // `graph`): its stats, once git has indexed it.
    let shallow_clone = |pack: &std::path::Path, graph: Option<&std::path::Path>| {
        let mut handle = PackHandle::open(pack).unwrap();
        if let Some(graph) = graph {
            handle = handle.with_commit_graph(CommitGraph::open(graph).unwrap());
        }
        let db = ObjectDb::new(vec![Arc::new(handle)], Arc::new(NoLoose));
        let (out, shallow, stats) = write_for(&db, &[tip], &[], &deepen);
        assert_eq!(shallow, vec![tip]);
        assert_eq!(index_with_git(&out, tmp.path(), Some(&repo)), sent);
        stats
    };

    let plain = repack(&db, &[], "plain");
    let with_tips = repack(&db, &[tip], "tips");
    let plain_pack = plain.reachable.expect("a new reachable pack");
    let reachable = with_tips.reachable.expect("a new reachable pack");
    // The pack a full clone gets is the same with tip entries as without.
    assert_eq!(reachable.pack.hash(), plain_pack.pack.hash());
    assert_eq!(
        reachable.object_count(),
        rev_list_objects(&repo, &["--all"]).len()
    );
    assert!(leans_outside(&reachable.pack), "the pack keeps its deltas");
    assert_eq!(plain.tip_entries, 0);
    assert!(with_tips.tip_entries > 0);
    let graph = with_tips.commit_graph.expect("a commit-graph");
    // git reads the graph with the chunk it does not know.
    let info = repo.join(".git/objects/info");
    std::fs::create_dir_all(&info).unwrap();
    std::fs::copy(&graph, info.join("commit-graph")).unwrap();
    git(&repo, &["commit-graph", "verify"]);

    // Without tip entries a shallow clone of the tip searches for a delta (or
    // deflates anew); with them it copies stored bytes only.
    let without = shallow_clone(&reachable.index_path, plain.commit_graph.as_deref());
    assert!(without.reused < without.objects, "{without:?}");
    let with = shallow_clone(&reachable.index_path, Some(&graph));
    assert_eq!(with.new_deltas, 0);
    assert_eq!(with.reused, with.objects, "every entry is copied as stored");

    // One pack as pushed that is already the closure is kept as it is; its tip
    // entries are worked out against it, and kept by the next compaction.
    let single = ingest_bytes(&pack_of(&repo, "--all\n", false), &store, &empty_db())
        .unwrap()
        .unwrap();
    let single_db = ObjectDb::new(
        vec![Arc::new(PackHandle::open(&single.index_path).unwrap())],
        Arc::new(NoLoose),
    );
    let kept = repack(&single_db, &[tip], "single");
    assert!(kept.already_closed.is_some() && kept.reachable.is_none());
    assert!(kept.tip_entries > 0);
    let kept_graph = kept.commit_graph.expect("a commit-graph");
    let with = shallow_clone(&single.index_path, Some(&kept_graph));
    assert_eq!((with.new_deltas, with.reused), (0, with.objects));
    let graphed = PackHandle::open(&single.index_path)
        .unwrap()
        .with_commit_graph(CommitGraph::open(&kept_graph).unwrap());
    let again = repack(
        &ObjectDb::new(vec![Arc::new(graphed)], Arc::new(NoLoose)),
        &[tip],
        "again",
    );
    assert_eq!(again.tip_entries, kept.tip_entries);

    // A side branch with a third version of the shrinking file, pushed after
    // compaction. A `--depth 1` clone of both branches sends two versions of
    // it: the tip's, whose entry was worked out alone, is searched again, and
    // one becomes a delta of the other.
    git(&repo, &["checkout", "-q", "-b", "side"]);
    std::fs::write(repo.join("shrinks.txt"), lines[..1900].concat()).unwrap();
    git(&repo, &["commit", "-q", "-am", "side"]);
    git(&repo, &["checkout", "-q", "main"]);
    let side = oid(&git(&repo, &["rev-parse", "side"]));
    let compacted = Arc::new(
        PackHandle::open(&reachable.index_path)
            .unwrap()
            .with_commit_graph(CommitGraph::open(&graph).unwrap()),
    );
    let before = ObjectDb::new(vec![compacted.clone()], Arc::new(NoLoose));
    let side_pack = ingest_bytes(&pack_of(&repo, "side\n^main\n", false), &store, &before)
        .unwrap()
        .unwrap();
    let db = ObjectDb::new(
        vec![
            compacted,
            Arc::new(PackHandle::open(&side_pack.index_path).unwrap()),
        ],
        Arc::new(NoLoose),
    );
    let (out, _, stats) = write_for(&db, &[tip, side], &[], &deepen);
    assert_eq!(stats.new_deltas, 1, "{stats:?}");
    let both = rev_list_objects(&repo, &["--no-walk", "main", "side"]);
    assert_eq!(index_with_git(&out, tmp.path(), Some(&repo)), both);
}

/// Compaction lays a pack out as git does past the tip's tree — each delta
/// right after its base, in delta families — and deflates its entries again at
/// zlib's best level: reusing the same deltas as a pack git wrote, its pack is
/// no larger than git's (a full clone sends no more bytes than from git). The
/// walk order alone (every delta's base just ahead of its first delta) made it
/// 0.3% larger here; the families alone, 0.05%.
#[test]
fn a_compacted_pack_is_no_larger_than_gits_with_the_same_deltas() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = large_repo(tmp.path(), 400);
    // git's pack of everything, as git lays it out (OFS_DELTA, as a clone gets).
    let (ok, gits, err) = git_stdin(
        &repo,
        &[
            "pack-objects",
            "--stdout",
            "--revs",
            "--all",
            "-q",
            "--delta-base-offset",
        ],
        b"",
    );
    assert!(ok, "{err}");
    let store = tmp.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let all = ingest_bytes(&gits, &store, &empty_db()).unwrap().unwrap();
    // An unreachable object beside it, so compaction rewrites the pack.
    let (_, stray, _) = git_stdin(&repo, &["hash-object", "-w", "--stdin"], b"stray\n");
    let (ok, stray_pack, err) = git_stdin(&repo, &["pack-objects", "--stdout", "-q"], &stray);
    assert!(ok, "{err}");
    let stray = ingest_bytes(&stray_pack, &store, &empty_db())
        .unwrap()
        .unwrap();
    let db = ObjectDb::new(
        vec![
            Arc::new(PackHandle::open(&all.index_path).unwrap()),
            Arc::new(PackHandle::open(&stray.index_path).unwrap()),
        ],
        Arc::new(NoLoose),
    );
    let repacked = compact_every_ref(&db, &repo, &tmp.path().join("work"));
    let reachable = repacked.reachable.expect("a rewritten reachable pack");
    assert_eq!(reachable.object_count(), all.objects.len());
    let stats = |pack: &PackHandle| {
        let (mut deltas, mut whole) = (0, 0);
        for index in 0..pack.num_objects() {
            match pack.entry_base(index).unwrap().1 {
                Some(_) => deltas += 1,
                None => whole += 1,
            }
        }
        (deltas, whole)
    };
    assert_eq!(
        stats(&reachable.pack),
        stats(&all.pack),
        "the same deltas, reused"
    );
    let ours = std::fs::metadata(&reachable.pack_path).unwrap().len();
    assert!(
        ours <= gits.len() as u64,
        "compacted pack {ours} bytes, git's {}",
        gits.len()
    );
}

/// A repository pushed in two steps: the second push is thin, and its deltas
/// are what the client found against what it knew the server had (its
/// completed bases stored whole). Compaction searches every stored whole
/// object again, as `git repack -a` does, so the compacted pack is no larger
/// than what `git repack -adb` makes of the same two pushes.
#[test]
fn a_repository_pushed_in_steps_compacts_to_no_more_than_git_repack_makes_of_the_same_pushes() {
    let tmp = tempfile::tempdir().unwrap();
    let repo = large_repo(tmp.path(), 400);
    let store = tmp.path().join("store");
    std::fs::create_dir_all(&store).unwrap();
    let first = ingest_bytes(&pack_of(&repo, "main~200\n", false), &store, &empty_db())
        .unwrap()
        .unwrap();
    let first = Arc::new(PackHandle::open(&first.index_path).unwrap());
    let before = ObjectDb::new(vec![first.clone()], Arc::new(NoLoose));
    let mut revs = git(&repo, &["for-each-ref", "--format=%(objectname)"]);
    revs.push_str("^main~200\n");
    let thin = pack_of(&repo, &revs, true);
    let second = ingest_bytes(&thin, &store, &before).unwrap().unwrap();
    let db = ObjectDb::new(
        vec![
            first,
            Arc::new(PackHandle::open(&second.index_path).unwrap()),
        ],
        Arc::new(NoLoose),
    );
    let repacked = compact_every_ref(&db, &repo, &tmp.path().join("work"));
    let reachable = repacked.reachable.expect("a reachable pack");
    assert_eq!(
        reachable.object_count(),
        rev_list_objects(&repo, &["--all"]).len()
    );
    // C git at its best after the same two pushes: `git repack -adb`.
    let peer = tmp.path().join("peer.git");
    git(
        tmp.path(),
        &["init", "-q", "--bare", peer.to_str().unwrap()],
    );
    let url = format!("file://{}", peer.display());
    git(&repo, &["push", "-q", &url, "main~200:refs/heads/main"]);
    git(&repo, &["push", "-q", &url, "--all"]);
    git(&repo, &["push", "-q", &url, "--tags"]);
    git(&peer, &["repack", "-adbq", "--write-bitmap-index"]);
    let gits: u64 = std::fs::read_dir(peer.join("objects/pack"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pack"))
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    let ours = std::fs::metadata(&reachable.pack_path).unwrap().len();
    assert!(ours <= gits, "compacted pack {ours} bytes, git's {gits}");
}

/// A repository of `commits` commits made by the benchmark's script, under `dir`.
fn large_repo(dir: &Path, commits: usize) -> PathBuf {
    let repo = dir.join("src");
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../bench/make-large-repo.sh"
    );
    let status = Command::new("bash")
        .arg(script)
        .arg(&repo)
        .arg(commits.to_string())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    repo
}

/// Compact `db` for every ref of `repo`, with tip entries for `main`.
fn compact_every_ref(db: &ObjectDb, repo: &Path, work: &Path) -> gitclaw_pack::repack::Repacked {
    let tips: Vec<ObjectId> = git(repo, &["for-each-ref", "--format=%(objectname)"])
        .lines()
        .map(oid)
        .collect();
    let main = oid(&git(repo, &["rev-parse", "main"]));
    gitclaw_pack::repack::repack(db, &tips, &[main], work, &WriteOptions::default()).unwrap()
}

#[test]
fn a_walk_by_commit_graph_positions_finds_what_a_walk_by_ids_finds() {
    // The same pack opened with a commit-graph of all its commits, and of its
    // older history: for every want and have (and a want with two haves), the
    // walk through the graph's positions sends what the walk by ids does — the
    // commits in the same order — or, where the graph proves a want the
    // client's, less and still all the client lacks.
    let f = fixture();
    let ids: Vec<ObjectId> = git(&f.repo, &["rev-list", "--all"])
        .lines()
        .map(oid)
        .collect();
    assert!(ids.len() >= 8, "{} commits", ids.len());
    let mut plain_graph = Graph::new(&f.db);
    let index_path = f.db.packs()[0].index_path().to_path_buf();
    // The pack with a commit-graph of `commits` (closed under parents).
    let mut graph_db = |commits: &[ObjectId], name: &str| {
        let infos: Vec<_> = commits
            .iter()
            .map(|id| (*id, plain_graph.commit_info(id).unwrap()))
            .collect();
        let borrowed: Vec<_> = infos.iter().map(|(id, info)| (*id, &**info)).collect();
        let graph_path = f.scratch.join(name);
        assert!(gitclaw_pack::commit_graph::write(
            &borrowed,
            &[],
            &Default::default(),
            &graph_path
        )
        .unwrap());
        ObjectDb::new(
            vec![Arc::new(
                PackHandle::open(&index_path).unwrap().with_commit_graph(
                    gitclaw_pack::commit_graph::CommitGraph::open(&graph_path).unwrap(),
                ),
            )],
            Arc::new(NoLoose),
        )
    };
    let with_graph = graph_db(&ids, "all.graph");
    // A graph of the older history only, as after a compaction followed by
    // pushes: the walk meets commits by position and by id, and must order
    // those of equal times (the fixture's are seconds apart at most) by id.
    let older: Vec<ObjectId> = git(&f.repo, &["rev-list", &ids[ids.len() / 2].to_string()])
        .lines()
        .map(oid)
        .collect();
    assert!(older.len() >= 2 && older.len() < ids.len());
    let with_older_graph = graph_db(&older, "older.graph");
    let all_commits: BTreeSet<ObjectId> = ids.iter().copied().collect();
    let walk = |db: &ObjectDb, wants: &[ObjectId], haves: &[ObjectId]| {
        let mut graph = Graph::new(db);
        let plan = plan_shallow(&mut graph, wants, &DeepenRequest::default()).unwrap();
        let outcome = enumerate(&mut graph, wants, haves, &plan, &WalkOptions::default()).unwrap();
        let commits: Vec<ObjectId> = outcome
            .objects
            .iter()
            .filter(|o| o.kind == gitclaw_pack::Kind::Commit)
            .map(|o| o.id)
            .collect();
        let objects: BTreeSet<ObjectId> = outcome.objects.iter().map(|o| o.id).collect();
        // The trees and blobs credited to the client; its commits are checked
        // below (a walk that proves a want the client's by the graph's
        // first-parent intervals visits other commits of the client's).
        let has: BTreeSet<ObjectId> = outcome.client_has.iter().copied().collect();
        let (has_commits, has_other): (BTreeSet<ObjectId>, BTreeSet<ObjectId>) =
            has.into_iter().partition(|id| all_commits.contains(id));
        let edges: BTreeSet<ObjectId> = outcome.edge_objects.iter().map(|o| o.id).collect();
        ((commits, objects, has_other, edges), has_commits)
    };
    // Every commit a walk credits the client with is one its haves reach.
    let reached = |haves: &[ObjectId]| -> BTreeSet<ObjectId> {
        if haves.is_empty() {
            return BTreeSet::new();
        }
        let args: Vec<String> = std::iter::once("rev-list".to_string())
            .chain(haves.iter().map(|h| h.to_string()))
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        git(&f.repo, &args).lines().map(oid).collect()
    };
    let mut cases: Vec<(Vec<ObjectId>, Vec<ObjectId>)> = Vec::new();
    for want in &ids {
        cases.push((vec![*want], vec![]));
        for have in &ids {
            cases.push((vec![*want], vec![*have]));
        }
    }
    cases.push((vec![ids[0]], vec![ids[ids.len() / 2], ids[ids.len() - 1]]));
    cases.push((ids.clone(), vec![ids[1]]));
    for (wants, haves) in &cases {
        let (by_ids, has_by_ids) = walk(&f.db, wants, haves);
        let client = reached(haves);
        assert!(has_by_ids.is_subset(&client));
        // What the client lacks, exactly: every walk sends at least that.
        let lacks: BTreeSet<ObjectId> = {
            let mut args: Vec<String> = vec!["rev-list".into()];
            args.extend(wants.iter().map(|w| w.to_string()));
            args.extend(haves.iter().map(|h| format!("^{h}")));
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            git(&f.repo, &args).lines().map(oid).collect()
        };
        for (db, name) in [(&with_graph, "graph"), (&with_older_graph, "older graph")] {
            let (found, has_commits) = walk(db, wants, haves);
            let context = format!("{name}: wants {wants:?}, haves {haves:?}");
            let sent: BTreeSet<ObjectId> = found.0.iter().copied().collect();
            let sent_by_ids: BTreeSet<ObjectId> = by_ids.0.iter().copied().collect();
            assert!(
                lacks.is_subset(&sent),
                "{context}: sends all the client lacks"
            );
            // The walk by ids, like git's, may send commits the client has when
            // commit times tie; the graph's first-parent intervals prove some of
            // those the client's, never the reverse. Where the walk by ids was
            // exact, both walks are the same walk.
            assert!(sent.is_subset(&sent_by_ids), "{context}: sends no more");
            if sent_by_ids == lacks {
                assert_eq!(found, by_ids, "{context}");
            }
            assert!(
                has_commits.is_subset(&client),
                "{context}: credited {:?}",
                has_commits.difference(&client).collect::<Vec<_>>()
            );
        }
    }
}

/// A line of `n` commits (one a minute, each changing one file), packed, and
/// opened without and with the commit-graph compaction writes.
struct LinearHistory {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    plain: ObjectDb,
    graphed: ObjectDb,
}

impl LinearHistory {
    fn new(n: usize) -> Self {
        Self::with_side(n, None)
    }

    /// With a branch `side` of `len` commits forked from commit `at`, made after
    /// main's (a release branch with recent fixes).
    fn with_side(n: usize, side: Option<(usize, usize)>) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("src");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        let mut stream = String::new();
        for c in 1..=n {
            let body = format!("version {c}\n");
            stream.push_str(&format!(
                "commit refs/heads/main\nmark :{c}\ncommitter C <c@example.com> {} +0000\ndata 2\nc\n",
                1_600_000_000 + c * 60
            ));
            if c > 1 {
                stream.push_str(&format!("from :{}\n", c - 1));
            }
            stream.push_str(&format!(
                "M 100644 inline f.txt\ndata {}\n{body}\n",
                body.len()
            ));
        }
        if let Some((at, len)) = side {
            for c in 1..=len {
                let body = format!("side {c}\n");
                stream.push_str(&format!(
                    "commit refs/heads/side\ncommitter C <c@example.com> {} +0000\ndata 2\ns\n",
                    1_600_000_000 + (n + c) * 60 + 30
                ));
                if c == 1 {
                    stream.push_str(&format!("from :{at}\n"));
                }
                stream.push_str(&format!(
                    "M 100644 inline g.txt\ndata {}\n{body}\n",
                    body.len()
                ));
            }
        }
        let (ok, _, err) = git_stdin(&repo, &["fast-import", "--quiet"], stream.as_bytes());
        assert!(ok, "{err}");
        let (plain, graphed) = stored_with_graph(tmp.path(), &repo);
        LinearHistory {
            _tmp: tmp,
            repo,
            plain,
            graphed,
        }
    }

    /// Commit `c` (1 is the root).
    fn at(&self, c: usize, n: usize) -> ObjectId {
        oid(&git(&self.repo, &["rev-parse", &format!("main~{}", n - c)]))
    }
}

/// `repo`'s objects in one pack stored under `dir`: opened alone, and with a
/// commit-graph of all its commits.
fn stored_with_graph(dir: &Path, repo: &Path) -> (ObjectDb, ObjectDb) {
    let store = dir.join("store");
    std::fs::create_dir_all(&store).unwrap();
    let ingested = ingest_bytes(&pack_of(repo, "--all\n", false), &store, &empty_db())
        .unwrap()
        .unwrap();
    let plain = ObjectDb::new(
        vec![Arc::new(PackHandle::open(&ingested.index_path).unwrap())],
        Arc::new(NoLoose),
    );
    let commits: Vec<ObjectId> = git(repo, &["rev-list", "--all"]).lines().map(oid).collect();
    let infos: Vec<_> = {
        let mut graph = Graph::new(&plain);
        commits
            .iter()
            .map(|id| (*id, graph.commit_info(id).unwrap()))
            .collect()
    };
    let borrowed: Vec<_> = infos.iter().map(|(id, info)| (*id, &**info)).collect();
    let graph_path = dir.join("pack.graph");
    assert!(
        gitclaw_pack::commit_graph::write(&borrowed, &[], &Default::default(), &graph_path)
            .unwrap()
    );
    let graphed = ObjectDb::new(
        vec![Arc::new(
            PackHandle::open(&ingested.index_path)
                .unwrap()
                .with_commit_graph(
                    gitclaw_pack::commit_graph::CommitGraph::open(&graph_path).unwrap(),
                ),
        )],
        Arc::new(NoLoose),
    );
    (plain, graphed)
}

/// Run `f` on a fresh graph of `db`; with the commits and trees it read.
fn counting_reads<T>(db: &ObjectDb, f: impl FnOnce(&mut Graph<'_>) -> T) -> (T, u64) {
    let parsed = std::rc::Rc::new(std::cell::Cell::new(0u64));
    let mut graph = Graph::new(db);
    let counter = parsed.clone();
    graph.on_progress(move |n| counter.set(n));
    let out = f(&mut graph);
    (out, parsed.get())
}

/// The commits a fetch of `wants` by a client with `haves` sends, with the
/// commits and trees its walk read.
fn sent_commits(
    db: &ObjectDb,
    wants: &[ObjectId],
    haves: &[ObjectId],
) -> (BTreeSet<ObjectId>, u64) {
    counting_reads(db, |graph| {
        let plan = plan_shallow(graph, wants, &DeepenRequest::default()).unwrap();
        let outcome = enumerate(graph, wants, haves, &plan, &WalkOptions::default()).unwrap();
        outcome
            .objects
            .iter()
            .filter(|o| o.kind == gitclaw_pack::Kind::Commit)
            .map(|o| o.id)
            .collect()
    })
}

#[test]
fn a_want_a_have_reaches_by_first_parents_is_not_walked_to() {
    // 300 commits in a line, and a client at commit 250 that wants the tip and
    // commit 20 (an old branch it lacks the name of): with the commit-graph
    // compaction writes, the walk proves commit 20 the client's without walking
    // the 230 commits back to it.
    let h = LinearHistory::new(300);
    let (tip, old, have) = (h.at(300, 300), h.at(20, 300), h.at(250, 300));
    let walk = |db: &ObjectDb| {
        let (sent, parsed) = sent_commits(db, &[tip, old], &[have]);
        (sent.len(), parsed)
    };
    let (sent_by_ids, parsed_by_ids) = walk(&h.plain);
    let (sent, parsed) = walk(&h.graphed);
    assert_eq!(sent, 50, "the 50 commits after the client's");
    assert_eq!(sent_by_ids, 50);
    assert!(
        parsed_by_ids > 230,
        "by ids, the walk goes back to commit 20: {parsed_by_ids}"
    );
    // About 50 commits, their trees and the client's tree, then a few steps
    // past the client's commit; 387 without the intervals (the walk by
    // position going back to commit 20).
    assert!(
        parsed < 200,
        "by the graph, it stops near the client's commit: {parsed}"
    );
}

#[test]
fn negotiation_is_ready_when_the_wants_the_client_lacks_reach_its_commit() {
    // A client at commit 250 of 300 that wants the tip and commit 20 (an old
    // branch it lacks the name of), and names its own commit first: the tip
    // reaches it, and the intervals show commit 20 below it, so the server
    // can say "ready" in the first round instead of asking for older haves.
    let h = LinearHistory::new(300);
    let (tip, old, have) = (h.at(300, 300), h.at(20, 300), h.at(250, 300));
    let ready = |db: &ObjectDb, wants: &[ObjectId], shallow: bool| {
        let mut graph = Graph::new(db);
        gitclaw_pack::walk::ok_to_give_up(&mut graph, wants, &[have], shallow).unwrap()
    };
    assert!(ready(&h.graphed, &[tip, old], false));
    assert!(ready(&h.graphed, &[tip], false));
    // Without the intervals (git's test), commit 20 reaches no common commit.
    assert!(!ready(&h.plain, &[tip, old], false));
    assert!(ready(&h.plain, &[tip], false));
    // Below a shallow client's boundary, what its commit reaches is not its own.
    assert!(!ready(&h.graphed, &[tip, old], true));
    // A want on no first-parent line below the client's commit still needs one
    // the client has below it.
    let h = LinearHistory::with_side(300, Some((20, 3)));
    let side = oid(&git(&h.repo, &["rev-parse", "side"]));
    let mut graph = Graph::new(&h.graphed);
    assert!(
        !gitclaw_pack::walk::ok_to_give_up(&mut graph, &[side], &[h.at(250, 300)], false).unwrap()
    );
    assert!(gitclaw_pack::walk::ok_to_give_up(
        &mut graph,
        &[side],
        &[h.at(250, 300), h.at(20, 300)],
        false
    )
    .unwrap());
}

#[test]
fn an_old_commit_on_a_tips_first_parent_line_is_reachable_without_a_walk() {
    // A CI checkout by SHA of commit 5 of 300: reachable from the tip, found
    // so by the commit-graph's intervals; a commit no ref reaches is still
    // refused, and a stored closure's old tip is found under a want too.
    let h = LinearHistory::new(300);
    let (tip, old) = (h.at(300, 300), h.at(5, 300));
    let stray = {
        let tree = git(&h.repo, &["rev-parse", "main^{tree}"]);
        oid(&git(&h.repo, &["commit-tree", tree.trim(), "-m", "stray"]))
    };
    let (unreachable, parsed) = counting_reads(&h.graphed, |graph| {
        gitclaw_pack::walk::unreachable_wants(graph, &[tip], &[old]).unwrap()
    });
    assert!(unreachable.is_empty());
    assert!(parsed < 20, "no walk back to commit 5: {parsed} reads");
    let (unreachable_by_ids, parsed_by_ids) = counting_reads(&h.plain, |graph| {
        gitclaw_pack::walk::unreachable_wants(graph, &[tip], &[old]).unwrap()
    });
    assert!(unreachable_by_ids.is_empty());
    assert!(
        parsed_by_ids > 290,
        "by ids, the walk: {parsed_by_ids} reads"
    );
    // Nothing below commit 5 reaches the tip, and no ref the stray commit.
    let mut graph = Graph::new(&h.graphed);
    let refused = gitclaw_pack::walk::unreachable_wants(&mut graph, &[old], &[tip, stray]);
    let mut expected = vec![tip, stray];
    expected.sort();
    assert_eq!(refused.unwrap(), expected);
    let (reaches, parsed) = counting_reads(&h.graphed, |graph| {
        gitclaw_pack::walk::reaches_all(graph, &[tip], &[old], 1000).unwrap()
    });
    assert!(reaches);
    assert!(parsed < 20, "no walk back to commit 5: {parsed} reads");
}

#[test]
fn a_tips_tree_and_blobs_are_found_reachable_in_the_tips_tree() {
    // A partial clone's lazy fetch wants main's root tree, then the blobs of
    // its checkout: found in main's tree, not after a walk of the history of
    // every tip (the old branch `side` is listed last, so the walk would go
    // down it first).
    let h = LinearHistory::with_side(300, Some((10, 3)));
    let tips = [h.at(300, 300), oid(&git(&h.repo, &["rev-parse", "side"]))];
    let tree = oid(&git(&h.repo, &["rev-parse", "main^{tree}"]));
    let blob = oid(&git(&h.repo, &["rev-parse", "main:f.txt"]));
    let old_blob = oid(&git(&h.repo, &["rev-parse", "main~250:f.txt"]));
    let stray = {
        let out = git_stdin(&h.repo, &["hash-object", "-w", "--stdin"], b"stray\n");
        oid(String::from_utf8_lossy(&out.1).trim())
    };
    for db in [&h.plain, &h.graphed] {
        let (unreachable, parsed) = counting_reads(db, |graph| {
            gitclaw_pack::walk::unreachable_wants(graph, &tips, &[tree, blob]).unwrap()
        });
        assert!(unreachable.is_empty());
        // The two tips and the tree (the blob needs no read); 300 commits and
        // more before the tips' trees went first.
        assert!(parsed < 10, "only main's tree is read: {parsed} reads");
        // An older version's blob is found by the walk of the history.
        let mut graph = Graph::new(db);
        let unreachable =
            gitclaw_pack::walk::unreachable_wants(&mut graph, &tips, &[blob, old_blob]);
        assert!(unreachable.unwrap().is_empty());
    }
    // A want the store does not hold is refused, not an error.
    let mut graph = Graph::new(&h.graphed);
    let refused = gitclaw_pack::walk::unreachable_wants(&mut graph, &tips, &[tree, stray]);
    assert_eq!(refused.unwrap(), vec![stray]);
}

#[test]
fn a_walk_through_commits_of_one_second_goes_on_until_the_clients_side_has_marked_them() {
    // Every commit of the same second; a side branch forked from main's commit
    // 7 and merged at its tip; a client at the merge that wants the side's
    // commit, which it has. Commits of equal times are popped by id. Through
    // the graph, the side commit's parent is the client's by the intervals, so
    // nothing interesting stays queued — but the merge, which marks the side
    // commit the client's, may come only after main's commits below the fork:
    // the walk must not stop on a tie. The messages' variants give other ids,
    // so other orders.
    for variant in 0..64 {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("src");
        std::fs::create_dir_all(&repo).unwrap();
        git(&repo, &["init", "-q", "-b", "main"]);
        let commit = |branch: &str, mark: usize, body: &str| {
            format!(
                "commit refs/heads/{branch}\nmark :{mark}\ncommitter C <c@example.com> 1600000000 +0000\ndata {}\n{body}\n",
                body.len()
            )
        };
        let mut stream = String::new();
        for c in 1..=10 {
            stream.push_str(&commit("main", c, &format!("{variant} main {c}")));
            if c > 1 {
                stream.push_str(&format!("from :{}\n", c - 1));
            }
            stream.push_str(&format!("M 100644 inline f.txt\ndata 3\n{c:02}\n\n"));
        }
        stream.push_str(&commit("side", 100, &format!("{variant} side")));
        stream.push_str("from :7\nM 100644 inline g.txt\ndata 2\ns\n\n");
        stream.push_str(&commit("main", 101, &format!("{variant} merge")));
        stream.push_str("from :10\nmerge :100\n\n");
        let (ok, _, err) = git_stdin(&repo, &["fast-import", "--quiet"], stream.as_bytes());
        assert!(ok, "{err}");
        let (side, merge) = (
            oid(&git(&repo, &["rev-parse", "side"])),
            oid(&git(&repo, &["rev-parse", "main"])),
        );
        let (plain, graphed) = stored_with_graph(tmp.path(), &repo);
        for db in [&plain, &graphed] {
            let (sent, _) = sent_commits(db, &[side], &[merge]);
            assert!(sent.is_empty(), "variant {variant}: sends {sent:?}");
        }
    }
}

#[test]
fn a_branch_forked_long_ago_is_walked_only_to_where_it_meets_the_clients_history() {
    // 300 commits on main, a branch of 5 recent commits forked from commit 20,
    // and a client at commit 250 that wants main and the branch: the walk down
    // the branch stops at commit 20, shown the client's by the intervals,
    // instead of going on until the walk from the client's commit comes down
    // to it (a branch whose own commits are old still gets that walk: the
    // walk goes newest first).
    let h = LinearHistory::with_side(300, Some((20, 5)));
    let (tip, have) = (h.at(300, 300), h.at(250, 300));
    let side = oid(&git(&h.repo, &["rev-parse", "side"]));
    let walk = |db: &ObjectDb| sent_commits(db, &[tip, side], &[have]);
    let lacks: BTreeSet<ObjectId> = git(
        &h.repo,
        &[
            "rev-list",
            &tip.to_string(),
            &side.to_string(),
            &format!("^{have}"),
        ],
    )
    .lines()
    .map(oid)
    .collect();
    assert_eq!(lacks.len(), 55);
    let (sent_by_ids, parsed_by_ids) = walk(&h.plain);
    let (sent, parsed) = walk(&h.graphed);
    assert_eq!(sent, lacks);
    assert_eq!(sent_by_ids, lacks);
    assert!(
        parsed_by_ids > 230,
        "by ids, the walk goes back to commit 20: {parsed_by_ids}"
    );
    assert!(parsed < 200, "by the graph, it stops at the fork: {parsed}");
}

#[test]
fn a_fetch_reads_the_clients_trees_only_where_the_commits_it_gets_changed_them() {
    // 20 directories of 5 subdirectories of 2 files, and a new commit that
    // edits one file three levels down (a big file, a small edit). A client
    // with the old commit has all of those trees; the walk reads them only
    // along the changed path (as git's sparse walk does), and the thin pack
    // still leans on the client's old version of the file.
    let (tmp, repo) = new_repo();
    let line = |i: usize| format!("line {i:05} of a file that changes a little\n");
    let big: String = (0..2000).map(line).collect();
    for d in 0..20 {
        for e in 0..5 {
            let dir = repo.join(format!("d{d:02}/e{e}"));
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("big.txt"), format!("{d} {e}\n{big}")).unwrap();
            std::fs::write(dir.join("small.txt"), format!("{d} {e}\n")).unwrap();
        }
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "old"]);
    let edited = repo.join("d07/e3/big.txt");
    let text = std::fs::read_to_string(&edited).unwrap();
    std::fs::write(&edited, text.replace("line 01000", "LINE 01000")).unwrap();
    git(&repo, &["commit", "-q", "-am", "new"]);
    let (new, old) = (
        oid(&git(&repo, &["rev-parse", "main"])),
        oid(&git(&repo, &["rev-parse", "main~1"])),
    );
    let edge_trees = git(&repo, &["ls-tree", "-r", "-t", "main~1"])
        .lines()
        .filter(|l| l.contains(" tree "))
        .count()
        + 1;
    assert_eq!(edge_trees, 121);

    let db = stored_as_packed(&repo, &tmp.path().join("store"));
    let (outcome, parsed) = counting_reads(&db, |graph| {
        let plan = plan_shallow(graph, &[new], &DeepenRequest::default()).unwrap();
        enumerate(graph, &[new], &[old], &plan, &WalkOptions::default()).unwrap()
    });
    // Exactly what git lists as new.
    let sent: BTreeSet<String> = outcome.objects.iter().map(|o| o.id.to_string()).collect();
    assert_eq!(
        sent,
        rev_list_objects(&repo, &[&new.to_string(), "--not", &old.to_string()])
    );
    assert_eq!(sent.len(), 5, "the commit, three trees, the file");
    // The changed path's three trees on each side, and the two commits; a
    // walk of the client's whole tree reads 121 trees.
    assert!(parsed <= 3 * 2 + 2, "{parsed} commits and trees read");

    // The thin pack sends the file (and the trees) as deltas against the
    // client's versions at their paths, and completes in a copy of the client.
    let (thin, stats) = write_fetch_pack(&db, &outcome, true);
    assert!(stats.new_deltas >= 1, "{stats:?}");
    assert!(thin.len() < big.len() / 20, "{} bytes", thin.len());
    let client = tmp.path().join("client.git");
    client_at(&repo, &client, &old.to_string());
    fix_thin_and_check(&client, &thin, "main", &new.to_string());
}

#[test]
fn every_object_sent_or_met_at_the_edge_carries_the_name_hash_of_its_path() {
    // Nested directories, names with spaces, and a new commit that changes a
    // file three levels down, so a fetch also reads the client's trees there.
    let (tmp, repo) = new_repo();
    for (i, path) in [
        "top.txt",
        "a/one.c",
        "a/b c/two words.h",
        "a/b c/d/deep file.rs",
        "e/f/g/h/i/leaf",
    ]
    .iter()
    .enumerate()
    {
        let file = repo.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, format!("content {i} of {path}\n")).unwrap();
    }
    git(&repo, &["add", "-A"]);
    git(&repo, &["commit", "-q", "-m", "first"]);
    let old = oid(&git(&repo, &["rev-parse", "main"]));
    std::fs::write(repo.join("a/b c/d/deep file.rs"), "changed\n").unwrap();
    git(&repo, &["commit", "-q", "-am", "second"]);
    let new = oid(&git(&repo, &["rev-parse", "main"]));
    let db = stored_as_packed(&repo, &tmp.path().join("store"));

    // Each object's path as git lists it (every content is distinct, so each
    // object has one path); commits have none.
    let paths = |args: &[&str]| -> std::collections::HashMap<ObjectId, String> {
        let mut all = vec!["rev-list", "--objects"];
        all.extend_from_slice(args);
        git(&repo, &all)
            .lines()
            .filter_map(|line| line.split_once(' '))
            .map(|(id, path)| (oid(id), path.to_owned()))
            .collect()
    };
    let check = |objects: &[gitclaw_pack::walk::WalkObject],
                 paths: &std::collections::HashMap<ObjectId, String>| {
        let mut named = 0;
        for object in objects {
            let path = paths.get(&object.id).map_or("", String::as_str);
            named += usize::from(!path.is_empty());
            assert_eq!(
                object.name_hash,
                gitclaw_pack::walk::name_hash(path.as_bytes()),
                "{} at {path:?}",
                object.id
            );
        }
        named
    };

    let mut graph = Graph::new(&db);
    let plan = plan_shallow(&mut graph, &[new], &DeepenRequest::default()).unwrap();
    let clone = enumerate(&mut graph, &[new], &[], &plan, &WalkOptions::default()).unwrap();
    assert!(check(&clone.objects, &paths(&["main"])) >= 10);

    let mut graph = Graph::new(&db);
    let fetch = enumerate(&mut graph, &[new], &[old], &plan, &WalkOptions::default()).unwrap();
    // Sent: the new file and the trees above it.
    assert!(check(&fetch.objects, &paths(&["main", "--not", "main~1"])) >= 4);
    // Met in the client's trees along the way: named as in its commit.
    assert!(check(&fetch.edge_objects, &paths(&["main~1"])) >= 4);
}

#[test]
fn abbreviated_ids_find_every_object_they_start_once() {
    let f = fixture();
    let packed: Vec<ObjectId> = f.db.packs()[0].oids().unwrap().collect();
    // Every third object also loose, and one object loose only.
    let mut loose = std::collections::HashMap::new();
    let mut reader = f.db.reader();
    let mut buf = Vec::new();
    for id in packed.iter().step_by(3) {
        let kind = reader.read_existing(id, &mut buf).unwrap();
        loose.insert(*id, (kind, buf.clone()));
    }
    let only_loose =
        gix_object::compute_hash(gix_hash::Kind::Sha1, gix_object::Kind::Blob, b"x").unwrap();
    loose.insert(only_loose, (gitclaw_pack::Kind::Blob, b"x".to_vec()));
    drop(reader);
    let db = ObjectDb::new(f.db.packs().to_vec(), Arc::new(MemLoose(loose)));
    let mut all: Vec<ObjectId> = packed.clone();
    all.push(only_loose);
    all.sort();
    all.dedup();
    let mut prefixes: Vec<String> = ["0000", "ffff", "8000"].map(String::from).to_vec();
    for id in all.iter().step_by(7) {
        let hex = id.to_string();
        prefixes.extend([4, 5, 9, 40].map(|n| hex[..n].to_string()));
    }
    prefixes.push(only_loose.to_string()[..6].to_string());
    for hex in &prefixes {
        let prefix = gix_hash::Prefix::from_hex(hex).unwrap();
        let expected: Vec<ObjectId> = all
            .iter()
            .filter(|id| id.to_string().starts_with(hex.as_str()))
            .copied()
            .collect();
        assert_eq!(db.ids_with_prefix(&prefix, 256).unwrap(), expected, "{hex}");
        // At most the limit.
        let one = db.ids_with_prefix(&prefix, 1).unwrap();
        assert_eq!(
            one,
            expected.iter().take(1).copied().collect::<Vec<_>>(),
            "{hex}"
        );
    }
}

#[test]
fn tree_listings_are_ls_tree_s_and_stop_at_their_limit() {
    let f = fixture();
    let tree = oid(&git(&f.repo, &["rev-parse", "main^{tree}"]));
    let mut reader = f.db.reader();
    for recursive in [false, true] {
        let mut args = vec!["ls-tree", "-z", "-l"];
        if recursive {
            args.push("-r");
        }
        args.push("main");
        let listed = git(&f.repo, &args);
        let expected: Vec<(String, String)> = listed
            .split_terminator('\0')
            .map(|line| {
                let (meta, path) = line.split_once('\t').unwrap();
                let fields: Vec<&str> = meta.split_whitespace().collect();
                (
                    path.to_string(),
                    format!("{} {} {} {}", fields[0], fields[1], fields[2], fields[3]),
                )
            })
            .collect();
        let whole =
            gitclaw_pack::files::list_tree(&mut reader, tree, b"", recursive, usize::MAX).unwrap();
        assert!(!whole.truncated);
        let got: Vec<(String, String)> = whole
            .items
            .iter()
            .map(|item| {
                let size = item.size.map_or("-".to_string(), |s| s.to_string());
                let line = format!("{} {} {} {size}", item.mode(), item.kind_name(), item.id);
                (String::from_utf8(item.path.clone()).unwrap(), line)
            })
            .collect();
        assert_eq!(got, expected, "recursive: {recursive}");
        let cut = gitclaw_pack::files::list_tree(&mut reader, tree, b"", recursive, 3).unwrap();
        assert!(cut.truncated);
        assert_eq!(cut.items, whole.items[..3]);
    }
}

#[test]
fn tree_diffs_are_git_diff_s() {
    let f = fixture_of(|dir| {
        make_repo(dir);
        git(dir, &["checkout", "-q", "main"]);
        let write = |path: &str, text: &str| {
            let path = dir.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        // Names that sort differently as files and as directories.
        for path in ["a-b", "a/c", "a.b", "ab/x/y", "x", "d", "run.sh"] {
            write(path, &format!("{path}\n"));
        }
        git(dir, &["add", "-A"]);
        git(dir, &["commit", "-q", "-m", "before"]);
        git(dir, &["tag", "before"]);
        // A file made a directory and a directory made a file; a file made a
        // link; a mode change; a submodule; edits deep down; a deletion.
        std::fs::remove_file(dir.join("d")).unwrap();
        write("d/inner", "now a directory\n");
        std::fs::remove_dir_all(dir.join("a")).unwrap();
        write("a", "now a file\n");
        std::fs::remove_file(dir.join("x")).unwrap();
        std::os::unix::fs::symlink("a", dir.join("x")).unwrap();
        std::fs::set_permissions(
            dir.join("run.sh"),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        write("ab/x/y", "edited\n");
        write("ab/x/z", "new\n");
        std::fs::remove_file(dir.join("a.b")).unwrap();
        git(dir, &["add", "-A"]);
        let head = git(dir, &["rev-parse", "HEAD"]);
        git(
            dir,
            &[
                "update-index",
                "--add",
                "--cacheinfo",
                &format!("160000,{},sub", head.trim()),
            ],
        );
        git(dir, &["commit", "-q", "-m", "after"]);
    });
    let revisions = ["before", "main", "main~3", "side", "main~6"];
    let mut reader = f.db.reader();
    for old in revisions {
        for new in revisions {
            let listed = git(
                &f.repo,
                &[
                    "diff",
                    "--raw",
                    "--no-abbrev",
                    "-z",
                    "--no-renames",
                    old,
                    new,
                ],
            );
            let expected = common::git_raw_lines(listed.as_bytes());
            let tree = |rev: &str| oid(&git(&f.repo, &["rev-parse", &format!("{rev}^{{tree}}")]));
            let diff =
                gitclaw_pack::files::diff_trees(&mut reader, tree(old), tree(new), usize::MAX)
                    .unwrap();
            assert!(!diff.truncated);
            let got = common::raw_lines(&diff.changes);
            assert_eq!(got, expected, "{old} {new}");
            if expected.len() > 1 {
                let cut =
                    gitclaw_pack::files::diff_trees(&mut reader, tree(old), tree(new), 1).unwrap();
                assert!(cut.truncated);
                assert_eq!(cut.changes[..], diff.changes[..1]);
            }
        }
    }
}

/// A repository whose `refs/heads/before` and `refs/heads/after` hold
/// exactly these files (path, content).
fn two_trees(before: &[(String, String)], after: &[(String, String)]) -> Fixture {
    fixture_of(|dir| {
        git(dir, &["init", "-q", "--bare"]);
        let mut stream = String::new();
        for (name, files) in [("before", before), ("after", after)] {
            stream.push_str(&format!(
                "commit refs/heads/{name}\ncommitter C <c@example.com> 1700000000 +0000\ndata 0\ndeleteall\n"
            ));
            for (path, content) in files {
                stream.push_str(&format!(
                    "M 100644 inline {path}\ndata {}\n{content}\n",
                    content.len()
                ));
            }
        }
        let (ok, _, err) = git_stdin(dir, &["fast-import", "--quiet"], stream.as_bytes());
        assert!(ok, "{err}");
    })
}

/// `before` and `after` of [`two_trees`] diffed with renames under `limits`,
/// as raw lines.
fn renamed(f: &Fixture, limits: &RenameLimits) -> (Vec<String>, Detection) {
    let tree = |rev: &str| oid(&git(&f.repo, &["rev-parse", &format!("{rev}^{{tree}}")]));
    let mut reader = f.db.reader();
    let diff = diff_trees(&mut reader, tree("before"), tree("after"), usize::MAX).unwrap();
    let (changes, detection) = detect_renames(&f.db, &mut reader, diff.changes, limits).unwrap();
    (common::raw_lines(&changes), detection)
}

fn git_renamed(f: &Fixture, options: &[&str]) -> Vec<String> {
    let mut args = vec!["diff", "--raw", "-z", "--no-abbrev"];
    args.extend_from_slice(options);
    args.extend_from_slice(&["before", "after"]);
    common::git_raw_lines(git(&f.repo, &args).as_bytes())
}

/// All the way git goes, [`renamed`] finds what `git diff -M` does, an
/// inexact rename among it.
fn assert_inexact_renames_are_git_s(f: &Fixture) {
    let (got, detection) = renamed(f, &RenameLimits::default());
    assert_eq!(detection, Detection::Complete);
    let expected = git_renamed(f, &["-M"]);
    assert!(expected.iter().any(|l| l.contains(" R0")), "{expected:?}");
    assert_eq!(got, expected);
}

fn lines(prefix: &str, n: usize) -> String {
    (0..n).map(|i| format!("{prefix} line {i}\n")).collect()
}

#[test]
fn equally_similar_sources_are_git_s_first_four() {
    // Six deleted files, each as similar to the added one: git keeps the
    // first four candidates met and takes the first.
    let common_part = lines("shared", 20);
    let before: Vec<(String, String)> = (1..=6)
        .map(|i| (format!("a{i}.txt"), format!("{common_part}unique {i}\n")))
        .collect();
    let after = vec![("b.txt".to_string(), format!("{common_part}other\n"))];
    assert_inexact_renames_are_git_s(&two_trees(&before, &after));
}

#[test]
fn past_git_s_rename_limit_only_exact_and_same_name_renames_are_found() {
    // 1,003 deleted and 1,003 added files, each added one an edit of a
    // deleted one; one exact rename and one by file name leave 1,002 × 1,002
    // pairs, more than 1,000 × 1,000: git compares none of them.
    let n = 1003;
    let mut before: Vec<(String, String)> = (0..n - 1)
        .map(|i| (format!("old/f{i}.txt"), lines(&format!("file {i}"), 8)))
        .collect();
    let mut after: Vec<(String, String)> = (0..n - 1)
        .map(|i| {
            let content = if i == 0 {
                before[0].1.clone()
            } else {
                format!("{}edited\n", lines(&format!("file {i}"), 8))
            };
            (format!("new/g{i}.txt"), content)
        })
        .collect();
    before.push(("old/h.txt".into(), lines("same name", 10)));
    after.push((
        "new/sub/h.txt".into(),
        format!("{}more\n", lines("same name", 10)),
    ));
    let f = two_trees(&before, &after);
    let (got, detection) = renamed(&f, &RenameLimits::default());
    assert_eq!(detection, Detection::OverRenameLimit);
    let expected = git_renamed(&f, &["-M"]);
    assert_eq!(expected.iter().filter(|l| l.contains(" R")).count(), 2);
    assert_eq!(got, expected);
}

#[test]
fn renames_past_the_budget_stop_where_git_s_options_would() {
    // An exact rename, one by file name (small files), and two pairs of big
    // similar files only the pairwise step finds.
    let before = vec![
        ("same.txt".to_string(), lines("exact", 5)),
        ("d/h.txt".to_string(), lines("by name", 10)),
        ("big-old.txt".to_string(), lines("big", 500)),
        ("large-old.txt".to_string(), lines("large", 500)),
    ];
    let after = vec![
        ("moved.txt".to_string(), lines("exact", 5)),
        (
            "e/h.txt".to_string(),
            format!("{}more\n", lines("by name", 10)),
        ),
        (
            "big-new.txt".to_string(),
            format!("{}more\n", lines("big", 500)),
        ),
        (
            "large-new.txt".to_string(),
            format!("{}more\n", lines("large", 500)),
        ),
    ];
    let f = two_trees(&before, &after);
    let (all, detection) = renamed(&f, &RenameLimits::default());
    assert_eq!(detection, Detection::Complete);
    assert_eq!(all, git_renamed(&f, &["-M"]));
    assert_eq!(all.iter().filter(|l| l.contains(" R")).count(), 4);
    // Nothing may be read: exact renames only, as `-M100%` finds them.
    let none = RenameLimits {
        max_bytes: 0,
        ..RenameLimits::default()
    };
    let (got, detection) = renamed(&f, &none);
    assert_eq!(detection, Detection::OverBudget);
    assert_eq!(got, git_renamed(&f, &["-M100%"]));
    // Enough for the small files, not the big: exact renames and the one by
    // file name, as git finds them with no pairwise step (`-l1`: 2 × 2 pairs
    // are left, more than 1 × 1).
    let small = RenameLimits {
        max_bytes: 1000,
        ..RenameLimits::default()
    };
    let (got, detection) = renamed(&f, &small);
    assert_eq!(detection, Detection::OverBudget);
    let expected = git_renamed(&f, &["-M", "-l1"]);
    assert_eq!(expected.iter().filter(|l| l.contains(" R")).count(), 2);
    assert_eq!(got, expected);
}

#[test]
fn big_files_read_as_streams_are_compared_as_git_compares_them() {
    // Above 16 MiB: a blob stored whole is read as a stream, in pieces.
    let big: String = (0..1_700_000).map(|i| format!("line {i}\r\n")).collect();
    assert!(big.len() as u64 > gitclaw_pack::files::STREAM_ABOVE);
    let before = vec![("data/big.txt".to_string(), big.clone())];
    let after = vec![("moved/big.txt".to_string(), format!("{big}one more\r\n"))];
    assert_inexact_renames_are_git_s(&two_trees(&before, &after));
}
