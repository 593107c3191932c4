//! Two rules of fetch packs, checked over random histories built with
//! `git fast-import`: a fetch pack holds everything reachable from the wants and
//! not from the haves, nothing else the wants do not reach (and `git index-pack
//! --strict` accepts it); a depth-N shallow fetch holds the commits up to depth N
//! and none deeper.

use std::{
    collections::{BTreeSet, HashMap, VecDeque},
    io::Write,
    path::Path,
    process::{Command, Stdio},
    sync::Arc,
};

use gitclaw_pack::{
    describe::{describe, DescribeOptions},
    files::diff_trees,
    ingest::{ingest, IngestOptions},
    odb::{NoLoose, ObjectDb, PackHandle},
    renames::{detect_renames, Detection, RenameLimits},
    walk::{enumerate, log, plan_shallow, range, DeepenRequest, Graph, LogRequest, WalkOptions},
    writer::{write_pack, WriteOptions},
    Kind, ObjectId,
};
use proptest::prelude::*;

mod common;
use common::{git_raw_lines, raw_lines};

fn run(dir: &Path, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[derive(Debug, Clone)]
struct CommitSpec {
    parents: Vec<usize>,
    edits: Vec<(u8, u8)>, // (file index, content seed)
    /// Commit time offset used when clocks are skewed.
    skewed_time: u16,
}

fn history() -> impl Strategy<Value = Vec<CommitSpec>> {
    (1usize..14).prop_flat_map(|n| {
        let commits: Vec<_> = (0..n)
            .map(|i| {
                let parents = if i == 0 {
                    Just(Vec::new()).boxed()
                } else {
                    proptest::collection::btree_set(0..i, 0..=2usize.min(i))
                        .prop_map(|s| s.into_iter().rev().collect::<Vec<_>>())
                        .boxed()
                };
                (
                    parents,
                    proptest::collection::vec((0u8..6, any::<u8>()), 1..4),
                    any::<u16>(),
                )
                    .prop_map(|(parents, edits, skewed_time)| CommitSpec {
                        parents,
                        edits,
                        skewed_time,
                    })
            })
            .collect();
        commits
    })
}

/// Build the history in a fresh repository; commit i is at refs/heads/c{i}.
/// Commit times grow with i, or are random when `skewed` (clocks that lie).
fn build(dir: &Path, commits: &[CommitSpec], skewed: bool) -> Vec<ObjectId> {
    build_timed(dir, commits, &|i, c| {
        if skewed {
            1_700_000_000 + usize::from(c.skewed_time)
        } else {
            1_700_000_000 + i * 100
        }
    })
}

/// [`build`], commit `i` dated `time(i, spec)`.
fn build_timed(
    dir: &Path,
    commits: &[CommitSpec],
    time: &dyn Fn(usize, &CommitSpec) -> usize,
) -> Vec<ObjectId> {
    run(dir, &["init", "-q", "--bare"], b"");
    let mut stream = Vec::new();
    for (i, c) in commits.iter().enumerate() {
        writeln!(stream, "commit refs/heads/c{i}\nmark :{}", i + 1).unwrap();
        writeln!(stream, "committer C <c@example.com> {} +0000", time(i, c)).unwrap();
        let msg = format!("commit {i}");
        write!(stream, "data {}\n{msg}\n", msg.len()).unwrap();
        if let Some(first) = c.parents.first() {
            writeln!(stream, "from :{}", first + 1).unwrap();
        }
        for p in c.parents.iter().skip(1) {
            writeln!(stream, "merge :{}", p + 1).unwrap();
        }
        for (file, seed) in &c.edits {
            let content = format!("file {file} seed {seed}\n").repeat(1 + *seed as usize % 7);
            write!(
                stream,
                "M 100644 inline dir{}/f{file}.txt\ndata {}\n{content}\n",
                file % 2,
                content.len()
            )
            .unwrap();
        }
    }
    run(dir, &["fast-import", "--quiet"], &stream);
    (0..commits.len())
        .map(|i| {
            let out = run(dir, &["rev-parse", &format!("refs/heads/c{i}")], b"");
            ObjectId::from_hex(String::from_utf8(out).unwrap().trim().as_bytes()).unwrap()
        })
        .collect()
}

/// The history in a fresh repository (`r.git` in the directory returned),
/// dated by `clock`: 0 honest, 1 skewed at random, 2 mostly equal dates.
fn clocked_repo(commits: &[CommitSpec], clock: u8) -> (tempfile::TempDir, Vec<ObjectId>, ObjectDb) {
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.git");
    std::fs::create_dir_all(&repo).unwrap();
    let ids = build_timed(&repo, commits, &|i, c| match clock {
        0 => 1_700_000_000 + i * 100,
        1 => 1_700_000_000 + usize::from(c.skewed_time),
        _ => 1_700_000_000 + usize::from(c.skewed_time % 3) * 100,
    });
    let db = open_db(&repo, tmp.path());
    (tmp, ids, db)
}

/// The commit ids a git command prints, one a line.
fn listed_ids(repo: &Path, args: &[&str]) -> Vec<ObjectId> {
    String::from_utf8(run(repo, args, b""))
        .unwrap()
        .lines()
        .map(|l| ObjectId::from_hex(l.as_bytes()).unwrap())
        .collect()
}

fn objects_of(dir: &Path, tips: &[ObjectId]) -> BTreeSet<String> {
    if tips.is_empty() {
        return BTreeSet::new();
    }
    let mut args = vec!["rev-list".to_string(), "--objects".to_string()];
    args.extend(tips.iter().map(|t| t.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    String::from_utf8(run(dir, &args, b""))
        .unwrap()
        .lines()
        .map(|l| l.split(' ').next().unwrap().to_string())
        .collect()
}

/// The objects of the haves' own root trees (and the commits themselves).
fn tree_objects_of(dir: &Path, tips: &[ObjectId]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for tip in tips {
        out.insert(tip.to_string());
        let listing = run(dir, &["ls-tree", "-r", "-t", &tip.to_string()], b"");
        out.extend(
            String::from_utf8(listing)
                .unwrap()
                .lines()
                .map(|l| l.split(['\t', ' ']).nth(2).unwrap().to_string()),
        );
        let tree = run(dir, &["rev-parse", &format!("{tip}^{{tree}}")], b"");
        out.insert(String::from_utf8(tree).unwrap().trim().to_string());
    }
    out
}

fn commit_ids(dir: &Path, tips: &[ObjectId]) -> BTreeSet<String> {
    if tips.is_empty() {
        return BTreeSet::new();
    }
    let mut args = vec!["rev-list".to_string()];
    args.extend(tips.iter().map(|t| t.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    String::from_utf8(run(dir, &args, b""))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn open_db(dir: &Path, work: &Path) -> ObjectDb {
    let pack = run(
        dir,
        &["pack-objects", "--stdout", "--revs", "--all", "-q"],
        b"",
    );
    let ingested = ingest(
        &mut &pack[..],
        work,
        &ObjectDb::new(vec![], Arc::new(NoLoose)),
        &IngestOptions::default(),
    )
    .unwrap()
    .unwrap();
    ObjectDb::new(
        vec![Arc::new(PackHandle::open(&ingested.index_path).unwrap())],
        Arc::new(NoLoose),
    )
}

fn indexed_objects(pack: &[u8], source: &Path, scratch: &Path) -> BTreeSet<String> {
    let repo = tempfile::tempdir_in(scratch).unwrap();
    run(repo.path(), &["init", "-q", "--bare"], b"");
    std::fs::write(
        repo.path().join("objects/info/alternates"),
        format!("{}\n", source.join("objects").display()),
    )
    .unwrap();
    run(
        repo.path(),
        &["index-pack", "--strict", "--stdin", "-o", "p.idx"],
        pack,
    );
    let idx = std::fs::read(repo.path().join("p.idx")).unwrap();
    String::from_utf8(run(repo.path(), &["show-index"], &idx))
        .unwrap()
        .lines()
        .map(|l| l.split(' ').nth(1).unwrap().to_string())
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The pack holds everything reachable from the wants and not from
    /// the haves, nothing the wants do not reach, and (git's edge semantics) nothing
    /// of the haves' own trees (each file here stays at its path: git's sparse walk,
    /// and ours, may send again an object the client has only at another path);
    /// with honest clocks its commits are exactly those.
    #[test]
    fn fetch_pack_holds_wants_minus_haves(
        commits in history(),
        picks in proptest::collection::vec((any::<prop::sample::Index>(), any::<bool>()), 1..5),
        skewed in any::<bool>(),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r.git");
        std::fs::create_dir_all(&repo).unwrap();
        let ids = build(&repo, &commits, skewed);
        let db = open_db(&repo, tmp.path());
        let mut wants = Vec::new();
        let mut haves = Vec::new();
        for (index, is_want) in &picks {
            let id = ids[index.index(ids.len())];
            if *is_want { wants.push(id) } else { haves.push(id) }
        }
        if wants.is_empty() {
            wants.push(*ids.last().unwrap());
        }
        let mut graph = Graph::new(&db);
        let plan = plan_shallow(&mut graph, &wants, &DeepenRequest::default()).unwrap();
        let outcome = enumerate(&mut graph, &wants, &haves, &plan, &WalkOptions::default()).unwrap();
        let mut pack = Vec::new();
        write_pack(&db, &outcome.objects, None, &WriteOptions::default(), &mut pack, &mut |_, _, _| {}).unwrap();
        let reachable = objects_of(&repo, &wants);
        let had = objects_of(&repo, &haves);
        let needed: BTreeSet<String> = reachable.difference(&had).cloned().collect();
        let got = indexed_objects(&pack, &repo, tmp.path());
        prop_assert!(got.is_superset(&needed), "missing {:?}", needed.difference(&got).collect::<Vec<_>>());
        prop_assert!(got.is_subset(&reachable), "not wanted {:?}", got.difference(&reachable).collect::<Vec<_>>());
        let edge_trees = tree_objects_of(&repo, &haves);
        prop_assert!(got.is_disjoint(&edge_trees), "resent from the haves' trees {:?}", got.intersection(&edge_trees).collect::<Vec<_>>());
        if !skewed {
            let commits_got: BTreeSet<String> = outcome.objects.iter().filter(|o| o.kind == Kind::Commit).map(|o| o.id.to_string()).collect();
            let commits_needed: BTreeSet<String> = commit_ids(&repo, &wants).difference(&commit_ids(&repo, &haves)).cloned().collect();
            prop_assert_eq!(commits_got, commits_needed);
        }
    }

    /// A depth-N fetch holds the commits at most N deep (the want at depth 1, each
    /// parent one deeper along the shortest path) and none deeper; those at exactly
    /// N are announced shallow.
    #[test]
    fn depth_n_has_commits_up_to_depth_n_and_none_deeper(
        commits in history(),
        want in any::<prop::sample::Index>(),
        depth in 1u32..6,
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r.git");
        std::fs::create_dir_all(&repo).unwrap();
        let ids = build(&repo, &commits, false);
        let db = open_db(&repo, tmp.path());
        let want_index = want.index(ids.len());
        let want = ids[want_index];

        // Expected: breadth-first depth from the want over the recorded parents.
        let mut depth_of: HashMap<usize, u32> = HashMap::new();
        let mut queue = VecDeque::from([(want_index, 1u32)]);
        while let Some((i, d)) = queue.pop_front() {
            if depth_of.contains_key(&i) { continue; }
            depth_of.insert(i, d);
            if d < depth {
                for p in &commits[i].parents { queue.push_back((*p, d + 1)); }
            }
        }
        let expected: BTreeSet<ObjectId> = depth_of.keys().map(|i| ids[*i]).collect();
        let expected_shallow: BTreeSet<ObjectId> = depth_of.iter().filter(|(_, d)| **d == depth).map(|(i, _)| ids[*i]).collect();

        let mut graph = Graph::new(&db);
        let request = DeepenRequest { depth: Some(depth), ..Default::default() };
        let plan = plan_shallow(&mut graph, &[want], &request).unwrap();
        let outcome = enumerate(&mut graph, &[want], &[], &plan, &WalkOptions::default()).unwrap();
        let got: BTreeSet<ObjectId> = outcome.objects.iter().filter(|o| o.kind == Kind::Commit).map(|o| o.id).collect();
        prop_assert_eq!(got, expected);
        let shallow: BTreeSet<ObjectId> = plan.shallow.iter().copied().collect();
        prop_assert_eq!(shallow, expected_shallow);
        let mut pack = Vec::new();
        write_pack(&db, &outcome.objects, None, &WriteOptions::default(), &mut pack, &mut |_, _, _| {}).unwrap();
        indexed_objects(&pack, &repo, tmp.path());
    }

    /// The log of a commit, whole or of a path, a page at a time, is what
    /// `git log` lists: its order (by date, ties first come first), and git's
    /// history simplification for a path. Dates are honest, skewed, or
    /// mostly equal.
    #[test]
    fn log_pages_are_git_log_s(
        commits in history(),
        start in any::<prop::sample::Index>(),
        path in proptest::option::of(prop::sample::select(vec!["dir0", "dir1", "dir0/f2.txt", "dir1/f3.txt", "dir1/f5.txt", "none"])),
        clock in 0u8..3,
        skip in 0usize..4,
        limit in 1usize..6,
    ) {
        let (tmp, ids, db) = clocked_repo(&commits, clock);
        let repo = tmp.path().join("r.git");
        let start = ids[start.index(ids.len())];
        let mut args = vec!["log".to_string(), "--format=%H".into(), start.to_string()];
        if let Some(path) = path {
            args.extend(["--".to_string(), path.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let listed = listed_ids(&repo, &args);
        let request = LogRequest { path: path.map(str::as_bytes), skip, limit, max_walked: 1000 };
        let page = log(&mut Graph::new(&db), start, &request).unwrap();
        let expected: Vec<ObjectId> = listed.iter().skip(skip).take(limit).copied().collect();
        prop_assert_eq!(page.commits, expected, "{:?}", args);
        prop_assert_eq!(page.more, listed.len() > skip + limit);
        prop_assert!(!page.cut_short);
    }

    /// `EXCLUDE..INCLUDE` lists what `git log EXCLUDE..INCLUDE` lists, in its
    /// order, even where dates lie (git's walk, slop and all).
    #[test]
    fn ranges_are_git_log_s(
        commits in history(),
        include in any::<prop::sample::Index>(),
        exclude in any::<prop::sample::Index>(),
        clock in 0u8..3,
    ) {
        let (tmp, ids, db) = clocked_repo(&commits, clock);
        let repo = tmp.path().join("r.git");
        let (include, exclude) = (ids[include.index(ids.len())], ids[exclude.index(ids.len())]);
        let spec = format!("{exclude}..{include}");
        let listed = listed_ids(&repo, &["log", "--format=%H", &spec]);
        let got = range(&mut Graph::new(&db), include, exclude, 1000).unwrap();
        prop_assert_eq!(got.commits, listed, "{}", spec);
        prop_assert!(!got.cut_short);
    }
}

/// `describe` of `target` with these options, `git describe`'s (none when it
/// fails), and git's arguments.
fn describes(
    repo: &Path,
    db: &ObjectDb,
    target: ObjectId,
    lightweight: bool,
    abbrev: Option<usize>,
    pattern: Option<(&str, &str)>,
) -> (Option<String>, Option<String>, Vec<String>) {
    let mut args = vec!["describe".to_string()];
    let mut options = DescribeOptions {
        tags: lightweight,
        abbrev,
        ..Default::default()
    };
    if lightweight {
        args.push("--tags".into());
    }
    if let Some(n) = abbrev {
        args.push(format!("--abbrev={n}"));
    }
    if let Some((kind, glob)) = pattern {
        args.push(format!("--{kind}={glob}"));
        match kind {
            "match" => options.matches.push(glob.as_bytes().to_vec()),
            _ => options.excludes.push(glob.as_bytes().to_vec()),
        }
    }
    args.push(target.to_string());
    let out = Command::new("git")
        .args(&args)
        .current_dir(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    let theirs = out
        .status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim().to_string());
    let listed = run(
        repo,
        &["for-each-ref", "--format=%(refname) %(objectname)"],
        b"",
    );
    let refs: Vec<(String, ObjectId)> = String::from_utf8(listed)
        .unwrap()
        .lines()
        .map(|line| {
            let (name, id) = line.split_once(' ').unwrap();
            (name.to_string(), ObjectId::from_hex(id.as_bytes()).unwrap())
        })
        .collect();
    let ours = describe(db, &refs, target, &options).unwrap();
    (ours, theirs, args)
}

/// Tag `commit` in `repo` as `name`, annotated or not, tagged at `date`.
fn tag_at(repo: &Path, name: &str, commit: &ObjectId, annotated: bool, date: u32) {
    let commit = commit.to_string();
    let mut cmd = Command::new("git");
    cmd.current_dir(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_COMMITTER_NAME", "T")
        .env("GIT_COMMITTER_EMAIL", "t@example.com")
        .env("GIT_COMMITTER_DATE", format!("{date} +0000"));
    if annotated {
        cmd.args(["tag", "-f", "-a", "-m", name, name, &commit]);
    } else {
        cmd.args(["tag", "-f", name, &commit]);
    }
    assert!(cmd.output().unwrap().status.success());
}

/// More than ten candidate tags: git gives up the search at the eleventh and
/// finishes the best one's depth by walking on through the commits it does
/// not reach (here an untagged side of a merge, dated older).
#[test]
fn describes_past_ten_candidates_are_git_describe_s() {
    let commit = |parents: Vec<usize>| CommitSpec {
        parents,
        edits: vec![(0, 1)],
        skewed_time: 0,
    };
    // 0 the root; 1..=11 a tagged line; 12..=14 an untagged side; 15 the merge.
    let mut specs = vec![commit(vec![])];
    specs.extend((1..=11).map(|i| commit(vec![i - 1])));
    specs.push(commit(vec![0]));
    specs.push(commit(vec![12]));
    specs.push(commit(vec![13]));
    specs.push(commit(vec![11, 14]));
    let tmp = tempfile::tempdir().unwrap();
    let repo = tmp.path().join("r.git");
    std::fs::create_dir_all(&repo).unwrap();
    let ids = build_timed(&repo, &specs, &|i, _| match i {
        0 => 1_700_000_000,
        1..=11 => 1_700_001_000 + i * 10,
        12..=14 => 1_700_000_500 + i,
        _ => 1_700_002_000,
    });
    for (i, id) in ids.iter().enumerate().take(12).skip(1) {
        tag_at(&repo, &format!("t{i}"), id, i % 4 != 0, 1_600_000_000);
    }
    let db = open_db(&repo, tmp.path());
    let mut finished = false;
    for target in [ids[15], ids[14], ids[11], ids[5]] {
        for lightweight in [false, true] {
            let (ours, theirs, args) = describes(&repo, &db, target, lightweight, None, None);
            assert_eq!(ours, theirs, "{args:?}");
            // The merge's description counts the side's commits.
            finished |=
                target == ids[15] && theirs.as_deref().is_some_and(|d| d.starts_with("t11-4-g"));
        }
    }
    assert!(finished, "the depth was finished past the candidates");
}

/// A tag of the property below: the commit, annotated or not, its tagger
/// date, and its name.
#[derive(Debug, Clone)]
struct TagSpec {
    commit: prop::sample::Index,
    annotated: bool,
    date: u8,
    name: &'static str,
}

fn tag_spec() -> impl Strategy<Value = TagSpec> {
    (
        any::<prop::sample::Index>(),
        any::<bool>(),
        0u8..4,
        prop::sample::select(vec![
            "v1.0", "v1.1", "v2", "rc-1", "rel/x", "zz9", "v3", "v4", "v5", "v6", "v7", "v8", "v9",
            "v10", "v11", "w1", "w2", "w3",
        ]),
    )
        .prop_map(|(commit, annotated, date, name)| TagSpec {
            commit,
            annotated,
            date,
            name,
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// `describe` says what `git describe` says (or fails where it fails):
    /// random histories with honest, skewed or mostly equal dates, annotated
    /// and lightweight tags (several on one commit, tagger dates that tie),
    /// `--tags`, `--abbrev`, `--match` and `--exclude`.
    #[test]
    fn describes_are_git_describe_s(
        commits in history(),
        tags in proptest::collection::vec(tag_spec(), 0..18),
        target in any::<prop::sample::Index>(),
        clock in 0u8..3,
        lightweight in any::<bool>(),
        abbrev in prop::sample::select(vec![None, Some(0usize), Some(4), Some(12)]),
        pattern in prop::sample::select(vec![None, Some(("match", "v*")), Some(("match", "*[0-9]*")), Some(("exclude", "v1*")), Some(("exclude", "r*"))]),
    ) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r.git");
        std::fs::create_dir_all(&repo).unwrap();
        let ids = build_timed(&repo, &commits, &|i, c| match clock {
            0 => 1_700_000_000 + i * 100,
            1 => 1_700_000_000 + usize::from(c.skewed_time),
            _ => 1_700_000_000 + usize::from(c.skewed_time % 3) * 100,
        });
        for tag in &tags {
            let commit = ids[tag.commit.index(ids.len())];
            tag_at(&repo, tag.name, &commit, tag.annotated, 1_600_000_000 + u32::from(tag.date));
        }
        let db = open_db(&repo, tmp.path());
        let target = ids[target.index(ids.len())];
        let (ours, theirs, args) = describes(&repo, &db, target, lightweight, abbrev, pattern);
        prop_assert_eq!(ours, theirs, "{:?}", args);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Renames between two trees are what `git diff` (its default `-M`)
    /// finds: exact ones (ties among equal contents included), those by file
    /// name at 75%, the pairwise best at 50%, with git's similarity; links
    /// only exactly; CRLF text, binary and empty files.
    #[test]
    fn renames_are_git_diff_s(
        before in proptest::collection::btree_map(0usize..RENAME_PATHS.len(), file_spec(), 0..10),
        after in proptest::collection::btree_map(
            0usize..RENAME_PATHS.len(),
            (proptest::option::weighted(0.7, (any::<prop::sample::Index>(), 0u8..5)), file_spec()),
            0..10,
        ),
    ) {
        // Most added files are a deleted one's content, the same or edited.
        let olds: Vec<&FileSpec> = before.values().collect();
        let after: std::collections::BTreeMap<usize, FileSpec> = after
            .into_iter()
            .map(|(path, (from, fresh))| {
                let spec = match from {
                    Some((k, variant)) if !olds.is_empty() => {
                        FileSpec { variant, ..olds[k.index(olds.len())].clone() }
                    }
                    _ => fresh,
                };
                (path, spec)
            })
            .collect();
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("r.git");
        std::fs::create_dir_all(&repo).unwrap();
        run(&repo, &["init", "-q", "--bare"], b"");
        let mut stream = Vec::new();
        for (i, tree) in [&before, &after].into_iter().enumerate() {
            writeln!(stream, "commit refs/heads/t{i}\ncommitter C <c@example.com> 1700000000 +0000\ndata 0\ndeleteall").unwrap();
            for (path, spec) in tree {
                let content = spec.content();
                write!(stream, "M {} inline {}\ndata {}\n", spec.mode(), RENAME_PATHS[*path], content.len()).unwrap();
                stream.extend_from_slice(&content);
                stream.push(b'\n');
            }
        }
        run(&repo, &["fast-import", "--quiet"], &stream);
        let db = open_db(&repo, tmp.path());
        let tree = |name: &str| {
            let out = run(&repo, &["rev-parse", &format!("{name}^{{tree}}")], b"");
            ObjectId::from_hex(String::from_utf8(out).unwrap().trim().as_bytes()).unwrap()
        };
        let mut reader = db.reader();
        let diff = diff_trees(&mut reader, tree("t0"), tree("t1"), usize::MAX).unwrap();
        let (changes, detection) =
            detect_renames(&db, &mut reader, diff.changes, &RenameLimits::default()).unwrap();
        prop_assert_eq!(detection, Detection::Complete);
        let listed = run(&repo, &["diff", "--raw", "-z", "--no-abbrev", "-M", "t0", "t1"], b"");
        prop_assert_eq!(raw_lines(&changes), git_raw_lines(&listed));
    }
}

/// Paths of the rename property: file names that recur in directories, and
/// names of their own.
const RENAME_PATHS: [&str; 14] = [
    "x.txt",
    "y.txt",
    "z.c",
    "a/x.txt",
    "a/y.txt",
    "a/w",
    "a/b/x.txt",
    "a/b/z.c",
    "c/x.txt",
    "c/v.md",
    "c/w",
    "d/e/y.txt",
    "d/u",
    "t",
];

/// A file of the rename property: lines of a family, a variant's edits, a
/// length; CRLF, binary (a NUL first), executable or a link.
#[derive(Debug, Clone)]
struct FileSpec {
    family: u8,
    variant: u8,
    lines: u8,
    crlf: bool,
    binary: bool,
    kind: u8,
}

fn file_spec() -> impl Strategy<Value = FileSpec> {
    let lines = prop::sample::select(vec![0u8, 1, 2, 5, 12, 30]);
    (0u8..3, 0u8..5, lines, any::<bool>(), 0u8..8, 0u8..8).prop_map(
        |(family, variant, lines, crlf, binary, kind)| FileSpec {
            family,
            variant,
            lines,
            crlf,
            binary: binary == 0,
            // Mostly plain files; some executable, some links.
            kind: match kind {
                0 => 1,
                1 => 2,
                _ => 0,
            },
        },
    )
}

impl FileSpec {
    fn mode(&self) -> &'static str {
        match self.kind {
            1 => "100755",
            2 => "120000",
            _ => "100644",
        }
    }

    fn content(&self) -> Vec<u8> {
        // A link's target is made like a file's content (no NUL), so a link
        // and a file may name one object.
        let mut out = Vec::new();
        if self.binary && self.kind != 2 {
            out.push(0);
        }
        let end = if self.crlf { "\r\n" } else { "\n" };
        for i in 0..usize::from(self.lines) {
            let step = usize::from(self.variant) + 1;
            if self.variant > 0 && i % step == 0 {
                out.extend_from_slice(
                    format!("changed {} {} {i}{end}", self.family, self.variant).as_bytes(),
                );
            } else {
                out.extend_from_slice(
                    format!("line of family {} number {i}{end}", self.family).as_bytes(),
                );
            }
        }
        out
    }
}
