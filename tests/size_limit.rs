//! `GITCLAW_MAX_REPO_BYTES`: a push that would take a repository's objects
//! past the limit is refused whole and leaves every ref and the store as
//! they were; pushes that bring no objects go through even past it, so a
//! repository over its limit can still be cut down.

mod common;

use common::*;

fn random_file(path: &std::path::Path, bytes: usize, seed: u64) {
    let mut state = seed | 1;
    let data: Vec<u8> = (0..bytes)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state as u8
        })
        .collect();
    std::fs::write(path, data).unwrap();
}

fn stored_bytes(server: &ServerProcess) -> u64 {
    let (status, body) = http(server.addr, "GET", "/api/v1/repos/acme/app/stats", &[], b"");
    assert_eq!(status, 200);
    let stats: serde_json::Value = serde_json::from_slice(&body).unwrap();
    stats["stored_bytes"].as_u64().unwrap()
}

#[test]
fn pushes_past_the_size_limit_are_refused_and_change_nothing() {
    let limit = |bytes: &str| vec![("GITCLAW_MAX_REPO_BYTES", bytes.to_string())];
    let mut server = ServerProcess::start(&limit("10M"));
    let url = server.create_repo("acme", "app");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 2);
    push_everything(&src, &url);
    let before = remote_refs(work.path(), &url);
    let stored = stored_bytes(&server);
    assert!(stored > 0 && stored < 10 << 20, "{stored}");

    // 8 MB that does not compress: past the limit, refused whole.
    random_file(&src.join("big.bin"), 8 << 20, 7);
    git(&src, &["add", "big.bin"]);
    git(&src, &["commit", "-q", "-m", "big"]);
    git(&src, &["branch", "also"]);
    let out = git_output(&src, &["push", "--porcelain", &url, "main", "also"]);
    assert!(!out.status.success());
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for branch in ["main", "also"] {
        assert!(
            said.contains(&format!(
                "refs/heads/{branch}\t[remote rejected] (repository size limit: acme/app stores"
            )),
            "{said}"
        );
    }
    assert!(
        said.contains("of the 10.0 MiB allowed, and this push adds 8.0 MiB"),
        "{said}"
    );
    assert_eq!(remote_refs(work.path(), &url), before, "no ref moved");
    assert_eq!(stored_bytes(&server), stored, "nothing stored");

    // Now the repository is over a smaller limit: what brings no objects
    // still goes through; what brings any does not.
    server.restart_with_env(&limit("1K"));
    let older = git(&src, &["rev-parse", "main~1"]).trim().to_string();
    let out = git_output(&src, &["push", &url, &format!("{older}:refs/heads/old")]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = git_output(&src, &["push", &url, "--delete", "topic"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(&src, &["reset", "-q", "--hard", "HEAD~1"]);
    commit_file(&src, "small.txt", "small\n", "small");
    let out = git_output(&src, &["push", &url, "main"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("repository size limit"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Without a limit the same push goes through.
    server.restart_with_env(&[]);
    let out = git_output(&src, &["push", &url, "main"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let refs = remote_refs(work.path(), &url);
    assert!(
        refs.iter().any(|r| r.ends_with("refs/heads/old")),
        "{refs:?}"
    );
    assert!(
        !refs.iter().any(|r| r.ends_with("refs/heads/topic")),
        "{refs:?}"
    );
}
