//! Git clients other than C git, against GitClaw and against C git's `git
//! http-backend` serving the same repository: libgit2 (through pygit2; the
//! library behind git2-rs, Cargo, rugged, most IDEs and many CI runners) on
//! protocol v1, dulwich (pure Python) on protocol v0 and v2, and go-git (the
//! library of Argo CD, Flux and Gitea) on protocol v1.
//!
//! Each client does what its users do, in turn on both servers: clones (an
//! empty repository, then its first push; full, `--depth 1`, depth 2 of
//! another branch, and with dulwich on v2 `blob:none`), a fetch of a commit by
//! id (as Cargo fetches a git dependency's `rev`), clones again once GitClaw
//! compacted its copy (`gitclaw gc`), fetches after new commits
//! (keeping, deepening and dropping the shallow boundary; go-git 5.4 can do
//! none of these three, with either server), and pushes that create, update,
//! force and delete refs, plus two that git refuses (deleting the branch
//! `HEAD` names; `a/b` beside `a`), and with dulwich atomic pushes with a push
//! option, one of them refused whole. After every step both servers' clients
//! must agree: the same outcome (each pushed ref accepted or refused), the
//! same refs, shallow boundary and objects in the client's repository, `git
//! fsck --strict` clean, and the same refs on the server. What is right is
//! what the client does with C git.
//!
//! `scripts/clients.sh` installs the clients (pygit2 and dulwich from PyPI,
//! pinned, in a Python virtual environment; go-git from Debian, built into a
//! small driver) and names them in `GITCLAW_TEST_CLIENTS_PYTHON` and
//! `GITCLAW_TEST_GO_GIT`; `scripts/test.sh` runs it.

mod common;

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use common::{http_backend::HttpBackend, *};

/// What `scripts/clients.sh` installed, as its `variable` names it.
fn installed(variable: &str, what: &str) -> PathBuf {
    let path = std::env::var_os(variable).map(PathBuf::from);
    match path {
        Some(path) if path.exists() => path,
        _ => panic!(
            "no {what} ({variable} is {path:?}): run `eval \"$(scripts/clients.sh)\"` \
             (scripts/test.sh does)"
        ),
    }
}

/// The command that runs `client`'s steps: the go-git driver, or
/// `tests/clients/drive.py` in the Python with pygit2 and dulwich.
fn driver(client: &str) -> Command {
    if client == "go-git" {
        return Command::new(installed("GITCLAW_TEST_GO_GIT", "go-git driver"));
    }
    let python = installed(
        "GITCLAW_TEST_CLIENTS_PYTHON",
        "Python with pygit2 and dulwich",
    );
    let mut command = Command::new(python);
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/drive.py"))
        .arg(client);
    command
}

/// A client's result of one step, as `tests/clients/drive.py` prints it.
type Outcome = serde_json::Value;

/// Run one step with `client`; gives up (failing the test) after two minutes,
/// which only a client waiting on a server that stopped answering takes.
fn drive(client: &str, args: &[&str]) -> Outcome {
    drive_as(client, None, args)
}

/// [`drive`], the client answering a `401` with `token` when there is one.
fn drive_as(client: &str, token: Option<&str>, args: &[&str]) -> Outcome {
    let mut command = driver(client);
    match token {
        Some(token) => command.env("DRIVE_TOKEN", token),
        None => command.env_remove("DRIVE_TOKEN"),
    };
    let mut child = command
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env_remove("GIT_PROTOCOL")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the client runs");
    let started = Instant::now();
    while child.try_wait().expect("the client runs").is_none() {
        if started.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("{client} {args:?} did not finish in two minutes");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("the client ends");
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| {
        panic!(
            "{client} {args:?} printed no result:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// One server, as a client sees it.
struct Side {
    name: &'static str,
    url: String,
    /// A repository with no commits yet.
    empty_url: String,
    /// Where this side's client repositories go.
    work: PathBuf,
}

impl Servers {
    /// Compact GitClaw's copy of the repository (`gitclaw gc`): what it
    /// serves next comes from the compacted pack and its records.
    fn compact(&self) {
        let server = &self.gitclaw;
        let repo = server
            .block_on(server.state.meta.get_repo("clients", "repo"))
            .unwrap()
            .expect("the repository exists");
        server
            .block_on(gitclaw_server::service::gc::gc_repo(&server.state, &repo))
            .expect("compaction succeeds");
    }
}

impl Side {
    fn dir(&self, name: &str) -> PathBuf {
        self.work.join(name)
    }

    /// `outcome` with this side's URL written `URL` (it shows in messages).
    fn neutral(&self, outcome: Outcome) -> Outcome {
        let text = outcome.to_string().replace(&self.url, "URL");
        serde_json::from_str(&text).expect("JSON stays JSON")
    }
}

/// What a client's repository holds after a step: its refs, shallow
/// boundary and every object it has.
fn state(dir: &Path) -> String {
    let fsck = git_output(dir, &["fsck", "--strict", "--no-progress"]);
    assert!(
        fsck.status.success(),
        "git fsck --strict in {}: {}",
        dir.display(),
        String::from_utf8_lossy(&fsck.stderr)
    );
    let git_dir = match dir.join(".git").exists() {
        true => dir.join(".git"),
        false => dir.to_path_buf(),
    };
    let mut shallow: Vec<String> = std::fs::read_to_string(git_dir.join("shallow"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect();
    shallow.sort();
    format!("shallow:\n{}\n{}", shallow.join("\n"), contents(dir))
}

/// What a bare partial clone holds: refs and objects (`git fsck` would take
/// the objects left out for missing: dulwich does not mark its packs as a
/// promisor's).
fn partial_state(dir: &Path) -> String {
    contents(dir)
}

/// The refs of the repository `dir` and every object it has, with its type.
fn contents(dir: &Path) -> String {
    let objects = all_objects(dir);
    format!(
        "refs:\n{}\nobjects ({}):\n{}",
        refs_of(dir, "refs/").join("\n"),
        objects.len(),
        objects.join("\n")
    )
}

/// A commit on `branch` of the client repository `dir` made with C git, the
/// same on both sides (fixed dates); `branch` starts at `start`, or is the
/// first of a repository without commits.
fn commit_on(dir: &Path, branch: &str, start: Option<&str>, file: &str, n: u32) -> String {
    let mut checkout = vec!["checkout", "-q", "-B", branch];
    checkout.extend(start);
    git(dir, &checkout);
    std::fs::write(dir.join(file), format!("{file} {n}\n")).unwrap();
    git(dir, &["add", file]);
    let date = format!("@{} +0000", 1_800_000_000 + n * 60);
    let out = git_cmd(dir)
        .args(["commit", "-q", "-m", &format!("{file} {n}")])
        .env("GIT_AUTHOR_DATE", &date)
        .env("GIT_COMMITTER_DATE", &date)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(dir, &["rev-parse", "HEAD"]).trim().to_string()
}

/// `n` commits on a new branch `local` of the client repository `dir`, off
/// its `HEAD`, newer than anything else, that no server has: a fetch then
/// negotiates through rounds of `have`s the server does not know. The same on
/// both sides.
fn local_history(dir: &Path, n: u32) {
    let mut script = String::new();
    for i in 0..n {
        let body = format!("local {i}\n");
        script.push_str(&format!(
            "commit refs/heads/local\ncommitter C <c@example.com> {} +0000\ndata 8\nlocal {i:02}\n",
            1_900_000_000 + i
        ));
        if i == 0 {
            script.push_str("from HEAD\n");
        }
        script.push_str(&format!(
            "M 644 inline local.txt\ndata {}\n{body}\n",
            body.len()
        ));
    }
    git_with_input(dir, &["fast-import", "--quiet"], script.as_bytes());
}

/// Both servers with the fixture repository, one for each side.
struct Servers {
    gitclaw: Server,
    _backend: HttpBackend,
    src: PathBuf,
    sides: [Side; 2],
    _work: tempfile::TempDir,
}

fn servers() -> Servers {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 12);
    let gitclaw = Server::start();
    let url = gitclaw.create_repo("clients", "repo");
    push_everything(&src, &url);
    let served = work.path().join("served");
    std::fs::create_dir_all(&served).unwrap();
    let bare = served.join("repo.git");
    git(
        work.path(),
        &[
            "clone",
            "-q",
            "--bare",
            src.to_str().unwrap(),
            bare.to_str().unwrap(),
        ],
    );
    git(&bare, &["config", "http.receivepack", "true"]);
    git(&bare, &["config", "uploadpack.allowFilter", "true"]);
    // GitClaw serves any reachable commit by id, as GitHub does.
    git(
        &bare,
        &["config", "uploadpack.allowReachableSHA1InWant", "true"],
    );
    let empty = served.join("empty.git");
    git(
        work.path(),
        &[
            "init",
            "-q",
            "--bare",
            "-b",
            "main",
            empty.to_str().unwrap(),
        ],
    );
    git(&empty, &["config", "http.receivepack", "true"]);
    let backend = HttpBackend::start(&served);
    let backend_url = format!("http://127.0.0.1:{}/git/repo.git", backend.port);
    let empty_urls = [
        gitclaw.create_repo("clients", "empty"),
        format!("http://127.0.0.1:{}/git/empty.git", backend.port),
    ];
    assert_eq!(
        remote_refs(work.path(), &url),
        remote_refs(work.path(), &backend_url),
        "both servers start from the same refs"
    );
    let side = |name: &'static str, url: String, empty_url: &String| {
        let dir = work.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        Side {
            name,
            url,
            empty_url: empty_url.clone(),
            work: dir,
        }
    };
    Servers {
        sides: [
            side("gitclaw", url, &empty_urls[0]),
            side("git", backend_url, &empty_urls[1]),
        ],
        gitclaw,
        _backend: backend,
        src,
        _work: work,
    }
}

/// `outcome` with each refused ref's reason replaced by `refused`: git gives
/// some refusals a generic reason ("failed to update ref", the details on
/// the side band) where GitClaw names the cause, in git's own words for it.
fn verdicts(outcome: &Outcome) -> Outcome {
    let mut outcome = outcome.clone();
    if let Some(refs) = outcome.get_mut("refs").and_then(|r| r.as_object_mut()) {
        for result in refs.values_mut() {
            if !result.is_null() {
                *result = "refused".into();
            }
        }
    }
    outcome
}

/// Run `step` on both sides; the outcomes (and whatever `look` makes of each
/// side afterwards) must be the same. Returns C git's side's outcome.
fn same(
    what: &str,
    servers: &Servers,
    step: impl Fn(&Side) -> Outcome,
    look: impl Fn(&Side) -> String,
) -> Outcome {
    let [ours, theirs] = &servers.sides;
    let got = ours.neutral(step(ours));
    let want = theirs.neutral(step(theirs));
    assert!(
        verdicts(&got) == verdicts(&want),
        "{what}: GitClaw's outcome\n{got}\ndiffers from git http-backend's\n{want}"
    );
    let (got_state, want_state) = (look(ours), look(theirs));
    assert!(
        got_state == want_state,
        "{what}: after it, GitClaw's side:\n{got_state}\n\ngit http-backend's side:\n{want_state}"
    );
    want
}

/// The refs a server holds, by C git's `ls-remote`, with HEAD's target.
fn server_refs(side: &Side) -> String {
    let head = git(&side.work, &["ls-remote", "--symref", &side.url, "HEAD"]);
    let head = head.lines().next().unwrap_or_default().to_string();
    format!("{head}\n{}", remote_refs(&side.work, &side.url).join("\n"))
}

fn assert_ok(what: &str, outcome: &Outcome) {
    assert_eq!(
        outcome["ok"], true,
        "{what} failed with git http-backend too: {outcome}"
    );
}

/// `client` runs the step `args` makes for each side (where `{dir}` stands
/// for the side's repository `name`, and `{url}` for its URL); it must
/// succeed with C git's server and end the same with both (see [`same`]),
/// comparing the repository `name` with `look`.
fn step(
    what: &str,
    servers: &Servers,
    client: &str,
    name: &str,
    args: &[&str],
    look: fn(&Path) -> String,
) -> Outcome {
    let outcome = same(
        what,
        servers,
        |side| {
            let dir = side.dir(name);
            let args: Vec<String> = args
                .iter()
                .map(|a| {
                    a.replace("{dir}", dir.to_str().unwrap())
                        .replace("{url}", &side.url)
                })
                .collect();
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            drive(client, &args)
        },
        |side| look(&side.dir(name)),
    );
    assert_ok(what, &outcome);
    outcome
}

/// The whole round for one client.
fn round(client: &str) {
    let servers = servers();
    let clone = |name: &'static str, depth: &'static str, branch: &'static str| {
        let what = format!("{client} clone {name} (depth {depth}, branch {branch})");
        let args = ["clone", "{url}", "{dir}", depth, branch];
        step(&what, &servers, client, name, &args, state);
    };
    let fetch = |name: &'static str, depth: &'static str| {
        let what = format!("{client} fetch into {name} (depth {depth})");
        step(
            &what,
            &servers,
            client,
            name,
            &["fetch", "{dir}", depth],
            state,
        );
    };
    let push = |what: &str, specs: &[&str]| -> Outcome {
        let what = format!("{client} push {what}");
        let outcome = same(
            &what,
            &servers,
            |side| {
                let full = side.dir("full");
                let mut args = vec!["push", full.to_str().unwrap(), side.url.as_str()];
                args.extend_from_slice(specs);
                drive(client, &args)
            },
            server_refs,
        );
        assert_ok(&what, &outcome);
        outcome
    };

    // A repository just created: cloned empty, then given its first branch.
    let what = format!("{client} clone of an empty repository");
    let cloned = same(
        &what,
        &servers,
        |side| {
            let dest = side.dir("empty");
            drive(
                client,
                &["clone", &side.empty_url, dest.to_str().unwrap(), "0", "-"],
            )
        },
        |side| match side.dir("empty").exists() {
            true => state(&side.dir("empty")),
            false => String::new(),
        },
    );
    // dulwich on v0 and go-git 5.4 cannot clone an empty repository, from
    // either server ("neither origin_head nor branch", "reference not found").
    if cloned["ok"] == true {
        for side in &servers.sides {
            commit_on(&side.dir("empty"), "main", None, "first.txt", 0);
        }
        let what = format!("{client} push of an empty repository's first branch");
        let pushed = same(
            &what,
            &servers,
            |side| {
                let dir = side.dir("empty");
                drive(
                    client,
                    &[
                        "push",
                        dir.to_str().unwrap(),
                        &side.empty_url,
                        "refs/heads/main:refs/heads/main",
                    ],
                )
            },
            |side| {
                let head = git(&side.work, &["ls-remote", "--symref", &side.empty_url]);
                head.lines().map(|l| format!("{l}\n")).collect()
            },
        );
        assert_ok(&what, &pushed);
    }

    clone("full", "0", "-");
    clone("shallow", "1", "-");
    clone("topic", "2", "topic");
    // dulwich sends a filter on protocol v2 only.
    if client == "dulwich-v2" {
        let what = format!("{client} partial clone (blob:none)");
        let args = ["clone", "{url}", "{dir}", "0", "-", "blob:none"];
        step(&what, &servers, client, "partial", &args, partial_state);
        let state = partial_state(&servers.sides[0].dir("partial"));
        assert!(
            state.contains(" commit") && state.contains(" tree"),
            "{state}"
        );
        assert!(
            !state.contains(" blob"),
            "blob:none left out every blob: {state}"
        );
    }

    // A commit that no ref names, by id (CI checkouts, Cargo's git `rev`).
    let old = git(&servers.src, &["rev-parse", "main~4"])
        .trim()
        .to_string();
    for (name, depth) in [("by-sha", "0"), ("by-sha-shallow", "1")] {
        let what = format!("{client} fetch of {old} by id, depth {depth}");
        let args = ["fetch-sha", "{dir}", "{url}", &old, depth];
        step(&what, &servers, client, name, &args, state);
        let dir = servers.sides[0].dir(name);
        git(&dir, &["cat-file", "-e", &format!("{old}^{{tree}}")]);
    }

    // New history on the servers, pushed by C git: two commits and a tag.
    let base = git(&servers.src, &["rev-parse", "main"]).trim().to_string();
    commit_on(&servers.src, "main", Some(&base), "new.txt", 1);
    commit_on(&servers.src, "main", Some("main"), "new.txt", 2);
    git(&servers.src, &["tag", "-a", "-m", "new", "v2.0", "main"]);
    for side in &servers.sides {
        push_everything(&servers.src, &side.url);
    }
    for side in &servers.sides {
        local_history(&side.dir("full"), 90);
    }
    // From here on GitClaw serves its compacted pack.
    servers.compact();
    clone("compacted", "0", "-");
    clone("compacted-shallow", "1", "-");
    fetch("full", "0");
    // go-git 5.4 cannot fetch into a shallow clone, at a depth or not ("object
    // not found"), nor deepen one (it wants only tips it lacks: "empty
    // git-upload-pack given"), from either server; its users clone again.
    if client != "go-git" {
        fetch("shallow", "0");
        fetch("shallow", "3");
        fetch("topic", "-1");
    }

    // Pushes from the full clone: a fast-forward of main, a new branch and
    // a branch forced back.
    let side_commit = |n: u32| {
        let mut made = Vec::new();
        for side in &servers.sides {
            let dir = side.dir("full");
            made.push(commit_on(
                &dir,
                "work",
                Some("refs/remotes/origin/main"),
                "pushed.txt",
                n,
            ));
        }
        assert_eq!(made[0], made[1], "both sides made the same commit");
        made.remove(0)
    };
    side_commit(10);
    let pushed = push(
        "a fast-forward and a new branch",
        &[
            "refs/heads/work:refs/heads/main",
            "refs/heads/work:refs/heads/c-new",
        ],
    );
    assert!(
        pushed["refs"]
            .as_object()
            .is_some_and(|refs| refs.values().all(|r| r.is_null())),
        "both refs accepted: {pushed}"
    );
    for side in &servers.sides {
        git(
            &side.dir("full"),
            &["branch", "-f", "older", "refs/remotes/origin/main~3"],
        );
    }
    push("a forced rewind", &["+refs/heads/older:refs/heads/topic"]);

    // What git refuses, GitClaw refuses with the same words.
    let refused = push("deleting the current branch", &[":refs/heads/main"]);
    assert_ne!(
        refused["refs"]["refs/heads/main"],
        serde_json::Value::Null,
        "git refused: {refused}"
    );
    let refused = push(
        "a ref under an existing one",
        &["refs/heads/work:refs/heads/c-new/x"],
    );
    assert_ne!(
        refused["refs"]["refs/heads/c-new/x"],
        serde_json::Value::Null,
        "git refused: {refused}"
    );

    if client.starts_with("dulwich") {
        // Atomic: the refusal of one takes the other with it.
        let refused = push(
            "atomic, one ref refused",
            &[
                "--atomic",
                "--push-option=ci.skip",
                "refs/heads/work:refs/heads/atomic",
                "refs/heads/work:refs/heads/c-new/x",
            ],
        );
        assert_ne!(
            refused["refs"]["refs/heads/atomic"],
            serde_json::Value::Null,
            "{refused}"
        );
        push(
            "atomic",
            &[
                "--atomic",
                "--push-option=ci.skip",
                "refs/heads/work:refs/heads/atomic",
            ],
        );
    }
    push("a deletion", &[":refs/heads/c-new"]);
    push("a tag", &["refs/tags/v2.0:refs/tags/v2.0-copy"]);

    // And every C git client can still clone what the other clients left.
    for side in &servers.sides {
        let mirror = side.work.join("mirror");
        git(
            &side.work,
            &[
                "clone",
                "-q",
                "--mirror",
                &side.url,
                mirror.to_str().unwrap(),
            ],
        );
        git(&mirror, &["fsck", "--strict", "--no-progress"]);
    }
    let [ours, theirs] = &servers.sides;
    assert_eq!(
        refs_of(&ours.work.join("mirror"), "refs/"),
        refs_of(&theirs.work.join("mirror"), "refs/")
    );
    assert_eq!(ours.name, "gitclaw");
}

const ADMIN: &str = "admin-secret-0123456789";

/// A private repository: no credentials, no clone; a read token clones but
/// cannot push; a write token pushes. The same for each client.
#[test]
fn private_repositories_take_a_token() {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    let (status, _) = api_request(
        &server,
        "POST",
        "/api/v1/repos",
        Some(ADMIN),
        r#"{"owner":"acme","name":"secret","private":true}"#,
    );
    assert_eq!(status, 201);
    let token = |access: &str| {
        let body = format!(
            r#"{{"name":"{access}","repos":[{{"repo":"acme/secret","access":"{access}"}}]}}"#
        );
        let (status, made) = api_request(&server, "POST", "/api/v1/tokens", Some(ADMIN), &body);
        assert_eq!(status, 201, "{made}");
        made["token"].as_str().unwrap().to_string()
    };
    let (reader, writer) = (token("read"), token("write"));
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    let url = format!("{}/acme/secret.git", server.url);
    let with = |token: &str| url.replacen("http://", &format!("http://token:{token}@"), 1);
    push_everything(&src, &with(&writer));
    for client in ["libgit2", "dulwich-v0", "dulwich-v2", "go-git"] {
        // What is there now (an earlier client pushed a branch).
        let expected = remote_refs(work.path(), &with(&reader));
        let dir = |name: &str| work.path().join(format!("{client}-{name}"));
        let refused = drive(
            client,
            &["clone", &url, dir("anonymous").to_str().unwrap(), "0", "-"],
        );
        assert_eq!(
            refused["ok"], false,
            "{client} cloned without credentials: {refused}"
        );
        let cloned = dir("reader");
        let outcome = drive_as(
            client,
            Some(&reader),
            &["clone", &url, cloned.to_str().unwrap(), "0", "-"],
        );
        assert_eq!(
            outcome["ok"], true,
            "{client} clone with a read token: {outcome}"
        );
        git(&cloned, &["fsck", "--strict", "--no-progress"]);
        let mut tips: Vec<String> = refs_of(&cloned, "refs/remotes/origin/")
            .iter()
            .filter(|r| !r.ends_with("/HEAD"))
            .map(|r| r.replace("refs/remotes/origin/", "refs/heads/"))
            .collect();
        tips.extend(refs_of(&cloned, "refs/tags/"));
        tips.sort();
        let mut heads_and_tags: Vec<String> = expected
            .iter()
            .filter(|r| !r.ends_with("^{}"))
            .cloned()
            .collect();
        heads_and_tags.sort();
        assert_eq!(tips, heads_and_tags, "{client} cloned every branch and tag");

        let branch = format!("refs/heads/{client}");
        let spec = format!("refs/remotes/origin/main:{branch}");
        let denied = drive_as(
            client,
            Some(&reader),
            &["push", cloned.to_str().unwrap(), &url, &spec],
        );
        let landed = denied["ok"] == true && denied["refs"][&branch].is_null();
        assert!(!landed, "{client} pushed with a read token: {denied}");
        assert!(
            !remote_refs(work.path(), &with(&reader))
                .iter()
                .any(|r| r.ends_with(&branch)),
            "{client}'s push with a read token changed nothing ({denied})"
        );
        let pushed = drive_as(
            client,
            Some(&writer),
            &["push", cloned.to_str().unwrap(), &url, &spec],
        );
        assert_eq!(
            pushed["ok"], true,
            "{client} push with a write token: {pushed}"
        );
        assert!(pushed["refs"][&branch].is_null(), "{client}: {pushed}");
        let main = git(&cloned, &["rev-parse", "refs/remotes/origin/main"]);
        assert!(
            remote_refs(work.path(), &with(&reader)).contains(&format!("{} {branch}", main.trim())),
            "{client}'s push landed"
        );
    }
}

#[test]
fn libgit2() {
    round("libgit2");
}

#[test]
fn go_git() {
    round("go-git");
}

#[test]
fn dulwich_protocol_v0() {
    round("dulwich-v0");
}

#[test]
fn dulwich_protocol_v2() {
    round("dulwich-v2");
}
