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

/// Renaming a default branch, as a user does it: the branch HEAD names cannot
/// be deleted by a push (as in git), so the new one is pushed, made the
/// default over the API, and then the old one deleted; a clone then checks
/// out the new one.
#[test]
fn the_default_branch_is_changed_over_the_api_and_only_then_deleted() {
    let server = Server::start();
    let url = server.create_repo("ren", "app");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    git(&src, &["init", "-q", "-b", "master"]);
    let tip = commit_file(&src, "a.txt", "one\n", "one");
    git(&src, &["push", "-q", &url, "master"]);
    git(&src, &["push", "-q", &url, "master:main"]);
    let head = |url: &str| git(&src, &["ls-remote", "--symref", url, "HEAD"]);
    assert!(
        head(&url).starts_with("ref: refs/heads/master\tHEAD"),
        "{}",
        head(&url)
    );

    let out = git_output(&src, &["push", &url, "--delete", "master"]);
    assert!(!out.status.success(), "deleting HEAD's branch is refused");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("deletion of the current branch prohibited"),
        "{said}"
    );
    assert!(remote_refs(&src, &url).contains(&format!("{tip} refs/heads/master")));

    for (body, code) in [
        (r#"{"default_branch":"nope"}"#, "NO_SUCH_BRANCH"),
        (r#"{"default_branch":"refs/tags/v1"}"#, "NO_SUCH_BRANCH"),
    ] {
        let (status, answer) = json(&server, "PATCH", "/api/v1/repos/ren/app", body);
        assert_eq!(
            (status, answer["code"].as_str()),
            (400, Some(code)),
            "{body}: {answer}"
        );
    }
    let (status, answer) = json(&server, "PATCH", "/api/v1/repos/ren/app", r#"{"head":"x"}"#);
    assert_eq!(
        (status, answer["code"].as_str()),
        (400, Some("BAD_REQUEST")),
        "unknown field: {answer}"
    );
    let (status, _) = json(
        &server,
        "PATCH",
        "/api/v1/repos/ren/none",
        r#"{"default_branch":"main"}"#,
    );
    assert_eq!(status, 404);
    assert!(
        head(&url).starts_with("ref: refs/heads/master\tHEAD"),
        "refusals change nothing"
    );

    let (status, answer) = json(
        &server,
        "PATCH",
        "/api/v1/repos/ren/app",
        r#"{"default_branch":"main"}"#,
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["default_branch"], "main");
    assert!(
        head(&url).starts_with("ref: refs/heads/main\tHEAD"),
        "{}",
        head(&url)
    );

    git(&src, &["push", "-q", &url, "--delete", "master"]);
    assert_eq!(
        remote_refs(&src, &url),
        vec![format!("{tip} refs/heads/main")]
    );
    let clone = work.path().join("clone");
    clone_checked(work.path(), &url, &clone);
    assert_eq!(
        git(&clone, &["symbolic-ref", "HEAD"]).trim(),
        "refs/heads/main"
    );

    let (_, audit) = json(&server, "GET", "/api/v1/repos/ren/app/audit", "");
    let update = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "repo.update")
        .expect("the change is audited");
    assert_eq!(update["details"]["head"]["old"], "refs/heads/master");
    assert_eq!(update["details"]["head"]["new"], "refs/heads/main");
}
