//! Repository lifecycle over the REST API: create, list, get, stats, fork, delete,
//! audit — and bad input on every route.

mod common;

use common::*;
use serde_json::Value;

fn json(server: &Server, method: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, bytes) = http(
        server.addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.as_bytes(),
    );
    let value = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    (status, value)
}

#[test]
fn create_list_get_stats_and_bad_input() {
    let server = Server::start();
    for i in 0..5 {
        server.create_repo("lena", &format!("r{i}"));
    }
    let (status, dup) = json(
        &server,
        "POST",
        "/api/v1/repos",
        r#"{"owner":"lena","name":"r0"}"#,
    );
    assert_eq!(
        (status, dup["code"].as_str()),
        (409, Some("ALREADY_EXISTS"))
    );

    // Pagination walks every repository once.
    let mut seen = Vec::new();
    let mut path = "/api/v1/repos?limit=2".to_string();
    loop {
        let (status, page) = json(&server, "GET", &path, "");
        assert_eq!(status, 200);
        for repo in page["repos"].as_array().unwrap() {
            seen.push(repo["name"].as_str().unwrap().to_string());
        }
        match page["next"].as_str() {
            Some(next) => path = format!("/api/v1/repos?limit=2&after={next}"),
            None => break,
        }
    }
    assert_eq!(seen, ["r0", "r1", "r2", "r3", "r4"]);

    let (status, repo) = json(&server, "GET", "/api/v1/repos/lena/r1", "");
    assert_eq!(status, 200);
    assert_eq!(
        repo["clone_url"].as_str().unwrap(),
        format!("{}/lena/r1.git", server.url)
    );

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 2);
    git(
        &src,
        &["push", "-q", &format!("{}/lena/r1.git", server.url), "main"],
    );
    let (status, stats) = json(&server, "GET", "/api/v1/repos/lena/r1/stats", "");
    assert_eq!(status, 200);
    let expected = git(&src, &["rev-list", "--objects", "main"])
        .lines()
        .count() as u64;
    assert_eq!(stats["object_count"].as_u64(), Some(expected), "{stats}");
    assert!(stats["stored_bytes"].as_u64().unwrap() > 0);

    for (method, path, body, code) in [
        ("POST", "/api/v1/repos", "{not json", 400),
        ("POST", "/api/v1/repos", r#"{"owner":"a"}"#, 400),
        (
            "POST",
            "/api/v1/repos",
            r#"{"owner":"a","name":"../x"}"#,
            400,
        ),
        ("POST", "/api/v1/repos", r#"{"owner":".a","name":"x"}"#, 400),
        (
            "POST",
            "/api/v1/repos",
            r#"{"owner":"a","name":"x","extra":1}"#,
            400,
        ),
        ("GET", "/api/v1/repos/nobody/nothing", "", 404),
        ("GET", "/api/v1/repos/bad..name/x", "", 400),
        ("DELETE", "/api/v1/repos/nobody/nothing", "", 404),
        (
            "POST",
            "/api/v1/repos/nobody/nothing/fork",
            r#"{"owner":"a","name":"b"}"#,
            404,
        ),
        (
            "POST",
            "/api/v1/repos/lena/r1/fork",
            r#"{"owner":"a"}"#,
            400,
        ),
        ("GET", "/api/v1/repos/nobody/nothing/stats", "", 404),
        ("GET", "/api/v1/repos?limit=x", "", 400),
    ] {
        let (status, err) = json(&server, method, path, body);
        assert_eq!(status, code, "{method} {path} {body}: {err}");
        assert!(
            err["code"].is_string() && err["message"].is_string(),
            "{method} {path}: errors are {{code, message}}: {err}"
        );
    }
}

#[test]
fn fork_and_delete_keep_repositories_apart() {
    for backend in BACKENDS {
        fork_and_delete_on(backend);
    }
}

fn fork_and_delete_on(backend: Backend) {
    let server = Server::start_on(backend);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    let url = server.create_repo("mona", "origin");
    push_everything(&src, &url);
    commit_file(&src, "loose.txt", "a loose object\n", "small push");
    git(&src, &["push", "-q", &url, "main"]);

    let (status, fork) = json(
        &server,
        "POST",
        "/api/v1/repos/mona/origin/fork",
        r#"{"owner":"nick","name":"copy"}"#,
    );
    assert_eq!(status, 201, "{fork}");
    let fork_url = fork["clone_url"].as_str().unwrap().to_string();
    // The fork has exactly the source's objects and refs.
    let strip = |keys: Vec<String>| -> Vec<String> {
        keys.into_iter()
            .map(|k| k.split_once('/').unwrap().1.to_string())
            .collect()
    };
    assert_eq!(
        strip(server.stored_keys("nick", "copy")),
        strip(server.stored_keys("mona", "origin"))
    );
    assert_eq!(remote_refs(&src, &fork_url), remote_refs(&src, &url));
    let (status, _) = json(
        &server,
        "POST",
        "/api/v1/repos/mona/origin/fork",
        r#"{"owner":"nick","name":"copy"}"#,
    );
    assert_eq!(status, 409);

    // They live apart: a push to the fork leaves the source alone.
    let source_refs = remote_refs(&src, &url);
    commit_file(&src, "fork-only.txt", "only in the fork\n", "fork only");
    git(&src, &["push", "-q", &fork_url, "main"]);
    assert_eq!(remote_refs(&src, &url), source_refs);

    // Deleting the source: gone from the API and git at once, every key gone,
    // and the fork stays whole.
    let origin_id = gitclaw_storage::RepoId::new(server.repo_id("mona", "origin")).unwrap();
    let (status, _) = json(&server, "DELETE", "/api/v1/repos/mona/origin", "");
    assert_eq!(status, 204);
    assert_eq!(json(&server, "GET", "/api/v1/repos/mona/origin", "").0, 404);
    let out = git_output(work.path(), &["ls-remote", &url]);
    assert!(!out.status.success());
    assert!(
        server
            .block_on(server.state.store.list(&origin_id.prefix()))
            .unwrap()
            .is_empty(),
        "no key remains under the deleted repository's prefix ({backend:?})"
    );
    assert!(
        !server.stored_keys("nick", "copy").is_empty(),
        "the fork's keys remain"
    );
    let clone = work.path().join("fork-clone");
    git(
        work.path(),
        &["clone", "-q", &fork_url, clone.to_str().unwrap()],
    );
    git(&clone, &["fsck", "--strict"]);
    assert_eq!(
        git(&clone, &["rev-parse", "HEAD"]),
        git(&src, &["rev-parse", "HEAD"])
    );

    // Audit: create, push, fork and delete are on the record.
    let (status, audit) = json(&server, "GET", "/api/v1/repos/nick/copy/audit", "");
    assert_eq!(status, 200);
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert!(
        actions.contains(&"push") && actions.contains(&"repo.fork"),
        "{actions:?}"
    );
    let events = server
        .block_on(server.state.meta.list_audit(None, None, 100))
        .unwrap();
    let all: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    for action in ["repo.create", "push", "repo.fork", "repo.delete"] {
        assert!(all.contains(&action), "{action} is audited: {all:?}");
    }
}
