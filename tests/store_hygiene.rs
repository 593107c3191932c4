//! Nothing stored is left unaccounted: a push whose updates all fail deletes
//! what it stored; the sweep deletes keys no row records once they are older
//! than the grace period, but never a key a push in flight holds; a process
//! killed mid-push leaves nothing that outlives its restart and a `gc`; the
//! stats report what the store holds.

mod common;

use std::io::Read;

use common::{wire::*, *};

/// The repository's stats as the API reports them.
fn stats(addr: std::net::SocketAddr, repo: &str) -> serde_json::Value {
    let (status, body) = http(
        addr,
        "GET",
        &format!("/api/v1/repos/{repo}/stats"),
        &[],
        b"",
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    serde_json::from_slice(&body).expect("stats are JSON")
}

fn unrecorded(addr: std::net::SocketAddr, repo: &str) -> u64 {
    stats(addr, repo)["store"]["unrecorded_keys"]
        .as_u64()
        .expect("store.unrecorded_keys")
}

/// A commit on top of `main` in `src` adding `files` new files; returns
/// `(old, new, pack of what is new)` and leaves `main` where it was.
fn side_commit(src: &std::path::Path, files: usize, tag: &str) -> (String, String, Vec<u8>) {
    let old = git(src, &["rev-parse", "main"]).trim().to_string();
    for i in 0..files {
        std::fs::write(
            src.join(format!("{tag}-{i}.txt")),
            format!("{tag} file {i}\n"),
        )
        .unwrap();
    }
    git(src, &["add", "-A"]);
    git(src, &["commit", "-q", "-m", tag]);
    let new = git(src, &["rev-parse", "HEAD"]).trim().to_string();
    let pack = pack_of(src, &format!("{new}\n^{old}\n"));
    git(src, &["reset", "-q", "--hard", &old]);
    (old, new, pack)
}

fn post_push(addr: std::net::SocketAddr, repo: &str, body: &[u8]) -> String {
    let (status, reply) = http(
        addr,
        "POST",
        &format!("/{repo}/git-receive-pack"),
        &[("Content-Type", "application/x-git-receive-pack-request")],
        body,
    );
    assert_eq!(status, 200);
    report_text(&reply)
}

#[test]
fn pushes_whose_updates_all_fail_delete_what_they_stored() {
    for backend in BACKENDS {
        let server = Server::start_on(backend);
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 2);
        let url = server.create_repo("stale", "pusher");
        push_everything(&src, &url);
        let before = server.stored_keys("stale", "pusher");
        let stale_old = git(&src, &["rev-parse", "main~1"]).trim().to_string();

        // Pack-sized (20 new objects and more) and loose-sized (3 new objects)
        // pushes, each from an old value that is no longer the ref's.
        for (files, tag) in [(20, "packed"), (1, "loose")] {
            let (_, new, pack) = side_commit(&src, files, tag);
            let report = post_push(
                server.addr,
                "stale/pusher.git",
                &push_request(&[(&stale_old, &new, "refs/heads/main")], &pack),
            );
            assert!(
                report.contains("unpack ok") && report.contains("ng refs/heads/main"),
                "{backend:?}: {report:?}"
            );
            assert_eq!(
                server.stored_keys("stale", "pusher"),
                before,
                "{backend:?}: a {tag} push that moved no ref left keys in the store"
            );
        }
        assert_eq!(unrecorded(server.addr, "stale/pusher"), 0, "{backend:?}");
    }
}

#[test]
fn racing_pushes_leave_only_the_winners_objects() {
    for backend in BACKENDS {
        let server = Server::start_on(backend);
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 1);
        let url = server.create_repo("race", "track");
        push_everything(&src, &url);
        let before = server.stored_keys("race", "track");

        // Eight pushes from the same old tip, half pack-sized, half loose-sized,
        // sent at once.
        let bodies: Vec<(String, Vec<u8>)> = (0..8)
            .map(|i| {
                let (old, new, pack) =
                    side_commit(&src, if i % 2 == 0 { 15 } else { 2 }, &format!("r{i}"));
                (
                    new.clone(),
                    push_request(&[(&old, &new, "refs/heads/main")], &pack),
                )
            })
            .collect();
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(bodies.len()));
        let addr = server.addr;
        let reports: Vec<(String, String)> = bodies
            .into_iter()
            .map(|(new, body)| {
                let barrier = barrier.clone();
                std::thread::spawn(move || {
                    barrier.wait();
                    (new, post_push(addr, "race/track.git", &body))
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect();
        let winners: Vec<&String> = reports
            .iter()
            .filter(|(_, r)| r.contains("ok refs/heads/main"))
            .map(|(new, _)| new)
            .collect();
        assert_eq!(winners.len(), 1, "{backend:?}: {reports:?}");
        for (_, report) in &reports {
            assert!(
                report.contains("ok refs/heads/main") || report.contains("ng refs/heads/main"),
                "{report:?}"
            );
        }
        assert_eq!(
            git(&src, &["ls-remote", &url, "refs/heads/main"])
                .split_whitespace()
                .next(),
            Some(winners[0].as_str())
        );
        // The store holds what it held plus the winner's objects, nothing else.
        assert_eq!(unrecorded(server.addr, "race/track"), 0, "{backend:?}");
        let after = server.stored_keys("race", "track");
        assert!(before.iter().all(|k| after.contains(k)));
        let clone = work.path().join(format!("clone-{backend:?}"));
        git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
        git(&clone, &["fsck", "--strict"]);
    }
}

#[test]
fn the_sweep_deletes_old_unrecorded_keys_but_never_held_ones() {
    for backend in BACKENDS {
        for grace in [3600, 0] {
            let server = Server::start_with(|config| {
                use_backend(config, backend);
                config.gc.grace_secs = grace;
            });
            let work = tempfile::tempdir().unwrap();
            let src = work.path().join("src");
            fixture_repo(&src, 1);
            let url = server.create_repo("sweep", "me");
            push_everything(&src, &url);
            let recorded = server.stored_keys("sweep", "me");
            let repo = server
                .block_on(server.state.meta.get_repo("sweep", "me"))
                .unwrap()
                .unwrap();
            let repo_id = gitclaw_storage::RepoId::new(&repo.id).unwrap();

            // What a crashed push leaves: a loose object and a pack (with a
            // commit-graph) no row records;
            // and a key a push in flight holds.
            let store = &server.state.store;
            let orphan = server
                .block_on(gitclaw_storage::put_loose_object(
                    &**store,
                    &repo_id,
                    gix_object::Kind::Blob,
                    b"left behind\n",
                ))
                .unwrap();
            let pack_hash = gix_hash::ObjectId::from_hex(&[b'7'; 40]).unwrap();
            for key in [
                gitclaw_storage::ObjectKey::pack(&repo_id, &pack_hash),
                gitclaw_storage::ObjectKey::pack_index(&repo_id, &pack_hash),
                gitclaw_storage::ObjectKey::pack_graph(&repo_id, &pack_hash),
            ] {
                server
                    .block_on(store.put(
                        &key,
                        bytes::Bytes::from_static(b"not recorded"),
                        &Default::default(),
                    ))
                    .unwrap();
            }
            let held = server
                .block_on(gitclaw_storage::put_loose_object(
                    &**store,
                    &repo_id,
                    gix_object::Kind::Blob,
                    b"a push is about to record me\n",
                ))
                .unwrap();
            let held_key = gitclaw_storage::ObjectKey::loose(&repo_id, &held)
                .as_str()
                .to_string();
            server
                .block_on(server.state.meta.claim_upload(
                    &repo.id,
                    "in-flight",
                    std::slice::from_ref(&held_key),
                    600,
                ))
                .unwrap();
            assert_eq!(unrecorded(server.addr, "sweep/me"), 5);
            let st = stats(server.addr, "sweep/me");
            assert!(st["store"]["keys"].as_u64().unwrap() >= recorded.len() as u64 + 5);

            let outcome = server
                .block_on(gitclaw_server::service::gc::gc_repo(&server.state, &repo))
                .unwrap();
            let keys = server.stored_keys("sweep", "me");
            let orphan_key = gitclaw_storage::ObjectKey::loose(&repo_id, &orphan)
                .as_str()
                .to_string();
            if grace > 0 {
                assert_eq!(
                    outcome.swept.deleted, 0,
                    "{backend:?}: keys younger than the grace period stay"
                );
                assert!(keys.contains(&orphan_key));
                continue;
            }
            assert_eq!(outcome.swept.deleted, 4, "{backend:?}: {outcome:?}");
            assert!(!keys.contains(&orphan_key), "{backend:?}");
            assert!(
                keys.contains(&held_key),
                "{backend:?}: the sweep deleted a key a push holds"
            );
            // Once the push lets go (it failed, say), the next sweep takes it.
            server
                .block_on(server.state.meta.release_claim("in-flight"))
                .unwrap();
            let outcome = server
                .block_on(gitclaw_server::service::gc::gc_repo(&server.state, &repo))
                .unwrap();
            assert_eq!(outcome.swept.deleted, 1, "{backend:?}");
            assert_eq!(unrecorded(server.addr, "sweep/me"), 0, "{backend:?}");
            let clone = work.path().join("clone");
            git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
            git(&clone, &["fsck", "--strict"]);
        }
    }
}

/// When to kill a server taking a push.
#[derive(Debug, Clone, Copy)]
enum KillPoint {
    /// As soon as the pack starts arriving in the scratch space.
    Receiving,
    /// This many milliseconds after the whole pack has arrived (its spool file
    /// stopped growing).
    Received(u64),
}

impl KillPoint {
    /// Wait for the point in `push`, read off the server's scratch space `tmp`;
    /// false if the push ended first.
    fn wait(self, tmp: &std::path::Path, push: &mut std::process::Child) -> bool {
        let spooled = || -> u64 {
            files_under(tmp)
                .iter()
                .filter(|p| p.file_name().is_some_and(|n| n == "incoming.pack"))
                .filter_map(|p| std::fs::metadata(p).ok())
                .map(|m| m.len())
                .max()
                .unwrap_or(0)
        };
        let mut ended = || push.try_wait().expect("git push").is_some();
        let deadline = std::time::Duration::from_secs(60);
        match self {
            KillPoint::Receiving => {
                let mut arriving = false;
                wait_until(
                    deadline,
                    "the pushed pack to arrive in the scratch space",
                    || {
                        arriving = spooled() > 0;
                        arriving || ended()
                    },
                );
                arriving
            }
            KillPoint::Received(after) => {
                // Whole once its spool file has not grown for this long.
                let steady = std::time::Duration::from_millis(60);
                let (mut last, mut since, mut whole) = (0, std::time::Instant::now(), false);
                wait_until(
                    deadline,
                    "the pushed pack to have arrived whole in the scratch space",
                    || {
                        let size = spooled();
                        if size != last {
                            (last, since) = (size, std::time::Instant::now());
                        }
                        whole = size > 0 && since.elapsed() >= steady;
                        whole || ended()
                    },
                );
                // Not a wait on anything: the kill lands this far into the work
                // that follows the upload (indexing, storing, committing).
                std::thread::sleep(std::time::Duration::from_millis(after));
                whole
            }
        }
    }
}

/// Wait until no store claim on `repo` is live any more, reading the database
/// of the server at `addr`: the leases of pushes killed mid-way have lapsed.
fn wait_for_leases_to_lapse(addr: std::net::SocketAddr, database_url: &str, repo: &str) {
    let (status, body) = http(addr, "GET", &format!("/api/v1/repos/{repo}"), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let view: serde_json::Value = serde_json::from_slice(&body).expect("a repository as JSON");
    let id = view["id"]
        .as_str()
        .expect("the repository's id")
        .to_string();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let meta = runtime
        .block_on(gitclaw_metadata::Metadata::connect(database_url))
        .expect("the server's database");
    wait_until(
        std::time::Duration::from_secs(60),
        "the leases of the killed pushes to lapse",
        || {
            runtime
                .block_on(meta.live_claims(&id))
                .expect("live claims")
                .is_empty()
        },
    );
    runtime.block_on(meta.close());
}

#[test]
fn pushes_killed_at_any_point_leave_nothing_after_restart_and_gc() {
    let setups: Vec<(&str, Vec<(&str, String)>)> = vec![
        ("embedded", Vec::new()),
        ("garage+postgres", {
            let mut env = s3_process_env(&fresh_bucket());
            env.push(("DATABASE_URL", postgres_database()));
            env
        }),
    ];
    for (setup, mut env) in setups {
        let database_url = env
            .iter()
            .find(|(k, _)| *k == "DATABASE_URL")
            .map(|(_, v)| v.clone());
        env.push(("GITCLAW_GC_GRACE_SECS", "0".into()));
        env.push(("GITCLAW_CLAIM_LEASE_SECS", "1".into()));
        env.push(("GITCLAW_GC_LOOSE_THRESHOLD", "0".into()));
        env.push(("GITCLAW_GC_PACK_THRESHOLD", "0".into()));
        let mut server = ServerProcess::start(&env);
        // Without DATABASE_URL, the embedded default.
        let database_url = database_url.unwrap_or_else(|| {
            format!(
                "sqlite://{}",
                server.data.path().join("gitclaw.db").display()
            )
        });
        let url = server.create_repo("crash", "test");
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 1);
        push_everything(&src, &url);

        // A push of 30 MiB that does not compress, killed at several points: while
        // the pack arrives, once it has arrived (indexing), and later (storing,
        // committing).
        let mut x: u64 = 0x2545f4914f6cdd1d;
        for (round, point) in [
            KillPoint::Receiving,
            KillPoint::Received(0),
            KillPoint::Received(300),
            KillPoint::Received(800),
        ]
        .into_iter()
        .enumerate()
        {
            for f in 0..12 {
                let mut data = vec![0u8; 40 << 20 >> 4];
                for chunk in data.chunks_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    chunk.copy_from_slice(&x.to_le_bytes()[..chunk.len()]);
                }
                std::fs::write(src.join(format!("big-{f}.bin")), &data).unwrap();
            }
            git(&src, &["add", "-A"]);
            git(&src, &["commit", "-q", "-m", &format!("round {round}")]);
            let mut push = git_cmd(&src)
                .args(["push", "-q", &url, "HEAD:refs/heads/main"])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let spooled = point.wait(&server.data.path().join("tmp"), &mut push);
            server.kill_and_restart();
            let _ = push.wait();
            let mut stderr = String::new();
            let _ = push.stderr.take().unwrap().read_to_string(&mut stderr);

            // After the restart the scratch space holds no spooled pack.
            let tmp = server.data.path().join("tmp");
            let left: Vec<_> = files_under(&tmp)
                .into_iter()
                .filter(|p| p.extension().is_none_or(|e| e != "lock"))
                .collect();
            assert!(
                left.is_empty(),
                "{setup}, killed at {point:?}: scratch files survived the restart: {left:?}"
            );
            assert!(
                spooled,
                "{setup}: the push never reached the server (killed at {point:?}): {stderr}"
            );
            // Whatever the refs say is whole.
            let clone = work.path().join(format!("clone-{setup}-{round}"));
            git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
            git(&clone, &["fsck", "--strict"]);
            // Start the next round from what the server has.
            let tip = git(&clone, &["rev-parse", "HEAD"]).trim().to_string();
            git(&src, &["fetch", "-q", &url, "main"]);
            git(&src, &["reset", "-q", "--hard", &tip]);
        }

        // Once the killed pushes' leases have lapsed, gc leaves only recorded keys.
        wait_for_leases_to_lapse(server.addr, &database_url, "crash/test");
        let out = server.command(&["gc", "crash/test"]);
        assert!(
            out.status.success(),
            "{setup}: gitclaw gc: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            unrecorded(server.addr, "crash/test"),
            0,
            "{setup}: gc output: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let clone = work.path().join(format!("final-{setup}"));
        git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
        git(&clone, &["fsck", "--strict"]);
    }
}
