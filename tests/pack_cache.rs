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
            all_objects(&first),
            all_objects(&second),
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

/// `gitclaw_fetch_pack_sources_total` by source, from the server's `/metrics`.
fn pack_sources(server: &Server) -> std::collections::BTreeMap<String, u64> {
    let (status, body) = http(server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    String::from_utf8(body)
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("gitclaw_fetch_pack_sources_total{source=\""))
        .filter_map(|rest| {
            let (source, value) = rest.split_once("\"} ")?;
            Some((source.to_string(), value.parse::<f64>().ok()? as u64))
        })
        .collect()
}

#[test]
fn a_storm_of_identical_shallow_clones_generates_the_pack_once() {
    let pushed = Pushed::fixture("stan", "storm", 200);
    let work = pushed.work.path();
    // A commit just pushed: no cached pack or stored pack answers it yet.
    let tip = commit_file(&pushed.src, "new.txt", "just pushed\n", "just pushed");
    git(&pushed.src, &["push", "-q", &pushed.url, "main"]);
    let before = pack_sources(&pushed.server);

    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let clones: Vec<_> = (0..16)
        .map(|i| {
            let (url, dest) = (pushed.url.clone(), work.join(format!("storm{i}")));
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                barrier.wait();
                let out = git_output(
                    dest.parent().unwrap(),
                    &["clone", "-q", "--depth", "1", &url, dest.to_str().unwrap()],
                );
                (out, dest)
            })
        })
        .collect();
    for clone in clones {
        let (out, dest) = clone.join().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(git(&dest, &["rev-parse", "HEAD"]).trim(), tip);
        git(&dest, &["fsck", "--strict"]);
        assert_eq!(
            git(&dest, &["rev-list", "--count", "HEAD"]).trim(),
            "1",
            "depth 1"
        );
    }

    let after = pack_sources(&pushed.server);
    let delta = |source: &str| {
        after.get(source).copied().unwrap_or(0) - before.get(source).copied().unwrap_or(0)
    };
    eprintln!("pack sources after the storm: {after:?}");
    let generated = delta("walk") + delta("stored_and_walk");
    assert_eq!(generated, 1, "one generation for sixteen clones: {after:?}");
    assert_eq!(
        generated + delta("shared_generation") + delta("response_cache"),
        16,
        "the others shared it or read it from the cache: {after:?}"
    );
}
