//! Ref updates through the API, without a push: each a compare-and-swap,
//! checked, protected and audited as `git push` of the same refs is; what
//! `git ls-remote` then shows is what was asked.

mod common;

use std::path::Path;

use common::*;

const ADMIN: &str = "ref-updates-admin-token";

/// The refs `git ls-remote` shows, by name.
fn refs_by_name(work: &Path, url: &str) -> std::collections::BTreeMap<String, String> {
    git(work, &["ls-remote", url])
        .lines()
        .map(|line| {
            let (id, name) = line.split_once('\t').unwrap();
            (name.to_string(), id.to_string())
        })
        .collect()
}

fn ref_updates_story(backend: Backend) {
    let (server, url) = server_with_repo(ADMIN, backend);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    push_everything(&src, &url);
    let writer = scoped_token(&server, ADMIN, "acme/app", "write");
    let reader = scoped_token(&server, ADMIN, "acme/app", "read");
    let update = |token: Option<&str>, body: serde_json::Value| {
        api_request(
            &server,
            "POST",
            "/api/v1/repos/acme/app/refs",
            token,
            &body.to_string(),
        )
    };
    let rev = |revision: &str| git_commit_of(&src, revision).unwrap();
    let before = refs_by_name(work.path(), &url);

    // Who may push may update refs; a reader or a stranger may not.
    let tag = serde_json::json!({"updates": [{"name": "refs/tags/api-v1", "new": "main~1"}]});
    let (status, _) = update(Some(&reader), tag.clone());
    assert_eq!(status, 403);
    let (status, _) = update(None, tag.clone());
    assert_eq!(status, 401);
    assert_eq!(refs_by_name(work.path(), &url), before, "nothing changed");

    // A tag at a revision.
    let (status, got) = update(Some(&writer), tag);
    assert_eq!(status, 200, "{got}");
    assert_eq!(
        got["results"],
        serde_json::json!([{"name": "refs/tags/api-v1", "ok": true}])
    );
    let mut expected = before.clone();
    expected.insert("refs/tags/api-v1".into(), rev("main~1"));
    assert_eq!(refs_by_name(work.path(), &url), expected);

    // A stale old value moves nothing.
    let topic = rev("topic");
    let (status, got) = update(
        Some(&writer),
        serde_json::json!({"updates": [{"name": "refs/heads/topic", "old": rev("main"), "new": rev("main~2")}]}),
    );
    assert_eq!(status, 409, "{got}");
    assert_eq!(got["code"], "REF_UPDATE_REJECTED");
    assert_eq!(got["results"][0]["reason"], "stale info");
    assert_eq!(refs_by_name(work.path(), &url), expected);

    // The right old value moves it, and a clone sees it.
    let (status, got) = update(
        Some(&writer),
        serde_json::json!({"updates": [{"name": "refs/heads/topic", "old": topic, "new": rev("main~2")}]}),
    );
    assert_eq!(status, 200, "{got}");
    expected.insert("refs/heads/topic".into(), rev("main~2"));
    assert_eq!(refs_by_name(work.path(), &url), expected);
    let clone = work.path().join("clone");
    git(
        work.path(),
        &["clone", "-q", "--mirror", &url, clone.to_str().unwrap()],
    );
    assert_eq!(
        git(&clone, &["rev-parse", "refs/heads/topic"]).trim(),
        rev("main~2")
    );
    git(&clone, &["fsck", "--strict", "--no-progress"]);

    // Atomic: one stale update and nothing is made.
    let (status, got) = update(
        Some(&writer),
        serde_json::json!({"atomic": true, "updates": [
            {"name": "refs/heads/new-branch", "new": rev("main")},
            {"name": "refs/heads/topic", "old": topic, "new": rev("main")},
        ]}),
    );
    assert_eq!(status, 409, "{got}");
    assert_eq!(got["results"][0]["ok"], false);
    assert_eq!(got["results"][1]["reason"], "stale info");
    assert_eq!(refs_by_name(work.path(), &url), expected);
    // Not atomic: the good one is made, the stale one not.
    let (status, got) = update(
        Some(&writer),
        serde_json::json!({"updates": [
            {"name": "refs/heads/new-branch", "new": rev("main")},
            {"name": "refs/heads/topic", "old": topic, "new": rev("main")},
        ]}),
    );
    assert_eq!(status, 409, "{got}");
    assert_eq!(
        got["results"][0],
        serde_json::json!({"name": "refs/heads/new-branch", "ok": true})
    );
    expected.insert("refs/heads/new-branch".into(), rev("main"));
    assert_eq!(refs_by_name(work.path(), &url), expected);

    // A deletion.
    let (status, got) = update(
        Some(&writer),
        serde_json::json!({"updates": [{"name": "refs/heads/new-branch", "old": rev("main")}]}),
    );
    assert_eq!(status, 200, "{got}");
    expected.remove("refs/heads/new-branch");
    assert_eq!(refs_by_name(work.path(), &url), expected);

    // What a push could not do either: a name git refuses, an object the
    // repository lacks, a tree as a branch.
    let tree = git(&src, &["rev-parse", "main^{tree}"]).trim().to_string();
    for (name, new) in [
        ("refs/heads/a..b", rev("main")),
        ("HEAD", rev("main")),
        ("refs/heads/ghost", "1".repeat(40)),
        ("refs/heads/a-tree", tree),
    ] {
        let (status, got) = update(
            Some(&writer),
            serde_json::json!({"updates": [{"name": name, "new": new}]}),
        );
        assert_eq!(status, 409, "{name}: {got}");
        assert_eq!(got["results"][0]["ok"], false, "{name}: {got}");
    }
    assert_eq!(refs_by_name(work.path(), &url), expected);
    // Bad requests.
    for (body, status) in [
        (serde_json::json!({"updates": []}), 400),
        (
            serde_json::json!({"updates": [{"name": "refs/heads/x", "old": "zz", "new": "main"}]}),
            400,
        ),
        (
            serde_json::json!({"updates": [{"name": "refs/heads/x", "new": "no-such-branch"}]}),
            404,
        ),
        (
            serde_json::json!({"updates": [{"name": "refs/heads/x", "new": "main", "extra": 1}]}),
            400,
        ),
    ] {
        let (got, answer) = update(Some(&writer), body.clone());
        assert_eq!(got, status, "{body}: {answer}");
    }
    assert_eq!(refs_by_name(work.path(), &url), expected);

    // Protected refs bind these updates as they bind pushes.
    let (status, _) = api_request(
        &server,
        "POST",
        "/api/v1/repos/acme/app/protected-refs",
        Some(ADMIN),
        r#"{"pattern":"refs/heads/main"}"#,
    );
    assert_eq!(status, 201);
    let (status, got) = update(
        Some(&writer),
        serde_json::json!({"updates": [{"name": "refs/heads/main", "old": rev("main"), "new": rev("main~1")}]}),
    );
    assert_eq!(status, 409, "{got}");
    let reason = got["results"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("protected"), "{reason}");
    assert_eq!(refs_by_name(work.path(), &url), expected);

    // Audited as pushes, with the token's name.
    let events = server
        .block_on(server.state.meta.list_audit(None, None, 100))
        .unwrap();
    let pushes = events
        .iter()
        .filter(|e| e.action == "push" && e.actor.starts_with("token:"))
        .count();
    assert!(pushes >= 4, "{pushes} pushes audited by the token");
}

#[test]
fn refs_are_updated_as_a_push_would() {
    ref_updates_story(Backend::Embedded);
}

#[test]
fn refs_are_updated_as_a_push_would_on_postgres() {
    ref_updates_story(Backend::S3Postgres);
}
