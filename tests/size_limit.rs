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

const ADMIN: &str = "size-limit-admin-token";

/// A repository's own limit (`PATCH … {"max_bytes"}`, admin token only) is
/// kept over the server's, 0 lifts it, `null` gives the server's back.
fn own_limit_story(backend: Backend) {
    let (server, url) = server_with_repo(ADMIN, backend);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 2);
    push_everything(&src, &url);
    let patch = |token: &str, body: &str| {
        api_request(
            &server,
            "PATCH",
            "/api/v1/repos/acme/app",
            Some(token),
            body,
        )
    };
    // A quota is the operator's: the repository's own admins may not set it.
    let repo_admin = scoped_token(&server, ADMIN, "acme/app", "admin");
    let (status, _) = patch(&repo_admin, r#"{"max_bytes":1048576}"#);
    assert_eq!(status, 403);
    let (status, view) = patch(ADMIN, r#"{"max_bytes":10485760}"#);
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["max_bytes"], 10485760);
    let (_, view) = api_request(&server, "GET", "/api/v1/repos/acme/app", Some(ADMIN), "");
    assert_eq!(view["max_bytes"], 10485760);

    // The server has no limit; the repository's refuses 8 MiB more.
    random_file(&src.join("big.bin"), 8 << 20, 11);
    git(&src, &["add", "big.bin"]);
    git(&src, &["commit", "-q", "-m", "big"]);
    let before = remote_refs(work.path(), &url);
    let out = git_output(&src, &["push", "--porcelain", &url, "main"]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        said.contains("[remote rejected] (repository size limit: acme/app stores")
            && said.contains("of the 10.0 MiB allowed"),
        "{said}"
    );
    assert_eq!(remote_refs(work.path(), &url), before);

    // 0: none.
    let (status, view) = patch(ADMIN, r#"{"max_bytes":0}"#);
    assert_eq!((status, &view["max_bytes"]), (200, &serde_json::json!(0)));
    git(&src, &["push", "-q", &url, "main"]);
    // null: the server's again (none here).
    let (status, view) = patch(ADMIN, r#"{"max_bytes":null}"#);
    assert_eq!(status, 200);
    assert!(view.get("max_bytes").is_none(), "{view}");
    // Audited.
    let (_, audit) = api_request(
        &server,
        "GET",
        "/api/v1/repos/acme/app/audit",
        Some(ADMIN),
        "",
    );
    let updates = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "repo.update" && e["details"]["max_bytes"].is_object())
        .count();
    assert_eq!(updates, 3, "{audit}");
}

#[test]
fn a_repository_s_own_limit_is_kept_over_the_server_s() {
    own_limit_story(Backend::Embedded);
}

#[test]
fn a_repository_s_own_limit_is_kept_over_the_server_s_on_postgres() {
    own_limit_story(Backend::S3Postgres);
}
