//! `gitclaw migrate` on PostgreSQL and Garage, with the legacy state built by
//! `fixtures/make-legacy-repo.sh` from real git repositories: every row ends
//! up in the store byte for byte (checked by real git reading the bucket's
//! files), a migration killed or cut off at any point resumes and stores each
//! object once, a repository is served whole while it migrates, corrupt rows
//! block it, and `--verify-only` finds a store object altered afterwards.

mod common;

use std::{
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    time::Duration,
};

use common::proxy::{Fault, FaultProxy};
use common::wait::wait_until;
use common::*;
use gitclaw_storage::ObjectStorageBackend;

/// A GitClaw on a fresh PostgreSQL database and bucket whose repository
/// `name` is in the legacy state, built from `src`.
struct Legacy {
    server: ServerProcess,
    database_url: String,
    bucket: String,
    repo_id: String,
    name: String,
    src: PathBuf,
    _work: tempfile::TempDir,
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

impl Legacy {
    /// `build` makes the source repository in the directory it is given.
    fn new(name: &str, encoding: &str, build: impl FnOnce(&Path)) -> Legacy {
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        build(&src);
        let database_url = postgres_database();
        // GitClaw's schema, as the server or any command creates it.
        runtime().block_on(async {
            gitclaw_metadata::Metadata::connect(&database_url)
                .await
                .expect("schema")
                .close()
                .await
        });
        let repo_id = load_legacy(&database_url, &src, name, encoding);
        let bucket = fresh_bucket();
        let server = ServerProcess::start(&server_env(&database_url, &bucket));
        Legacy {
            server,
            database_url,
            bucket,
            repo_id,
            name: name.to_string(),
            src,
            _work: work,
        }
    }

    fn url(&self) -> String {
        format!("{}/{}.git", self.server.url, self.name)
    }

    /// Run `gitclaw migrate ARGS` against the same database and bucket.
    fn migrate(&self, args: &[&str]) -> Output {
        let mut all = vec!["migrate"];
        all.extend_from_slice(args);
        self.server.command(&all)
    }

    /// `gitclaw migrate ARGS` that must succeed; its stdout.
    fn migrate_ok(&self, args: &[&str]) -> String {
        let out = self.migrate(args);
        assert!(
            out.status.success(),
            "gitclaw migrate {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn sql(&self, query: &str) -> String {
        psql(&self.database_url, query)
    }

    /// A number the query gives; `{repo}` in it is the repository's id.
    fn count(&self, query: &str) -> u64 {
        self.sql(&query.replace("{repo}", &self.repo_id))
            .parse()
            .unwrap()
    }

    /// Until the repository's migration lease (of a killed or cut-off run)
    /// has lapsed, so the next run may take it.
    fn wait_for_lease_to_lapse(&self) {
        wait_until(
            Duration::from_secs(30),
            "the migration lease to lapse",
            || {
                self.count(
                    "SELECT count(*) FROM repo_migration_status WHERE repo_id = '{repo}' \
                 AND state = 'in_progress' AND lease_until >= extract(epoch from now())::bigint",
                ) == 0
            },
        );
    }

    fn rows(&self) -> u64 {
        self.count("SELECT count(*) FROM repo_objects WHERE repo_id = '{repo}'")
    }

    fn copied(&self) -> u64 {
        self.count(
            "SELECT count(*) FROM object_migration_log WHERE repo_id = '{repo}' AND outcome = 'copied'",
        )
    }

    fn state(&self) -> String {
        self.sql(&format!(
            "SELECT state FROM repo_migration_status WHERE repo_id = '{}'",
            self.repo_id
        ))
    }

    /// Objects the metadata records as stored: pack entries plus loose objects.
    fn recorded_objects(&self) -> u64 {
        self.count(
            "SELECT (SELECT coalesce(sum(object_count), 0) FROM packs WHERE repo_id = '{repo}') \
             + (SELECT count(*) FROM loose_objects WHERE repo_id = '{repo}')",
        )
    }

    /// Every object the bucket holds for the repository, as git reads it:
    /// `git cat-file --batch-all-objects --batch` over a repository made of
    /// the bucket's packs and loose files.
    fn stored_objects(&self) -> String {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("store.git");
        git(
            dir.path(),
            &["init", "-q", "--bare", repo.to_str().unwrap()],
        );
        let objects = repo.join("objects");
        let rt = runtime();
        rt.block_on(async {
            let mut settings = s3_settings();
            settings.bucket = self.bucket.clone();
            let store = gitclaw_storage::S3Backend::new(settings).await.unwrap();
            let prefix = gitclaw_storage::RepoId::new(&self.repo_id)
                .unwrap()
                .prefix();
            for meta in store.list(&prefix).await.unwrap() {
                let rest = meta.key.split_once('/').unwrap().1;
                let dest = match rest.strip_prefix("objects/") {
                    Some(loose) => objects.join(loose),
                    None => objects.join(rest),
                };
                std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
                let key = gitclaw_storage::ObjectKey::parse(&meta.key).unwrap();
                store.get_to_file(&key, &dest, None).await.unwrap();
            }
        });
        all_objects(&repo)
    }
}

/// What the server and commands of a test get: the database, the bucket, and
/// a sweep that takes what a killed migration left at once.
fn server_env(database_url: &str, bucket: &str) -> Vec<(&'static str, String)> {
    let mut env = s3_process_env(bucket);
    env.push(("DATABASE_URL", database_url.to_string()));
    env.push(("GITCLAW_GC_GRACE_SECS", "0".into()));
    env.push(("GITCLAW_CLAIM_LEASE_SECS", "3".into()));
    env.push(("GITCLAW_GC_LOOSE_THRESHOLD", "0".into()));
    env.push(("GITCLAW_GC_PACK_THRESHOLD", "0".into()));
    env
}

/// Load `src` into the legacy table as `name`; returns the repository id.
fn load_legacy(database_url: &str, src: &Path, name: &str, encoding: &str) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/make-legacy-repo.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(src)
        .arg(name)
        .args(["--encoding", encoding])
        .env("DATABASE_URL", database_url)
        .output()
        .expect("fixture script runs");
    assert!(
        out.status.success(),
        "make-legacy-repo.sh: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .expect("the repository id")
        .trim()
        .to_string()
}

/// Every object of the repository at `dir`, type, size and content, in oid order.
fn all_objects(dir: &Path) -> String {
    let out = Command::new("git")
        .args(["cat-file", "--batch-all-objects", "--batch"])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A repository of `commits` commits over a few files, some contents repeated,
/// an annotated tag, a second branch and an object no ref reaches.
fn varied_repo(dir: &Path, commits: u32, seed: u32) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    for i in 0..commits {
        let file = format!("f{}.txt", (i * 7 + seed) % 5);
        let body = format!("{}\n", (i * 31 + seed) % 11).repeat(1 + (i as usize % 40));
        std::fs::create_dir_all(dir.join("sub")).unwrap();
        std::fs::write(dir.join(&file), &body).unwrap();
        std::fs::write(dir.join("sub").join(&file), format!("{i}\n")).unwrap();
        git(dir, &["add", "-A"]);
        as_tester(dir, &["commit", "-q", "-m", &format!("commit {i}")]);
        if i == commits / 2 {
            as_tester(dir, &["tag", "-a", "v1", "-m", "tag"]);
            git(dir, &["branch", "side"]);
        }
    }
    let out = Command::new("git")
        .args(["hash-object", "-w", "--stdin"])
        .current_dir(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(format!("dangling {seed}\n").as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(out.status.success());
}

/// `git ARGS` with an author and committer set.
fn as_tester(dir: &Path, args: &[&str]) {
    let mut all = vec!["-c", "user.name=T", "-c", "user.email=t@example.com"];
    all.extend_from_slice(args);
    git(dir, &all);
}

/// A bigger history: `bench/make-large-repo.sh` with `commits` commits.
fn large_repo(dir: &Path, commits: u32) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/make-large-repo.sh");
    let out = Command::new("bash")
        .arg(script)
        .arg(dir)
        .arg(commits.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig {
        cases: 3,
        failure_persistence: None,
        ..Default::default()
    })]

    /// After `migrate`, every legacy row is in the store with identical
    /// bytes, whatever the row encodings and batch sizes (loose batches of
    /// ten or fewer, packs above), and the repository is marked migrated.
    #[test]
    fn after_migration_every_row_is_in_the_store_byte_for_byte(
        commits in 1u32..25,
        seed in 0u32..1000,
        batch in 3u32..40,
        encoding in proptest::sample::select(vec!["raw", "zlib", "header", "mixed"]),
    ) {
        let legacy = Legacy::new("old/random", encoding, |dir| varied_repo(dir, commits, seed));
        let rows = legacy.rows();
        let out = legacy.migrate_ok(&["--all", "--batch-size", &batch.to_string()]);
        proptest::prop_assert!(out.contains("old/random: migrated"), "{}", out);
        proptest::prop_assert_eq!(legacy.state(), "migrated");
        proptest::prop_assert_eq!(legacy.copied(), rows);
        proptest::prop_assert_eq!(legacy.stored_objects(), all_objects(&legacy.src));
        // Compacted once migrated: what the refs reach in one pack (and what they
        // do not, like the dangling blob, in a second), no loose objects left.
        proptest::prop_assert_eq!(
            legacy.count("SELECT count(*) FROM loose_objects WHERE repo_id = '{repo}'"),
            0
        );
        proptest::prop_assert_eq!(
            legacy.count("SELECT count(*) FROM packs WHERE repo_id = '{repo}'"),
            2
        );
        // And a clone is the source's history.
        let clone = tempfile::tempdir().unwrap();
        let dest = clone.path().join("c");
        git(clone.path(), &["clone", "-q", "--mirror", &legacy.url(), dest.to_str().unwrap()]);
        git(&dest, &["fsck", "--strict"]);
        proptest::prop_assert_eq!(refs_of(&dest, "refs/"), refs_of(&legacy.src, "refs/"));
    }
}

/// Start `gitclaw migrate ARGS` in the background with `env` (on top of the
/// server's), to be killed.
fn spawn_migrate(legacy: &Legacy, env: &[(&str, String)], args: &[&str]) -> std::process::Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gitclaw"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("GITCLAW_CONFIG")
        .env("RUST_LOG", "warn")
        .env("GITCLAW_DATA_DIR", legacy.server.data.path());
    for (k, v) in server_env(&legacy.database_url, &legacy.bucket) {
        cmd.env(k, v);
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.arg("migrate")
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("gitclaw migrate starts")
}

/// Kill (SIGKILL) a migration once it has copied at least `at_least` rows
/// (or when it ended by itself).
fn kill_after(legacy: &Legacy, mut child: std::process::Child, at_least: u64) {
    wait_until(
        Duration::from_secs(120),
        "the migration to get going",
        || matches!(child.try_wait(), Ok(Some(_))) || legacy.copied() >= at_least,
    );
    let _ = child.kill();
    let _ = child.wait();
    // Its lease lapses (the tests' runs take `--lease-secs 2`).
    legacy.wait_for_lease_to_lapse();
}

#[test]
fn a_migration_killed_or_cut_off_anywhere_resumes_and_stores_each_object_once() {
    let legacy = Legacy::new("old/interrupted", "mixed", |dir| large_repo(dir, 120));
    let rows = legacy.rows();
    assert!(rows > 1000, "{rows} rows");
    let batch = [
        "--all",
        "--batch-size",
        "40",
        "--no-gc",
        "--lease-secs",
        "2",
    ];

    // Killed at three points.
    for at_least in [1, rows / 3, (rows * 2) / 3] {
        let child = spawn_migrate(&legacy, &[], &batch);
        kill_after(&legacy, child, at_least);
    }
    let after_kills = legacy.copied();
    assert!(after_kills < rows, "the kills came too late: {after_kills}");

    // The store fails every upload for a while: the run stops with an error.
    let proxy = FaultProxy::start(&s3_env().endpoint);
    proxy.inject(Fault::InternalError, &["PUT", "POST"], 0, None);
    let failing = spawn_migrate(
        &legacy,
        &[
            ("S3_ENDPOINT", proxy.endpoint()),
            ("S3_MAX_RETRIES", "1".into()),
        ],
        &batch,
    );
    let status = wait_for_exit(failing, Duration::from_secs(120));
    assert!(!status.success(), "a migration whose store fails must fail");
    proxy.clear();

    // The database goes away mid-run.
    let db_proxy = TcpCutter::start(&legacy.database_url);
    let cut = spawn_migrate(
        &legacy,
        &[("DATABASE_URL", db_proxy.url(&legacy.database_url))],
        &batch,
    );
    let before_cut = legacy.copied();
    wait_until(
        Duration::from_secs(120),
        "rows copied through the proxy",
        || legacy.copied() > before_cut,
    );
    db_proxy.cut();
    let status = wait_for_exit(cut, Duration::from_secs(120));
    assert!(
        !status.success() || legacy.copied() == rows,
        "a migration that lost its database must fail (or have finished)"
    );
    assert!(legacy.copied() < rows || status.success());
    // Cut off, it could not give its lease back: that lapses.
    legacy.wait_for_lease_to_lapse();

    // Resumed to the end: every row copied once, every object recorded once.
    let out = legacy.migrate_ok(&batch);
    assert!(out.contains("old/interrupted: migrated"), "{out}");
    assert_eq!(legacy.copied(), rows);
    assert_eq!(legacy.recorded_objects(), rows, "an object recorded twice");
    // What killed batches uploaded but never recorded is swept once their
    // claims lapse; then the bucket holds each object once.
    wait_until(
        Duration::from_secs(30),
        "the killed batches' claims to lapse",
        || {
            legacy.count(
                "SELECT count(*) FROM store_claims WHERE repo_id = '{repo}' \
             AND expires_at >= extract(epoch from now())::bigint",
            ) == 0
        },
    );
    let gc = legacy.server.command(&["gc", "old/interrupted"]);
    assert!(
        gc.status.success(),
        "{}",
        String::from_utf8_lossy(&gc.stderr)
    );
    assert_eq!(legacy.stored_objects(), all_objects(&legacy.src));
    // No key is left in the bucket that no row records.
    let (status, body) = http(
        legacy.server.addr,
        "GET",
        "/api/v1/repos/old/interrupted/stats",
        &[],
        b"",
    );
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["store"]["unrecorded_keys"], 0, "{stats}");
}

/// Wait for `child` to end (killing it past `deadline`).
fn wait_for_exit(mut child: std::process::Child, deadline: Duration) -> std::process::ExitStatus {
    let mut status = None;
    wait_until(deadline, "gitclaw migrate to end", || {
        status = child.try_wait().ok().flatten();
        status.is_some()
    });
    status.unwrap()
}

/// A TCP relay to PostgreSQL that can cut every connection and refuse new ones.
struct TcpCutter {
    port: u16,
    cut: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl TcpCutter {
    fn start(database_url: &str) -> TcpCutter {
        use std::sync::atomic::Ordering;
        let upstream = host_port(database_url);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let cut = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = cut.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                if flag.load(Ordering::SeqCst) {
                    continue;
                }
                let Ok(server) = std::net::TcpStream::connect(&upstream) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    let flag = flag.clone();
                    std::thread::spawn(move || {
                        let mut buf = [0u8; 16384];
                        loop {
                            use std::io::{Read, Write};
                            let n = match from.read(&mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(n) => n,
                            };
                            if flag.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                        let _ = from.shutdown(std::net::Shutdown::Both);
                        let _ = to.shutdown(std::net::Shutdown::Both);
                    });
                }
            }
        });
        TcpCutter { port, cut }
    }

    /// `database_url` with its host and port replaced by the relay's.
    fn url(&self, database_url: &str) -> String {
        database_url.replace(
            &host_port(database_url),
            &format!("127.0.0.1:{}", self.port),
        )
    }

    fn cut(&self) {
        self.cut.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// `HOST:PORT` of a `postgres://user@HOST:PORT/db` URL.
fn host_port(url: &str) -> String {
    let after_at = url.rsplit_once('@').map_or(url, |(_, rest)| rest);
    after_at.split('/').next().unwrap().to_string()
}

#[test]
fn a_repository_is_served_whole_while_it_migrates_store_first_then_the_table() {
    let legacy = Legacy::new("old/serving", "mixed", |dir| large_repo(dir, 80));
    let rows = legacy.rows();
    let work = tempfile::tempdir().unwrap();
    let url = legacy.url();
    let clone = |name: &str, extra: &[&str]| -> PathBuf {
        let dest = work.path().join(name);
        let mut args = vec!["clone", "-q"];
        args.extend_from_slice(extra);
        args.extend_from_slice(&[url.as_str(), dest.to_str().unwrap()]);
        git(work.path(), &args);
        dest
    };
    let head = git(&legacy.src, &["rev-parse", "HEAD"]);
    let reachable = |dir: &Path| git(dir, &["rev-list", "--objects", "--all"]);

    // Part of it migrated: killed after the first batches.
    let child = spawn_migrate(
        &legacy,
        &[],
        &[
            "--all",
            "--batch-size",
            "200",
            "--concurrency",
            "1",
            "--no-gc",
            "--lease-secs",
            "2",
        ],
    );
    kill_after(&legacy, child, 200);
    let copied = legacy.copied();
    assert!(copied > 0 && copied < rows, "{copied} of {rows} copied");
    assert_eq!(legacy.state(), "in_progress");

    let full = clone("full", &["--mirror"]);
    git(&full, &["fsck", "--strict"]);
    assert_eq!(refs_of(&full, "refs/"), refs_of(&legacy.src, "refs/"));
    assert_eq!(reachable(&full), reachable(&legacy.src));
    let shallow = clone("shallow", &["--depth", "1"]);
    assert_eq!(git(&shallow, &["rev-parse", "HEAD"]), head);
    git(&shallow, &["fsck", "--strict"]);
    let partial = clone("partial", &["--filter=blob:none"]);
    assert_eq!(git(&partial, &["rev-parse", "HEAD"]), head);
    // Checking out fetched the blobs it needed, lazily, from the same server.
    assert_eq!(
        git(&partial, &["rev-parse", "HEAD^{tree}"]),
        git(&legacy.src, &["rev-parse", "HEAD^{tree}"])
    );
    git(&partial, &["fsck"]);

    // Which is read where: a copied object comes from the store, so spoiling
    // its row changes nothing; an object only the table has is read from the
    // table, so spoiling its row breaks the clone.
    let copied_blob = legacy.sql(&format!(
        "SELECT l.oid FROM object_migration_log l JOIN repo_objects r USING (repo_id, oid) \
         WHERE l.repo_id = '{}' AND l.outcome = 'copied' AND r.object_type = 'blob' ORDER BY l.oid LIMIT 1",
        legacy.repo_id
    ));
    legacy.sql(&format!(
        "UPDATE repo_objects SET data = 'spoiled' WHERE repo_id = '{}' AND oid = '{copied_blob}'",
        legacy.repo_id
    ));
    let again = clone("again", &["--mirror"]);
    git(&again, &["fsck", "--strict"]);
    assert_eq!(reachable(&again), reachable(&legacy.src));

    // A push during the migration goes to the store only.
    let pusher = clone("pusher", &[]);
    commit_file(
        &pusher,
        "new.txt",
        "new during migration\n",
        "during migration",
    );
    git(&pusher, &["push", "-q", "origin", "HEAD"]);
    assert_eq!(legacy.rows(), rows, "a push wrote to the legacy table");

    // The migration finishes; the repository has everything, the push too.
    let out = legacy.migrate_ok(&["--all"]);
    assert!(out.contains("old/serving: migrated"), "{out}");
    let after = clone("after", &["--mirror"]);
    git(&after, &["fsck", "--strict"]);
    assert_eq!(
        git(&after, &["rev-parse", "refs/heads/main"]),
        git(&pusher, &["rev-parse", "HEAD"])
    );

    // The server's metrics know it from the database.
    let (status, body) = http(legacy.server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let text = String::from_utf8(body).unwrap();
    let sample = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {name} in {text}"))
    };
    assert_eq!(
        sample("gitclaw_migration_rows{kind=\"copied\"}"),
        rows as f64
    );
    assert_eq!(sample("gitclaw_migration_rows{kind=\"corrupt\"}"), 0.0);
    assert_eq!(
        sample("gitclaw_migration_repositories{state=\"migrated\"}"),
        1.0
    );
    assert_eq!(sample("gitclaw_migration_batches_in_flight"), 0.0);

    // Once migrated, the table is not read at all: spoiling every row changes nothing.
    legacy.sql(&format!(
        "UPDATE repo_objects SET data = 'spoiled' WHERE repo_id = '{}'",
        legacy.repo_id
    ));
    let last = clone("last", &["--mirror"]);
    git(&last, &["fsck", "--strict"]);
}

#[test]
fn an_object_only_the_table_has_is_read_from_the_table() {
    let legacy = Legacy::new("old/tableonly", "raw", |dir| varied_repo(dir, 6, 7));
    // Nothing migrated: every object comes from the table. Spoil one blob the
    // tip needs: the clone fails, and the server says which row is corrupt.
    let blob = git(&legacy.src, &["rev-parse", "HEAD:f0.txt"])
        .trim()
        .to_string();
    legacy.sql(&format!(
        "UPDATE repo_objects SET data = 'spoiled' WHERE repo_id = '{}' AND oid = '{blob}'",
        legacy.repo_id
    ));
    let spoiled = legacy.sql(&format!(
        "SELECT count(*) FROM repo_objects WHERE repo_id = '{}' AND data = 'spoiled'",
        legacy.repo_id
    ));
    assert_eq!(spoiled, "1");
    let work = tempfile::tempdir().unwrap();
    let out = git_output(
        work.path(),
        &[
            "clone",
            "-q",
            &legacy.url(),
            work.path().join("c").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success(), "a clone served a spoiled row");
    // The server's log names the row, and why.
    let mut server = legacy.server;
    let line = server
        .log
        .wait_for(Duration::from_secs(10), |l| l.contains("is corrupt"));
    assert!(line.contains(&blob), "{line}");
}

#[test]
fn corrupt_rows_block_the_migration_until_repaired_and_verify_finds_an_altered_store_object() {
    let legacy = Legacy::new("old/corrupt", "mixed", |dir| varied_repo(dir, 8, 3));
    let rows = legacy.rows();
    let blob = git(&legacy.src, &["rev-parse", "HEAD:sub/f0.txt"])
        .trim()
        .to_string();
    let where_ = format!("repo_id = '{}' AND oid = '{blob}'", legacy.repo_id);
    let original = legacy.sql(&format!(
        "SELECT encode(data, 'hex') FROM repo_objects WHERE {where_}"
    ));
    legacy.sql(&format!(
        "UPDATE repo_objects SET data = 'garbage' WHERE {where_}"
    ));

    // Small batches: every object stored loose, to be altered below.
    let out = legacy.migrate(&["--all", "--batch-size", "5", "--no-gc"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(stdout.contains("old/corrupt: NOT migrated"), "{stdout}");
    assert!(stdout.contains("1 corrupt row"), "{stdout}");
    assert_eq!(legacy.state(), "failed");
    assert_eq!(legacy.copied(), rows - 1);
    let status = legacy.migrate_ok(&["--status"]);
    assert!(
        status
            .lines()
            .any(|l| l.starts_with("old/corrupt") && l.contains("failed")),
        "{status}"
    );
    // Not migrated: nothing may drop its rows.
    let drop = legacy.migrate(&["--repo", "old/corrupt", "--drop-source"]);
    assert!(!drop.status.success());
    assert_eq!(legacy.rows(), rows);

    // Repaired, looked at again: migrated.
    legacy.sql(&format!(
        "UPDATE repo_objects SET data = decode('{original}', 'hex') WHERE {where_}"
    ));
    let out = legacy.migrate_ok(&["--all", "--batch-size", "5", "--no-gc", "--retry-corrupt"]);
    assert!(out.contains("old/corrupt: migrated"), "{out}");
    assert_eq!(legacy.copied(), rows);
    let verified = legacy.migrate_ok(&["--repo", "old/corrupt", "--verify-only"]);
    assert!(verified.contains("verified"), "{verified}");

    // A stored object altered behind GitClaw's back: verification names it.
    let other = git(&legacy.src, &["rev-parse", "HEAD:sub/f1.txt"])
        .trim()
        .to_string();
    runtime().block_on(async {
        let mut settings = s3_settings();
        settings.bucket = legacy.bucket.clone();
        let store = gitclaw_storage::S3Backend::new(settings).await.unwrap();
        let repo = gitclaw_storage::RepoId::new(&legacy.repo_id).unwrap();
        let victim = gitclaw_storage::ObjectKey::loose(
            &repo,
            &gix_hash::ObjectId::from_hex(blob.as_bytes()).unwrap(),
        );
        let impostor = gitclaw_storage::ObjectKey::loose(
            &repo,
            &gix_hash::ObjectId::from_hex(other.as_bytes()).unwrap(),
        );
        let bytes = store.get(&impostor).await.unwrap();
        store
            .put(&victim, bytes, &gitclaw_storage::PutOptions::default())
            .await
            .unwrap();
    });
    let out = legacy.migrate(&["--repo", "old/corrupt", "--verify-only"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{stdout}");
    assert!(
        stdout.contains(&blob),
        "the altered object is named: {stdout}"
    );
}

#[test]
fn deleting_a_repository_while_it_migrates_is_refused_with_migration_in_progress() {
    let legacy = Legacy::new("old/busy", "raw", |dir| varied_repo(dir, 3, 1));
    let rows = legacy.rows();
    // A migration holds the repository, as a running `gitclaw migrate` does.
    // Connected on the runtime that uses it: the pool's connections belong to
    // the runtime they were opened on, and one dropped leaves them dead.
    let rt = runtime();
    let meta = rt
        .block_on(gitclaw_metadata::Metadata::connect(&legacy.database_url))
        .unwrap();
    let taken = rt
        .block_on(meta.start_migration(&legacy.repo_id, rows, 120))
        .unwrap();
    assert!(matches!(taken, gitclaw_metadata::MigrationStart::Taken(_)));

    let (status, body) = http(
        legacy.server.addr,
        "DELETE",
        "/api/v1/repos/old/busy",
        &[],
        b"",
    );
    let body = String::from_utf8_lossy(&body);
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("MIGRATION_IN_PROGRESS"), "{body}");
    let cli = legacy.server.command(&["repo", "delete", "old/busy"]);
    assert!(!cli.status.success());
    assert!(
        String::from_utf8_lossy(&cli.stderr).contains("migration"),
        "{}",
        String::from_utf8_lossy(&cli.stderr)
    );
    // The repository shows its migration.
    let (status, body) = http(
        legacy.server.addr,
        "GET",
        "/api/v1/repos/old/busy",
        &[],
        b"",
    );
    assert_eq!(status, 200);
    let repo: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(repo["migration"]["state"], "in_progress", "{repo}");
    let (_, body) = http(
        legacy.server.addr,
        "GET",
        "/api/v1/repos/old/busy/stats",
        &[],
        b"",
    );
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(stats["legacy_rows"], rows, "{stats}");
    assert_eq!(stats["legacy_rows_migrated"], 0, "{stats}");

    // Once it stops, the repository can go — its legacy rows with it.
    rt.block_on(meta.finish_migration(
        &legacy.repo_id,
        gitclaw_metadata::MigrationState::Pending,
        None,
    ))
    .unwrap();
    let (status, body) = http(
        legacy.server.addr,
        "DELETE",
        "/api/v1/repos/old/busy",
        &[],
        b"",
    );
    assert_eq!(status, 204, "{}", String::from_utf8_lossy(&body));
    assert_eq!(legacy.rows(), 0);
}
