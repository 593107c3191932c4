//! Fault soak: real git clients push and clone through a `gitclaw serve` on
//! Garage + PostgreSQL whose object-store calls fail at random — `500`, `503
//! SlowDown`, dropped connections, answers later than the read timeout, bodies
//! cut short, bodies sent slowly — and nothing a user relies on is lost:
//!
//! - every push that reported success is there, with exactly the refs it set;
//! - every push that reported failure left its refs as they were;
//! - every clone or fetch that succeeded is `git fsck --strict` clean, and no
//!   git command hangs;
//! - afterwards a fresh clone is whole, `gitclaw gc` leaves exactly the keys
//!   the database records, and the server's memory is back near its start.
//!
//! CI runs a short one; `bench/soak.sh` a long one (1,000 pushes). Knobs, from
//! the environment: `GITCLAW_SOAK_PUSHES` (40), `GITCLAW_SOAK_CLIENTS` (pushers,
//! 8), `GITCLAW_SOAK_READERS` (cloners, 2), `GITCLAW_SOAK_FAULT_RATE` (0.10),
//! `GITCLAW_SOAK_SEED` (from the clock; printed), `GITCLAW_SOAK_REPORT` (a
//! file for the report as JSON).

mod common;

use std::{
    collections::BTreeMap,
    io::Read,
    path::{Path, PathBuf},
    process::Stdio,
    sync::{
        atomic::{AtomicBool, AtomicUsize, Ordering},
        Mutex,
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use common::{proxy::Fault, proxy::FaultProxy, *};

/// A git command that takes longer than this counts as hung.
const HUNG: Duration = Duration::from_secs(300);

/// The server's S3 read timeout in the soak, and a delay past it.
const READ_TIMEOUT_MS: u64 = 2000;

struct Knobs {
    pushes: usize,
    clients: usize,
    readers: usize,
    rate: f64,
    seed: u64,
    report: Option<PathBuf>,
}

impl Knobs {
    fn from_env() -> Knobs {
        fn var<T: std::str::FromStr>(name: &str, default: T) -> T {
            match std::env::var(name) {
                Ok(v) if !v.is_empty() => v
                    .parse()
                    .unwrap_or_else(|_| panic!("{name}={v} is not a valid value")),
                _ => default,
            }
        }
        let clock = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        Knobs {
            pushes: var("GITCLAW_SOAK_PUSHES", 40),
            clients: var("GITCLAW_SOAK_CLIENTS", 8).max(1),
            readers: var("GITCLAW_SOAK_READERS", 2),
            rate: var("GITCLAW_SOAK_FAULT_RATE", 0.10),
            seed: var("GITCLAW_SOAK_SEED", clock),
            report: std::env::var_os("GITCLAW_SOAK_REPORT").map(PathBuf::from),
        }
    }
}

/// Every way the proxy can fail an object-store call.
fn fault_kinds() -> Vec<Fault> {
    vec![
        Fault::InternalError,
        Fault::SlowDown,
        Fault::Drop,
        Fault::Delay(Duration::from_millis(READ_TIMEOUT_MS + 1000)),
        Fault::TruncatedBody,
        Fault::SlowBody(Duration::from_millis(100)),
    ]
}

fn fault_name(fault: &Fault) -> &'static str {
    match fault {
        Fault::InternalError => "500 InternalError",
        Fault::SlowDown => "503 SlowDown",
        Fault::Drop => "connection dropped",
        Fault::Delay(_) => "read timeout",
        Fault::TruncatedBody => "body cut short",
        Fault::SlowBody(_) => "slow body",
    }
}

/// What became of a git command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Outcome {
    Ok,
    /// Refused as git refuses it (not a fast-forward, stale info).
    Refused,
    /// Failed for another reason (here: the object store's faults).
    Failed,
    /// Still running after [`HUNG`]; killed.
    Hung,
}

/// One git command run with a deadline: its outcome, output and time.
struct Run {
    outcome: Outcome,
    stderr: String,
    took: Duration,
}

/// `git args` in `dir`, killed after [`HUNG`].
fn run_git(dir: &Path, args: &[&str]) -> Run {
    let started = Instant::now();
    let mut child = git_cmd(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("git runs");
    let mut stderr_pipe = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr_pipe.read_to_string(&mut text);
        text
    });
    let status = loop {
        if let Some(status) = child.try_wait().expect("git waits") {
            break Some(status);
        }
        if started.elapsed() > HUNG {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = started.elapsed();
    let stderr = reader.join().unwrap_or_default();
    let outcome = match status {
        None => Outcome::Hung,
        Some(s) if s.success() => Outcome::Ok,
        Some(_) if refused(&stderr) => Outcome::Refused,
        Some(_) => Outcome::Failed,
    };
    Run {
        outcome,
        stderr,
        took,
    }
}

/// git's words for a push it was refused as a race loser.
fn refused(stderr: &str) -> bool {
    [
        "non-fast-forward",
        "fetch first",
        "stale info",
        "[rejected]",
    ]
    .iter()
    .any(|w| stderr.contains(w))
}

/// The first line of what git said that names the problem, without the
/// request id (so that failures of one kind count together).
fn gist(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("error") || l.contains("fatal") || l.contains("remote:"))
        .or_else(|| stderr.lines().next())
        .unwrap_or("")
        .trim();
    let line = match line.find(" (request id ") {
        Some(at) => &line[..at],
        None => line,
    };
    line.chars().take(160).collect()
}

/// The refs the server advertises, by name.
fn server_refs(dir: &Path, url: &str) -> BTreeMap<String, String> {
    remote_refs(dir, url)
        .into_iter()
        .filter(|l| !l.ends_with("^{}"))
        .filter_map(|l| {
            let (oid, name) = l.split_once(' ')?;
            Some((name.to_string(), oid.to_string()))
        })
        .collect()
}

/// What a push sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Shape {
    /// One commit of two new files on the client's own branch: stored loose.
    Loose,
    /// One commit of 15 new files on the client's own branch: stored as a pack.
    Pack,
    /// Both of the client's branches with `--atomic`.
    Atomic,
    /// A commit on the shared `main`, built on what the client last fetched:
    /// races the other clients, so may be refused.
    Main,
    /// An annotated tag of the client's branch.
    Tag,
}

const SHAPES: [Shape; 5] = [
    Shape::Loose,
    Shape::Pack,
    Shape::Atomic,
    Shape::Main,
    Shape::Tag,
];

/// The record of one push.
struct Pushed {
    shape: Shape,
    outcome: Outcome,
    took: Duration,
    gist: String,
}

/// What every pusher found out, for the checks at the end.
#[derive(Default)]
struct Ledger {
    pushes: Vec<Pushed>,
    /// Commits a push to `main` reported as pushed / as not pushed.
    main_ok: Vec<String>,
    main_not: Vec<String>,
    /// Tags a push reported as pushed, with their objects.
    tags: Vec<(String, String)>,
    /// Each client's branches as its last successful push left them.
    branches: BTreeMap<String, String>,
    /// Broken promises seen on the way (a ref that moved on a failed push, or
    /// did not on a successful one).
    broken: Vec<String>,
    reads: Vec<(Outcome, Duration, String)>,
    corrupt: Vec<String>,
}

/// One pushing client: a clone with two branches of its own.
struct Client {
    k: usize,
    dir: PathBuf,
    url: String,
    n: usize,
}

impl Client {
    fn new(k: usize, work: &Path, url: &str) -> Client {
        let dir = work.join(format!("client-{k}"));
        git(work, &["clone", "-q", url, dir.to_str().unwrap()]);
        for b in ["a", "b"] {
            git(&dir, &["branch", "-q", b, "origin/main"]);
        }
        Client {
            k,
            dir,
            url: url.to_string(),
            n: 0,
        }
    }

    fn branch(&self, b: &str) -> String {
        format!("refs/heads/c{}/{b}", self.k)
    }

    /// A new commit on local branch `on` adding `files` new files.
    fn commit(&mut self, on: &str, files: usize) -> String {
        self.n += 1;
        git(&self.dir, &["checkout", "-q", on]);
        let sub = format!("c{}-{on}", self.k);
        let path = self.dir.join(&sub).join(self.n.to_string());
        std::fs::create_dir_all(&path).unwrap();
        for i in 0..files {
            std::fs::write(
                path.join(format!("{i}.txt")),
                format!("client {} push {} file {i}\n", self.k, self.n),
            )
            .unwrap();
        }
        git(&self.dir, &["add", "--", &sub]);
        git(
            &self.dir,
            &["commit", "-q", "-m", &format!("c{} {}", self.k, self.n)],
        );
        rev(&self.dir, "HEAD")
    }

    /// Push once, in `shape`, and check the refs it touches right after.
    fn push(&mut self, shape: Shape, ledger: &Mutex<Ledger>) {
        let before = server_refs(&self.dir, &self.url);
        let (args, expect): (Vec<String>, Vec<(String, String)>) = match shape {
            Shape::Loose | Shape::Pack => {
                let files = if shape == Shape::Loose { 2 } else { 15 };
                let commit = self.commit("a", files);
                (
                    vec![format!("a:{}", self.branch("a"))],
                    vec![(self.branch("a"), commit)],
                )
            }
            Shape::Atomic => {
                let a = self.commit("a", 12);
                let b = self.commit("b", 1);
                (
                    vec![
                        "--atomic".into(),
                        format!("a:{}", self.branch("a")),
                        format!("b:{}", self.branch("b")),
                    ],
                    vec![(self.branch("a"), a), (self.branch("b"), b)],
                )
            }
            Shape::Main => {
                let fetch = run_git(&self.dir, &["fetch", "-q", "origin", "main"]);
                ledger
                    .lock()
                    .unwrap()
                    .reads
                    .push((fetch.outcome, fetch.took, gist(&fetch.stderr)));
                if fetch.outcome != Outcome::Ok {
                    return;
                }
                git(&self.dir, &["checkout", "-q", "-B", "m", "FETCH_HEAD"]);
                let commit = self.commit("m", 1);
                (
                    vec!["m:refs/heads/main".into()],
                    vec![("refs/heads/main".into(), commit)],
                )
            }
            Shape::Tag => {
                let name = format!("soak-c{}-{}", self.k, self.n);
                self.n += 1;
                git(&self.dir, &["tag", "-a", "-m", &name, &name, "a"]);
                let tag = rev(&self.dir, &name);
                (
                    vec![format!("refs/tags/{name}")],
                    vec![(format!("refs/tags/{name}"), tag)],
                )
            }
        };
        let mut argv = vec!["push", "-q", &self.url];
        argv.extend(args.iter().map(String::as_str));
        let run = run_git(&self.dir, &argv);
        let after = server_refs(&self.dir, &self.url);
        let mut ledger = ledger.lock().unwrap();
        ledger.pushes.push(Pushed {
            shape,
            outcome: run.outcome,
            took: run.took,
            gist: gist(&run.stderr),
        });
        let what = format!("client {} {shape:?} push", self.k);
        for (name, new) in &expect {
            let now = after.get(name);
            match (run.outcome, shape) {
                (Outcome::Ok, _) if now != Some(new) => ledger
                    .broken
                    .push(format!("{what} succeeded but {name} is {now:?}, not {new}")),
                // Others move main meanwhile; what matters is that ours is not it.
                (Outcome::Refused | Outcome::Failed | Outcome::Hung, Shape::Main)
                    if now == Some(new) =>
                {
                    ledger.broken.push(format!(
                        "{what} failed ({}) but main is its commit",
                        gist(&run.stderr)
                    ))
                }
                (Outcome::Refused | Outcome::Failed | Outcome::Hung, s)
                    if s != Shape::Main && now != before.get(name) =>
                {
                    ledger.broken.push(format!(
                        "{what} failed ({}) but {name} moved from {:?} to {now:?}",
                        gist(&run.stderr),
                        before.get(name)
                    ))
                }
                _ => {}
            }
        }
        match (run.outcome, shape) {
            (Outcome::Ok, Shape::Main) => ledger.main_ok.push(expect[0].1.clone()),
            (_, Shape::Main) => ledger.main_not.push(expect[0].1.clone()),
            (Outcome::Ok, Shape::Tag) => ledger.tags.push(expect[0].clone()),
            (Outcome::Ok, _) => ledger.branches.extend(expect),
            _ => {}
        }
    }
}

fn rev(dir: &Path, what: &str) -> String {
    git(dir, &["rev-parse", what]).trim().to_string()
}

/// Clone and fetch in a loop until `done`: full clones, shallow clones and
/// fetches into a clone kept between rounds; whatever succeeded must be
/// `git fsck --strict` clean.
fn read_loop(r: usize, work: &Path, url: &str, done: &AtomicBool, ledger: &Mutex<Ledger>) {
    let home = work.join(format!("reader-{r}"));
    std::fs::create_dir_all(&home).unwrap();
    let kept = home.join("kept");
    git(&home, &["clone", "-q", url, kept.to_str().unwrap()]);
    let mut round = 0;
    while !done.load(Ordering::SeqCst) {
        round += 1;
        let target = home.join(format!("clone-{round}"));
        let target_str = target.to_str().unwrap().to_string();
        let (run, checked) = match round % 3 {
            0 => (run_git(&home, &["clone", "-q", url, &target_str]), &target),
            1 => (
                run_git(
                    &home,
                    &[
                        "clone",
                        "-q",
                        "--depth",
                        "1",
                        "--no-single-branch",
                        url,
                        &target_str,
                    ],
                ),
                &target,
            ),
            _ => (
                run_git(&kept, &["fetch", "-q", "--prune", "--tags", "origin"]),
                &kept,
            ),
        };
        if run.outcome == Outcome::Ok {
            let fsck = git_output(checked, &["fsck", "--strict", "--no-progress"]);
            if !fsck.status.success() {
                ledger.lock().unwrap().corrupt.push(format!(
                    "reader {r} round {round}: {}",
                    String::from_utf8_lossy(&fsck.stderr)
                ));
            }
        }
        ledger
            .lock()
            .unwrap()
            .reads
            .push((run.outcome, run.took, gist(&run.stderr)));
        let _ = std::fs::remove_dir_all(&target);
    }
}

/// The sum of every sample of `metric` in a Prometheus text.
fn metric_sum(text: &str, metric: &str) -> f64 {
    text.lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn scrape(server: &ServerProcess) -> String {
    let (status, body) = http(server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    String::from_utf8_lossy(&body).into_owned()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let at = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}

fn count_by<T: Ord + Clone>(items: impl Iterator<Item = T>) -> BTreeMap<T, usize> {
    let mut map = BTreeMap::new();
    for item in items {
        *map.entry(item).or_insert(0) += 1;
    }
    map
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

#[test]
fn pushes_and_clones_through_a_failing_object_store_lose_nothing() {
    let knobs = Knobs::from_env();
    println!(
        "soak: {} pushes from {} clients, {} readers, fault rate {}, seed {}",
        knobs.pushes, knobs.clients, knobs.readers, knobs.rate, knobs.seed
    );
    let database_url = postgres_database();
    let bucket = fresh_bucket();
    let proxy = FaultProxy::start(&services::s3_env().endpoint);
    let mut env: Vec<(&str, String)> = s3_process_env(&bucket)
        .into_iter()
        .filter(|(k, _)| *k != "S3_ENDPOINT")
        .collect();
    env.push(("S3_ENDPOINT", proxy.endpoint()));
    env.push(("DATABASE_URL", database_url.clone()));
    env.push(("S3_READ_TIMEOUT_MS", READ_TIMEOUT_MS.to_string()));
    // Compaction runs on its own during the soak (a few pushes set it off),
    // and what it replaces stays readable for clones in flight: for longer
    // than the slowest of them takes (seconds here, with the faults' retries).
    env.push(("GITCLAW_GC_LOOSE_THRESHOLD", "40".into()));
    env.push(("GITCLAW_GC_PACK_THRESHOLD", "8".into()));
    env.push(("GITCLAW_GC_GRACE_SECS", "120".into()));
    env.push(("GITCLAW_CLAIM_LEASE_SECS", "5".into()));
    env.push(("GITCLAW_SWEEP_INTERVAL_SECS", "0".into()));
    let server = ServerProcess::start(&env);
    let url = server.create_repo("soak", "one");
    let repo_id = psql(
        &database_url,
        "SELECT id FROM repositories WHERE owner = 'soak' AND name = 'one'",
    );
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    fixture_repo(&src, 5);
    push_everything(&src, &url);
    let clients: Vec<Client> = (0..knobs.clients)
        .map(|k| Client::new(k, w, &url))
        .collect();
    // Memory once warm: a full clone served, every client set up.
    git(w, &["clone", "-q", &url, w.join("warm").to_str().unwrap()]);
    let rss_start = server.memory();

    let ledger = Mutex::new(Ledger::default());
    let next = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    proxy.forget();
    proxy.inject_random(knobs.rate, &fault_kinds(), knobs.seed);
    let started = Instant::now();
    std::thread::scope(|scope| {
        let (ledger, next, done, url) = (&ledger, &next, &done, &url);
        let readers: Vec<_> = (0..knobs.readers)
            .map(|r| scope.spawn(move || read_loop(r, w, url, done, ledger)))
            .collect();
        let pushers: Vec<_> = clients
            .into_iter()
            .map(|mut client| {
                scope.spawn(move || loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= knobs.pushes {
                        break;
                    }
                    client.push(SHAPES[(n + client.k) % SHAPES.len()], ledger);
                })
            })
            .collect();
        for pusher in pushers {
            pusher.join().expect("a pusher panicked");
        }
        done.store(true, Ordering::SeqCst);
        for reader in readers {
            reader.join().expect("a reader panicked");
        }
    });
    let soak_time = started.elapsed();
    let seen = proxy.seen();
    proxy.clear();
    let metrics = scrape(&server);
    let ledger = ledger.into_inner().unwrap();

    // The promises, checked against what a fresh clone (faults off) holds.
    let last = w.join("last");
    git(
        w,
        &["clone", "-q", "--mirror", &url, last.to_str().unwrap()],
    );
    git(&last, &["fsck", "--strict", "--no-progress"]);
    let refs = server_refs(w, &url);
    let mut lost = Vec::new();
    for (name, oid) in ledger
        .branches
        .iter()
        .chain(ledger.tags.iter().map(|(n, o)| (n, o)))
    {
        if refs.get(name) != Some(oid) {
            lost.push(format!("{name}: pushed {oid}, now {:?}", refs.get(name)));
        }
    }
    let is_ancestor = |commit: &str| {
        git_output(&last, &["merge-base", "--is-ancestor", commit, "main"])
            .status
            .success()
    };
    for commit in &ledger.main_ok {
        if !is_ancestor(commit) {
            lost.push(format!("main lost {commit}, whose push succeeded"));
        }
    }
    let mut surfaced = Vec::new();
    for commit in &ledger.main_not {
        if is_ancestor(commit) {
            surfaced.push(format!("{commit}, whose push failed, is in main"));
        }
    }

    // Once the leases of the pushes that failed have lapsed, gc deletes what
    // they left: the bucket then holds exactly what the database records.
    wait_for_leases_to_lapse(&database_url, &repo_id);
    let gc_env = [("GITCLAW_GC_GRACE_SECS", "0".to_string())];
    let mut swept = 0u64;
    for _ in 0..2 {
        let out = server.command_with_env(&["gc", "soak/one"], &gc_env);
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "gitclaw gc after the soak: {said}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        swept += said
            .lines()
            .filter_map(|l| {
                l.split_once("; deleted ")?
                    .1
                    .split(' ')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .sum::<u64>();
    }
    let listed = listed_keys(&database_url, &repo_id);
    let stored = bucket_keys(&bucket, &repo_id);
    let after_gc = server_refs(w, &url);

    // Memory once idle (the allocator hands back freed pages within seconds).
    std::thread::sleep(Duration::from_secs(12));
    let rss_end = server.memory();
    let peak = server.peak_rss();

    // The report.
    let pushes_by = count_by(ledger.pushes.iter().map(|p| p.outcome));
    let reads_by = count_by(ledger.reads.iter().map(|r| r.0));
    let mut push_times: Vec<Duration> = ledger.pushes.iter().map(|p| p.took).collect();
    push_times.sort();
    let mut read_times: Vec<Duration> = ledger.reads.iter().map(|r| r.1).collect();
    read_times.sort();
    let faults = count_by(seen.iter().filter_map(|s| s.fault.as_ref()).map(fault_name));
    let failure_gists = count_by(
        ledger
            .pushes
            .iter()
            .filter(|p| p.outcome == Outcome::Failed)
            .map(|p| p.gist.clone())
            .chain(
                ledger
                    .reads
                    .iter()
                    .filter(|r| r.0 == Outcome::Failed)
                    .map(|r| r.2.clone()),
            ),
    );
    let by_shape: BTreeMap<String, BTreeMap<String, usize>> = SHAPES
        .iter()
        .map(|shape| {
            (
                format!("{shape:?}"),
                count_by(
                    ledger
                        .pushes
                        .iter()
                        .filter(|p| p.shape == *shape)
                        .map(|p| format!("{:?}", p.outcome)),
                ),
            )
        })
        .collect();
    let n = |map: &BTreeMap<Outcome, usize>, o: Outcome| map.get(&o).copied().unwrap_or(0);
    let report = serde_json::json!({
        "seed": knobs.seed,
        "fault_rate": knobs.rate,
        "clients": knobs.clients,
        "readers": knobs.readers,
        "seconds": soak_time.as_secs_f64(),
        "pushes": {
            "ok": n(&pushes_by, Outcome::Ok),
            "refused": n(&pushes_by, Outcome::Refused),
            "failed": n(&pushes_by, Outcome::Failed),
            "hung": n(&pushes_by, Outcome::Hung),
            "by_shape": by_shape,
            "p50_ms": percentile(&push_times, 0.50).as_millis(),
            "p99_ms": percentile(&push_times, 0.99).as_millis(),
        },
        "reads": {
            "ok": n(&reads_by, Outcome::Ok),
            "failed": n(&reads_by, Outcome::Failed),
            "hung": n(&reads_by, Outcome::Hung),
            "p50_ms": percentile(&read_times, 0.50).as_millis(),
            "p99_ms": percentile(&read_times, 0.99).as_millis(),
        },
        "store_calls": seen.len(),
        "store_faults": faults,
        "store_retries": metric_sum(&metrics, "gitclaw_store_retries_total"),
        "store_errors": metric_sum(&metrics, "gitclaw_store_errors_total"),
        "failures_as_git_said": failure_gists,
        "keys_swept": swept,
        "rss_mib": {
            "start": mib(rss_start.anon + rss_start.file),
            "end": mib(rss_end.anon + rss_end.file),
            "anon_start": mib(rss_start.anon),
            "anon_end": mib(rss_end.anon),
            "peak": mib(peak),
        },
    });
    let text = serde_json::to_string_pretty(&report).unwrap();
    println!("{text}");
    if let Some(path) = &knobs.report {
        std::fs::write(path, &text).expect("report written");
    }

    // What must hold.
    assert!(ledger.broken.is_empty(), "{:#?}", ledger.broken);
    assert!(lost.is_empty(), "pushes lost: {lost:#?}");
    assert!(surfaced.is_empty(), "failed pushes landed: {surfaced:#?}");
    assert!(ledger.corrupt.is_empty(), "{:#?}", ledger.corrupt);
    assert_eq!(
        n(&pushes_by, Outcome::Hung) + n(&reads_by, Outcome::Hung),
        0,
        "hung git commands"
    );
    assert_eq!(after_gc, refs, "gc changed the refs");
    // What the compactions during the soak replaced waits out its grace
    // period in the deletion schedule: listed, so kept.
    assert_eq!(
        stored, listed,
        "after gc the bucket holds other keys than the database lists"
    );
    let faulted = seen.iter().filter(|s| s.fault.is_some()).count();
    assert!(
        knobs.rate == 0.0 || faulted > 0,
        "no object-store call was faulted: the soak tested nothing"
    );
    assert!(
        n(&pushes_by, Outcome::Ok) > 0,
        "no push went through: {failure_gists:#?}"
    );
    // Back near the start: what the soak held is returned, give or take what
    // caches and allocator arenas keep (bounded by configuration).
    let (start, end) = (rss_start.anon, rss_end.anon);
    assert!(
        end <= start + 96 * 1024 * 1024,
        "anonymous memory {:.0} MiB at the start, {:.0} MiB after the soak",
        mib(start),
        mib(end)
    );
}
