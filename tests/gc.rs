//! Compaction: loose objects and packs merge into one pack; replaced keys go only
//! after their grace period; automatic compaction after pushes; clones stay whole.

mod common;

use common::*;

fn count(keys: &[String], suffix: &str) -> usize {
    keys.iter().filter(|k| k.ends_with(suffix)).count()
}

fn loose(keys: &[String]) -> usize {
    keys.iter().filter(|k| k.contains("/objects/")).count()
}

/// A server that compacts only when told to, and a fixture repository of
/// `extra` commits and one more whose content is this run's own.
fn manual_gc_fixture(extra: u32) -> (Server, tempfile::TempDir, std::path::PathBuf) {
    let server = Server::start_with(|c| {
        c.gc.loose_threshold = 0;
        c.gc.pack_threshold = 0;
    });
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, extra);
    commit_file(
        &src,
        "unique.txt",
        &format!("{:?}\n", work.path()),
        "unique",
    );
    (server, work, src)
}

#[test]
fn gc_merges_everything_into_one_pack_and_deletes_after_the_grace_period() {
    for backend in BACKENDS {
        let server = Server::start_with(|c| {
            use_backend(c, backend);
            c.gc.loose_threshold = 0;
            c.gc.pack_threshold = 0;
            c.gc.grace_secs = 0;
        });
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 2);
        let url = server.create_repo("gary", "gc");
        git(&src, &["push", "-q", &url, "main"]);
        for i in 0..6 {
            commit_file(
                &src,
                "small.txt",
                &format!("small {i}\n"),
                &format!("small {i}"),
            );
            git(&src, &["push", "-q", &url, "main"]);
        }
        for i in 0..15 {
            std::fs::write(src.join(format!("bulk-{i}.txt")), format!("bulk {i}\n")).unwrap();
        }
        git(&src, &["add", "-A"]);
        git(&src, &["commit", "-q", "-m", "bulk"]);
        git(&src, &["push", "-q", &url, "main"]);
        let before = server.stored_keys("gary", "gc");
        assert!(
            count(&before, ".pack") >= 2 && loose(&before) >= 18,
            "{backend:?}: {before:?}"
        );

        let repo = server
            .block_on(server.state.meta.get_repo("gary", "gc"))
            .unwrap()
            .unwrap();
        let outcome = server
            .block_on(gitclaw_server::service::gc::gc_repo(&server.state, &repo))
            .unwrap();
        assert!(outcome.new_pack.is_some());
        let stats = server
            .block_on(server.state.meta.repo_stats(&repo.id))
            .unwrap();
        assert_eq!((stats.packs, stats.loose_objects), (1, 0), "{backend:?}");

        // Until deletions run, the replaced keys are still there for clones in flight.
        assert!(server.stored_keys("gary", "gc").len() > 2);
        let deleted = server
            .block_on(gitclaw_server::service::sweep::run_due_deletions(
                &server.state,
            ))
            .unwrap();
        assert!(deleted > 0);
        let after = server.stored_keys("gary", "gc");
        assert_eq!(
            (count(&after, ".pack"), count(&after, ".idx"), loose(&after)),
            (1, 1, 0),
            "{backend:?}: {after:?}"
        );

        let clone = work.path().join("clone");
        git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
        assert_eq!(
            git(&clone, &["rev-parse", "HEAD"]),
            git(&src, &["rev-parse", "HEAD"])
        );
        git(&clone, &["fsck", "--strict"]);
        // Pushing and fetching go on as before.
        let tip = commit_file(&src, "after.txt", "after gc\n", "after gc");
        git(&src, &["push", "-q", &url, "main"]);
        git(&clone, &["pull", "-q", "--ff-only"]);
        assert_eq!(git(&clone, &["rev-parse", "HEAD"]).trim(), tip);
    }
}

#[test]
fn grace_period_keeps_replaced_packs_readable() {
    let server = Server::start_with(|c| {
        c.gc.loose_threshold = 0;
        c.gc.pack_threshold = 0;
        c.gc.grace_secs = 3600;
    });
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 2);
    let url = server.create_repo("gina", "grace");
    git(&src, &["push", "-q", &url, "main"]);
    commit_file(&src, "x.txt", "x\n", "x");
    git(&src, &["push", "-q", &url, "main"]);
    let before = server.stored_keys("gina", "grace");
    let repo = server
        .block_on(server.state.meta.get_repo("gina", "grace"))
        .unwrap()
        .unwrap();
    server
        .block_on(gitclaw_server::service::gc::gc_repo(&server.state, &repo))
        .unwrap();
    assert_eq!(
        server
            .block_on(gitclaw_server::service::sweep::run_due_deletions(
                &server.state
            ))
            .unwrap(),
        0,
        "nothing is deleted inside the grace period"
    );
    let after = server.stored_keys("gina", "grace");
    for key in &before {
        assert!(after.contains(key), "{key} survives the grace period");
    }
}

#[test]
fn automatic_compaction_after_pushes() {
    let server = Server::start_with(|c| {
        c.gc.loose_threshold = 8;
        c.gc.pack_threshold = 3;
        c.gc.grace_secs = 3600;
    });
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let url = server.create_repo("hank", "auto");
    git(&src, &["push", "-q", &url, "main"]);
    for i in 0..5 {
        commit_file(
            &src,
            "auto.txt",
            &format!("auto {i}\n"),
            &format!("auto {i}"),
        );
        git(&src, &["push", "-q", &url, "main"]);
    }
    let repo = server
        .block_on(server.state.meta.get_repo("hank", "auto"))
        .unwrap()
        .unwrap();
    wait_until(
        std::time::Duration::from_secs(60),
        "an automatic compaction down to at most 8 loose objects and 2 packs",
        || {
            let stats = server
                .block_on(server.state.meta.repo_stats(&repo.id))
                .unwrap();
            stats.loose_objects <= 8 && stats.packs <= 2
        },
    );
    let clone = work.path().join("clone");
    git(work.path(), &["clone", "-q", &url, clone.to_str().unwrap()]);
    git(&clone, &["fsck", "--strict"]);
}

#[test]
fn repeated_full_clones_of_a_compacted_repository_are_answered_by_its_pack() {
    let (server, work, src) = manual_gc_fixture(2);
    let url = server.create_repo("wren", "whole");
    push_everything(&src, &url);
    let gc = |server: &Server| {
        let repo = server
            .block_on(server.state.meta.get_repo("wren", "whole"))
            .unwrap()
            .unwrap();
        server
            .block_on(gitclaw_server::service::gc::gc_repo(&server.state, &repo))
            .unwrap();
    };
    gc(&server);
    let mut n = 0;
    let mut clone = |version: &str| {
        n += 1;
        let dir = work.path().join(format!("clone-{n}"));
        let out = git_output(
            work.path(),
            &[
                "-c",
                &format!("protocol.version={version}"),
                "clone",
                "--progress",
                "--mirror",
                &url,
                dir.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        git(&dir, &["fsck", "--strict"]);
        let refs = refs_of(&dir, "refs/");
        (String::from_utf8_lossy(&out.stderr).into_owned(), refs)
    };
    let (_, first) = clone("2");
    assert_eq!(first, refs_of(&src, "refs/"), "the clone has every ref");
    for version in ["2", "0"] {
        let (progress, refs) = clone(version);
        assert!(
            progress.contains("answered by a stored pack"),
            "v{version}: a repeated full clone is answered by the stored pack: {progress}"
        );
        assert_eq!(refs, first);
    }
    // New history: the old answer no longer fits, the walk runs and the clone is whole.
    let tip = commit_file(&src, "more.txt", "more\n", "more");
    git(&src, &["push", "-q", &url, "main"]);
    let (progress, refs) = clone("2");
    assert!(
        !progress.contains("answered by a stored pack"),
        "{progress}"
    );
    assert!(refs.iter().any(|r| r.contains(&tip)), "{refs:?}");
    // Compacted again: the same clone is answered without a walk — by the pack
    // cache, which kept the pack the walk above produced.
    gc(&server);
    let (progress, again) = clone("2");
    assert!(
        progress.contains("answered by a stored pack")
            || progress.contains("Reusing a cached pack"),
        "{progress}"
    );
    assert!(again.iter().any(|r| r.contains(&tip)));
}

/// A mirror clone with progress: (stderr, refs).
fn mirror_clone(url: &str, dir: &std::path::Path) -> (String, Vec<String>) {
    let out = git_output(
        dir.parent().unwrap(),
        &[
            "clone",
            "--progress",
            "--mirror",
            url,
            dir.to_str().unwrap(),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(dir, &["fsck", "--strict"]);
    (
        String::from_utf8_lossy(&out.stderr).into_owned(),
        refs_of(dir, "refs/"),
    )
}

#[test]
fn gc_keeps_unreachable_objects_apart_and_the_first_clone_streams_the_reachable_pack() {
    for backend in BACKENDS {
        let server = Server::start_with(|c| {
            use_backend(c, backend);
            c.gc.loose_threshold = 0;
            c.gc.pack_threshold = 0;
        });
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 3);
        let url = server.create_repo("ursula", "cruft");
        push_everything(&src, &url);
        // A branch pushed and then deleted leaves its commit stored but unreachable.
        git(&src, &["checkout", "-q", "-b", "doomed"]);
        let doomed = commit_file(
            &src,
            "doomed.txt",
            &format!("doomed {:?}\n", work.path()),
            "doomed",
        );
        git(&src, &["push", "-q", &url, "doomed"]);
        git(&src, &["push", "-q", &url, ":doomed"]);
        git(&src, &["checkout", "-q", "main"]);
        git(&src, &["branch", "-q", "-D", "doomed"]);
        let tip = commit_file(&src, "more.txt", "more\n", "more");
        git(&src, &["push", "-q", &url, "main"]);

        let repo = server
            .block_on(server.state.meta.get_repo("ursula", "cruft"))
            .unwrap()
            .unwrap();
        let gc = || {
            server
                .block_on(gitclaw_server::service::gc::gc_repo(&server.state, &repo))
                .unwrap()
        };
        let outcome = gc();
        assert!(
            outcome.new_pack.is_some() && outcome.cruft_pack.is_some() && outcome.closure_recorded,
            "{backend:?}: {outcome:?}"
        );
        let stats = server
            .block_on(server.state.meta.repo_stats(&repo.id))
            .unwrap();
        assert_eq!((stats.packs, stats.loose_objects), (2, 0), "{backend:?}");
        let again = gc();
        assert!(
            again.new_pack.is_none() && !again.closure_recorded,
            "a compacted repository is left alone: {again:?}"
        );

        // The very first clone needs no walk: the reachable pack is the answer.
        let (progress, refs) = mirror_clone(&url, &work.path().join("clone"));
        assert!(
            progress.contains("answered by a stored pack"),
            "{backend:?}: {progress}"
        );
        assert_eq!(refs, refs_of(&src, "refs/"), "{backend:?}");
        assert!(refs.iter().any(|r| r.contains(&tip)));
        let clone = work.path().join("clone");
        assert!(
            !git_output(&clone, &["cat-file", "-e", &doomed])
                .status
                .success(),
            "{backend:?}: the unreachable commit does not go out with the clone"
        );
        // …and is still refused by id, while the server keeps it.
        assert!(
            !git_output(&clone, &["fetch", "-q", &url, &doomed])
                .status
                .success(),
            "{backend:?}"
        );
    }
}

#[test]
fn gc_records_a_single_pack_that_already_is_the_closure() {
    let (server, work, src) = manual_gc_fixture(3);
    let url = server.create_repo("uma", "closed");
    push_everything(&src, &url);
    let before = server.stored_keys("uma", "closed");
    let repo = server
        .block_on(server.state.meta.get_repo("uma", "closed"))
        .unwrap()
        .unwrap();
    let outcome = server
        .block_on(gitclaw_server::service::gc::gc_repo(&server.state, &repo))
        .unwrap();
    assert!(
        outcome.new_pack.is_none() && outcome.closure_recorded,
        "{outcome:?}"
    );
    // Nothing is rewritten; the pack's commit-graph goes up beside it.
    let pack_key = before
        .iter()
        .find(|k| k.ends_with(".pack"))
        .expect("a pack")
        .clone();
    let graph_key = pack_key.replace(".pack", ".graph");
    let mut expected = before.clone();
    expected.push(graph_key.clone());
    expected.sort();
    let mut after = server.stored_keys("uma", "closed");
    after.sort();
    assert_eq!(after, expected, "nothing is rewritten");
    let clone = work.path().join("clone");
    let (progress, refs) = mirror_clone(&url, &clone);
    assert!(progress.contains("answered by a stored pack"), "{progress}");
    assert_eq!(refs, refs_of(&src, "refs/"));
    // Git reads the graph as its own and finds it true to the commits.
    let graph_file = server
        .repo_dir("uma", "closed")
        .join("pack")
        .join(graph_key.rsplit('/').next().unwrap());
    std::fs::create_dir_all(clone.join("objects/info")).unwrap();
    std::fs::copy(&graph_file, clone.join("objects/info/commit-graph")).unwrap();
    git(&clone, &["commit-graph", "verify"]);
    // And it holds every commit: the last fanout entry (OIDF, the first
    // chunk) counts them.
    let graph = std::fs::read(&graph_file).unwrap();
    assert_eq!(&graph[..4], b"CGPH");
    assert_eq!(&graph[8..12], b"OIDF");
    let oidf = u64::from_be_bytes(graph[12..20].try_into().unwrap()) as usize;
    let count = u32::from_be_bytes(graph[oidf + 255 * 4..oidf + 256 * 4].try_into().unwrap());
    let commits = git(&clone, &["rev-list", "--all"]).lines().count();
    assert_eq!(count as usize, commits);
    partial_clone_from_stored_pack(&url, &src, &work.path().join("partial"));
}

/// A `--filter=blob:none` clone that starts from a stored pack: it holds exactly
/// the commits, trees and tags, and fetches a blob when asked for it.
fn partial_clone_from_stored_pack(url: &str, src: &std::path::Path, dir: &std::path::Path) {
    let out = git_output(
        dir.parent().unwrap(),
        &[
            "clone",
            "--progress",
            "--bare",
            "--filter=blob:none",
            url,
            dir.to_str().unwrap(),
        ],
    );
    let progress = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{progress}");
    assert!(progress.contains("from a stored pack"), "{progress}");
    let ids = |text: String| -> std::collections::BTreeSet<String> {
        text.lines()
            .map(|l| l.split(' ').next().unwrap().to_string())
            .collect()
    };
    let local = ids(git(
        dir,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname)",
        ],
    ));
    let expected = ids(git(
        src,
        &["rev-list", "--objects", "--all", "--filter=blob:none"],
    ));
    assert_eq!(local, expected, "commits, trees and tags, and no blob");
    git(dir, &["fsck"]);
    assert_eq!(
        git(dir, &["cat-file", "-p", "HEAD:README.md"]),
        git(src, &["cat-file", "-p", "HEAD:README.md"]),
        "a blob is fetched when needed"
    );
}

#[test]
fn clones_after_later_pushes_send_the_compacted_pack_and_walk_only_what_is_new() {
    for backend in BACKENDS {
        let server = Server::start_with(|c| {
            use_backend(c, backend);
            c.gc.loose_threshold = 0;
            c.gc.pack_threshold = 0;
        });
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 4);
        commit_file(
            &src,
            "unique.txt",
            &format!("{:?}\n", work.path()),
            "unique",
        );
        let url = server.create_repo("ulla", "later");
        push_everything(&src, &url);
        let repo = server
            .block_on(server.state.meta.get_repo("ulla", "later"))
            .unwrap()
            .unwrap();
        let outcome = server
            .block_on(gitclaw_server::service::gc::gc_repo(&server.state, &repo))
            .unwrap();
        assert!(outcome.closure_recorded, "{backend:?}: {outcome:?}");

        // Later pushes: main moves on (a big file rewritten, so deltas against the
        // compacted pack are worth reusing), and a new annotated tag.
        std::fs::write(src.join("big.txt"), "a large file\n".repeat(2000)).unwrap();
        git(&src, &["add", "big.txt"]);
        git(&src, &["commit", "-q", "-m", "big"]);
        git(&src, &["push", "-q", &url, "main"]);
        std::fs::write(src.join("big.txt"), "a large file, edited\n".repeat(2000)).unwrap();
        commit_file(&src, "more.txt", "more\n", "more");
        git(&src, &["commit", "-q", "-am", "edited"]);
        let tip = git(&src, &["rev-parse", "HEAD"]).trim().to_string();
        git(&src, &["tag", "-a", "-m", "later", "v-later"]);
        push_everything(&src, &url);

        let (progress, refs) = mirror_clone(&url, &work.path().join("clone"));
        assert!(
            progress.contains("from a stored pack"),
            "{backend:?}: the clone starts from the compacted pack: {progress}"
        );
        assert_eq!(refs, refs_of(&src, "refs/"), "{backend:?}");
        assert!(refs.iter().any(|r| r.contains(&tip)));
        // So does a blobless clone, with the commits, trees and tags of that pack.
        partial_clone_from_stored_pack(&url, &src, &work.path().join("partial"));

        // A branch the compacted pack was taken of is deleted: that pack would now
        // carry history the clone does not reach, so the clone walks instead.
        let topic = git(&src, &["rev-parse", "topic"]).trim().to_string();
        git(&src, &["push", "-q", &url, ":topic"]);
        git(&src, &["branch", "-q", "-D", "topic"]);
        let (progress, refs) = mirror_clone(&url, &work.path().join("clone-2"));
        assert!(
            !progress.contains("from a stored pack")
                && !progress.contains("answered by a stored pack"),
            "{backend:?}: {progress}"
        );
        assert_eq!(refs, refs_of(&src, "refs/"), "{backend:?}");
        let clone = work.path().join("clone-2");
        assert!(
            !git_output(&clone, &["cat-file", "-e", &topic])
                .status
                .success(),
            "{backend:?}: the deleted branch's own commit does not go out"
        );
    }
}

#[test]
fn gc_keeps_new_delta_chains_within_the_configured_depth() {
    // One file growing over pushes small enough to be stored as loose objects:
    // gc's delta search chains its versions, as deep as the configuration allows.
    let mut longest = Vec::new();
    for depth in [50, 2] {
        let server = Server::start_with(|c| {
            c.gc.loose_threshold = 0;
            c.gc.pack_threshold = 0;
            c.pack_depth = depth;
        });
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        git(
            work.path(),
            &["init", "-q", "-b", "main", src.to_str().unwrap()],
        );
        let url = server.create_repo("wren", "deep");
        let mut text: String = (0..100)
            .map(|i| format!("line {i} of the base text\n"))
            .collect();
        for i in 0..8 {
            text.push_str(&format!("added in version {i}\n"));
            commit_file(&src, "growing.txt", &text, &format!("v{i}"));
            git(&src, &["push", "-q", &url, "main"]);
        }
        assert!(loose(&server.stored_keys("wren", "deep")) > 0);
        let repo = server
            .block_on(server.state.meta.get_repo("wren", "deep"))
            .unwrap()
            .unwrap();
        server
            .block_on(gitclaw_server::service::gc::gc_repo(&server.state, &repo))
            .unwrap();
        // A full clone of a compacted repository is its stored pack, as it is.
        let dir = work.path().join("clone");
        git(
            work.path(),
            &["clone", "-q", "--mirror", &url, dir.to_str().unwrap()],
        );
        git(&dir, &["fsck", "--strict"]);
        let idx = std::fs::read_dir(dir.join("objects/pack"))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .find(|p| p.extension().is_some_and(|x| x == "idx"))
            .unwrap();
        longest.push(longest_chain(&dir, &idx));
    }
    assert!(
        longest[0] > 2,
        "eight versions chain deeper by default: {longest:?}"
    );
    assert!(
        longest[1] <= 2,
        "GITCLAW_PACK_DEPTH=2 bounds the chains: {longest:?}"
    );
}

/// A `--depth 1` clone of the default branch after compaction: the tip's
/// version of a file that shrank is stored as a delta of the older version,
/// which the clone lacks. With tip entries (the default) compaction stored what
/// the clone sends instead, so the clone is copied from stored bytes and the
/// server searches for no delta; without them that version is searched for.
#[test]
fn a_shallow_clone_of_the_default_branch_after_gc_searches_for_no_delta() {
    for tip_entries in [true, false] {
        let server = Server::start_with(|c| {
            c.gc.loose_threshold = 0;
            c.gc.pack_threshold = 0;
            c.gc.tip_entries = tip_entries;
        });
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 0);
        let lines: Vec<String> = (0..3000)
            .map(|i| format!("line {i} of a file that shrinks\n"))
            .collect();
        commit_file(&src, "shrinks.txt", &lines.concat(), "long");
        let url = server.create_repo("isla", "shallow");
        push_everything(&src, &url);
        // The next push sends the shorter version as a delta of the longer one.
        commit_file(&src, "shrinks.txt", &lines[..2000].concat(), "shorter");
        push_everything(&src, &url);
        let repo = server
            .block_on(server.state.meta.get_repo("isla", "shallow"))
            .unwrap()
            .unwrap();
        let outcome = server
            .block_on(gitclaw_server::service::gc::gc_repo(&server.state, &repo))
            .unwrap();
        assert!(outcome.new_pack.is_some(), "{outcome:?}");

        let clone = work.path().join("clone");
        let out = git_output(
            work.path(),
            &[
                "clone",
                "--progress",
                "--depth",
                "1",
                &url,
                clone.to_str().unwrap(),
            ],
        );
        let progress = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{progress}");
        git(&clone, &["fsck", "--strict"]);
        assert_eq!(
            std::fs::read_to_string(clone.join("shrinks.txt")).unwrap(),
            lines[..2000].concat()
        );
        assert_eq!(
            progress.contains("Compressing objects"),
            !tip_entries,
            "tip entries {tip_entries}: {progress}"
        );
    }
}

#[test]
fn a_push_of_a_whole_history_is_its_refs_closure_so_clones_need_no_walk_before_any_gc() {
    // No automatic compaction: the repository stays as pushed.
    let (server, work, src) = manual_gc_fixture(3);
    git(&src, &["tag", "-a", "-m", "first", "v-first"]);
    let url = server.create_repo("pia", "pushed");
    push_everything(&src, &url);
    let keys = server.stored_keys("pia", "pushed");
    assert_eq!(
        (count(&keys, ".pack"), count(&keys, ".graph")),
        (1, 0),
        "{keys:?}"
    );

    // A full clone of every ref is the pushed pack, streamed as it is.
    let (progress, refs) = mirror_clone(&url, &work.path().join("clone"));
    assert!(progress.contains("answered by a stored pack"), "{progress}");
    assert_eq!(refs, refs_of(&src, "refs/"));
    // A blobless clone copies its commits, trees and tags.
    partial_clone_from_stored_pack(&url, &src, &work.path().join("partial"));

    // History moves on: the next clone sends that pack whole and walks only
    // what is newer.
    let tip = commit_file(&src, "later.txt", "later\n", "later");
    git(&src, &["push", "-q", &url, "main"]);
    let (progress, refs) = mirror_clone(&url, &work.path().join("clone-2"));
    assert!(progress.contains("from a stored pack"), "{progress}");
    assert_eq!(refs, refs_of(&src, "refs/"));
    assert!(refs.iter().any(|r| r.contains(&tip)), "{refs:?}");
    assert_eq!(
        count(&server.stored_keys("pia", "pushed"), ".graph"),
        0,
        "nothing was compacted"
    );
}

#[test]
fn a_pushed_pack_holding_an_object_no_ref_reaches_is_not_taken_for_their_closure() {
    let (server, work, src) = manual_gc_fixture(3);
    let stray = git_with_input(
        &src,
        &["hash-object", "-w", "--stdin"],
        b"no ref reaches me\n",
    )
    .trim()
    .to_string();
    let main = git(&src, &["rev-parse", "main"]).trim().to_string();
    // What git would push for main, and the stray blob beside it.
    let pack = wire::pack_of(&src, &format!("main\n{stray}\n"));
    server.create_repo("pia", "stray");
    let (status, body) = http(
        server.addr,
        "POST",
        "/pia/stray.git/git-receive-pack",
        &[("Content-Type", "application/x-git-receive-pack-request")],
        &wire::push_request(&[(wire::ZERO, &main, "refs/heads/main")], &pack),
    );
    let report = wire::report_text(&body);
    assert_eq!(status, 200);
    assert!(
        report.contains("unpack ok") && report.contains("ok refs/heads/main"),
        "{report}"
    );
    // The clone of main walks: the stored pack holds more than main reaches,
    // and none of that goes out.
    let url = format!("http://{}/pia/stray.git", server.addr);
    let clone = work.path().join("clone");
    let (progress, refs) = mirror_clone(&url, &clone);
    assert!(
        !progress.contains("answered by a stored pack") && !progress.contains("from a stored pack"),
        "{progress}"
    );
    assert_eq!(refs, vec![format!("{main} refs/heads/main")]);
    assert!(!git_output(&clone, &["cat-file", "-e", &stray])
        .status
        .success());
}

#[test]
fn a_whole_history_pushed_at_once_gets_its_graph_in_the_background_and_no_more() {
    // No compaction by thresholds: only the record of a large first push.
    let server = Server::start_with(|c| {
        c.gc.loose_threshold = 0;
        c.gc.pack_threshold = 0;
        c.gc.closure_threshold = 20;
    });
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    let objects = git(&src, &["rev-list", "--objects", "--all"])
        .lines()
        .count();
    assert!(objects > 20, "the fixture holds {objects} objects");
    let url = server.create_repo("ida", "import");
    push_everything(&src, &url);
    let pushed = server.stored_keys("ida", "import");
    assert_eq!(count(&pushed, ".pack"), 1, "{pushed:?}");

    // The pushed pack's commit-graph goes up beside it, nothing rewritten.
    let pack_key = pushed.iter().find(|k| k.ends_with(".pack")).unwrap();
    let graph_key = pack_key.replace(".pack", ".graph");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut keys = server.stored_keys("ida", "import");
    while !keys.contains(&graph_key) {
        assert!(
            std::time::Instant::now() < deadline,
            "no commit-graph after a minute: {keys:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
        keys = server.stored_keys("ida", "import");
    }
    let mut expected = pushed.clone();
    expected.push(graph_key.clone());
    expected.sort();
    keys.sort();
    assert_eq!(keys, expected, "only the graph is added");
    let repo = server
        .block_on(server.state.meta.get_repo("ida", "import"))
        .unwrap()
        .unwrap();
    let packs = server
        .block_on(server.state.meta.list_packs(&repo.id))
        .unwrap();
    assert!(
        packs.len() == 1 && packs[0].graph_bytes.is_some() && packs[0].closure_of.is_some(),
        "{packs:?}"
    );
    // Git takes the graph as true to the commits, and clones are whole.
    let clone = work.path().join("clone");
    let (_, refs) = mirror_clone(&url, &clone);
    assert_eq!(refs, refs_of(&src, "refs/"));
    let graph_file = server
        .repo_dir("ida", "import")
        .join("pack")
        .join(graph_key.rsplit('/').next().unwrap());
    std::fs::create_dir_all(clone.join("objects/info")).unwrap();
    std::fs::copy(&graph_file, clone.join("objects/info/commit-graph")).unwrap();
    git(&clone, &["commit-graph", "verify"]);
    let shallow = work.path().join("shallow");
    git(
        work.path(),
        &[
            "clone",
            "-q",
            "--depth",
            "1",
            &url,
            shallow.to_str().unwrap(),
        ],
    );
    git(&shallow, &["fsck"]);
    assert_eq!(
        git(&shallow, &["rev-parse", "HEAD"]),
        git(&src, &["rev-parse", "main"])
    );

    // A later push is stored beside it (loose, being small) and leaves
    // compaction to the thresholds, here none: no compaction is due, and
    // nothing is rewritten.
    commit_file(&src, "later.txt", "later\n", "later");
    git(&src, &["push", "-q", &url, "main"]);
    assert!(!server
        .block_on(gitclaw_server::service::gc::auto_gc_due(
            &server.state,
            &repo
        ))
        .unwrap());
    let keys = server.stored_keys("ida", "import");
    assert!(
        keys.contains(pack_key)
            && keys.contains(&graph_key)
            && count(&keys, ".graph") == 1
            && loose(&keys) == 3,
        "{keys:?}"
    );
}

#[test]
fn automatic_compactions_take_turns_within_the_configured_number() {
    let server = Server::start_with(|c| {
        // Each first push of a whole history is recorded in the background.
        c.gc.loose_threshold = 0;
        c.gc.pack_threshold = 0;
        c.gc.closure_threshold = 20;
        c.gc.max_concurrent = 1;
    });
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    let names = ["first", "second"];
    let recorded = |name: &str| {
        let repo = server
            .block_on(server.state.meta.get_repo("turns", name))
            .unwrap()
            .unwrap();
        let packs = server
            .block_on(server.state.meta.list_packs(&repo.id))
            .unwrap();
        assert_eq!(packs.len(), 1, "{packs:?}");
        packs[0].graph_bytes.is_some()
    };
    let metrics = &server.state.metrics;
    let wait_until = |what: &str, done: &dyn Fn() -> bool| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while !done() {
            assert!(
                std::time::Instant::now() < deadline,
                "{what}: not after a minute"
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    };

    // The one turn is taken: both pushes' compactions wait for it.
    let turn = server
        .block_on(server.state.compaction_slots.acquire())
        .unwrap();
    for name in names {
        let url = server.create_repo("turns", name);
        push_everything(&src, &url);
    }
    wait_until("both compactions waiting", &|| {
        metrics.compactions_waiting.get() == 2
    });
    assert_eq!(metrics.compactions_running.get(), 0);
    for name in names {
        assert!(!recorded(name), "{name} recorded without a turn");
    }

    // Given back, the turn goes to one, then the other.
    drop(turn);
    let most_running = std::cell::Cell::new(0);
    let sample = || most_running.set(most_running.get().max(metrics.compactions_running.get()));
    wait_until("both recorded", &|| {
        sample();
        names.iter().all(|name| recorded(name))
    });
    wait_until("no compaction left", &|| {
        sample();
        metrics.compactions_running.get() == 0 && metrics.compactions_waiting.get() == 0
    });
    let most_running = most_running.get();
    assert!(most_running <= 1, "{most_running} compactions ran at once");
    for name in names {
        let clone = work.path().join(name);
        let (_, refs) = mirror_clone(&format!("{}/turns/{name}.git", server.url), &clone);
        assert_eq!(refs, refs_of(&src, "refs/"));
    }
}
