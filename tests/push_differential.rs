//! Random ref commands, pushed alike to GitClaw and to C git's receive-pack.
//!
//! Each case starts both from the same repository (two branches and an
//! annotated tag) and sends them the same pushes, byte for byte, as a client
//! would over smart HTTP: a few commands each, atomic or not, that create,
//! move, rewind or delete refs whose names nest (`a`, `a/b`, `a/b/c`), with
//! the expected old value right, stale, or zero; new values that are commits
//! (some arriving in the push's own pack), a tree, a blob, a tag, or nothing
//! anyone has; and names git refuses. C git's `git receive-pack
//! --stateless-rpc` (what `git http-backend` runs) gets the very body GitClaw
//! gets. After each push: the same `ok`/`ng` for every ref, and the same refs.
//! At the end a mirror clone of each must succeed and hold the same refs. What
//! is right is what C git does, but for one thing: an atomic push applies all
//! or nothing. git leaves out of an atomic push's transaction the commands it
//! refused before it (objects missing) and
//! applies the rest; GitClaw must then refuse every command and change no
//! ref, and git's refs are put back as they were.
//!
//! Deliberate differences, left out of the commands: two commands for one ref
//! in a push (git clients never send them; GitClaw refuses the second), and a
//! deletion whose old value names an object git does not have (git takes it
//! for zero, GitClaw compares it as given) or is zero while the ref exists (git then deletes
//! without comparing, taking the ref for corrupt; GitClaw refuses it as
//! stale); and a command for `HEAD` itself beside one for its branch (both
//! refuse `HEAD`, which is not under `refs/`; git refuses the branch's
//! command too, as an "inconsistent aliased update"). GitClaw's HEAD is checked to name a ref
//! it has whenever it advertises one.
//!
//! The random cases run on the embedded default and, fewer, on PostgreSQL.
//! `PROPTEST_CASES` sets how many cases run (e.g. `PROPTEST_CASES=300 cargo
//! test --release --test push_differential`).

mod common;

use std::{
    io::Write as _,
    path::{Path, PathBuf},
    process::Stdio,
};

use common::{wire::pkt, wire::ZERO, *};
use proptest::prelude::*;

/// The names commands use: nested so that one continues another, and a few
/// that git's `check-ref-format` refuses.
const NAMES: &[&str] = &[
    "refs/heads/main",
    "refs/heads/topic",
    "refs/heads/a",
    "refs/heads/a/b",
    "refs/heads/a/b/c",
    "refs/heads/a-b",
    "refs/heads/a.b",
    "refs/heads/topic/x",
    "refs/tags/v1",
    "refs/tags/v1/x",
    "refs/notes/n",
    "refs/heads/HEAD",
    "refs/heads/bad..name",
    "refs/heads/x.lock",
    "refs/heads/a/",
    "refs/heads/at@{1}",
    "refs/heads/sp ace",
];

/// What a command expects the ref to hold.
#[derive(Clone, Debug)]
enum Old {
    /// What the ref holds now (zero when it does not exist): a client that
    /// saw the latest advertisement.
    Current,
    /// Zero: the client believes the ref does not exist.
    Zero,
    /// Some object (right only by chance).
    Object(usize),
}

#[derive(Clone, Debug)]
struct Cmd {
    name: usize,
    old: Old,
    /// `None` deletes.
    new: Option<usize>,
}

#[derive(Clone, Debug)]
struct Push {
    commands: Vec<Cmd>,
    atomic: bool,
}

/// The objects commands name, in [`Objects::ids`] order.
const OBJECTS: usize = 10;

fn cmd() -> impl Strategy<Value = Cmd> {
    let old = prop_oneof![
        4 => Just(Old::Current),
        2 => Just(Old::Zero),
        1 => (0..OBJECTS).prop_map(Old::Object),
    ];
    // Names near the front (the nested ones) come up most.
    let name = prop_oneof![3 => 0..10usize, 1 => 0..NAMES.len()];
    let new = prop_oneof![1 => Just(None), 4 => (0..OBJECTS).prop_map(Some)];
    (name, old, new).prop_map(|(name, old, new)| Cmd { name, old, new })
}

fn push() -> impl Strategy<Value = Push> {
    (
        prop::collection::vec(cmd(), 1..5),
        prop::bool::weighted(0.3),
    )
        .prop_map(|(mut commands, atomic)| {
            let mut seen = std::collections::HashSet::new();
            commands.retain(|c| seen.insert(c.name));
            Push { commands, atomic }
        })
}

/// The repository both servers start from, and the objects commands name.
struct Objects {
    dir: PathBuf,
    /// c0, c1, c2 (main), d1 (topic, off c0), n1, n2 (new commits on c2 that
    /// only a push's pack brings), c2's tree, a blob, the tag v1 (on c1), and
    /// an id no one has.
    ids: Vec<String>,
    /// The pack every push that sets a ref sends: n1 and n2's objects.
    pack: Vec<u8>,
}

impl Objects {
    fn build(dir: &Path) -> Objects {
        std::fs::create_dir_all(dir).unwrap();
        git(dir, &["init", "-q", "-b", "main"]);
        let c0 = commit_file(dir, "a.txt", "zero\n", "c0");
        let c1 = commit_file(dir, "a.txt", "one\n", "c1");
        git(dir, &["tag", "-a", "-m", "version one", "v1"]);
        let c2 = commit_file(dir, "b.txt", "two\n", "c2");
        git(dir, &["checkout", "-q", "-b", "topic", &c0]);
        let d1 = commit_file(dir, "d.txt", "topic\n", "d1");
        git(dir, &["checkout", "-q", "-b", "new", &c2]);
        let n1 = commit_file(dir, "n.txt", "new one\n", "n1");
        let n2 = commit_file(dir, "n.txt", "new two\n", "n2");
        git(dir, &["checkout", "-q", "main"]);
        let rev = |spec: &str| git(dir, &["rev-parse", spec]).trim().to_string();
        let ids = vec![
            c0,
            c1,
            c2,
            d1,
            n1,
            n2.clone(),
            rev("main^{tree}"),
            rev("main:b.txt"),
            rev("v1"),
            "1234567890123456789012345678901234567890".to_string(),
        ];
        assert_eq!(ids.len(), OBJECTS);
        let pack = wire::pack_of(dir, &format!("{n2}\n^main\n"));
        Objects {
            dir: dir.to_path_buf(),
            ids,
            pack,
        }
    }
}

/// The lines of a sideband-wrapped report: the unpack line, then each ref's
/// `ok` or `ng` (with a reason, whose words may differ).
fn outcome(body: &[u8]) -> Vec<String> {
    let report = wire::report_text(body);
    let mut lines = Vec::new();
    let mut rest = report.as_bytes();
    while rest.len() >= 4 {
        let len = usize::from_str_radix(std::str::from_utf8(&rest[..4]).unwrap(), 16).unwrap();
        if len == 0 {
            rest = &rest[4..];
            continue;
        }
        lines.push(
            String::from_utf8_lossy(&rest[4..len])
                .trim_end()
                .to_string(),
        );
        rest = &rest[len..];
    }
    lines
}

struct Servers {
    claw: Server,
    claw_url: String,
    git_repo: PathBuf,
}

impl Servers {
    /// GitClaw on the embedded default, or on PostgreSQL when `postgres`.
    fn start(work: &Path, objects: &Objects, postgres: bool) -> Servers {
        let claw = Server::start_with(|config| {
            if postgres {
                use_postgres(config);
            }
        });
        let claw_url = claw.create_repo("pushdiff", "r");
        let git_repo = work.join("git.git");
        git(work, &["init", "-q", "--bare", "-b", "main", "git.git"]);
        for url in [git_repo.to_str().unwrap(), &claw_url] {
            git(&objects.dir, &["push", "-q", url, "main", "topic", "v1"]);
        }
        Servers {
            claw,
            claw_url,
            git_repo,
        }
    }

    /// Both servers' refs (peeled tags included, HEAD left out), which must be
    /// the same.
    fn refs(&self, objects: &Objects) -> Vec<String> {
        let git_side = remote_refs(&objects.dir, self.git_repo.to_str().unwrap());
        let claw_side = remote_refs(&objects.dir, &self.claw_url);
        assert_eq!(claw_side, git_side, "GitClaw's refs differ from git's");
        // Whatever HEAD GitClaw advertises names a ref it has.
        let symref = git(
            &objects.dir,
            &["ls-remote", "--symref", &self.claw_url, "HEAD"],
        );
        if let Some(target) = symref
            .lines()
            .find_map(|l| l.strip_prefix("ref: ")?.strip_suffix("\tHEAD"))
        {
            assert!(
                claw_side.iter().any(|r| r.ends_with(&format!(" {target}"))),
                "GitClaw's HEAD names {target}, which it does not have: {claw_side:?}"
            );
        }
        git_side
    }

    /// Set git's refs to `refs` (as [`Servers::refs`] lists them), undoing
    /// what it applied of an atomic push.
    fn put_git_back(&self, refs: &[String]) {
        let before: Vec<(&str, &str)> = refs
            .iter()
            .filter(|r| !r.ends_with("^{}"))
            .map(|r| r.split_once(' ').unwrap())
            .collect();
        let now = git(&self.git_repo, &["for-each-ref", "--format=%(refname)"]);
        // Deletions first, in a transaction of their own: a name they free
        // may be one the updates need.
        let deletions: String = now
            .lines()
            .filter(|name| !before.iter().any(|(_, b)| b == name))
            .map(|name| format!("delete {name}\n"))
            .collect();
        let updates: String = before
            .iter()
            .map(|(id, name)| format!("update {name} {id}\n"))
            .collect();
        for script in [deletions, updates] {
            git_with_input(
                &self.git_repo,
                &["update-ref", "--stdin"],
                script.as_bytes(),
            );
        }
    }

    /// Whether git's repository holds the object `id`.
    fn git_has(&self, id: &str) -> bool {
        git_output(&self.git_repo, &["cat-file", "-e", id])
            .status
            .success()
    }

    fn send(&self, body: &[u8]) -> [Vec<String>; 2] {
        let mut child = git_cmd(&self.git_repo)
            .args(["receive-pack", "--stateless-rpc", "."])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(body).unwrap();
        let git_out = child.wait_with_output().unwrap();
        assert!(git_out.status.success(), "git receive-pack: {git_out:?}");
        let path = self.claw_url.trim_start_matches(&self.claw.url);
        let (status, claw_body) = http(
            self.claw.addr,
            "POST",
            &format!("{path}/git-receive-pack"),
            &[("Content-Type", "application/x-git-receive-pack-request")],
            body,
        );
        assert_eq!(
            status,
            200,
            "GitClaw answered {status}: {}",
            String::from_utf8_lossy(&claw_body)
        );
        [outcome(&git_out.stdout), outcome(&claw_body)]
    }
}

/// The request body for `push`, its old values read from `refs` (git's, which
/// GitClaw's equal).
fn request(
    push: &Push,
    objects: &Objects,
    refs: &[String],
    git_has: impl Fn(&str) -> bool,
) -> (Vec<u8>, Vec<String>) {
    let mut body = Vec::new();
    let mut shown = Vec::new();
    for (i, cmd) in push.commands.iter().enumerate() {
        let name = NAMES[cmd.name];
        let current = refs
            .iter()
            .find_map(|r| r.strip_suffix(&format!(" {name}")));
        let mut old = match &cmd.old {
            Old::Current => current.unwrap_or(ZERO).to_string(),
            Old::Zero => ZERO.to_string(),
            Old::Object(n) => objects.ids[*n].clone(),
        };
        // A deletion's old value naming no object git has is zero to git;
        // GitClaw compares it like any other. And git deletes an existing ref
        // whose old value is zero without comparing (it takes the ref for
        // corrupt); GitClaw always compares. Such a deletion expects another
        // commit.
        if cmd.new.is_none() {
            if old != ZERO && !git_has(&old) {
                old = ZERO.to_string();
            }
            if let (true, Some(current)) = (old == ZERO, current) {
                old = objects.ids[usize::from(current == objects.ids[0])].clone();
            }
        }
        let new = cmd.new.map_or(ZERO.to_string(), |n| objects.ids[n].clone());
        let line = format!("{old} {new} {name}");
        shown.push(line.clone());
        let line = if i == 0 {
            let atomic = if push.atomic { " atomic" } else { "" };
            format!("{line}\0report-status side-band-64k{atomic}\n")
        } else {
            format!("{line}\n")
        };
        body.extend(pkt(&line));
    }
    body.extend_from_slice(b"0000");
    if push.commands.iter().any(|c| c.new.is_some()) {
        body.extend_from_slice(&objects.pack);
    }
    (body, shown)
}

fn run(pushes: &[Push]) {
    run_on(pushes, false)
}

fn run_on(pushes: &[Push], postgres: bool) {
    let work = tempfile::tempdir().unwrap();
    let objects = Objects::build(&work.path().join("source"));
    let servers = Servers::start(work.path(), &objects, postgres);
    let mut refs = servers.refs(&objects);
    for (n, push) in pushes.iter().enumerate() {
        let (body, shown) = request(push, &objects, &refs, |id| servers.git_has(id));
        let [git_side, claw_side] = servers.send(&body);
        let statuses = |lines: &[String]| -> Vec<String> {
            lines
                .iter()
                .map(|l| l.splitn(3, ' ').take(2).collect::<Vec<_>>().join(" "))
                .collect()
        };
        let mut expected = statuses(&git_side);
        let refused = |s: &String| s.starts_with("ng ");
        if push.atomic && expected.iter().any(refused) {
            for status in expected.iter_mut().filter(|s| s.starts_with("ok ")) {
                *status = status.replacen("ok ", "ng ", 1);
            }
            servers.put_git_back(&refs);
        }
        assert_eq!(
            statuses(&claw_side),
            expected,
            "push {n} (atomic: {}) got other answers from GitClaw than from git:\n{}\n\
             GitClaw: {claw_side:#?}\ngit: {git_side:#?}\nrefs before: {refs:#?}",
            push.atomic,
            shown.join("\n")
        );
        refs = servers.refs(&objects);
    }
    // Any git client can take a whole copy of what GitClaw holds.
    let [git_copy, claw_copy] = ["git-copy", "claw-copy"].map(|d| work.path().join(d));
    let source = servers.git_repo.to_str().unwrap().to_string();
    for (url, dir) in [(&source, &git_copy), (&servers.claw_url, &claw_copy)] {
        let out = git_output(
            work.path(),
            &["clone", "-q", "--mirror", url, dir.to_str().unwrap()],
        );
        assert!(out.status.success(), "mirror clone of {url}: {out:?}");
    }
    assert_eq!(refs_of(&claw_copy, "refs/"), refs_of(&git_copy, "refs/"));
}

/// The case that found GitClaw storing `refs/heads/a` beside `refs/heads/a/b`,
/// after which `git clone` of the repository failed: "cannot process
/// 'refs/remotes/origin/a' and 'refs/remotes/origin/a/b' at the same time".
#[test]
fn a_ref_where_another_ref_name_continues_is_refused_as_git_does() {
    let create = |name, new| Cmd {
        name,
        old: Old::Zero,
        new: Some(new),
    };
    run(&[
        Push {
            commands: vec![create(2, 2), create(3, 4)],
            atomic: false,
        },
        Push {
            commands: vec![create(4, 2), create(7, 3)],
            atomic: true,
        },
    ]);
}

/// Deleting the branch HEAD names is refused (git's receive.denyDeleteCurrent
/// default, in a bare repository too), alone or in an atomic push; deleting a
/// ref that is not there, with no old value, is done (nothing changes).
#[test]
fn the_current_branch_stays_and_a_missing_ref_is_deleted_as_git_does() {
    let delete = |name, old| Cmd {
        name,
        old,
        new: None,
    };
    run(&[
        Push {
            commands: vec![delete(0, Old::Current)],
            atomic: false,
        },
        Push {
            commands: vec![delete(1, Old::Current), delete(0, Old::Current)],
            atomic: true,
        },
        Push {
            commands: vec![delete(2, Old::Zero), delete(1, Old::Current)],
            atomic: false,
        },
    ]);
}

/// A tag object under a name outside `refs/tags/` is advertised peeled, as git
/// advertises it.
#[test]
fn a_tag_object_under_any_name_is_advertised_peeled() {
    // In the same push the tag's own name moves to a commit.
    let set = |name, new| Cmd {
        name,
        old: Old::Current,
        new: Some(new),
    };
    run(&[Push {
        commands: vec![set(8, 0), set(10, 8)],
        atomic: false,
    }]);
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 16,
        max_shrink_iters: 64,
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_pushes_are_answered_and_applied_as_git_does(
        pushes in prop::collection::vec(push(), 1..7)
    ) {
        run(&pushes);
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 6,
        max_shrink_iters: 32,
        ..ProptestConfig::default()
    })]

    /// The same on PostgreSQL, where the refs' names compare by the column's
    /// `COLLATE "C"` and updates wait on each other's row locks.
    #[test]
    fn random_pushes_on_postgres_are_answered_and_applied_as_git_does(
        pushes in prop::collection::vec(push(), 1..7)
    ) {
        run_on(&pushes, true);
    }
}
