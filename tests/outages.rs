//! Outages: PostgreSQL, then the S3 server, goes down under load (clones and
//! pushes in a loop) and comes back, and the `gitclaw serve` in front of them
//! is never restarted. While one is down, requests that need it fail — at once
//! or within the configured timeouts, never hanging — with a message git
//! shows, `/readyz` says which one is failing, and a push that fails moves no
//! ref. Once it is back, the same server process serves clones and takes
//! pushes again, every push that succeeded is in the history and none that
//! failed is, and gc leaves exactly the keys the database records.
//!
//! The test owns its PostgreSQL and Garage (started with the scripts the test
//! run uses, taken down with their `down` and brought back with `up`).

mod common;

use std::{
    collections::HashMap,
    path::{Path, PathBuf},
    process::Command,
    sync::{
        atomic::{AtomicBool, Ordering},
        Arc, Mutex,
    },
    time::{Duration, Instant},
};

use common::{wait::wait_until, *};

/// Longer than any request may take, outage or not: git's own commands, the
/// database's acquire timeout and the store's retries included.
const BOUND: Duration = Duration::from_secs(90);

/// How long each outage lasts.
const OUTAGE: Duration = Duration::from_secs(6);

/// A PostgreSQL or Garage of this test's own, from `scripts/SCRIPT`.
struct OwnService {
    script: &'static str,
    dir: String,
    env: HashMap<String, String>,
}

impl OwnService {
    fn start(script: &'static str, dir_var: &str) -> OwnService {
        let out = Command::new(script_path(script))
            .output()
            .expect("the service script runs");
        assert!(
            out.status.success(),
            "{script}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env: HashMap<String, String> = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| {
                let (k, v) = l.strip_prefix("export ")?.split_once('=')?;
                Some((k.to_string(), v.to_string()))
            })
            .collect();
        OwnService {
            script,
            dir: env[dir_var].clone(),
            env,
        }
    }

    /// How to reach it, when it is an S3 server.
    fn s3_env(&self) -> S3Env {
        let get = |name: &str| self.env[&format!("GITCLAW_TEST_S3_{name}")].clone();
        S3Env {
            endpoint: get("ENDPOINT"),
            region: get("REGION"),
            access_key_id: get("ACCESS_KEY_ID"),
            secret_access_key: get("SECRET_ACCESS_KEY"),
            bucket: get("BUCKET"),
        }
    }

    /// `down` or `up`.
    fn set(&self, verb: &str) {
        let out = Command::new(script_path(self.script))
            .args([verb, &self.dir])
            .output()
            .expect("the service script runs");
        assert!(
            out.status.success(),
            "{} {verb}: {}",
            self.script,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnService {
    fn drop(&mut self) {
        let _ = Command::new(script_path(self.script))
            .args(["stop", &self.dir])
            .output();
    }
}

fn script_path(script: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join(script)
}

/// One git command of the load: when it ran, how long, whether it succeeded.
#[derive(Debug, Clone)]
struct Op {
    what: &'static str,
    took: Duration,
    ok: bool,
    said: String,
}

/// Clones (each checked with `git fsck --strict`) and pushes to `main`, each
/// in a loop of its own. A failed push is abandoned: the pusher goes back to
/// the last commit that was pushed, so a failed commit can only reach `main`
/// if its push moved the ref after all.
struct Load {
    stop: Arc<AtomicBool>,
    ops: Arc<Mutex<Vec<Op>>>,
    pushed: Arc<Mutex<Vec<String>>>,
    not_pushed: Arc<Mutex<Vec<String>>>,
    corrupt: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: &str, work: &Path) -> Load {
        let load = Load {
            stop: Arc::default(),
            ops: Arc::default(),
            pushed: Arc::default(),
            not_pushed: Arc::default(),
            corrupt: Arc::default(),
            threads: Vec::new(),
        };
        let pusher = work.join("pusher");
        git(work, &["clone", "-q", url, pusher.to_str().unwrap()]);
        let reader = {
            let (stop, ops, corrupt) = (load.stop.clone(), load.ops.clone(), load.corrupt.clone());
            let (url, dir) = (url.to_string(), work.join("readers"));
            std::thread::spawn(move || {
                std::fs::create_dir_all(&dir).unwrap();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    let target = dir.join(format!("clone-{n}"));
                    let op = timed("clone", || {
                        git_output(&dir, &["clone", "-q", &url, target.to_str().unwrap()])
                    });
                    if op.ok {
                        let fsck = git_output(&target, &["fsck", "--strict", "--no-progress"]);
                        if !fsck.status.success() {
                            corrupt.lock().unwrap().push(format!(
                                "clone {n}: {}",
                                String::from_utf8_lossy(&fsck.stderr)
                            ));
                        }
                    }
                    ops.lock().unwrap().push(op);
                    let _ = std::fs::remove_dir_all(&target);
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        let writer = {
            let (stop, ops) = (load.stop.clone(), load.ops.clone());
            let (pushed, not_pushed) = (load.pushed.clone(), load.not_pushed.clone());
            let url = url.to_string();
            std::thread::spawn(move || {
                let mut last_ok = git(&pusher, &["rev-parse", "HEAD"]).trim().to_string();
                let mut n = 0;
                while !stop.load(Ordering::SeqCst) {
                    n += 1;
                    std::fs::write(pusher.join("load.txt"), format!("{n}\n")).unwrap();
                    git(&pusher, &["add", "load.txt"]);
                    git(&pusher, &["commit", "-q", "-m", &format!("load {n}")]);
                    let commit = git(&pusher, &["rev-parse", "HEAD"]).trim().to_string();
                    let op = timed("push", || {
                        git_output(&pusher, &["push", "-q", &url, "HEAD:refs/heads/main"])
                    });
                    if op.ok {
                        pushed.lock().unwrap().push(commit.clone());
                        last_ok = commit;
                    } else {
                        not_pushed.lock().unwrap().push(commit);
                        git(&pusher, &["reset", "-q", "--hard", &last_ok]);
                    }
                    ops.lock().unwrap().push(op);
                    std::thread::sleep(Duration::from_millis(200));
                }
            })
        };
        let mut load = load;
        load.threads = vec![reader, writer];
        load
    }

    /// Successful clones and pushes so far.
    fn successes(&self) -> (usize, usize) {
        let ops = self.ops.lock().unwrap();
        let count = |what| ops.iter().filter(|o| o.what == what && o.ok).count();
        (count("clone"), count("push"))
    }

    /// Wait until `clones` more clones and `pushes` more pushes succeeded.
    fn wait_for_more(&self, what: &str, clones: usize, pushes: usize) {
        let (c0, p0) = self.successes();
        wait_until(BOUND * 2, what, || {
            let (c, p) = self.successes();
            c >= c0 + clones && p >= p0 + pushes
        });
    }

    fn finish(mut self) -> Load {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            t.join().expect("a load thread panicked");
        }
        self
    }
}

impl Drop for Load {
    /// A failing test stops the load before its work directory goes.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

fn timed(what: &'static str, run: impl FnOnce() -> std::process::Output) -> Op {
    let started = Instant::now();
    let out = run();
    Op {
        what,
        took: started.elapsed(),
        ok: out.status.success(),
        said: String::from_utf8_lossy(&out.stderr).trim().to_string(),
    }
}

/// `/readyz`: its status and body.
fn readyz(server: &ServerProcess) -> (u16, String) {
    let (status, body) = http(server.addr, "GET", "/readyz", &[], b"");
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// A request made while a service was down failed, in bounded time, and git
/// said why: `expected` is in what it printed.
fn assert_clear_failure(what: &str, out: &std::process::Output, took: Duration, expected: &str) {
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{what} succeeded during the outage");
    assert!(took < BOUND, "{what} took {took:?} to fail");
    assert!(
        said.contains(expected),
        "{what} failed without saying {expected:?}: {said:?}"
    );
    println!("{what}: failed after {took:?}: {}", said.trim());
}

#[test]
fn the_server_rides_out_database_and_object_store_outages_without_a_restart() {
    let pg = OwnService::start("postgres.sh", "GITCLAW_TEST_PG_DIR");
    let garage = OwnService::start("garage.sh", "GITCLAW_TEST_GARAGE_DIR");
    let bucket = fresh_bucket();
    let database_url = pg.env["GITCLAW_TEST_POSTGRES_URL"].clone();
    let s3 = garage.s3_env();
    let env: Vec<(&str, String)> = vec![
        ("DATABASE_URL", database_url.clone()),
        ("S3_BUCKET", bucket.clone()),
        ("S3_REGION", s3.region),
        ("S3_ENDPOINT", s3.endpoint),
        ("S3_ACCESS_KEY_ID", s3.access_key_id),
        ("S3_SECRET_ACCESS_KEY", s3.secret_access_key),
        ("S3_USE_PATH_STYLE", "true".into()),
        ("S3_AUTO_CREATE_BUCKET", "true".into()),
        ("GITCLAW_CLAIM_LEASE_SECS", "3".into()),
        ("GITCLAW_SWEEP_INTERVAL_SECS", "0".into()),
    ];
    let mut server = ServerProcess::start(&env);
    let pid = server.child.id();
    let url = server.create_repo("out", "age");
    let work = tempfile::tempdir().unwrap();
    let w = work.path();
    let src = w.join("src");
    fixture_repo(&src, 5);
    push_everything(&src, &url);
    let load = Load::start(&url, w);
    load.wait_for_more("the load to get going", 2, 2);

    // PostgreSQL goes down: nothing can be served (refs, repositories and
    // tokens live there), and nothing hangs.
    pg.set("down");
    let down_at = Instant::now();
    let started = Instant::now();
    let out = git_output(w, &["ls-remote", &url]);
    assert_clear_failure(
        "ls-remote without the database",
        &out,
        started.elapsed(),
        "503",
    );
    let (status, body) = readyz(&server);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("database: failing"), "{body}");
    std::thread::sleep(OUTAGE.saturating_sub(down_at.elapsed()));
    pg.set("up");
    let back = Instant::now();
    wait_until(BOUND, "ls-remote once the database is back", || {
        git_output(w, &["ls-remote", &url]).status.success()
    });
    let database_recovery = back.elapsed();
    load.wait_for_more("clones and pushes after the database came back", 2, 2);
    assert_eq!(readyz(&server).0, 200);

    // The object store goes down: refs are still advertised (the database
    // has them); a push, which must store its objects, fails and moves nothing.
    garage.set("down");
    let down_at = Instant::now();
    commit_file(
        &src,
        "outage.txt",
        "written while the store was down\n",
        "outage",
    );
    let probe = ["push", "-q", &url, "HEAD:refs/heads/outage"];
    let started = Instant::now();
    let out = git_output(&src, &probe);
    assert_clear_failure(
        "a push without the object store",
        &out,
        started.elapsed(),
        "the object store is unavailable",
    );
    assert!(
        !remote_refs(w, &url)
            .iter()
            .any(|l| l.ends_with(" refs/heads/outage")),
        "a failed push created its branch"
    );
    let (status, body) = readyz(&server);
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("object store: failing"), "{body}");
    std::thread::sleep(OUTAGE.saturating_sub(down_at.elapsed()));
    garage.set("up");
    let back = Instant::now();
    wait_until(BOUND, "the push once the object store is back", || {
        git_output(&src, &probe).status.success()
    });
    let store_recovery = back.elapsed();
    load.wait_for_more("clones and pushes after the object store came back", 2, 2);
    assert_eq!(readyz(&server).0, 200);

    let load = load.finish();
    assert!(
        server
            .child
            .try_wait()
            .expect("the server's status")
            .is_none(),
        "the server exited"
    );
    assert_eq!(server.child.id(), pid, "the server was restarted");

    // What the load saw: nothing hung, every clone that succeeded was whole,
    // and the outages were real (something failed during each).
    let ops = load.ops.lock().unwrap().clone();
    let slowest = ops.iter().map(|o| o.took).max().unwrap_or_default();
    assert!(slowest < BOUND, "a git command took {slowest:?}");
    assert!(
        load.corrupt.lock().unwrap().is_empty(),
        "{:#?}",
        load.corrupt.lock().unwrap()
    );
    let failed: Vec<&Op> = ops.iter().filter(|o| !o.ok).collect();
    for op in &failed {
        assert!(
            op.said.contains("error") || op.said.contains("fatal"),
            "a {} failed without a message: {:?}",
            op.what,
            op.said
        );
    }
    let slowest_failure = failed.iter().map(|o| o.took).max().unwrap_or_default();
    println!(
        "{} clones and pushes, {} failed during the outages (the slowest to fail took \
         {slowest_failure:?}); served again {database_recovery:?} after the database came back \
         and {store_recovery:?} after the object store; slowest command {slowest:?}",
        ops.len(),
        failed.len()
    );

    // Every push that succeeded is in main; none that failed is.
    let last = w.join("last");
    clone_checked(w, &url, &last);
    let in_main = |commit: &str| {
        git_output(
            &last,
            &["merge-base", "--is-ancestor", commit, "origin/main"],
        )
        .status
        .success()
    };
    for commit in load.pushed.lock().unwrap().iter() {
        assert!(in_main(commit), "{commit} was pushed but is not in main");
    }
    for commit in load.not_pushed.lock().unwrap().iter() {
        assert!(!in_main(commit), "{commit}'s push failed but it is in main");
    }

    // What failed pushes stored, gc deletes once their leases lapsed.
    let repo_id = psql(
        &database_url,
        "SELECT id FROM repositories WHERE owner = 'out' AND name = 'age'",
    );
    wait_for_leases_to_lapse(&database_url, &repo_id);
    // The first compacts (and deletes the strays); the second, a second
    // later, deletes what the first replaced, its grace period being over.
    let mut said = String::new();
    for _ in 0..2 {
        let out =
            server.command_with_env(&["gc", "out/age"], &[("GITCLAW_GC_GRACE_SECS", "0".into())]);
        assert!(
            out.status.success(),
            "gitclaw gc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        said.push_str(&String::from_utf8_lossy(&out.stdout));
        std::thread::sleep(Duration::from_millis(1100));
    }
    // What compactions during the run replaced waits out its grace period
    // (an hour by default) in the deletion schedule: listed, so kept.
    let stored = bucket_keys_on(&garage.s3_env(), &bucket, &repo_id);
    assert_eq!(
        stored,
        listed_keys(&database_url, &repo_id),
        "after gc the bucket holds other keys than the database lists; gc said: {said}"
    );
}
