//! Several instances, one truth: two or three `gitclaw serve` processes on one
//! PostgreSQL database and one bucket, each with a data directory (caches,
//! scratch space) of its own, as a deployment behind a load balancer runs them.
//!
//! What one instance takes, the others serve at once — no cache of a process
//! answers with stale refs, a stale pack list or a stale "not found", and a
//! fetch that reads a repository's object lists while another instance
//! compacts it misses nothing; pushes racing through two instances have
//! exactly one winner and lose nothing; compaction started on two instances at
//! once compacts once while a third serves clones and takes pushes; a
//! repository deleted on one instance while another streams a clone of it or
//! stores a push to it leaves no key in the bucket, and the clone or push says
//! why it failed. Every cluster shares a Redis (the shared metadata cache) too,
//! as a deployment of several instances would.

mod common;

use std::{
    io::{Read, Write},
    net::{SocketAddr, TcpListener, TcpStream},
    path::Path,
    process::Output,
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering},
        Arc, Barrier, Mutex,
    },
    time::Duration,
};

use common::*;

/// How long a test waits for background work (a deletion's retries) to show.
const DEADLINE: Duration = Duration::from_secs(60);

/// `gitclaw serve` processes sharing one database and one bucket.
struct Cluster {
    servers: Vec<ServerProcess>,
    database_url: String,
    bucket: String,
    /// Dropped after the servers (fields drop in order).
    _redis: redis::RedisServer,
}

impl Cluster {
    /// Start `instances` servers; `settings` are added to every one's environment.
    fn start(instances: usize, settings: &[(&'static str, &str)]) -> Cluster {
        Cluster::start_with(instances, settings, |_| Vec::new())
    }

    /// [`Cluster::start`], with settings of its own for each instance on top.
    fn start_with(
        instances: usize,
        settings: &[(&'static str, &str)],
        own: impl Fn(usize) -> Vec<(&'static str, String)>,
    ) -> Cluster {
        let database_url = postgres_database();
        let bucket = fresh_bucket();
        let redis = redis::RedisServer::start();
        let mut env = s3_process_env(&bucket);
        env.push(("DATABASE_URL", database_url.clone()));
        env.push(("REDIS_URL", redis.url()));
        // Only the compactions a test starts itself.
        env.push(("GITCLAW_GC_LOOSE_THRESHOLD", "0".into()));
        env.push(("GITCLAW_GC_PACK_THRESHOLD", "0".into()));
        env.extend(settings.iter().map(|(k, v)| (*k, v.to_string())));
        // One after the other: the first creates the bucket and the schema.
        let servers = (0..instances)
            .map(|i| {
                let mut env = env.clone();
                env.extend(own(i));
                ServerProcess::start(&env)
            })
            .collect();
        Cluster {
            servers,
            database_url,
            bucket,
            _redis: redis,
        }
    }

    fn addr(&self, instance: usize) -> SocketAddr {
        self.servers[instance].addr
    }

    /// The clone URL of `repo` (`owner/name`) through one instance.
    fn url(&self, instance: usize, repo: &str) -> String {
        format!("{}/{repo}.git", self.servers[instance].url)
    }

    /// `gitclaw gc REPO` with one instance's data directory and environment.
    fn gc(&self, instance: usize, repo: &str) -> Output {
        self.servers[instance].command(&["gc", repo])
    }

    /// `psql -At -c QUERY` on the shared database, trimmed.
    fn sql(&self, query: &str) -> String {
        psql(&self.database_url, query)
    }

    /// The stable id of `repo` (`owner/name`), from the API.
    fn repo_id(&self, repo: &str) -> String {
        let (status, body) = http(
            self.addr(0),
            "GET",
            &format!("/api/v1/repos/{repo}"),
            &[],
            b"",
        );
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        let json: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        json["id"].as_str().expect("id").to_string()
    }

    /// Every key the bucket holds under a repository's prefix, listed with the
    /// S3 API (not through any instance).
    fn bucket_keys(&self, repo_id: &str) -> Vec<String> {
        bucket_keys(&self.bucket, repo_id)
    }

    /// The store keys the database records for a repository (packs with their
    /// indexes, loose objects), sorted.
    fn recorded_keys(&self, repo_id: &str) -> Vec<String> {
        recorded_keys(&self.database_url, repo_id)
    }
}

/// The refs an instance advertises (`git ls-remote` in protocol `version`), as
/// sorted `oid name` lines, without HEAD and peeled tags.
/// Create `repo` (`owner/name`) through instance A and push a fixture of
/// `commits` extra commits, then `loose` more commits one push each (stored as
/// loose objects); what the tags peel to is learnt through A. Returns the source.
fn pushed_with_loose(
    cluster: &Cluster,
    w: &Path,
    repo: &str,
    commits: u32,
    loose: usize,
) -> std::path::PathBuf {
    let (owner, name) = repo.split_once('/').unwrap();
    create_repo_at(cluster.addr(0), owner, name);
    let src = w.join("src");
    fixture_repo(&src, commits);
    push_everything(&src, &cluster.url(0, repo));
    for i in 0..loose {
        commit_file(&src, "loose.txt", &format!("loose {i}\n"), "loose");
        git(&src, &["push", "-q", &cluster.url(0, repo), "main"]);
    }
    advertised(w, &cluster.url(0, repo), 0);
    src
}

fn advertised(dir: &Path, url: &str, version: u8) -> Vec<String> {
    let protocol = format!("protocol.version={version}");
    let mut lines: Vec<String> = git(dir, &["-c", &protocol, "ls-remote", url])
        .lines()
        .filter(|l| !l.ends_with("\tHEAD") && !l.ends_with("^{}"))
        .map(|l| l.replace('\t', " "))
        .collect();
    lines.sort();
    lines
}

/// Branches and tags of a local repository, as `advertised` shows them.
fn branches_and_tags(dir: &Path) -> Vec<String> {
    let mut refs = refs_of(dir, "refs/heads");
    refs.extend(refs_of(dir, "refs/tags"));
    refs.sort();
    refs
}

fn rev(dir: &Path, name: &str) -> String {
    git(dir, &["rev-parse", name]).trim().to_string()
}

/// Clone `url` into `dir` and check every object with `git fsck --strict`.
#[test]
fn what_one_instance_takes_every_other_instance_serves_at_once() {
    let cluster = Cluster::start(3, &[]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = "team/shared";
    create_repo_at(cluster.addr(0), "team", "shared");
    let url = |i: usize| cluster.url(i, repo);
    // Every instance agrees with `src` at once, in both protocol versions:
    // no sleep, no retry.
    let all_serve = |src: &Path, when: &str| {
        let expected = branches_and_tags(src);
        for i in 0..3 {
            for version in [0, 2] {
                assert_eq!(
                    advertised(w, &url(i), version),
                    expected,
                    "instance {i} (protocol v{version}) {when}"
                );
            }
        }
    };

    let src = w.join("src");
    fixture_repo(&src, 5);
    for i in 0..3 {
        assert!(
            advertised(w, &url(i), 2).is_empty(),
            "instance {i} shows an empty repository before the first push"
        );
    }
    push_everything(&src, &url(0));
    all_serve(&src, "right after the first push through instance 0");

    // Clones through B and C; a second clone through B is answered by what the
    // first left in B's caches.
    let (clone_b, clone_c) = (w.join("clone-b"), w.join("clone-c"));
    clone_checked(w, &url(1), &clone_b);
    clone_checked(w, &url(2), &clone_c);
    clone_checked(w, &url(1), &w.join("clone-b-again"));
    assert_eq!(rev(&clone_b, "origin/main"), rev(&src, "main"));

    // A commit B was asked for before it existed, then pushed through A: B
    // serves it by SHA (no remembered "not found").
    git(&src, &["checkout", "-q", "-b", "next"]);
    let next = commit_file(&src, "next.txt", "next\n", "next");
    let early = git_output(&clone_b, &["fetch", "-q", &url(1), &next]);
    assert!(
        !early.status.success(),
        "B served {next} before anyone pushed it"
    );
    git(&src, &["push", "-q", &url(0), "next"]);
    git(&clone_b, &["fetch", "-q", &url(1), &next]);
    git(&clone_b, &["cat-file", "-e", &format!("{next}^{{commit}}")]);
    all_serve(&src, "after a new branch through instance 0");
    // B's clone fetches the new branch right after B warmed its caches.
    git(&clone_b, &["fetch", "-q", "origin"]);
    assert_eq!(rev(&clone_b, "origin/next"), next);

    // A push through C, fetched through B at once.
    git(&src, &["checkout", "-q", "main"]);
    let main2 = commit_file(&src, "round2.txt", "round 2\n", "round 2");
    git(&src, &["push", "-q", &url(2), "main"]);
    git(&clone_b, &["fetch", "-q", "origin"]);
    assert_eq!(rev(&clone_b, "origin/main"), main2);
    all_serve(&src, "after a push through instance 2");

    // A branch deleted through B is gone everywhere at once.
    git(&src, &["push", "-q", &url(1), ":refs/heads/topic"]);
    git(&src, &["branch", "-q", "-D", "topic"]);
    all_serve(&src, "after deleting a branch through instance 1");
    git(&clone_c, &["fetch", "-q", "--prune", "origin"]);
    assert!(
        git_output(&clone_c, &["rev-parse", "--verify", "-q", "origin/topic"])
            .stdout
            .is_empty(),
        "C still serves the deleted branch"
    );

    // A force-push through A rewrites main for B and C at once.
    let old_main = rev(&src, "main");
    git(&src, &["reset", "-q", "--hard", "main~2"]);
    let forced = commit_file(&src, "forced.txt", "forced\n", "forced");
    git(&src, &["push", "-q", "--force", &url(0), "main"]);
    all_serve(&src, "after a force-push through instance 0");
    git(&clone_b, &["fetch", "-q", "origin"]);
    assert_eq!(rev(&clone_b, "origin/main"), forced);
    let fresh_c = w.join("fresh-c");
    clone_checked(w, &url(2), &fresh_c);
    assert_eq!(rev(&fresh_c, "HEAD"), forced);
    let reachable = git(&fresh_c, &["rev-list", "--all"]);
    assert!(
        !reachable.contains(&old_main),
        "a fresh clone through C still has the overwritten main {old_main}"
    );

    // Compaction through A: B and C, whose caches hold the old packs, serve
    // whole clones of the new pack list and fetches on top of it.
    let out = cluster.gc(0, repo);
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.contains("merged into"),
        "gc through instance 0: {said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for (i, name) in [(1, "after-gc-b"), (2, "after-gc-c")] {
        let dir = w.join(name);
        clone_checked(w, &url(i), &dir);
        assert_eq!(
            branches_and_tags(&dir)
                .iter()
                .filter(|r| r.contains("refs/tags/"))
                .count(),
            refs_of(&src, "refs/tags").len(),
            "instance {i} after gc: every tag"
        );
        let branches = git(&dir, &["branch", "-r"]);
        assert!(branches.contains("origin/next") && !branches.contains("origin/topic"));
        assert_eq!(rev(&dir, "origin/main"), forced);
    }
    let after_gc = commit_file(&src, "after-gc.txt", "after gc\n", "after gc");
    git(&src, &["push", "-q", &url(2), "main"]);
    git(&clone_b, &["fetch", "-q", "origin"]);
    assert_eq!(rev(&clone_b, "origin/main"), after_gc);
    git(&clone_b, &["fsck", "--strict", "--no-progress"]);
    all_serve(&src, "after gc and a push through instance 2");
}

#[test]
fn a_fetch_reading_the_object_lists_while_another_instance_compacts_misses_nothing() {
    // B reaches the bucket through a proxy that can make its downloads slow.
    let s3 = proxy::FaultProxy::start(&s3_env().endpoint);
    let cluster = Cluster::start_with(2, &[], |i| {
        if i == 1 {
            vec![("S3_ENDPOINT", s3.endpoint())]
        } else {
            Vec::new()
        }
    });
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = "team/compacting";
    // The newest commits are loose objects, which the compaction moves into its
    // pack; B then reads the objects for the clone's pack only.
    let src = pushed_with_loose(&cluster, w, repo, 3, 3);

    // A clone through B, whose download of the stored pack takes five seconds;
    // meanwhile A compacts the repository, committing while B, which listed
    // the packs, still downloads one.
    s3.forget();
    s3.inject(
        proxy::Fault::Delay(Duration::from_secs(5)),
        &["GET"],
        0,
        Some(1),
    );
    let target = w.join("clone");
    let clone = git_cmd(w)
        .args([
            "clone",
            "-q",
            &cluster.url(1, repo),
            target.to_str().unwrap(),
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(DEADLINE, "B to download the stored pack", || {
        s3.seen().iter().any(|r| r.path.contains("/pack/"))
    });
    let out = cluster.gc(0, repo);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("merged into"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = clone.wait_with_output().unwrap();
    s3.clear();
    assert!(
        out.status.success(),
        "the clone that began before the compaction failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(&target, &["fsck", "--strict", "--no-progress"]);
    assert_eq!(rev(&target, "HEAD"), rev(&src, "main"));
}

/// Pushers racing per round.
const PUSHERS: usize = 32;

/// Texts git shows for a push that lost to another (the server's `stale info`,
/// or git's own refusal once it saw the winner's tip).
const LOST_RACE: [&str; 4] = [
    "stale info",
    "fetch first",
    "non-fast-forward",
    "atomic push failed",
];

/// One round: `PUSHERS` clones of `base` (at the current tips), each with a
/// commit of its own on `main` (and on `shared` when `atomic`), all pushed at
/// once, alternately through instance 0 and 1. Returns the winner's commits.
fn push_race(
    cluster: &Cluster,
    base: &Path,
    round_dir: &Path,
    repo: &str,
    atomic: bool,
) -> (String, Option<String>) {
    git(base, &["fetch", "-q", "origin"]);
    git(base, &["reset", "-q", "--hard", "origin/main"]);
    let main_before = rev(base, "origin/main");
    let shared_now = rev(base, "origin/shared");
    let shared_before = atomic.then(|| shared_now.clone());
    let mut pushers = Vec::new();
    for i in 0..PUSHERS {
        let dir = round_dir.join(format!("pusher-{i}"));
        git(
            base,
            &["clone", "-q", "--shared", ".", dir.to_str().unwrap()],
        );
        // Odd pushers send more than ten objects (a stored pack), even ones a
        // few (loose objects).
        let files = if i % 2 == 1 { 12 } else { 1 };
        for f in 0..files {
            std::fs::write(
                dir.join(format!("pusher-{i}-{f}.txt")),
                format!("{} {i} {f}\n", round_dir.display()),
            )
            .unwrap();
        }
        git(&dir, &["add", "-A"]);
        git(&dir, &["commit", "-q", "-m", &format!("pusher {i}")]);
        let main = rev(&dir, "HEAD");
        let shared = shared_before.as_ref().map(|old| {
            git(&dir, &["checkout", "-q", "-b", "mine", old]);
            let text = format!("{} {i}\n", round_dir.display());
            let shared = commit_file(&dir, "shared.txt", &text, "shared");
            git(&dir, &["checkout", "-q", "main"]);
            shared
        });
        pushers.push((dir, main, shared));
    }
    let start = Arc::new(Barrier::new(PUSHERS));
    let threads: Vec<_> = pushers
        .iter()
        .enumerate()
        .map(|(i, (dir, _, shared))| {
            let (dir, start) = (dir.clone(), start.clone());
            let url = cluster.url(i % 2, repo);
            let mut args = vec!["push".to_string()];
            if atomic {
                args.push("--atomic".into());
            }
            args.push(url);
            args.push("HEAD:refs/heads/main".into());
            if let Some(shared) = shared {
                args.push(format!("{shared}:refs/heads/shared"));
            }
            std::thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                start.wait();
                git_output(&dir, &args)
            })
        })
        .collect();
    let outputs: Vec<Output> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    let report = outputs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            format!(
                "pusher {i} ({}): {}",
                o.status,
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let winners: Vec<usize> = (0..PUSHERS)
        .filter(|i| outputs[*i].status.success())
        .collect();
    assert_eq!(winners.len(), 1, "exactly one push wins:\n{report}");
    for (i, out) in outputs.iter().enumerate() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        if i != winners[0] {
            assert!(
                LOST_RACE.iter().any(|m| stderr.contains(m)),
                "pusher {i} lost the race, and git says so: {stderr}"
            );
        }
    }
    let (_, main, shared) = &pushers[winners[0]];
    // Both instances serve the winner's tips, and nothing else moved.
    let mut expected = vec![
        format!("{main} refs/heads/main"),
        format!(
            "{} refs/heads/shared",
            shared.as_ref().unwrap_or(&shared_now)
        ),
    ];
    expected.sort();
    for instance in 0..2 {
        assert_eq!(
            advertised(round_dir, &cluster.url(instance, repo), 2),
            expected,
            "instance {instance} after the race; pushes:\n{report}"
        );
    }
    // Nothing lost: a fresh clone through the other instance has the winner's
    // commit on top of the old tip, and every object (fsck --strict).
    let other = 1 - winners[0] % 2;
    let check = round_dir.join("check");
    clone_checked(round_dir, &cluster.url(other, repo), &check);
    assert_eq!(rev(&check, "origin/main"), *main);
    git(&check, &["merge-base", "--is-ancestor", &main_before, main]);
    if let Some(shared) = shared {
        assert_eq!(rev(&check, "origin/shared"), *shared);
    }
    (main.clone(), shared.clone())
}

#[test]
fn pushes_racing_through_two_instances_have_one_winner_and_lose_nothing() {
    let cluster = Cluster::start(2, &[]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = "race/one-branch";
    create_repo_at(cluster.addr(0), "race", "one-branch");
    let base = w.join("base");
    git(w, &["init", "-q", "-b", "main", base.to_str().unwrap()]);
    commit_file(&base, "README", "race\n", "start");
    git(&base, &["branch", "shared"]);
    git(&base, &["remote", "add", "origin", &cluster.url(0, repo)]);
    git(&base, &["push", "-q", "origin", "main", "shared"]);
    let mut history = Vec::new();
    for round in 0..3 {
        let dir = w.join(format!("round-{round}"));
        let (main, _) = push_race(&cluster, &base, &dir, repo, false);
        history.push(main);
    }
    for round in 0..2 {
        let dir = w.join(format!("atomic-{round}"));
        let (main, shared) = push_race(&cluster, &base, &dir, repo, true);
        assert!(shared.is_some(), "the atomic winner moved both refs");
        history.push(main);
    }
    // Every round's winner is in the history of main.
    let last = w.join("last");
    clone_checked(w, &cluster.url(1, repo), &last);
    for commit in &history {
        git(
            &last,
            &["merge-base", "--is-ancestor", commit, "origin/main"],
        );
    }
    // The losers' uploads are gone again: every key in the bucket is recorded.
    let id = cluster.repo_id(repo);
    wait_until(DEADLINE, "the losers' keys to be deleted", || {
        cluster.bucket_keys(&id) == cluster.recorded_keys(&id)
    });
}

/// Keys replaced by compaction wait this long before deletion: longer than any
/// clone of the test takes, short enough to see the deletion happen.
const GRACE_SECS: u64 = 3;

#[test]
fn gc_on_two_instances_at_once_compacts_once_while_a_third_serves_and_takes_pushes() {
    let grace = GRACE_SECS.to_string();
    let cluster = Cluster::start(3, &[("GITCLAW_GC_GRACE_SECS", &grace)]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = "ops/busy";
    create_repo_at(cluster.addr(2), "ops", "busy");
    let id = cluster.repo_id(repo);
    let url_c = cluster.url(2, repo);
    let src = w.join("src");
    fixture_repo(&src, 40);
    push_everything(&src, &url_c);
    // Several packs and loose objects to merge.
    for i in 0..4 {
        commit_file(&src, "small.txt", &format!("small {i}\n"), "small");
        git(&src, &["push", "-q", &url_c, "main"]);
        for f in 0..12 {
            std::fs::write(src.join(format!("bulk-{i}-{f}.txt")), format!("{i} {f}\n")).unwrap();
        }
        git(&src, &["add", "-A"]);
        git(&src, &["commit", "-q", "-m", "bulk"]);
        git(&src, &["push", "-q", &url_c, "main"]);
    }
    let packs_before: usize = cluster
        .sql(&format!(
            "SELECT count(*) FROM packs WHERE repo_id = '{id}'"
        ))
        .parse()
        .unwrap();
    assert!(packs_before >= 5, "{packs_before} packs to merge");

    // Through C: clones in a loop, each checked, and pushes in a loop.
    let pusher = w.join("pusher");
    git(w, &["clone", "-q", &url_c, pusher.to_str().unwrap()]);
    let traffic = Traffic::start(&url_c, &w.join("readers"), &pusher);
    traffic.wait_for("C to serve a clone and take a push", 1, 1);

    // gc through A and B at once.
    let start = Barrier::new(2);
    let outputs: Vec<Output> = std::thread::scope(|scope| {
        let runs: Vec<_> = [0, 1]
            .map(|instance| {
                let (cluster, start) = (&cluster, &start);
                scope.spawn(move || {
                    start.wait();
                    cluster.gc(instance, repo)
                })
            })
            .into_iter()
            .collect();
        runs.into_iter().map(|run| run.join().unwrap()).collect()
    });
    let said: Vec<String> = outputs
        .iter()
        .map(|o| {
            format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
        })
        .collect();
    for (out, text) in outputs.iter().zip(&said) {
        assert!(out.status.success(), "gc failed: {text}");
    }
    // The original packs were merged by one of the two; the other skipped,
    // found nothing to do, or merged only what it found after the first (its
    // pack and what was pushed since).
    let merged_original = said
        .iter()
        .filter(|t| merged_packs(t).is_some_and(|packs| packs >= packs_before))
        .count();
    assert_eq!(
        merged_original, 1,
        "one compaction of the original packs: {said:?}"
    );
    let packs_after = cluster.sql(&format!(
        "SELECT count(*) FROM packs WHERE repo_id = '{id}'"
    ));
    assert_eq!(
        packs_after,
        "1",
        "one compacted pack, not two: {said:?}; packs: {}",
        cluster.sql(&format!(
            "SELECT pack_hash, object_count, created_at, closure_of FROM packs WHERE repo_id = '{id}'"
        ))
    );

    // Clones and pushes go on through the deletion of the replaced keys, which
    // a third gc run does once their grace period is over.
    let (clones, pushes) = traffic.counts();
    traffic.wait_for(
        "clones and pushes after the compaction",
        clones + 2,
        pushes + 1,
    );
    std::thread::sleep(Duration::from_secs(GRACE_SECS + 1));
    let out = cluster.gc(2, repo);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (clones, _) = traffic.counts();
    traffic.wait_for("clones after the replaced keys were deleted", clones + 2, 0);
    let (clone_failures, push_failures, pushed) = traffic.finish();
    assert!(clone_failures.is_empty(), "{clone_failures:#?}");
    assert!(push_failures.is_empty(), "{push_failures:#?}");
    let last = w.join("last");
    clone_checked(w, &cluster.url(0, repo), &last);
    assert_eq!(
        rev(&last, "origin/main"),
        *pushed.last().unwrap(),
        "the last push that succeeded is main"
    );
    for commit in pushed.iter() {
        git(
            &last,
            &["merge-base", "--is-ancestor", commit, "origin/main"],
        );
    }

    // Once the grace periods are over, the bucket holds exactly the one pack
    // the database records, and nothing else: a gc compacts what was pushed
    // since and deletes what the third replaced, the next what that one replaced.
    for instance in [0, 1] {
        std::thread::sleep(Duration::from_secs(GRACE_SECS + 1));
        let out = cluster.gc(instance, repo);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let recorded = cluster.recorded_keys(&id);
    assert_eq!(
        recorded.len(),
        3,
        "one pack, its index and its commit-graph: {recorded:?}"
    );
    assert!(
        recorded.iter().any(|k| k.ends_with(".graph")),
        "{recorded:?}"
    );
    assert_eq!(cluster.bucket_keys(&id), recorded);
}

/// Clones (each checked with `git fsck --strict`) and pushes of new commits
/// to `main`, each in a loop of its own, until finished or dropped.
struct Traffic {
    stop: Arc<AtomicBool>,
    clones: Arc<AtomicU64>,
    clone_failures: Arc<Mutex<Vec<String>>>,
    pushed: Arc<Mutex<Vec<String>>>,
    push_failures: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Traffic {
    /// Clone `url` into `readers` again and again; commit in `pusher` (a
    /// clone of `url`) and push to `url`, again and again.
    fn start(url: &str, readers: &Path, pusher: &Path) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let clones = Arc::new(AtomicU64::new(0));
        let clone_failures = Arc::new(Mutex::new(Vec::new()));
        let pushed = Arc::new(Mutex::new(Vec::new()));
        let push_failures = Arc::new(Mutex::new(Vec::new()));
        let reader = {
            let (stop, clones, failures) = (stop.clone(), clones.clone(), clone_failures.clone());
            let (url, dir) = (url.to_string(), readers.to_path_buf());
            std::thread::spawn(move || {
                std::fs::create_dir_all(&dir).unwrap();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let target = dir.join(format!("clone-{n}"));
                    let out = git_output(&dir, &["clone", "-q", &url, target.to_str().unwrap()]);
                    let failure = if !out.status.success() {
                        Some(format!(
                            "clone {n} failed: {}",
                            String::from_utf8_lossy(&out.stderr)
                        ))
                    } else {
                        let fsck = git_output(&target, &["fsck", "--strict", "--no-progress"]);
                        (!fsck.status.success()).then(|| {
                            format!(
                                "clone {n} is not fsck-clean: {}",
                                String::from_utf8_lossy(&fsck.stderr)
                            )
                        })
                    };
                    failures.lock().unwrap().extend(failure);
                    let _ = std::fs::remove_dir_all(&target);
                    n += 1;
                    clones.store(n, Ordering::SeqCst);
                }
            })
        };
        let writer = {
            let (stop, pushed, failures) = (stop.clone(), pushed.clone(), push_failures.clone());
            let (url, dir) = (url.to_string(), pusher.to_path_buf());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    let step = |args: &[&str]| {
                        let out = git_output(&dir, args);
                        match out.status.success() {
                            true => Ok(String::from_utf8_lossy(&out.stdout).trim().to_string()),
                            false => Err(format!(
                                "{args:?}: {}",
                                String::from_utf8_lossy(&out.stderr)
                            )),
                        }
                    };
                    let pushed_one = std::fs::write(dir.join("pushed.txt"), format!("{n}\n"))
                        .map_err(|e| e.to_string())
                        .and_then(|_| step(&["add", "pushed.txt"]))
                        .and_then(|_| step(&["commit", "-q", "-m", &format!("push {n}")]))
                        .and_then(|_| step(&["rev-parse", "HEAD"]))
                        .and_then(|commit| {
                            step(&["push", "-q", &url, "HEAD:main"]).map(|_| commit)
                        });
                    match pushed_one {
                        Ok(commit) => pushed.lock().unwrap().push(commit),
                        Err(why) => {
                            failures.lock().unwrap().push(format!("push {n}: {why}"));
                            return;
                        }
                    }
                    n += 1;
                }
            })
        };
        Traffic {
            stop,
            clones,
            clone_failures,
            pushed,
            push_failures,
            threads: vec![reader, writer],
        }
    }

    /// Clones done and pushes that succeeded so far.
    fn counts(&self) -> (u64, usize) {
        (
            self.clones.load(Ordering::SeqCst),
            self.pushed.lock().unwrap().len(),
        )
    }

    /// Wait until at least `clones` clones were done and `pushes` pushes succeeded.
    fn wait_for(&self, what: &str, clones: u64, pushes: usize) {
        wait_until(DEADLINE, what, || {
            let (c, p) = self.counts();
            let failed = !self.push_failures.lock().unwrap().is_empty();
            (c >= clones && p >= pushes) || failed
        })
    }

    /// Stop; the clones that failed, the pushes that failed, and the commits
    /// pushed, in order.
    fn finish(mut self) -> (Vec<String>, Vec<String>, Vec<String>) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            thread.join().unwrap();
        }
        let take = |v: &Mutex<Vec<String>>| std::mem::take(&mut *v.lock().unwrap());
        (
            take(&self.clone_failures),
            take(&self.push_failures),
            take(&self.pushed),
        )
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// `N packs` of a gc report line `owner/name: N packs and M loose objects merged into …`.
fn merged_packs(report: &str) -> Option<usize> {
    let line = report.lines().find(|l| l.contains("merged into"))?;
    let (_, rest) = line.split_once(": ")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// A TCP proxy in front of `upstream` that passes requests on at once and
/// answers at `bytes_per_sec`: a client on a slow line. Counts the bytes it
/// passed back.
struct SlowLine {
    addr: SocketAddr,
    answered: Arc<AtomicU64>,
}

impl SlowLine {
    fn start(upstream: SocketAddr, bytes_per_sec: u64) -> SlowLine {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let answered = Arc::new(AtomicU64::new(0));
        let counter = answered.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let Ok(server) = TcpStream::connect(upstream) else {
                    continue;
                };
                let (mut client_in, mut server_out) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut client_in, &mut server_out);
                    let _ = server_out.shutdown(std::net::Shutdown::Write);
                });
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let (mut server, mut client) = (server, client);
                    let chunk = 16 * 1024;
                    let pause = Duration::from_secs_f64(chunk as f64 / bytes_per_sec as f64);
                    let mut buf = vec![0u8; chunk];
                    loop {
                        let n = match server.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        counter.fetch_add(n as u64, Ordering::SeqCst);
                        std::thread::sleep(pause);
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        SlowLine { addr, answered }
    }
}

#[test]
fn deleting_a_repository_while_another_instance_streams_it_leaves_no_key() {
    let cluster = Cluster::start(2, &[]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = "gone/soon";
    create_repo_at(cluster.addr(0), "gone", "soon");
    let id = cluster.repo_id(repo);
    let src = w.join("src");
    git(w, &["init", "-q", "-b", "main", src.to_str().unwrap()]);
    // 12 MiB in a pack, then loose objects on top.
    for i in 0..12 {
        std::fs::write(
            src.join(format!("big-{i}.bin")),
            incompressible(1 << 20, i + 1),
        )
        .unwrap();
    }
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "big"]);
    git(&src, &["push", "-q", &cluster.url(0, repo), "main"]);
    for i in 0..4 {
        commit_file(&src, "small.txt", &format!("small {i}\n"), "small");
        git(&src, &["push", "-q", &cluster.url(0, repo), "main"]);
    }
    let tip = rev(&src, "main");
    assert!(!cluster.bucket_keys(&id).is_empty());

    // A clone through B on a 3 MB/s line: four seconds of streaming.
    let line = SlowLine::start(cluster.addr(1), 3 << 20);
    let target = w.join("clone");
    let clone = git_cmd(w)
        .args([
            "clone",
            "-q",
            &format!("http://{}/{repo}.git", line.addr),
            target.to_str().unwrap(),
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(DEADLINE, "the pack to be streaming", || {
        line.answered.load(Ordering::SeqCst) > 1 << 20
    });
    let (status, body) = http(
        cluster.addr(0),
        "DELETE",
        &format!("/api/v1/repos/{repo}"),
        &[],
        b"",
    );
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    let streamed_at_delete = line.answered.load(Ordering::SeqCst);
    let out = clone.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        line.answered.load(Ordering::SeqCst) > streamed_at_delete,
        "the clone was still streaming when the repository was deleted"
    );
    if out.status.success() {
        git(&target, &["fsck", "--strict", "--no-progress"]);
        assert_eq!(rev(&target, "HEAD"), tip);
    } else {
        assert!(
            stderr.contains(&format!(
                "the repository {repo} was deleted while this fetch ran"
            )),
            "a clone cut short says why: {stderr}"
        );
    }
    // The repository is gone for every instance, and so is every key.
    for instance in 0..2 {
        let out = git_output(w, &["ls-remote", &cluster.url(instance, repo)]);
        assert!(!out.status.success(), "instance {instance} still serves it");
    }
    wait_until(
        DEADLINE,
        "every key of the deleted repository to go",
        || cluster.bucket_keys(&id).is_empty(),
    );

    // Created again under the same name through A, it is a new, empty
    // repository for B too: B's caches of the old one answer nothing.
    create_repo_at(cluster.addr(0), "gone", "soon");
    assert!(advertised(w, &cluster.url(1, repo), 2).is_empty());
    let fresh = w.join("fresh");
    git(w, &["init", "-q", "-b", "main", fresh.to_str().unwrap()]);
    let reborn = commit_file(&fresh, "README", "born again\n", "again");
    git(&fresh, &["push", "-q", &cluster.url(0, repo), "main"]);
    let again = w.join("again");
    clone_checked(w, &cluster.url(1, repo), &again);
    assert_eq!(git(&again, &["rev-list", "--all"]).trim(), reborn);
}

#[test]
fn deleting_a_repository_while_another_instance_stores_a_push_leaves_no_key() {
    // B reaches the bucket through a proxy that can make its uploads slow.
    let s3 = proxy::FaultProxy::start(&s3_env().endpoint);
    let cluster = Cluster::start_with(2, &[], |i| {
        if i == 1 {
            vec![("S3_ENDPOINT", s3.endpoint())]
        } else {
            Vec::new()
        }
    });
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = "gone/mid-push";
    create_repo_at(cluster.addr(0), "gone", "mid-push");
    let id = cluster.repo_id(repo);
    let src = w.join("src");
    git(w, &["init", "-q", "-b", "main", src.to_str().unwrap()]);
    commit_file(&src, "README", "first\n", "first");
    git(&src, &["push", "-q", &cluster.url(1, repo), "main"]);

    // A push through B whose uploads take two seconds each (a pack, and a few
    // loose objects: both ways of storing a push).
    commit_file(&src, "second.txt", "second\n", "second");
    for i in 0..12 {
        std::fs::write(src.join(format!("many-{i}.txt")), format!("{i}\n")).unwrap();
    }
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "many"]);
    s3.inject(
        proxy::Fault::Delay(Duration::from_secs(2)),
        &["PUT"],
        0,
        None,
    );
    let push = git_cmd(&src)
        .args(["push", "-q", &cluster.url(1, repo), "main"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Once the push holds the keys it is writing, the repository is deleted
    // through A.
    wait_until(DEADLINE, "the push to start storing", || {
        cluster.sql(&format!(
            "SELECT count(*) FROM store_claims WHERE repo_id = '{id}' AND purpose = 'upload'"
        )) != "0"
    });
    let (status, body) = http(
        cluster.addr(0),
        "DELETE",
        &format!("/api/v1/repos/{repo}"),
        &[],
        b"",
    );
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    let out = push.wait_with_output().unwrap();
    s3.clear();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "the push to a deleted repository succeeded"
    );
    assert!(
        stderr.contains(&format!(
            "the repository {repo} was deleted during the push"
        )),
        "the push says why it failed: {stderr}"
    );
    wait_until(
        DEADLINE,
        "every key of the deleted repository to go",
        || cluster.bucket_keys(&id).is_empty(),
    );
}

#[test]
fn a_clone_whose_repository_is_deleted_under_it_says_so_and_leaves_no_key() {
    // B reaches the bucket through a proxy that can make its reads slow.
    let s3 = proxy::FaultProxy::start(&s3_env().endpoint);
    let cluster = Cluster::start_with(2, &[], |i| {
        if i == 1 {
            vec![("S3_ENDPOINT", s3.endpoint())]
        } else {
            Vec::new()
        }
    });
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = "gone/mid-clone";
    // Loose objects, which a clone reads one by one from the store.
    pushed_with_loose(&cluster, w, repo, 2, 4);
    let id = cluster.repo_id(repo);

    // A clone through B, each of whose reads from the store takes a second;
    // once it reads loose objects, A deletes the repository.
    s3.forget();
    s3.inject(
        proxy::Fault::Delay(Duration::from_secs(1)),
        &["GET"],
        0,
        None,
    );
    let clone = git_cmd(w)
        .args(["clone", "-q", &cluster.url(1, repo), "clone"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until(DEADLINE, "B to read a loose object", || {
        s3.seen().iter().any(|r| r.path.contains("/objects/"))
    });
    let (status, body) = http(
        cluster.addr(0),
        "DELETE",
        &format!("/api/v1/repos/{repo}"),
        &[],
        b"",
    );
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    let out = clone.wait_with_output().unwrap();
    s3.clear();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a clone of deleted objects succeeded"
    );
    assert!(
        stderr.contains(&format!(
            "the repository {repo} was deleted while this fetch ran"
        )),
        "the clone says why it failed: {stderr}"
    );
    wait_until(
        DEADLINE,
        "every key of the deleted repository to go",
        || cluster.bucket_keys(&id).is_empty(),
    );
}

#[test]
fn a_fresh_instance_reads_of_a_big_pack_only_what_a_shallow_clone_sends() {
    // B has never served the repository: its download cache is empty, and it
    // reads packs over 1 MiB by ranges.
    let cluster = Cluster::start_with(2, &[], |i| {
        if i == 1 {
            vec![("GITCLAW_RANGE_READS_ABOVE_BYTES", "1M".into())]
        } else {
            Vec::new()
        }
    });
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = "big/history";
    create_repo_at(cluster.addr(0), "big", "history");
    // History holds 12 MiB no compression shrinks; the tip holds one small file.
    let src = w.join("src");
    std::fs::create_dir_all(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    const OLD_FILES: u64 = 12;
    for i in 0..OLD_FILES {
        std::fs::write(
            src.join(format!("old-{i}.bin")),
            incompressible(1 << 20, 2 * i + 101),
        )
        .unwrap();
    }
    git(&src, &["add", "."]);
    git(&src, &["commit", "-qm", "big files"]);
    // Two branches holding two versions of 6 MiB of files: one version is
    // stored as deltas of the other, so compaction stores its branch's tip
    // entries whole, 6 MiB in the commit-graph.
    const WIDE_FILES: u64 = 24;
    git(&src, &["checkout", "-q", "-b", "older"]);
    for i in 0..WIDE_FILES {
        std::fs::write(
            src.join(format!("wide-{i}.bin")),
            incompressible(256 << 10, 2 * i + 501),
        )
        .unwrap();
    }
    git(&src, &["add", "."]);
    git(&src, &["commit", "-qm", "wide files"]);
    git(&src, &["checkout", "-q", "-b", "newer"]);
    for i in 0..WIDE_FILES {
        let path = src.join(format!("wide-{i}.bin"));
        let mut content = std::fs::read(&path).unwrap();
        content.extend_from_slice(b"one more line\n");
        std::fs::write(&path, content).unwrap();
    }
    git(&src, &["commit", "-qam", "wide files, edited"]);
    git(&src, &["checkout", "-q", "main"]);
    git(&src, &["rm", "-q", "old-*.bin"]);
    let tip = commit_file(&src, "README", "small now\n", "small tip");
    git(
        &src,
        &[
            "push",
            "-q",
            &cluster.url(0, repo),
            "main",
            "older",
            "newer",
        ],
    );
    let gc = cluster.gc(0, repo);
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );

    let read = r#"gitclaw_store_bytes_total{direction="read"}"#;
    let before = metric(cluster.addr(1), read);
    let requests = || family_sum(cluster.addr(1), "gitclaw_store_requests_total");
    let attributed = || family_sum(cluster.addr(1), "gitclaw_git_request_store_requests_sum");
    let (requests_before, attributed_before) = (requests(), attributed());
    let clone = w.join("shallow");
    git(
        w,
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &cluster.url(1, repo),
            clone.to_str().unwrap(),
        ],
    );
    assert_eq!(rev(&clone, "HEAD"), tip);
    assert_eq!(
        std::fs::read_to_string(clone.join("README")).unwrap(),
        "small now\n"
    );
    git(&clone, &["fsck", "--strict"]);
    let read_bytes = metric(cluster.addr(1), read) - before;
    eprintln!("a shallow clone read {read_bytes} bytes");
    let history = (OLD_FILES << 20) as f64;
    assert!(
        read_bytes < history / 3.0,
        "B read {read_bytes} bytes of the store for a shallow clone of a tip of a few bytes \
         (the pack holds at least {history}, the commit-graph 6 MiB of tip entries)"
    );
    // A `tree:0` clone starts from the compacted pack, leaving out its trees
    // and blobs: the entry types compaction recorded say which they are, so B
    // reads the blocks of the commits, not every entry's header (all of it).
    let before_tree0 = metric(cluster.addr(1), read);
    let tree0 = w.join("tree0");
    git(
        w,
        &[
            "clone",
            "-q",
            "--bare",
            "--filter=tree:0",
            &cluster.url(1, repo),
            tree0.to_str().unwrap(),
        ],
    );
    assert_eq!(
        git(&tree0, &["rev-list", "--all", "--count"]).trim(),
        git(&src, &["rev-list", "--all", "--count"]).trim(),
        "the tree:0 clone has every commit"
    );
    let tree0_read = metric(cluster.addr(1), read) - before_tree0;
    eprintln!("a tree:0 clone read {tree0_read} bytes");
    assert!(
        tree0_read < history / 3.0,
        "B read {tree0_read} bytes of the store for a tree:0 clone of 4 commits"
    );

    // Shallow clones of the two branches: one sends its tip entries, read from
    // the commit-graph by ranges, and each gets its files whole.
    for branch in ["older", "newer"] {
        let dir = w.join(format!("shallow-{branch}"));
        git(
            w,
            &[
                "clone",
                "-q",
                "--depth",
                "1",
                "--branch",
                branch,
                &cluster.url(1, repo),
                dir.to_str().unwrap(),
            ],
        );
        git(&dir, &["fsck", "--strict"]);
        assert_eq!(
            rev(&dir, "HEAD^{tree}"),
            rev(&src, &format!("{branch}^{{tree}}"))
        );
    }

    // A full clone through B then reads the rest, and gets everything.
    let full = w.join("full");
    git(
        w,
        &["clone", "-q", &cluster.url(1, repo), full.to_str().unwrap()],
    );
    // fsck checks every object's hash and that the history is whole.
    git(&full, &["fsck", "--strict", "--no-dangling"]);
    assert_eq!(rev(&full, "HEAD"), tip);
    assert_eq!(rev(&full, "HEAD~1^{tree}"), rev(&src, "HEAD~1^{tree}"));
    let full_read = metric(cluster.addr(1), read) - before;
    assert!(
        full_read >= history,
        "the full clone read the history ({full_read} bytes)"
    );
    // Every store request B made for them — the ranged reads from blocking
    // threads and the packs opened ahead included — is counted against the
    // git request (or warm-up) that made it.
    assert_eq!(
        attributed() - attributed_before,
        requests() - requests_before,
        "store requests attributed to git requests vs made"
    );
}

/// The sum of every series of one metric family on `addr`.
fn family_sum(addr: SocketAddr, family: &str) -> f64 {
    let (status, body) = http(addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .filter(|l| {
            l.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with([' ', '{']))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A client asking a fresh instance for a repository's refs has it open the
/// repository's packs (download them from the bucket) in the background, while
/// the client makes its next requests: the fetch that follows finds them there
/// and reads nothing more from the store.
#[test]
fn a_fresh_instance_opens_a_repositorys_packs_when_asked_for_its_refs() {
    let cluster = Cluster::start(2, &[]);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = "warm/up";
    create_repo_at(cluster.addr(0), "warm", "up");
    let src = w.join("src");
    fixture_repo(&src, 3);
    git(&src, &["push", "-q", &cluster.url(0, repo), "main"]);

    let warmed = r#"gitclaw_git_request_store_requests_count{service="warm-up"}"#;
    let read = r#"gitclaw_store_bytes_total{direction="read"}"#;
    assert_eq!(metric(cluster.addr(1), warmed), 0.0);
    let nothing_read = metric(cluster.addr(1), read);
    // `ls-remote` asks for refs and fetches nothing.
    let listed = git(w, &["ls-remote", &cluster.url(1, repo), "refs/heads/main"]);
    assert!(listed.starts_with(&rev(&src, "main")), "{listed}");
    wait_until(DEADLINE, "the repository's packs opened ahead", || {
        metric(cluster.addr(1), warmed) == 1.0
    });
    let downloaded = metric(cluster.addr(1), read);
    assert!(
        downloaded > nothing_read,
        "the packs were read from the bucket"
    );

    let clone = w.join("clone");
    git(
        w,
        &[
            "clone",
            "-q",
            &cluster.url(1, repo),
            clone.to_str().unwrap(),
        ],
    );
    git(&clone, &["fsck", "--strict", "--no-dangling"]);
    assert_eq!(rev(&clone, "HEAD"), rev(&src, "main"));
    assert_eq!(
        metric(cluster.addr(1), read),
        downloaded,
        "the clone found the packs already downloaded"
    );
}

#[test]
fn fresh_instances_reading_pack_indexes_by_ranges_serve_fetches_and_take_pushes() {
    // Instances 1 to 3 read every pack, and its index, by ranges: each is used
    // fresh, so its first request looks objects up in an index whose ids are
    // not local yet (they come down behind it).
    let ranged = |i: usize| match i {
        0 => Vec::new(),
        _ => vec![
            ("GITCLAW_RANGE_READS_ABOVE_BYTES", "0".into()),
            ("GITCLAW_INDEX_RANGE_READS_ABOVE_BYTES", "0".into()),
        ],
    };
    let cluster = Cluster::start_with(4, &[], ranged);
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let repo = "ranged/index";
    create_repo_at(cluster.addr(0), "ranged", "index");
    let src = w.join("src");
    fixture_repo(&src, 60);
    push_everything(&src, &cluster.url(0, repo));
    let gc = cluster.gc(0, repo);
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    let old_tip = rev(&src, "main");
    // A clone taken before the next push, through A (which downloads whole).
    let behind = w.join("behind");
    clone_checked(w, &cluster.url(0, repo), &behind);

    // A new commit through A; a fresh B fetches it into the clone behind.
    let new_tip = commit_file(&src, "new.txt", "one more file\n", "one more commit");
    git(&src, &["push", "-q", &cluster.url(0, repo), "main"]);
    git(&behind, &["fetch", "-q", &cluster.url(1, repo), "main"]);
    assert_eq!(rev(&behind, "FETCH_HEAD"), new_tip);
    git(&behind, &["fsck", "--strict", "--no-progress"]);

    // A fresh C serves a full clone, and a shallow fetch of an older commit
    // by its id.
    let full = w.join("full");
    clone_checked(w, &cluster.url(2, repo), &full);
    let branches: Vec<String> = refs_of(&full, "refs/remotes/origin/")
        .into_iter()
        .filter(|line| !line.ends_with("/HEAD"))
        .map(|line| line.replace("refs/remotes/origin/", "refs/heads/"))
        .collect();
    assert_eq!(branches, refs_of(&src, "refs/heads/"));
    let by_id = w.join("by-id");
    git(w, &["init", "-q", by_id.to_str().unwrap()]);
    git(
        &by_id,
        &[
            "fetch",
            "-q",
            "--depth",
            "1",
            &cluster.url(2, repo),
            &old_tip,
        ],
    );
    assert_eq!(rev(&by_id, "FETCH_HEAD"), old_tip);

    // A fresh D takes a push on top (its checks look the old objects up).
    let pushed_tip = commit_file(&full, "pushed.txt", "through D\n", "pushed through D");
    git(&full, &["push", "-q", &cluster.url(3, repo), "HEAD:main"]);
    let after = w.join("after");
    clone_checked(w, &cluster.url(0, repo), &after);
    assert_eq!(rev(&after, "main"), pushed_tip);
    assert_eq!(rev(&after, "main~1"), new_tip);
}
