//! End to end: stock `git` against a GitClaw server on the embedded default
//! (filesystem store + SQLite), over protocol v0 and v2.

mod common;

use std::path::Path;

use common::*;

/// Every protocol version on every backend setup.
fn combos() -> Vec<(Backend, &'static str)> {
    BACKENDS
        .into_iter()
        .flat_map(|b| ["0", "1", "2"].into_iter().map(move |v| (b, v)))
        .collect()
}

fn proto(v: &str) -> String {
    format!("protocol.version={v}")
}

/// Push everything of `src` to `url` (branches and tags).
fn push_all(src: &Path, url: &str, v: &str) {
    git(
        src,
        &[
            "-c",
            &proto(v),
            "push",
            "-q",
            url,
            "refs/heads/*:refs/heads/*",
            "refs/tags/*:refs/tags/*",
        ],
    );
}

#[test]
fn push_then_clone_gives_identical_refs_and_trees() {
    for (b, v) in combos() {
        let server = Server::start_on(b);
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 8);
        let url = server.create_repo("alice", &format!("history-v{v}"));
        push_all(&src, &url, v);

        // A mirror clone holds exactly the server's refs.
        let mirror = work.path().join("mirror.git");
        git(
            work.path(),
            &[
                "-c",
                &proto(v),
                "clone",
                "-q",
                "--mirror",
                &url,
                mirror.to_str().unwrap(),
            ],
        );
        assert_eq!(
            refs_of(&mirror, "refs/"),
            refs_of(&src, "refs/"),
            "{b:?} protocol v{v}"
        );
        git(&mirror, &["fsck", "--strict", "--no-dangling"]);

        // A working clone checks out main with every kind of entry intact.
        let clone = work.path().join("clone");
        git(
            work.path(),
            &[
                "-c",
                &proto(v),
                "clone",
                "-q",
                &url,
                clone.to_str().unwrap(),
            ],
        );
        assert_eq!(
            git(&clone, &["symbolic-ref", "HEAD"]).trim(),
            "refs/heads/main"
        );
        assert_eq!(
            git(&clone, &["rev-parse", "HEAD^{tree}"]),
            git(&src, &["rev-parse", "main^{tree}"]),
            "{b:?} protocol v{v}"
        );
        let meta = std::fs::symlink_metadata(clone.join("link-to-main")).unwrap();
        assert!(meta.file_type().is_symlink());
        use std::os::unix::fs::PermissionsExt;
        assert!(
            std::fs::metadata(clone.join("run.sh"))
                .unwrap()
                .permissions()
                .mode()
                & 0o111
                != 0
        );
        assert_eq!(
            std::fs::read(clone.join("big.bin")).unwrap(),
            std::fs::read(src.join("big.bin")).unwrap()
        );
        assert_eq!(
            std::fs::read_to_string(clone.join("docs/ünïcödé/straße.txt")).unwrap(),
            "grüße\n"
        );
        assert_eq!(std::fs::read(clone.join("empty.txt")).unwrap().len(), 0);
        git(&clone, &["fsck", "--strict"]);
    }
}

#[test]
fn incremental_push_and_fetch() {
    for (b, v) in combos() {
        let server = Server::start_on(b);
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 3);
        let url = server.create_repo("bob", "inc");
        push_all(&src, &url, v);
        let clone = work.path().join("clone");
        git(
            work.path(),
            &[
                "-c",
                &proto(v),
                "clone",
                "-q",
                &url,
                clone.to_str().unwrap(),
            ],
        );

        // A few objects (loose on the server), then many (a pack).
        let small = commit_file(&src, "small.txt", "small change\n", "small");
        git(&src, &["-c", &proto(v), "push", "-q", &url, "main"]);
        for i in 0..15 {
            std::fs::write(src.join(format!("many-{i}.txt")), format!("content {i}\n")).unwrap();
        }
        git(&src, &["add", "-A"]);
        git(&src, &["commit", "-q", "-m", "many files"]);
        let big = git(&src, &["rev-parse", "HEAD"]).trim().to_string();
        git(&src, &["-c", &proto(v), "push", "-q", &url, "main"]);

        git(&clone, &["-c", &proto(v), "fetch", "-q", "origin"]);
        assert_eq!(git(&clone, &["rev-parse", "origin/main"]).trim(), big);
        assert_eq!(git(&clone, &["rev-parse", "origin/main~1"]).trim(), small);
        git(&clone, &["fsck", "--strict"]);
        assert_eq!(remote_refs(&clone, &url), {
            let mut expected: Vec<String> = refs_of(&src, "refs/heads/")
                .into_iter()
                .chain(refs_of(&src, "refs/tags/"))
                .collect();
            // ls-remote also lists peeled tags.
            for tag in ["v1.0", "v1.0-signed-off"] {
                let peeled = git(&src, &["rev-parse", &format!("{tag}^{{}}")])
                    .trim()
                    .to_string();
                expected.push(format!("{peeled} refs/tags/{tag}^{{}}"));
            }
            expected.sort();
            expected
        });
    }
}

#[test]
fn negotiation_over_several_rounds() {
    for (b, v) in combos() {
        let server = Server::start_on(b);
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 2);
        let url = server.create_repo("nina", "rounds");
        push_all(&src, &url, v);
        let clone = work.path().join("clone");
        git(
            work.path(),
            &[
                "-c",
                &proto(v),
                "clone",
                "-q",
                &url,
                clone.to_str().unwrap(),
            ],
        );
        // Many local commits the server never saw make the client send haves in
        // several stateless rounds before it finds the common base.
        git(&clone, &["checkout", "-q", "-b", "local"]);
        for i in 0..120 {
            commit_file(
                &clone,
                "local.txt",
                &format!("local {i}\n"),
                &format!("local {i}"),
            );
        }
        let new = commit_file(&src, "upstream.txt", "upstream\n", "upstream");
        git(&src, &["-c", &proto(v), "push", "-q", &url, "main"]);
        let out = git_cmd(&clone)
            .args(["-c", &proto(v), "fetch", "origin"])
            .env("GIT_TRACE_PACKET", "1")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let trace = String::from_utf8_lossy(&out.stderr);
        let requests = trace.lines().filter(|l| l.contains("> have ")).count();
        assert!(
            requests > 32,
            "the client negotiated over several rounds (v{v}): {requests} haves"
        );
        assert_eq!(git(&clone, &["rev-parse", "origin/main"]).trim(), new);
        git(&clone, &["fsck", "--strict"]);
    }
}

#[test]
fn shallow_clone_and_deepen() {
    for (b, v) in combos() {
        let server = Server::start_on(b);
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 6);
        let url = server.create_repo("carol", "shallow");
        push_all(&src, &url, v);

        let clone = work.path().join("clone");
        git(
            work.path(),
            &[
                "-c",
                &proto(v),
                "clone",
                "-q",
                "--depth",
                "1",
                &url,
                clone.to_str().unwrap(),
            ],
        );
        assert_eq!(
            git(&clone, &["rev-list", "--count", "HEAD"]).trim(),
            "1",
            "{b:?} v{v}"
        );
        let head = git(&src, &["rev-parse", "main"]).trim().to_string();
        assert_eq!(
            std::fs::read_to_string(clone.join(".git/shallow"))
                .unwrap()
                .trim(),
            head
        );
        git(&clone, &["fsck", "--strict", "--no-dangling"]);

        git(&clone, &["-c", &proto(v), "fetch", "-q", "--deepen", "2"]);
        assert_eq!(
            git(&clone, &["rev-list", "--count", "HEAD"]).trim(),
            "3",
            "{b:?} v{v}"
        );
        let expected_shallow = git(&src, &["rev-parse", "main~2"]).trim().to_string();
        assert_eq!(
            std::fs::read_to_string(clone.join(".git/shallow"))
                .unwrap()
                .trim(),
            expected_shallow
        );

        git(&clone, &["-c", &proto(v), "fetch", "-q", "--unshallow"]);
        assert!(!clone.join(".git/shallow").exists());
        assert_eq!(
            git(&clone, &["rev-list", "--count", "HEAD"]),
            git(&src, &["rev-list", "--count", "main"])
        );
        git(&clone, &["fsck", "--strict"]);
    }
}

#[test]
fn branch_deletion_and_forced_non_fast_forward() {
    for (b, v) in combos() {
        let server = Server::start_on(b);
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 2);
        let url = server.create_repo("dave", "force");
        push_all(&src, &url, v);

        git(
            &src,
            &["-c", &proto(v), "push", "-q", &url, "--delete", "topic"],
        );
        assert!(!remote_refs(&src, &url)
            .iter()
            .any(|l| l.ends_with(" refs/heads/topic")));

        git(&src, &["reset", "-q", "--hard", "main~1"]);
        let rewritten = commit_file(&src, "rewrite.txt", "history rewritten\n", "rewrite");
        let refused = git_output(&src, &["-c", &proto(v), "push", &url, "main"]);
        assert!(
            !refused.status.success(),
            "a non-fast-forward push needs --force"
        );
        git(
            &src,
            &["-c", &proto(v), "push", "-q", "--force", &url, "main"],
        );
        assert!(remote_refs(&src, &url).contains(&format!("{rewritten} refs/heads/main")));
    }
}

#[test]
fn concurrent_pushes() {
    for b in BACKENDS {
        concurrent_pushes_on(b);
    }
}

fn concurrent_pushes_on(b: Backend) {
    let server = Server::start_on(b);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let url = server.create_repo("erin", "race");
    push_all(&src, &url, "0");
    let clone = |name: &str| {
        let dir = work.path().join(name);
        git(work.path(), &["clone", "-q", &url, dir.to_str().unwrap()]);
        dir
    };
    let (a, b) = (clone("a"), clone("b"));
    commit_file(&a, "a.txt", "from a\n", "a");
    commit_file(&b, "b.txt", "from b\n", "b");

    // Different branches: both land.
    std::thread::scope(|s| {
        let ha = s.spawn(|| git_output(&a, &["push", "-q", &url, "HEAD:refs/heads/from-a"]));
        let hb = s.spawn(|| git_output(&b, &["push", "-q", &url, "HEAD:refs/heads/from-b"]));
        assert!(ha.join().unwrap().status.success());
        assert!(hb.join().unwrap().status.success());
    });
    let refs = remote_refs(&a, &url);
    assert!(refs.iter().any(|l| l.ends_with(" refs/heads/from-a")));
    assert!(refs.iter().any(|l| l.ends_with(" refs/heads/from-b")));

    // The same branch from the same base: exactly one lands, the other is told why.
    let tip_a = git(&a, &["rev-parse", "HEAD"]).trim().to_string();
    let tip_b = git(&b, &["rev-parse", "HEAD"]).trim().to_string();
    let (ra, rb) = std::thread::scope(|s| {
        let ha = s.spawn(|| git_output(&a, &["push", &url, "HEAD:main"]));
        let hb = s.spawn(|| git_output(&b, &["push", &url, "HEAD:main"]));
        (ha.join().unwrap(), hb.join().unwrap())
    });
    assert_ne!(
        ra.status.success(),
        rb.status.success(),
        "exactly one push wins"
    );
    let (loser, winner_tip) = if ra.status.success() {
        (rb, tip_a)
    } else {
        (ra, tip_b)
    };
    let stderr = String::from_utf8_lossy(&loser.stderr);
    assert!(
        stderr.contains("rejected"),
        "the losing push is told why: {stderr}"
    );
    assert!(remote_refs(&a, &url).contains(&format!("{winner_tip} refs/heads/main")));
}

#[test]
fn atomic_push_with_one_failing_ref_moves_nothing() {
    for (b, v) in combos() {
        let server = Server::start_on(b);
        let work = tempfile::tempdir().unwrap();
        let src = work.path().join("src");
        fixture_repo(&src, 1);
        let url = server.create_repo("frank", "atomic");
        push_all(&src, &url, v);
        let before = remote_refs(&src, &url);

        commit_file(&src, "new.txt", "new\n", "new commit");
        // A tree cannot be a branch tip: the server refuses that ref.
        let out = git_output(
            &src,
            &[
                "-c",
                &proto(v),
                "push",
                "--atomic",
                &url,
                "main:main",
                "HEAD^{tree}:refs/heads/not-a-commit",
            ],
        );
        assert!(!out.status.success());
        assert_eq!(
            remote_refs(&src, &url),
            before,
            "an atomic push with a failing ref moves nothing"
        );

        // Without --atomic the good ref lands and the bad one is refused.
        let out = git_output(
            &src,
            &[
                "-c",
                &proto(v),
                "push",
                &url,
                "main:main",
                "HEAD^{tree}:refs/heads/not-a-commit",
            ],
        );
        assert!(!out.status.success());
        let after = remote_refs(&src, &url);
        let head = git(&src, &["rev-parse", "HEAD"]).trim().to_string();
        assert!(after.contains(&format!("{head} refs/heads/main")));
        assert!(!after.iter().any(|l| l.ends_with("refs/heads/not-a-commit")));
    }
}

#[test]
fn unknown_repository_is_reported_as_not_found() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    for v in ["0", "1", "2"] {
        let out = git_output(
            work.path(),
            &[
                "-c",
                &proto(v),
                "clone",
                &format!("{}/nobody/nothing.git", server.url),
                "x",
            ],
        );
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not found"), "{stderr}");
    }
    let src = work.path().join("src");
    fixture_repo(&src, 0);
    let out = git_output(
        &src,
        &[
            "push",
            &format!("{}/nobody/nothing.git", server.url),
            "main",
        ],
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[test]
fn empty_repository_clones_and_first_branch_becomes_head() {
    for (b, v) in combos() {
        let server = Server::start_on(b);
        let work = tempfile::tempdir().unwrap();
        let url = server.create_repo("gina", "empty");
        let clone = work.path().join("clone");
        let out = git_output(
            work.path(),
            &["-c", &proto(v), "clone", &url, clone.to_str().unwrap()],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );

        // The first branch pushed, when it is not main, becomes HEAD.
        git(&clone, &["checkout", "-q", "-b", "trunk"]);
        commit_file(&clone, "a.txt", "a\n", "first");
        git(&clone, &["-c", &proto(v), "push", "-q", "origin", "trunk"]);
        let again = work.path().join("again");
        git(
            work.path(),
            &[
                "-c",
                &proto(v),
                "clone",
                "-q",
                &url,
                again.to_str().unwrap(),
            ],
        );
        assert_eq!(
            git(&again, &["symbolic-ref", "HEAD"]).trim(),
            "refs/heads/trunk"
        );
    }
}

#[test]
fn clone_progress_names_the_delta_search_of_loose_objects() {
    let Pushed {
        server: _server,
        work,
        src,
        url,
    } = Pushed::fixture("bob", "progress", 3);
    // A small push is stored as loose objects: a clone searches deltas for its
    // trees and blobs (the packed ones are reused as they are).
    let before = git(&src, &["rev-parse", "main"]).trim().to_string();
    std::fs::create_dir_all(src.join("docs")).unwrap();
    commit_file(&src, "docs/notes.txt", "notes, first version\n", "notes");
    git(&src, &["push", "-q", &url, "main"]);
    let listed = git(&src, &["rev-list", "--objects", &format!("{before}..main")]);
    let mut searched = 0;
    for line in listed.lines() {
        let id = line.split(' ').next().unwrap();
        let kind = git(&src, &["cat-file", "-t", id]);
        searched += usize::from(matches!(kind.trim(), "tree" | "blob"));
    }
    assert!(
        searched >= 3,
        "a root tree, a docs tree and a blob: {listed}"
    );
    // The second clone asks for other refs: a repeated clone would be answered
    // from the pack cache, with no search at all.
    for (v, refs) in [("0", "--no-single-branch"), ("2", "--single-branch")] {
        let clone = work.path().join(format!("clone-v{v}"));
        let out = git_output(
            work.path(),
            &[
                "-c",
                &proto(v),
                "clone",
                "--progress",
                refs,
                &url,
                clone.to_str().unwrap(),
            ],
        );
        assert!(out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        // The loose objects are searched, and so are the stored whole objects
        // at their paths (the larger version of a file is the base, as in git):
        // the count is at least the loose ones, and the search completes.
        let counted = stderr
            .split("Compressing objects: 100% (")
            .nth(1)
            .and_then(|rest| rest.split_once("), done."))
            .and_then(|(count, _)| count.split_once('/'))
            .and_then(|(done, total)| (done == total).then(|| total.parse::<usize>().ok())?);
        assert!(
            counted.is_some_and(|n| n >= searched),
            "v{v}: no completed search of at least {searched} objects in\n{stderr}"
        );
        git(&clone, &["fsck", "--strict"]);
        assert_eq!(
            git(&clone, &["rev-parse", "HEAD"]),
            git(&src, &["rev-parse", "main"])
        );
    }
}

#[test]
fn pack_window_zero_turns_the_delta_search_off() {
    let Pushed {
        server: _server,
        work,
        src,
        url,
    } = Pushed::fixture_with(|c| c.pack_window = 0, "bob", "no-search", 3);
    // Loose objects, which a clone would search deltas for (see the test above).
    commit_file(&src, "notes.txt", "notes, first version\n", "notes");
    git(&src, &["push", "-q", &url, "main"]);
    let clone = work.path().join("clone");
    let out = git_output(
        work.path(),
        &["clone", "--progress", &url, clone.to_str().unwrap()],
    );
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("Compressing objects"), "{stderr}");
    assert!(stderr.contains("new deltas 0"), "{stderr}");
    git(&clone, &["fsck", "--strict"]);
    assert_eq!(
        git(&clone, &["rev-parse", "HEAD"]),
        git(&src, &["rev-parse", "main"])
    );
}

/// The tags a push brings are peeled when it commits (a tag of a tag down to
/// its commit): the next advertisement shows them peeled without reading them.
#[test]
fn a_pushed_tag_is_peeled_at_push_and_advertised_without_reading_it() {
    let server = ServerProcess::start(&[]);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 2);
    git(&src, &["tag", "-a", "-m", "one", "t1"]);
    git(&src, &["tag", "-a", "-m", "outer", "t1-outer", "t1"]);
    let head = git(&src, &["rev-parse", "main"]).trim().to_string();
    let url = server.create_repo("tess", "tags");
    let recorded = || {
        metric(
            server.addr,
            "gitclaw_db_operation_duration_seconds_count{operation=\"record_peeled\",outcome=\"ok\"}",
        )
    };
    git(&src, &["push", "-q", &url, "main", "t1", "t1-outer"]);
    assert_eq!(recorded(), 1.0, "the push recorded what its tags peel to");
    let listed = git(work.path(), &["ls-remote", &url, "refs/tags/*"]);
    for tag in ["t1", "t1-outer"] {
        assert!(
            listed.contains(&format!("{head}\trefs/tags/{tag}^{{}}\n")),
            "{tag} peeled to {head}: {listed}"
        );
    }
    assert_eq!(recorded(), 1.0, "the advertisement found every tag peeled");
}

/// A shallow clone (what CI checkouts make) pushes a new commit back: accepted
/// where the repository has the history below the clone's boundary, refused
/// with the reason where it has not (another repository), changing no ref.
#[test]
fn a_push_from_a_shallow_clone_is_taken_where_the_history_is_and_explained_where_not() {
    let server = Server::start();
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 4);
    let url = server.create_repo("ci", "app");
    git(&src, &["push", "-q", &url, "main"]);
    let clone = work.path().join("clone");
    git(
        work.path(),
        &["clone", "-q", "--depth", "1", &url, clone.to_str().unwrap()],
    );
    let new = commit_file(&clone, "ci.txt", "built\n", "from CI");
    git(&clone, &["push", "-q", &url, "HEAD:refs/heads/ci"]);
    assert!(remote_refs(&clone, &url).contains(&format!("{new} refs/heads/ci")));

    let other = server.create_repo("ci", "empty");
    let out = git_output(&clone, &["push", &other, "HEAD:main"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("shallow update not allowed") && said.contains("--unshallow"),
        "{said}"
    );
    assert!(remote_refs(&clone, &other).is_empty());
}
