//! Random histories, random requests: GitClaw against C git's `git http-backend`
//! (under lighttpd), both serving the same repository as it changes.
//!
//! Each case builds a history in stages with `git fast-import` (branches, merges,
//! commits dated out of order, files growing past a partial clone's size limit,
//! lightweight, annotated and nested tags, branches rewound and deleted), pushes
//! every stage to both servers (`--mirror`, so deletions and force-updates too),
//! sometimes compacts GitClaw's copy, and has clients of random shapes — full,
//! shallow by depth, date or excluded ref, single-branch, partial — clone it at
//! the first stage and fetch at every later one (plain, deepening, by SHA,
//! unshallowing, reshallowing), on protocol v0 or v2. After every request the
//! two clients must agree: both succeeded or both failed, and the same refs,
//! shallow boundary, reachable objects and `FETCH_HEAD`, with `git fsck
//! --strict` finding nothing wrong and every pack checked as it arrived. What
//! is right is what C git does; nothing is expected that C git did not do.
//!
//! `PROPTEST_CASES` sets how many histories each test tries (e.g.
//! `PROPTEST_CASES=500 cargo test --release --test differential`).

mod common;

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
    process::Output,
};

use common::{http_backend::HttpBackend, *};
use proptest::prelude::*;

/// The files a history edits: a few directories deep, so a fetch walks trees.
const PATHS: &[&str] = &[
    "README",
    "src/main.c",
    "src/util.c",
    "src/net/http.c",
    "src/net/tls/session.c",
    "docs/guide.md",
    "docs/img/logo.svg",
    "lib/a.txt",
    "lib/b.txt",
    "data/table.csv",
];

/// The first commit's date; each later one is a little later, or sometimes earlier.
const EPOCH: i64 = 1_600_000_000;

#[derive(Debug, Clone)]
enum Edit {
    /// A small text file; versions of one path share most lines.
    Write(u16),
    /// A file of some 80 KB, above every `blob:limit` tried.
    Grow(u16),
    Delete,
}

#[derive(Debug, Clone)]
enum Op {
    /// A commit on a branch; `skew` dates it a day before its parent.
    Commit {
        branch: usize,
        edits: Vec<(usize, Edit)>,
        skew: bool,
    },
    /// A merge commit on `into` of `from`'s tip.
    Merge { into: usize, from: usize },
    /// A new branch at a commit `back` first parents behind a branch's tip.
    Branch { from: usize, back: usize },
    /// A tag of a commit `back` first parents behind a branch's tip.
    Tag {
        branch: usize,
        back: usize,
        annotated: bool,
    },
    /// An annotated tag of a tag.
    NestedTag { tag: usize },
    /// A branch moved back to an older commit of its own (a force-push).
    Rewind { branch: usize, back: usize },
    /// A branch other than `main` deleted.
    Delete { branch: usize },
}

/// How a client clones.
#[derive(Debug, Clone)]
enum Shape {
    Full,
    Depth(u8),
    /// One branch only, perhaps shallow.
    Branch {
        branch: usize,
        depth: Option<u8>,
    },
    BlobNone,
    /// `blob:limit` of 100 bytes, 2 KB or 20 KB.
    BlobLimit(u8),
    Tree0,
    /// `object:type=` blob, tree or commit.
    ObjectType(u8),
    /// `--shallow-since` the date of one of the commits.
    Since(usize),
    /// `--shallow-exclude` of one of the refs.
    Exclude(usize),
    NoTags,
}

/// What a client does at a later stage.
#[derive(Debug, Clone)]
enum Action {
    Fetch,
    /// `--deepen` when shallow, else a plain fetch.
    Deepen(u8),
    Depth(u8),
    /// `--unshallow` when shallow, else a plain fetch.
    Unshallow,
    /// A commit by SHA, as CI checkouts fetch, perhaps shallow.
    BySha {
        commit: usize,
        depth: Option<u8>,
    },
    Since(usize),
}

#[derive(Debug, Clone)]
struct Stage {
    ops: Vec<Op>,
    /// Compact GitClaw's copy after the push.
    gc: bool,
    /// What each client does (the first stage clones instead).
    actions: Vec<Action>,
    /// A clone made afresh after this stage.
    fresh: (Shape, bool),
}

#[derive(Debug, Clone)]
struct Plan {
    /// Each client's shape, and whether it speaks protocol v2.
    clients: Vec<(Shape, bool)>,
    stages: Vec<Stage>,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => any::<u16>().prop_map(Edit::Write),
        1 => any::<u16>().prop_map(Edit::Grow),
        2 => Just(Edit::Delete),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    let index = 0usize..64;
    prop_oneof![
        10 => (index.clone(), prop::collection::vec((0..PATHS.len(), edit()), 1..4), prop::bool::weighted(0.15))
            .prop_map(|(branch, edits, skew)| Op::Commit { branch, edits, skew }),
        2 => (index.clone(), index.clone()).prop_map(|(into, from)| Op::Merge { into, from }),
        2 => (index.clone(), 0usize..4).prop_map(|(from, back)| Op::Branch { from, back }),
        3 => (index.clone(), 0usize..4, any::<bool>())
            .prop_map(|(branch, back, annotated)| Op::Tag { branch, back, annotated }),
        1 => index.clone().prop_map(|tag| Op::NestedTag { tag }),
        1 => (index.clone(), 1usize..4).prop_map(|(branch, back)| Op::Rewind { branch, back }),
        1 => index.prop_map(|branch| Op::Delete { branch }),
    ]
}

fn shape() -> impl Strategy<Value = Shape> {
    let index = 0usize..64;
    prop_oneof![
        Just(Shape::Full),
        (1u8..4).prop_map(Shape::Depth),
        (index.clone(), prop::option::of(1u8..3))
            .prop_map(|(branch, depth)| Shape::Branch { branch, depth }),
        Just(Shape::BlobNone),
        (0u8..3).prop_map(Shape::BlobLimit),
        Just(Shape::Tree0),
        (0u8..3).prop_map(Shape::ObjectType),
        index.clone().prop_map(Shape::Since),
        index.prop_map(Shape::Exclude),
        Just(Shape::NoTags),
    ]
}

fn action() -> impl Strategy<Value = Action> {
    let index = 0usize..64;
    prop_oneof![
        4 => Just(Action::Fetch),
        1 => (1u8..3).prop_map(Action::Deepen),
        1 => (1u8..3).prop_map(Action::Depth),
        1 => Just(Action::Unshallow),
        2 => (index.clone(), prop::option::of(1u8..3))
            .prop_map(|(commit, depth)| Action::BySha { commit, depth }),
        1 => index.prop_map(Action::Since),
    ]
}

fn plan() -> impl Strategy<Value = Plan> {
    let stage = (
        prop::collection::vec(op(), 1..7),
        prop::bool::weighted(0.4),
        prop::collection::vec(action(), 3),
        (shape(), any::<bool>()),
    )
        .prop_map(|(ops, gc, actions, fresh)| Stage {
            ops,
            gc,
            actions,
            fresh,
        });
    (
        prop::collection::vec((shape(), any::<bool>()), 1..4),
        prop::collection::vec(stage, 2..5),
    )
        .prop_map(|(clients, stages)| Plan { clients, stages })
}

/// A file's contents: `lines` lines, most of them the same in every version of
/// the path, so versions are stored and sent as deltas of each other.
fn text(path: usize, seed: u16, lines: usize) -> Vec<u8> {
    let mut out = String::new();
    for i in 0..lines {
        if (i as u16).wrapping_mul(31) % 13 == seed % 13 {
            let _ = writeln!(out, "{}:{i} changed in version {seed}", PATHS[path]);
        } else {
            let _ = writeln!(out, "{} line {i} of the file, unchanged", PATHS[path]);
        }
    }
    out.into_bytes()
}

struct CommitRecord {
    first_parent: Option<usize>,
    files: BTreeMap<usize, Vec<u8>>,
}

/// The history being built, in a bare repository, and what the model knows of
/// it: commits by fast-import mark, branch tips, tag names.
struct History {
    dir: PathBuf,
    /// Commit `mark` is `commits[mark - 1]`.
    commits: Vec<CommitRecord>,
    branches: BTreeMap<String, usize>,
    tags: Vec<String>,
    branches_made: usize,
    clock: i64,
}

impl History {
    fn new(dir: PathBuf) -> History {
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q", "--bare", "-b", "main"]);
        History {
            dir,
            commits: Vec::new(),
            branches: BTreeMap::new(),
            tags: Vec::new(),
            branches_made: 0,
            clock: EPOCH,
        }
    }

    fn branch(&self, index: usize) -> Option<(String, usize)> {
        let n = self.branches.len();
        (n > 0).then(|| {
            let (name, tip) = self.branches.iter().nth(index % n).unwrap();
            (name.clone(), *tip)
        })
    }

    /// The commit `back` first parents behind `mark` (the root at most).
    fn behind(&self, mut mark: usize, back: usize) -> usize {
        for _ in 0..back {
            match self.commits[mark - 1].first_parent {
                Some(parent) => mark = parent,
                None => break,
            }
        }
        mark
    }

    fn commit(
        &mut self,
        stream: &mut Vec<u8>,
        branch: &str,
        parents: &[usize],
        files: BTreeMap<usize, Vec<u8>>,
        skew: bool,
    ) {
        self.clock += 3_600;
        let when = if skew {
            self.clock - 86_400
        } else {
            self.clock
        };
        let mark = self.commits.len() + 1;
        let message = format!("commit {mark} on {branch}\n");
        let _ = write!(
            stream,
            "commit refs/heads/{branch}\nmark :{mark}\n\
             author A U Thor <author@example.com> {when} +0000\n\
             committer C O Mitter <committer@example.com> {when} +0000\n\
             data {}\n{message}",
            message.len()
        );
        for (i, parent) in parents.iter().enumerate() {
            let word = if i == 0 { "from" } else { "merge" };
            stream.extend_from_slice(format!("{word} :{parent}\n").as_bytes());
        }
        stream.extend_from_slice(b"deleteall\n");
        for (path, bytes) in &files {
            stream.extend_from_slice(
                format!("M 100644 inline {}\ndata {}\n", PATHS[*path], bytes.len()).as_bytes(),
            );
            stream.extend_from_slice(bytes);
            stream.push(b'\n');
        }
        stream.push(b'\n');
        self.commits.push(CommitRecord {
            first_parent: parents.first().copied(),
            files,
        });
        self.branches.insert(branch.to_string(), mark);
    }

    /// Apply one stage's operations to the repository.
    fn apply(&mut self, ops: &[Op]) {
        let mut stream = Vec::new();
        // Done after the import, in order: they name what it makes.
        let mut after: Vec<Vec<String>> = Vec::new();
        if self.branches.is_empty() {
            let files = (0..4).map(|p| (p, text(p, 0, 30))).collect();
            self.commit(&mut stream, "main", &[], files, false);
        }
        for op in ops {
            match op {
                Op::Commit {
                    branch,
                    edits,
                    skew,
                } => {
                    let (name, tip) = self.branch(*branch).unwrap();
                    let mut files = self.commits[tip - 1].files.clone();
                    for (path, edit) in edits {
                        match edit {
                            Edit::Write(seed) => {
                                files.insert(*path, text(*path, *seed, 10 + *seed as usize % 70));
                            }
                            Edit::Grow(seed) => {
                                files.insert(*path, text(*path, *seed, 2_000));
                            }
                            Edit::Delete => {
                                files.remove(path);
                            }
                        }
                    }
                    self.commit(&mut stream, &name, &[tip], files, *skew);
                }
                Op::Merge { into, from } => {
                    let (name, tip) = self.branch(*into).unwrap();
                    let (other, theirs) = self.branch(*from).unwrap();
                    if name == other {
                        continue;
                    }
                    let mut files = self.commits[theirs - 1].files.clone();
                    files.extend(self.commits[tip - 1].files.clone());
                    self.commit(&mut stream, &name, &[tip, theirs], files, false);
                }
                Op::Branch { from, back } => {
                    let (_, tip) = self.branch(*from).unwrap();
                    let at = self.behind(tip, *back);
                    self.branches_made += 1;
                    let name = format!("b{}", self.branches_made);
                    let _ = write!(stream, "reset refs/heads/{name}\nfrom :{at}\n\n");
                    self.branches.insert(name, at);
                }
                Op::Tag {
                    branch,
                    back,
                    annotated,
                } => {
                    let (_, tip) = self.branch(*branch).unwrap();
                    let at = self.behind(tip, *back);
                    let name = format!("v{}", self.tags.len() + 1);
                    if *annotated {
                        let message = format!("release {name}\n");
                        let _ = write!(
                            stream,
                            "tag {name}\nfrom :{at}\n\
                             tagger T Agger <tagger@example.com> {} +0000\n\
                             data {}\n{message}\n",
                            self.clock,
                            message.len()
                        );
                    } else {
                        let _ = write!(stream, "reset refs/tags/{name}\nfrom :{at}\n\n");
                    }
                    self.tags.push(name);
                }
                Op::NestedTag { tag } => {
                    if self.tags.is_empty() {
                        continue;
                    }
                    let inner = self.tags[tag % self.tags.len()].clone();
                    let name = format!("v{}", self.tags.len() + 1);
                    after.push(vec![
                        "-c".into(),
                        "advice.nestedTag=false".into(),
                        "tag".into(),
                        "-a".into(),
                        "-m".into(),
                        format!("{name} of {inner}"),
                        name.clone(),
                        inner,
                    ]);
                    self.tags.push(name);
                }
                Op::Rewind { branch, back } => {
                    let (name, tip) = self.branch(*branch).unwrap();
                    let at = self.behind(tip, *back);
                    let _ = write!(stream, "reset refs/heads/{name}\nfrom :{at}\n\n");
                    self.branches.insert(name, at);
                }
                Op::Delete { branch } => {
                    let (name, _) = self.branch(*branch).unwrap();
                    if name == "main" {
                        continue;
                    }
                    after.push(vec![
                        "update-ref".into(),
                        "-d".into(),
                        format!("refs/heads/{name}"),
                    ]);
                    self.branches.remove(&name);
                }
            }
        }
        let marks = self.dir.join("marks");
        let marks = marks.to_str().unwrap();
        git_with_input(
            &self.dir,
            &[
                "fast-import",
                "--quiet",
                "--force",
                "--done",
                &format!("--import-marks-if-exists={marks}"),
                &format!("--export-marks={marks}"),
            ],
            &[stream, b"done\n".to_vec()].concat(),
        );
        for args in after {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            git(&self.dir, &args);
        }
    }

    /// Whether the refs reach the object `id`.
    fn reaches(&self, id: &str) -> bool {
        git(&self.dir, &["rev-list", "--objects", "--all"])
            .lines()
            .any(|line| line.split(' ').next() == Some(id))
    }

    /// Every commit the refs reach, newest first.
    fn reachable(&self) -> Vec<String> {
        git(&self.dir, &["rev-list", "--all"])
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Every branch and tag, by short name.
    fn refs(&self) -> Vec<String> {
        git(
            &self.dir,
            &[
                "for-each-ref",
                "--format=%(refname:short)",
                "refs/heads",
                "refs/tags",
            ],
        )
        .lines()
        .map(str::to_string)
        .collect()
    }

    fn date_of(&self, index: usize) -> String {
        let commits = self.reachable();
        let commit = &commits[index % commits.len()];
        let date = git(&self.dir, &["log", "-1", "--format=%ct", commit]);
        format!("--shallow-since=@{}", date.trim())
    }
}

/// What a client ends up with (after `git fsck --strict` found nothing wrong),
/// a line each, sorted: its refs, shallow boundary, the objects its refs reach
/// (missing ones, in a partial clone, marked) and the commits `FETCH_HEAD`
/// names. Of a partial clone, whether it holds an object its filter leaves out
/// is not compared: a client fetches such an object on demand when a delta
/// it receives leans on it, which depends on the deltas each server chose.
fn client_state(dir: &Path, history: &History) -> Vec<String> {
    git(dir, &["fsck", "--strict", "--no-dangling", "--no-progress"]);
    let refs = git(dir, &["for-each-ref", "--format=%(objectname) %(refname)"]);
    let mut lines: Vec<String> = refs.lines().map(|l| format!("ref {l}")).collect();
    let shallow = std::fs::read_to_string(dir.join(".git/shallow")).unwrap_or_default();
    lines.extend(shallow.lines().map(|l| format!("shallow {l}")));
    let filter = git_output(dir, &["config", "remote.origin.partialclonefilter"]);
    let left_out: std::collections::HashSet<String> = match filter.status.success() {
        true => {
            let spec = String::from_utf8_lossy(&filter.stdout).trim().to_string();
            let mut args = vec![
                "rev-list".to_string(),
                "--objects".into(),
                format!("--filter={spec}"),
                "--filter-print-omitted".into(),
            ];
            args.extend(
                refs.lines()
                    .map(|l| l.split(' ').next().unwrap().to_string()),
            );
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            git(&history.dir, &args)
                .lines()
                .filter_map(|l| l.strip_prefix('~'))
                .map(str::to_string)
                .collect()
        }
        false => Default::default(),
    };
    let objects = git(dir, &["rev-list", "--objects", "--all", "--missing=print"]);
    lines.extend(objects.lines().map(|l| {
        let id = l.split(' ').next().unwrap();
        match left_out.contains(id.trim_start_matches('?')) {
            true => format!(
                "object left out by the filter {}",
                id.trim_start_matches('?')
            ),
            false => format!("object {id}"),
        }
    }));
    let fetched = std::fs::read_to_string(dir.join(".git/FETCH_HEAD")).unwrap_or_default();
    lines.extend(
        fetched
            .lines()
            .map(|l| format!("FETCH_HEAD {}", l.split('\t').next().unwrap_or_default())),
    );
    lines.sort();
    lines
}

/// The two sides of one comparison: git's clone and GitClaw's, and their URLs.
struct Pair {
    dirs: [PathBuf; 2],
    urls: [String; 2],
    v2: bool,
}

const SIDES: [&str; 2] = ["git http-backend", "GitClaw"];

impl Pair {
    /// Run `args` (with `{dir}` and `{url}` filled in) on both sides, in
    /// `work` or else in each side's clone; both must succeed or both fail,
    /// and then agree. Whether they succeeded; `None` where GitClaw refused,
    /// as the specification has it (bad input), to send an object no ref
    /// reaches (that git sent, or failed for reasons of its own): a partial
    /// clone fetching, on demand, what a force-push left behind. The two
    /// clients differ from then on.
    fn run(
        &self,
        what: &str,
        work: Option<&Path>,
        args: &[String],
        history: &History,
    ) -> Option<bool> {
        let outputs: Vec<Output> = (0..2)
            .map(|side| {
                let filled: Vec<String> = args
                    .iter()
                    .map(|a| {
                        a.replace("{dir}", self.dirs[side].to_str().unwrap())
                            .replace("{url}", &self.urls[side])
                    })
                    .collect();
                let mut full = vec![
                    "-c".to_string(),
                    format!("protocol.version={}", if self.v2 { 2 } else { 0 }),
                    "-c".to_string(),
                    "transfer.fsckObjects=true".to_string(),
                    "-c".to_string(),
                    "fetch.writeCommitGraph=false".to_string(),
                ];
                full.extend(filled);
                let full: Vec<&str> = full.iter().map(String::as_str).collect();
                git_output(work.unwrap_or(&self.dirs[side]), &full)
            })
            .collect();
        let ok = [outputs[0].status.success(), outputs[1].status.success()];
        // Whether or not git's side got through (it may fail on its own: a
        // client filtered by object type lacks most commits its refs reach).
        if !ok[1] {
            let refused = String::from_utf8_lossy(&outputs[1].stderr);
            if let Some(id) = refused
                .split("not our ref ")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
            {
                if !history.reaches(id) {
                    return None;
                }
            }
        }
        assert_eq!(
            ok[0],
            ok[1],
            "{what} ({args:?}, v{}): {} {}, {} {}\n{}: {}\n{}: {}",
            if self.v2 { 2 } else { 0 },
            SIDES[0],
            if ok[0] { "succeeded" } else { "failed" },
            SIDES[1],
            if ok[1] { "succeeded" } else { "failed" },
            SIDES[0],
            String::from_utf8_lossy(&outputs[0].stderr),
            SIDES[1],
            String::from_utf8_lossy(&outputs[1].stderr),
        );
        if self.dirs.iter().all(|d| d.join(".git").exists()) {
            let states = [
                client_state(&self.dirs[0], history),
                client_state(&self.dirs[1], history),
            ];
            if states[0] != states[1] {
                panic!(
                    "{what} ({args:?}, v{}): the clients disagree\n{}",
                    if self.v2 { 2 } else { 0 },
                    difference(&states[0], &states[1])
                );
            }
        }
        Some(ok[0])
    }

    /// GitClaw's client asks `url` from now on.
    fn point_at(&mut self, url: &str) {
        git(&self.dirs[1], &["remote", "set-url", "origin", url]);
        self.urls[1] = url.to_string();
    }

    fn shallow(&self) -> bool {
        self.dirs[0].join(".git/shallow").exists()
    }
}

/// The lines one state holds more often than the other, each marked with its side.
fn difference(git_side: &[String], claw_side: &[String]) -> String {
    let mut counts: BTreeMap<&str, i64> = BTreeMap::new();
    for line in git_side {
        *counts.entry(line).or_default() += 1;
    }
    for line in claw_side {
        *counts.entry(line).or_default() -= 1;
    }
    let mut out = String::new();
    for (line, count) in counts {
        match count {
            0 => {}
            n if n > 0 => {
                let _ = writeln!(out, "{n} more from {}: {line}", SIDES[0]);
            }
            n => {
                let _ = writeln!(out, "{} more from {}: {line}", -n, SIDES[1]);
            }
        }
    }
    out
}

/// `git clone` arguments for a shape.
fn clone_args(shape: &Shape, history: &History) -> Vec<String> {
    let mut args = vec!["clone".to_string(), "-q".into(), "--no-checkout".into()];
    let refs = history.refs();
    match shape {
        Shape::Full => {}
        Shape::Depth(n) => args.push(format!("--depth={n}")),
        Shape::Branch { branch, depth } => {
            let (name, _) = history.branch(*branch).unwrap();
            args.extend(["--single-branch".into(), format!("--branch={name}")]);
            if let Some(n) = depth {
                args.push(format!("--depth={n}"));
            }
        }
        Shape::BlobNone => args.push("--filter=blob:none".into()),
        Shape::BlobLimit(n) => args.push(format!(
            "--filter=blob:limit={}",
            ["100", "2k", "20k"][*n as usize % 3]
        )),
        Shape::Tree0 => args.push("--filter=tree:0".into()),
        Shape::ObjectType(n) => args.push(format!(
            "--filter=object:type={}",
            ["blob", "tree", "commit"][*n as usize % 3]
        )),
        Shape::Since(commit) => args.push(history.date_of(*commit)),
        Shape::Exclude(r) => args.push(format!("--shallow-exclude={}", refs[r % refs.len()])),
        Shape::NoTags => args.push("--no-tags".into()),
    }
    args.extend(["{url}".into(), "{dir}".into()]);
    args
}

/// `git fetch` arguments for an action on a client (`None`: nothing to do).
fn fetch_args(action: &Action, pair: &Pair, history: &History, n: usize) -> Vec<String> {
    let mut args = vec!["fetch".to_string(), "-q".into()];
    if !matches!(action, Action::BySha { .. }) {
        args.push("--prune".into());
    }
    match action {
        Action::Fetch => {}
        Action::Deepen(n) if pair.shallow() => args.push(format!("--deepen={n}")),
        Action::Unshallow if pair.shallow() => args.push("--unshallow".into()),
        Action::Deepen(_) | Action::Unshallow => {}
        Action::Depth(n) => args.push(format!("--depth={n}")),
        Action::BySha { commit, depth } => {
            let commits = history.reachable();
            let sha = &commits[commit % commits.len()];
            if let Some(d) = depth {
                args.push(format!("--depth={d}"));
            }
            // Kept under a ref of its own, so its objects count as reachable.
            args.extend(["origin".into(), format!("+{sha}:refs/heads/ci-{n}")]);
        }
        Action::Since(commit) => args.push(history.date_of(*commit)),
    }
    args
}

/// Where GitClaw keeps the history, and which instance serves the clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Setup {
    /// The embedded default (filesystem store, SQLite), one instance.
    Embedded,
    /// S3 and PostgreSQL: pushes and compactions through one instance, every
    /// stage's requests to a new one with empty caches that reads every pack
    /// and index by ranges.
    FreshInstancesOnS3,
}

/// Both servers, serving the history as it is pushed.
struct Servers {
    claw: Server,
    claw_url: String,
    /// The instance the clients ask, when not `claw`.
    reader: Option<Server>,
    read_url: String,
    /// The database and bucket every instance shares (on S3).
    shared: Option<(String, gitclaw_storage::S3Settings)>,
    _git: HttpBackend,
    git_url: String,
    git_repo: PathBuf,
}

impl Servers {
    fn start(work: &Path, name: &str, setup: Setup) -> Servers {
        let shared =
            (setup == Setup::FreshInstancesOnS3).then(|| (postgres_database(), s3_settings()));
        let claw = Server::start_with(|config| {
            if let Some((database, s3)) = &shared {
                config.database_url = database.clone();
                config.s3 = Some(s3.clone());
            }
        });
        let claw_url = claw.create_repo("diff", name);
        let served = work.join("served");
        let git_repo = served.join(format!("{name}.git"));
        std::fs::create_dir_all(&git_repo).unwrap();
        git(&git_repo, &["init", "-q", "--bare", "-b", "main"]);
        for (key, value) in [
            ("uploadpack.allowFilter", "true"),
            ("uploadpack.allowReachableSHA1InWant", "true"),
        ] {
            git(&git_repo, &["config", key, value]);
        }
        let git = HttpBackend::start(&served);
        let git_url = format!("http://127.0.0.1:{}/git/{name}.git", git.port);
        Servers {
            claw,
            read_url: claw_url.clone(),
            claw_url,
            reader: None,
            shared,
            _git: git,
            git_url,
            git_repo,
        }
    }

    /// On S3, a new instance for the clients, its caches empty.
    fn fresh_reader(&mut self, name: &str) {
        let Some((database, s3)) = &self.shared else {
            return;
        };
        // The one before stops first.
        self.reader = None;
        let reader = Server::start_with(|config| {
            config.database_url = database.clone();
            config.s3 = Some(s3.clone());
            config.range_reads_above_bytes = 0;
            config.index_range_reads_above_bytes = 0;
        });
        self.read_url = format!("{}/diff/{name}.git", reader.url);
        self.reader = Some(reader);
    }

    /// Push the history to both, every ref as it is (created, moved back, deleted).
    fn push(&self, history: &History) {
        git(
            &history.dir,
            &["push", "-q", "--mirror", self.git_repo.to_str().unwrap()],
        );
        git(&history.dir, &["push", "-q", "--mirror", &self.claw_url]);
        assert_eq!(
            remote_refs(&history.dir, &self.claw_url),
            remote_refs(&history.dir, self.git_repo.to_str().unwrap()),
            "GitClaw advertises other refs than were pushed"
        );
    }

    fn gc(&self, name: &str) {
        let repo = self
            .claw
            .block_on(self.claw.state.meta.get_repo("diff", name))
            .unwrap()
            .unwrap();
        self.claw
            .block_on(gitclaw_server::service::gc::gc_repo(
                &self.claw.state,
                &repo,
            ))
            .expect("compaction succeeds");
    }

    fn pair(&self, work: &Path, label: &str, v2: bool) -> Pair {
        Pair {
            dirs: [
                work.join(format!("{label}-git")),
                work.join(format!("{label}-claw")),
            ],
            urls: [self.git_url.clone(), self.read_url.clone()],
            v2,
        }
    }
}

fn run_plan(plan: &Plan, setup: Setup) {
    let mut work = tempfile::tempdir().unwrap();
    // `GITCLAW_DIFF_KEEP=1`: the histories and clients stay, to look into.
    if std::env::var_os("GITCLAW_DIFF_KEEP").is_some() {
        work.disable_cleanup(true);
        eprintln!("histories and clients in {}", work.path().display());
    }
    let name = "history";
    let mut servers = Servers::start(work.path(), name, setup);
    let mut history = History::new(work.path().join("src"));
    let mut clients: Vec<Option<Pair>> = Vec::new();
    for (at, stage) in plan.stages.iter().enumerate() {
        history.apply(&stage.ops);
        servers.push(&history);
        if stage.gc {
            servers.gc(name);
        }
        servers.fresh_reader(name);
        if at == 0 {
            for (i, (shape, v2)) in plan.clients.iter().enumerate() {
                let pair = servers.pair(work.path(), &format!("client{i}"), *v2);
                let cloned = pair.run(
                    &format!("stage {at}: client {i} clones"),
                    Some(work.path()),
                    &clone_args(shape, &history),
                    &history,
                );
                clients.push((cloned == Some(true)).then_some(pair));
            }
        } else {
            for (i, client) in clients.iter_mut().enumerate() {
                let Some(pair) = client else { continue };
                if pair.urls[1] != servers.read_url {
                    pair.point_at(&servers.read_url);
                }
                let action = &stage.actions[i % stage.actions.len()];
                let fetched = pair.run(
                    &format!("stage {at}: client {i} {action:?}"),
                    None,
                    &fetch_args(action, pair, &history, at),
                    &history,
                );
                if fetched.is_none() {
                    *client = None;
                }
            }
        }
        let (shape, v2) = &stage.fresh;
        let pair = servers.pair(work.path(), &format!("fresh{at}"), *v2);
        let cloned = pair.run(
            &format!("stage {at}: a fresh clone"),
            Some(work.path()),
            &clone_args(shape, &history),
            &history,
        );
        assert!(
            cloned.is_some(),
            "stage {at}: a fresh clone wants only what the refs reach"
        );
    }
}

/// One stage's history and what the clients do after it.
fn stage(ops: Vec<Op>, actions: Vec<Action>) -> Stage {
    Stage {
        ops,
        gc: false,
        actions,
        fresh: (Shape::Full, true),
    }
}

#[test]
fn deepening_a_boundary_a_force_push_left_behind_keeps_it_as_git_does() {
    // A client cloned `--depth 1`; the branch is then moved back past its
    // tip. `git fetch --deepen` deepens from the client's boundary commits that
    // a ref still reaches, none here: git keeps the old boundary, and so must
    // GitClaw.
    for v2 in [false, true] {
        let plan = Plan {
            clients: vec![(Shape::Depth(1), v2)],
            stages: vec![
                stage(
                    vec![Op::Commit {
                        branch: 0,
                        edits: vec![(1, Edit::Write(1))],
                        skew: false,
                    }],
                    vec![],
                ),
                stage(
                    vec![Op::Rewind { branch: 0, back: 1 }],
                    vec![Action::Deepen(2)],
                ),
            ],
        };
        run_plan(&plan, Setup::Embedded);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 8,
        max_shrink_iters: 24,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_histories_fetch_alike_from_gitclaw_and_git(plan in plan()) {
        run_plan(&plan, Setup::Embedded);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 4,
        max_shrink_iters: 16,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_histories_fetch_alike_from_fresh_instances_on_s3(plan in plan()) {
        run_plan(&plan, Setup::FreshInstancesOnS3);
    }
}
