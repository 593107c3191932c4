//! The metadata cache: Redis (a real `redis-server`) and each instance's own
//! memory in front of it. Repeated reads come from either, a push is seen at
//! once on every instance, a revoked token is refused at once everywhere, and
//! with Redis killed or stalled every request still succeeds against the
//! database (one warning), Redis being used again once it is back.

mod common;

use std::time::Duration;

use common::{redis::RedisServer, *};

const ADMIN: &str = "admin-secret-for-redis-tests";

fn hits(addr: std::net::SocketAddr) -> f64 {
    hits_of(addr, "metadata")
}

/// Hits of the cache `label`: `metadata` (Redis) or `metadata_local` (memory).
fn hits_of(addr: std::net::SocketAddr, label: &str) -> f64 {
    metric(
        addr,
        &format!("gitclaw_cache_lookups_total{{cache=\"{label}\",result=\"hit\"}}"),
    )
}

fn tip(url: &str, work: &std::path::Path) -> String {
    let out = git(work, &["ls-remote", url, "refs/heads/main"]);
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn repeated_reads_come_from_redis_and_a_push_is_seen_at_once() {
    let redis = RedisServer::start();
    // Redis alone: the instance's own layer would answer the repeated reads.
    let server = ServerProcess::start(&[
        ("REDIS_URL", redis.url()),
        ("GITCLAW_METADATA_CACHE_BYTES", "0".into()),
    ]);
    reads_are_cached_and_pushes_seen(&server, "metadata");
    assert!(
        !redis.keys("gitclaw:v1:refs:*").is_empty()
            && !redis.keys("gitclaw:v1:objects:*").is_empty(),
        "refs, pack and loose lists are in Redis: {:?}",
        redis.keys("gitclaw:v1:*")
    );
}

#[test]
fn repeated_reads_come_from_the_instances_memory_and_a_push_is_seen_at_once() {
    // The default: no Redis, the instance's own layer on.
    let server = ServerProcess::start(&[]);
    reads_are_cached_and_pushes_seen(&server, "metadata_local");
}

/// Repeated reads of a repository hit the cache `label`; every kind of push
/// (new commit, force push, new and deleted branch) is seen by the next read.
fn reads_are_cached_and_pushes_seen(server: &ServerProcess, label: &str) {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    let url = server.create_repo("rhea", "cached");
    git(&src, &["push", "-q", &url, "main"]);

    let head = git(&src, &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(tip(&url, work.path()), head);
    let before = hits_of(server.addr, label);
    for _ in 0..3 {
        assert_eq!(tip(&url, work.path()), head);
    }
    assert!(
        hits_of(server.addr, label) >= before + 3.0,
        "ls-remote reads the {label} cache"
    );
    let clone = work.path().join("clone");
    git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    git(&clone, &["fsck", "--strict"]);

    // Pushes (new commit, force push, branch deletion) are seen by the very next read.
    for round in 0..3 {
        let new = commit_file(&src, &format!("r{round}.txt"), "x\n", "round");
        git(&src, &["push", "-q", &url, "main"]);
        assert_eq!(tip(&url, work.path()), new, "round {round}");
        git(&clone, &["fetch", "-q", "origin"]);
        assert_eq!(git(&clone, &["rev-parse", "origin/main"]).trim(), new);
    }
    git(&src, &["reset", "-q", "--hard", "HEAD~1"]);
    git(&src, &["push", "-q", "--force", &url, "main"]);
    let forced = git(&src, &["rev-parse", "HEAD"]).trim().to_string();
    assert_eq!(tip(&url, work.path()), forced, "a force push is seen");
    git(&src, &["push", "-q", &url, "main:refs/heads/gone"]);
    assert!(git(work.path(), &["ls-remote", &url]).contains("refs/heads/gone"));
    git(&src, &["push", "-q", &url, ":refs/heads/gone"]);
    assert!(
        !git(work.path(), &["ls-remote", &url]).contains("refs/heads/gone"),
        "a deleted branch is gone at once"
    );
}

#[test]
fn with_redis_killed_or_stalled_requests_go_on_and_it_is_used_again_when_back() {
    let mut redis = RedisServer::start();
    // Redis alone: repeated reads must reach it to show it is used again.
    let mut server = ServerProcess::start(&[
        ("REDIS_URL", redis.url()),
        ("GITCLAW_METADATA_CACHE_BYTES", "0".into()),
        ("GITCLAW_REDIS_TIMEOUT_MS", "200".into()),
        (
            "RUST_LOG",
            format!("{SERVER_LOG_FILTER},gitclaw_server::service::shared_cache=info"),
        ),
    ]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 2);
    let url = server.create_repo("ruth", "outage");
    git(&src, &["push", "-q", &url, "main"]);
    assert_eq!(metric(server.addr, "gitclaw_redis_up"), 1.0);

    redis.kill();
    // Everything works without it: reads, a push, a clone, a fetch.
    for round in 0..3 {
        let new = commit_file(&src, &format!("down{round}.txt"), "x\n", "while down");
        git(&src, &["push", "-q", &url, "main"]);
        assert_eq!(tip(&url, work.path()), new);
    }
    let clone = work.path().join("clone");
    git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    git(&clone, &["fsck", "--strict"]);
    assert_eq!(metric(server.addr, "gitclaw_redis_up"), 0.0);
    let (status, body) = http(server.addr, "GET", "/readyz", &[], b"");
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(status, 200, "still ready without Redis: {body}");
    assert!(body.contains("shared cache (redis): failing"), "{body}");
    let warnings = |server: &mut ServerProcess| {
        server
            .log
            .so_far()
            .iter()
            .filter(|l| l.contains("does not answer; serving from the database"))
            .count()
    };
    assert_eq!(warnings(&mut server), 1, "one warning for the outage");

    // Back: used again after its rest.
    redis.restart();
    wait_until(Duration::from_secs(20), "Redis is used again", || {
        let _ = tip(&url, work.path());
        metric(server.addr, "gitclaw_redis_up") == 1.0
    });
    server
        .log
        .wait_for(Duration::from_secs(5), |l| l.contains("answers again"));
    let before = hits(server.addr);
    wait_until(Duration::from_secs(20), "reads hit Redis again", || {
        let _ = tip(&url, work.path());
        hits(server.addr) > before
    });

    // Stalled: it accepts connections but answers nothing for a while.
    let stalled = {
        let port = redis.port.to_string();
        std::thread::spawn(move || {
            std::process::Command::new("redis-cli")
                .args(["-p", &port, "DEBUG", "SLEEP", "4"])
                .output()
                .expect("redis-cli runs")
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let new = commit_file(&src, "stalled.txt", "x\n", "while stalled");
    git(&src, &["push", "-q", &url, "main"]);
    assert_eq!(tip(&url, work.path()), new);
    assert!(
        !stalled.is_finished(),
        "the push and the read finished while Redis was still stalled"
    );
    let stalled = stalled.join().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&stalled.stdout).trim(),
        "OK",
        "Redis was stalled: {}",
        String::from_utf8_lossy(&stalled.stderr)
    );
    assert_eq!(warnings(&mut server), 2, "one warning per outage");
}

#[test]
fn instances_sharing_redis_see_each_others_pushes_and_revocations_at_once() {
    let redis = RedisServer::start();
    let bucket = fresh_bucket();
    let mut env = s3_process_env(&bucket);
    env.push(("DATABASE_URL", postgres_database()));
    env.push(("REDIS_URL", redis.url()));
    env.push(("GITCLAW_ADMIN_TOKEN", ADMIN.into()));
    let a = ServerProcess::start(&env);
    let b = ServerProcess::start(&env);

    let admin = format!("Bearer {ADMIN}");
    let headers = [
        ("Authorization", admin.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, _) = http(
        a.addr,
        "POST",
        "/api/v1/repos",
        &headers,
        br#"{"owner":"rosa","name":"shared","private":true}"#,
    );
    assert_eq!(status, 201);
    let (status, body) = http(
        a.addr,
        "POST",
        "/api/v1/tokens",
        &headers,
        br#"{"name":"ci","repos":[{"repo":"rosa/shared","access":"write"}]}"#,
    );
    assert_eq!(status, 201);
    let token: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let (secret, id) = (
        token["token"].as_str().unwrap().to_string(),
        token["id"].as_str().unwrap().to_string(),
    );
    let with_token = |s: &ServerProcess| format!("http://ci:{secret}@{}/rosa/shared.git", s.addr);
    let (url_a, url_b) = (with_token(&a), with_token(&b));

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 2);
    git(&src, &["push", "-q", &url_a, "main"]);
    for round in 0..4 {
        // B reads (and fills Redis), A pushes, B reads again at once.
        let before = tip(&url_b, work.path());
        let new = commit_file(&src, &format!("{round}.txt"), "x\n", "shared");
        assert_ne!(before, new);
        git(&src, &["push", "-q", &url_a, "main"]);
        assert_eq!(
            tip(&url_b, work.path()),
            new,
            "round {round}: B sees A's push"
        );
        let clone = work.path().join(format!("clone{round}"));
        git(
            work.path(),
            &["clone", "-q", &url_b, clone.to_str().unwrap()],
        );
        assert_eq!(git(&clone, &["rev-parse", "HEAD"]).trim(), new);
    }
    assert!(hits(b.addr) > 0.0, "B used the shared cache");

    // Revoked through A: refused by B at once (B's lookup of it was cached).
    let (status, _) = http(
        a.addr,
        "DELETE",
        &format!("/api/v1/tokens/{id}"),
        &headers,
        b"",
    );
    assert!(status == 204 || status == 200, "revoked: {status}");
    let out = git_output(work.path(), &["ls-remote", &url_b]);
    assert!(!out.status.success(), "B refuses the revoked token");
    assert!(
        redis.keys("gitclaw:v1:token:*").is_empty(),
        "the revocation removed the cached lookup"
    );
}
