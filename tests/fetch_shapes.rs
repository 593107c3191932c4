//! The fetch shapes CI systems use: partial clones and their lazy fetches, fetch
//! of a commit by SHA, shallow by date and by excluded ref.

mod common;

use common::*;

fn setup(name: &str) -> Pushed {
    Pushed::fixture("shapes", name, 10)
}

fn missing_objects(dir: &std::path::Path) -> usize {
    git(dir, &["rev-list", "--objects", "--missing=print", "--all"])
        .lines()
        .filter(|l| l.starts_with('?'))
        .count()
}

#[test]
fn partial_clones_and_lazy_fetches() {
    for v in ["0", "2"] {
        let s = setup(&format!("partial-v{v}"));
        for spec in ["blob:none", "blob:limit=1k", "tree:0"] {
            let dir = s
                .work
                .path()
                .join(format!("clone-{v}-{}", spec.replace([':', '='], "-")));
            git(
                s.work.path(),
                &[
                    "-c",
                    &format!("protocol.version={v}"),
                    "clone",
                    "-q",
                    &format!("--filter={spec}"),
                    &s.url,
                    dir.to_str().unwrap(),
                ],
            );
            assert!(
                missing_objects(&dir) > 0,
                "{spec} v{v}: the clone is partial"
            );
            assert_eq!(
                git(&dir, &["rev-parse", "HEAD^{tree}"]),
                git(&s.src, &["rev-parse", "main^{tree}"])
            );
            // Lazy fetches of what an old checkout needs.
            git(
                &dir,
                &[
                    "-c",
                    &format!("protocol.version={v}"),
                    "checkout",
                    "-q",
                    "main~5",
                ],
            );
            assert_eq!(
                std::fs::read(dir.join("history.txt")).unwrap(),
                git(&s.src, &["show", "main~5:history.txt"]).into_bytes(),
                "{spec} v{v}"
            );
            git(&dir, &["fsck"]);
        }
    }
}

/// What git says on its standard error when `git clone --bare ARG` over
/// protocol `v` fails (it must fail).
fn refused_clone(s: &Pushed, v: &str, arg: &str) -> String {
    let dir = s.work.path().join(format!("refused-{v}-{}", arg.len()));
    let out = git_output(
        s.work.path(),
        &[
            "-c",
            &format!("protocol.version={v}"),
            "clone",
            "-q",
            "--bare",
            arg,
            &s.url,
            dir.to_str().unwrap(),
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{arg} v{v}: {said}");
    said
}

/// A filter GitClaw does not serve is refused before anything else is
/// answered: git then says "remote error:" and why, as it does when C git's
/// upload-pack does not allow a filter, instead of reporting a broken pack.
#[test]
fn a_filter_not_served_is_a_remote_error() {
    let s = setup("unknown-filter");
    for v in ["0", "2"] {
        // Alone, and inside a combination (refused by the part GitClaw does not know).
        let sparse = "sparse:oid=main:README.md";
        for arg in [sparse.to_string(), format!("combine:blob:none+{sparse}")] {
            let said = refused_clone(&s, v, &format!("--filter={arg}"));
            assert!(
                said.contains(&format!(
                    "fatal: remote error: upload-pack: unsupported filter-spec '{sparse}'"
                )),
                "{arg} v{v}: {said}"
            );
            let spec = &arg;
            for broken in ["early EOF", "index-pack", "bad pack header"] {
                assert!(!said.contains(broken), "{spec} v{v}: {said}");
            }
        }
    }
    // The refusal changed nothing: the same clone without the filter works.
    clone_checked(s.work.path(), &s.url, &s.work.path().join("whole"));
}

/// A shallow boundary that cuts every commit, or at a ref that does not
/// exist, is refused with git's words, on both protocol versions.
#[test]
fn a_shallow_boundary_that_selects_nothing_is_a_remote_error() {
    let s = setup("empty-boundary");
    for v in ["0", "2"] {
        for (arg, why) in [
            (
                "--shallow-since=@4000000000",
                "no commits selected for shallow requests",
            ),
            (
                "--shallow-exclude=no-such-ref",
                "ambiguous deepen-not: no-such-ref",
            ),
        ] {
            let said = refused_clone(&s, v, arg);
            assert!(
                said.contains(&format!("fatal: remote error: upload-pack: {why}\n")),
                "{arg} v{v}: {said}"
            );
        }
    }
}

/// `git fetch --negotiate-only`, which `git push` runs with
/// `push.negotiate`: a v2 fetch with haves, no wants and `wait-for-done`
/// is answered with the acknowledgments alone.
#[test]
fn negotiation_without_a_fetch() {
    let s = setup("negotiate-only");
    let dir = s.work.path().join("clone");
    clone_checked(s.work.path(), &s.url, &dir);
    let base = git(&dir, &["rev-parse", "HEAD"]).trim().to_string();
    commit_file(&dir, "local.txt", "only here\n", "local");
    let out = git_output(
        &dir,
        &[
            "-c",
            "protocol.version=2",
            "fetch",
            "--negotiate-only",
            "--negotiation-tip=HEAD",
            "origin",
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    // The server has the clone's base, not its new commit.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), base, "{said}");

    let out = git_output(
        &dir,
        &[
            "-c",
            "push.negotiate=true",
            "push",
            "origin",
            "HEAD:refs/heads/negotiated",
        ],
    );
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(!said.contains("negotiation failed"), "{said}");
    let head = git(&dir, &["rev-parse", "HEAD"]).trim().to_string();
    assert!(
        remote_refs(&dir, &s.url).contains(&format!("{head} refs/heads/negotiated")),
        "the push landed"
    );
}

#[test]
fn fetch_of_a_reachable_commit_by_sha() {
    let s = setup("by-sha");
    let target = git(&s.src, &["rev-parse", "main~4"]).trim().to_string();
    for v in ["0", "2"] {
        let dir = s.work.path().join(format!("ci-{v}"));
        std::fs::create_dir_all(&dir).unwrap();
        git(&dir, &["init", "-q"]);
        git(
            &dir,
            &[
                "-c",
                &format!("protocol.version={v}"),
                "fetch",
                "-q",
                "--depth=1",
                &s.url,
                &target,
            ],
        );
        assert_eq!(git(&dir, &["rev-parse", "FETCH_HEAD"]).trim(), target);
        assert_eq!(
            git(&dir, &["rev-list", "--count", "FETCH_HEAD"]).trim(),
            "1"
        );
        git(&dir, &["fsck", "--strict", "--no-dangling"]);

        // Unknown: refused.
        let unknown = "0123456789abcdef0123456789abcdef01234567";
        let out = git_output(
            &dir,
            &[
                "-c",
                &format!("protocol.version={v}"),
                "fetch",
                "--depth=1",
                &s.url,
                unknown,
            ],
        );
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not our ref"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // Unreachable: a branch pushed, then deleted, leaves its commit stored but unreachable.
    git(&s.src, &["checkout", "-q", "-b", "doomed"]);
    let doomed = commit_file(&s.src, "doomed.txt", "soon gone\n", "doomed");
    git(&s.src, &["push", "-q", &s.url, "doomed"]);
    git(&s.src, &["push", "-q", &s.url, "--delete", "doomed"]);
    let dir = s.work.path().join("ci-unreachable");
    std::fs::create_dir_all(&dir).unwrap();
    git(&dir, &["init", "-q"]);
    let out = git_output(&dir, &["fetch", "--depth=1", &s.url, &doomed]);
    assert!(!out.status.success(), "an unreachable commit is not served");
    assert!(String::from_utf8_lossy(&out.stderr).contains("not our ref"));
    let _ = &s.server;
}

#[test]
fn shallow_since_and_shallow_exclude() {
    let s = setup("since");
    for v in ["0", "2"] {
        // The fixture's commits are one minute apart from 1700000000.
        let cut = git(&s.src, &["log", "-1", "--format=%ct", "main~3"])
            .trim()
            .to_string();
        let dir = s.work.path().join(format!("since-{v}"));
        git(
            s.work.path(),
            &[
                "-c",
                &format!("protocol.version={v}"),
                "clone",
                "-q",
                &format!("--shallow-since=@{cut}"),
                "--single-branch",
                &s.url,
                dir.to_str().unwrap(),
            ],
        );
        let expected = git(
            &s.src,
            &["rev-list", "--count", &format!("--since=@{cut}"), "main"],
        );
        assert_eq!(
            git(&dir, &["rev-list", "--count", "HEAD"]),
            expected,
            "v{v}"
        );
        git(&dir, &["fsck", "--strict", "--no-dangling"]);

        let dir = s.work.path().join(format!("exclude-{v}"));
        git(
            s.work.path(),
            &[
                "-c",
                &format!("protocol.version={v}"),
                "clone",
                "-q",
                "--shallow-exclude=v1.0",
                "--single-branch",
                &s.url,
                dir.to_str().unwrap(),
            ],
        );
        let expected = git(&s.src, &["rev-list", "--count", "main", "--not", "v1.0"]);
        assert_eq!(
            git(&dir, &["rev-list", "--count", "HEAD"]),
            expected,
            "v{v}"
        );
    }
}
