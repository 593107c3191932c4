//! Repeated identical clones (what CI systems do) are answered from the pack the
//! first one produced: full, shallow and partial clones alike, byte-identical and
//! valid, never stale after a push, and not at all when the cache is off.

mod common;

use std::path::Path;

use common::*;

fn clone(work: &Path, name: &str, url: &str, extra: &[&str]) -> (String, std::path::PathBuf) {
    let dir = work.join(name);
    let mut args = vec!["clone", "--progress", "--bare"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&[url, dir.to_str().unwrap()]);
    let out = git_output(work, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(&dir, &["fsck", "--connectivity-only"]);
    (String::from_utf8_lossy(&out.stderr).into_owned(), dir)
}

fn objects(dir: &Path) -> Vec<String> {
    let mut all: Vec<String> = git(
        dir,
        &[
            "cat-file",
            "--batch-all-objects",
            "--batch-check=%(objectname) %(objecttype)",
        ],
    )
    .lines()
    .map(str::to_string)
    .collect();
    all.sort();
    all
}

#[test]
fn repeated_clones_are_answered_from_the_cached_pack() {
    let Pushed {
        server: _server,
        work,
        src,
        url,
    } = Pushed::fixture("cara", "cached", 3);
    // Two pushes' worth of packs: no single stored pack answers a clone.
    commit_file(&src, "extra.txt", "extra\n", "extra");
    git(&src, &["push", "-q", &url, "main"]);

    let mut n = 0;
    for shape in [&["--depth", "1"][..], &["--filter=blob:none"][..], &[][..]] {
        n += 1;
        let (first_progress, first) = clone(work.path(), &format!("a{n}"), &url, shape);
        let (second_progress, second) = clone(work.path(), &format!("b{n}"), &url, shape);
        assert!(
            !first_progress.contains("Reusing a cached pack"),
            "{shape:?}: the first clone walks: {first_progress}"
        );
        assert!(
            second_progress.contains("Reusing a cached pack"),
            "{shape:?}: the second is answered from the cache: {second_progress}"
        );
        assert_eq!(
            objects(&first),
            objects(&second),
            "{shape:?}: the same objects"
        );
        assert_eq!(refs_of(&first, "refs/"), refs_of(&second, "refs/"));
        if shape.is_empty() {
            git(&second, &["fsck", "--strict"]);
        }
    }

    // A push moves main: the next clone wants other commits and gets them.
    let tip = commit_file(&src, "after.txt", "after\n", "after");
    git(&src, &["push", "-q", &url, "main"]);
    let (progress, fresh) = clone(work.path(), "after", &url, &["--depth", "1"]);
    assert!(!progress.contains("Reusing a cached pack"), "{progress}");
    assert_eq!(git(&fresh, &["rev-parse", "main"]).trim(), tip);
}

#[test]
fn the_cache_can_be_turned_off() {
    let server = Server::start_with(|c| c.response_cache_bytes = 0);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let url = server.create_repo("otto", "nocache");
    git(&src, &["push", "-q", &url, "main"]);
    for name in ["one", "two"] {
        let (progress, _) = clone(work.path(), name, &url, &["--depth", "1"]);
        assert!(!progress.contains("Reusing a cached pack"), "{progress}");
    }
}
