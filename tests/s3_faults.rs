//! GitClaw on S3 + PostgreSQL with faults injected between it and the S3 server:
//! nothing essential lives on local disk (a server with an empty data dir serves
//! the same repositories); with the store down, reads fail clearly, pushes
//! leave refs unchanged and the server keeps serving; and any failed upload
//! leaves every ref as it was.

mod common;

use std::{path::Path, time::Duration};

use common::{proxy::*, *};
use gitclaw_server::Config;
use proptest::prelude::*;

/// Settings for servers that share one bucket (through `proxy`) and one database.
fn shared_setup(proxy: &FaultProxy, max_retries: u32) -> impl Fn(&mut Config) + Clone {
    let mut s3 = s3_settings();
    s3.endpoint = Some(proxy.endpoint());
    s3.max_retries = max_retries;
    s3.retry_max_backoff = Duration::from_millis(400);
    s3.read_timeout = Duration::from_millis(1000);
    s3.connect_timeout = Duration::from_millis(500);
    let database_url = postgres_database();
    move |config: &mut Config| {
        config.s3 = Some(s3.clone());
        config.database_url = database_url.clone();
    }
}

fn clone_into(dir: &Path, url: &str, name: &str) -> std::process::Output {
    git_output(dir, &["clone", "-q", url, dir.join(name).to_str().unwrap()])
}

#[test]
fn a_store_outage_fails_reads_clearly_and_leaves_refs_unchanged() {
    let proxy = FaultProxy::start(&s3_env().endpoint);
    let setup = shared_setup(&proxy, 2);
    let first = Server::start_with(setup.clone());
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    let url = first.create_repo("olga", "outage");
    push_everything(&src, &url);
    commit_file(&src, "small.txt", "a loose object or two\n", "small change");
    git(&src, &["push", "-q", &url, "main"]);
    let pushed = remote_refs(&src, &url);
    let stored = first.stored_refs("olga", "outage");

    // Nothing essential on local disk: a server with an empty data dir, on the same
    // bucket and database, serves the same repository.
    let second = Server::start_with(setup.clone());
    let url2 = format!("{}/olga/outage.git", second.url);
    let out = clone_into(work.path(), &url2, "from-second");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copy = work.path().join("from-second");
    git(&copy, &["fsck", "--strict"]);
    assert_eq!(remote_refs(&src, &url2), pushed);
    assert_eq!(
        git(&copy, &["rev-parse", "HEAD"]),
        git(&src, &["rev-parse", "HEAD"])
    );

    // The store goes down. A third server has nothing cached, so reads need the store.
    let third = Server::start_with(setup.clone());
    let url3 = format!("{}/olga/outage.git", third.url);
    proxy.inject(Fault::Drop, &[], 0, None);

    let out = clone_into(work.path(), &url3, "during-outage");
    assert!(
        !out.status.success(),
        "a clone cannot succeed without the store"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("object store"),
        "git shows a clear error: {stderr}"
    );

    commit_file(
        &src,
        "during.txt",
        "pushed while the store is down\n",
        "during outage",
    );
    let out = git_output(&src, &["push", &url3, "main"]);
    assert!(
        !out.status.success(),
        "a push cannot succeed without the store"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("object store"),
        "the push is told why: {stderr}"
    );
    assert_eq!(
        third.stored_refs("olga", "outage"),
        stored,
        "refs unchanged"
    );
    // Listing refs needs only the database (what tags peel to is recorded there),
    // so ls-remote works while the store is down, annotated tags peeled.
    assert_eq!(remote_refs(&src, &url3), pushed);
    assert!(pushed.iter().any(|r| r.ends_with("^{}")), "{pushed:?}");

    // The server keeps serving what does not need the store.
    let (status, _) = http(third.addr, "GET", "/healthz", &[], b"");
    assert_eq!(status, 200);
    let (status, body) = http(third.addr, "GET", "/readyz", &[], b"");
    assert_eq!(status, 503, "not ready while the store is down");
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("object store: failing (S3_CONNECTION_ERROR)"),
        "{body}"
    );
    assert!(body.contains("database: ok"), "{body}");
    let (status, _) = http(third.addr, "GET", "/api/v1/repos/olga/outage", &[], b"");
    assert_eq!(status, 200);

    // The store is back: the same server clones and pushes again.
    proxy.clear();
    let out = clone_into(work.path(), &url3, "after-outage");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(&src, &["push", "-q", &url3, "main"]);
    assert_eq!(
        git(&src, &["ls-remote", &url, "refs/heads/main"]),
        format!(
            "{}\trefs/heads/main\n",
            git(&src, &["rev-parse", "main"]).trim()
        )
    );
    let (status, _) = http(third.addr, "GET", "/readyz", &[], b"");
    assert_eq!(status, 200);
}

/// One server on S3 behind a proxy, shared by the property's cases.
fn upload_server() -> &'static (FaultProxy, Server, tempfile::TempDir, String) {
    static SERVER: std::sync::OnceLock<(FaultProxy, Server, tempfile::TempDir, String)> =
        std::sync::OnceLock::new();
    SERVER.get_or_init(|| {
        let proxy = FaultProxy::start(&s3_env().endpoint);
        let server = Server::start_with(shared_setup(&proxy, 1));
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 1);
        git(&src, &["checkout", "-q", "-b", "side"]);
        git(&src, &["checkout", "-q", "main"]);
        let url = server.create_repo("uma", "uploads");
        git(&src, &["push", "-q", &url, "main", "side"]);
        (proxy, server, work, url)
    })
}

static CASE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

proptest! {
    #![proptest_config(ProptestConfig { cases: 8, ..ProptestConfig::default() })]

    /// If any upload of a push fails, every ref is as it was; if
    /// all succeed, the refs move together. The `fail_after`-th upload and every
    /// later one fail (past the retries), for pushes stored as loose objects or as a pack.
    #[test]
    fn a_failed_upload_moves_no_ref(files in 1usize..20, fail_after in 0usize..6) {
        let (proxy, server, work, url) = upload_server();
        let src = work.path().join("src");
        let before = remote_refs(&src, url);
        for branch in ["main", "side"] {
            git(&src, &["checkout", "-q", branch]);
            for i in 0..files.div_ceil(2) {
                let n = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                commit_file(&src, &format!("{branch}-{i}.txt"), &format!("{branch} {i} case {n}\n"), "change");
            }
        }
        proxy.forget();
        proxy.inject(Fault::InternalError, &["PUT"], fail_after, None);
        let out = git_output(&src, &["push", "--atomic", url, "main", "side"]);
        proxy.clear();
        let uploads = proxy.seen().iter().filter(|s| s.method == "PUT").count();
        let after = remote_refs(&src, url);
        if out.status.success() {
            // Every upload went through before the fault would have hit.
            prop_assert!(uploads <= fail_after, "{} uploads, fault after {}", uploads, fail_after);
            for branch in ["main", "side"] {
                let tip = git(&src, &["rev-parse", branch]).trim().to_string();
                prop_assert!(after.contains(&format!("{tip} refs/heads/{branch}")), "{:?}", after);
            }
        } else {
            prop_assert!(uploads > fail_after, "failed with {} uploads, fault after {}: {}", uploads, fail_after, String::from_utf8_lossy(&out.stderr));
            prop_assert_eq!(&after, &before, "refs unchanged after a failed upload");
            // And what did go up before the failure is deleted again (in the
            // background, right after the push gives up).
            let repo = server.block_on(server.state.meta.get_repo("uma", "uploads")).unwrap().unwrap();
            let usage = || server.block_on(gitclaw_server::service::sweep::store_usage(&server.state, &repo)).unwrap();
            wait_until(Duration::from_secs(60), "the keys the failed push stored to be deleted", || {
                usage().unrecorded_keys == 0
            });
            // Reset the local branches so the next case starts from the server's state.
            git(&src, &["checkout", "-q", "--detach"]);
            for line in &before {
                let (sha, name) = line.split_once(' ').unwrap();
                if let Some(branch) = name.strip_prefix("refs/heads/") {
                    git(&src, &["branch", "-f", branch, sha]);
                }
            }
            git(&src, &["checkout", "-q", "-f", "main"]);
        }
    }
}

/// Two servers sharing one PostgreSQL database and one bucket: pushes racing for
/// the same branch through different servers, round after round — exactly one
/// wins each round, and both servers then serve the winner.
#[test]
fn two_servers_sharing_database_and_bucket_race_exactly() {
    let proxy = FaultProxy::start(&s3_env().endpoint);
    let setup = shared_setup(&proxy, 3);
    let (one, two) = (Server::start_with(setup.clone()), Server::start_with(setup));
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let url1 = one.create_repo("rita", "race");
    let url2 = format!("{}/rita/race.git", two.url);
    git(&src, &["push", "-q", &url1, "main"]);
    let clone = |name: &str, url: &str| {
        let dir = work.path().join(name);
        git(work.path(), &["clone", "-q", url, dir.to_str().unwrap()]);
        dir
    };
    let (a, b) = (clone("a", &url1), clone("b", &url2));
    for round in 0..4 {
        git(&a, &["pull", "-q", "--rebase", &url1, "main"]);
        git(&b, &["pull", "-q", "--rebase", &url2, "main"]);
        let tip_a = commit_file(&a, "a.txt", &format!("a {round}\n"), "a");
        let tip_b = commit_file(&b, "b.txt", &format!("b {round}\n"), "b");
        let (ra, rb) = std::thread::scope(|s| {
            let ha = s.spawn(|| git_output(&a, &["push", &url1, "HEAD:main"]));
            let hb = s.spawn(|| git_output(&b, &["push", &url2, "HEAD:main"]));
            (ha.join().unwrap(), hb.join().unwrap())
        });
        assert_ne!(
            ra.status.success(),
            rb.status.success(),
            "round {round}: exactly one push wins"
        );
        let winner = if ra.status.success() { tip_a } else { tip_b };
        let expected = format!("{winner} refs/heads/main");
        assert!(remote_refs(&a, &url1).contains(&expected), "round {round}");
        assert!(remote_refs(&a, &url2).contains(&expected), "round {round}");
    }
}

/// Packs downloaded from S3 are kept on local disk only up to the configured
/// bound: with a bound smaller than any pack, every clone still works (each
/// downloads what it needs) and nothing stays on disk. Which downloads go
/// first when some fit is the cache's unit test (`service::pack_cache`).
#[test]
fn downloaded_packs_stay_within_the_disk_bound() {
    let proxy = FaultProxy::start(&s3_env().endpoint);
    let setup = shared_setup(&proxy, 3);
    let server = Server::start_with(|c| {
        setup(c);
        c.download_cache_bytes = 1;
    });
    let work = tempfile::tempdir().unwrap();
    let mut urls = Vec::new();
    for name in ["first", "second"] {
        let src = work.path().join(name);
        fixture_repo(&src, 2);
        commit_file(&src, "own.txt", name, name);
        let url = server.create_repo("dina", name);
        push_everything(&src, &url);
        urls.push((src, url));
    }
    let cached_packs = || {
        let mut packs = Vec::new();
        let mut stack = vec![server.data.path().join("cache")];
        while let Some(dir) = stack.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    stack.push(path);
                } else if path.extension().is_some_and(|e| e == "pack") {
                    packs.push(path);
                }
            }
        }
        packs
    };
    for (i, (src, url)) in urls.iter().chain(urls.iter()).enumerate() {
        let dir = work.path().join(format!("clone-{i}"));
        git(work.path(), &["clone", "-q", url, dir.to_str().unwrap()]);
        git(&dir, &["fsck", "--strict"]);
        assert_eq!(
            git(&dir, &["rev-parse", "HEAD"]),
            git(src, &["rev-parse", "HEAD"])
        );
        assert!(
            cached_packs().is_empty(),
            "a pack larger than the bound is not kept: {:?}",
            cached_packs()
        );
    }
    assert_eq!(server.block_on(server.state.packs.downloaded_bytes()), 0);
}

/// A walk that goes quiet for seconds (here: every loose object read from a slow
/// store) keeps the client informed with progress lines, and the clone completes.
#[test]
fn long_quiet_walks_send_progress_while_counting() {
    let proxy = FaultProxy::start(&s3_env().endpoint);
    let setup = shared_setup(&proxy, 3);
    let first = Server::start_with(setup.clone());
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let url = first.create_repo("kai", "slow");
    git(&src, &["push", "-q", &url, "main"]);
    // Small pushes: their commits and trees are stored as loose objects.
    for i in 0..3 {
        commit_file(&src, "small.txt", &format!("{i}\n"), &format!("small {i}"));
        git(&src, &["push", "-q", &url, "main"]);
    }
    // A fresh server (nothing cached), and a store that takes 700 ms per read.
    let second = Server::start_with(setup);
    let url2 = format!("{}/kai/slow.git", second.url);
    proxy.inject(Fault::Delay(Duration::from_millis(700)), &["GET"], 0, None);
    let dir = work.path().join("clone");
    let out = git_output(
        work.path(),
        &["clone", "--progress", &url2, dir.to_str().unwrap()],
    );
    proxy.clear();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        git(&dir, &["rev-parse", "HEAD"]),
        git(&src, &["rev-parse", "HEAD"])
    );
    assert!(
        stderr.matches("Counting objects: ").count() >= 2,
        "progress went out during the quiet walk, not only at its end: {stderr}"
    );
}
