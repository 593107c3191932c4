//! Renaming and moving a repository (`PATCH /api/v1/repos/{owner}/{name}`
//! with `owner` and `name`): it keeps its history, tokens and audit log, git
//! URLs with the old name keep working until a repository takes that name,
//! and only an admin may do it.

mod common;

use common::*;

const ADMIN: &str = "rename-admin-0123456789";

fn with_token(url: &str, token: &str) -> String {
    url.replacen("http://", &format!("http://ci:{token}@"), 1)
}

fn token(server: &Server, scope: &str) -> String {
    let (status, body) = api_request(
        server,
        "POST",
        "/api/v1/tokens",
        Some(ADMIN),
        &format!(r#"{{"name":"t-{scope}","repos":[{{"repo":"acme/tool","access":"{scope}"}}]}}"#),
    );
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().unwrap().to_string()
}

#[test]
fn a_renamed_repository_keeps_its_history_tokens_and_old_urls() {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    let (status, _) = api_request(
        &server,
        "POST",
        "/api/v1/repos",
        Some(ADMIN),
        r#"{"owner":"acme","name":"tool","private":true}"#,
    );
    assert_eq!(status, 201);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 5);
    let old_url = format!("{}/acme/tool.git", server.url);
    push_everything(&src, &with_token(&old_url, ADMIN));
    let reader = token(&server, "read");
    let repo_admin = token(&server, "admin");

    // Only an admin gives names: a repository's own admin may not.
    let (status, body) = api_request(
        &server,
        "PATCH",
        "/api/v1/repos/acme/tool",
        Some(&repo_admin),
        r#"{"name":"tool2"}"#,
    );
    assert_eq!(status, 403, "{body}");
    // Names the server refuses, and a name another repository has.
    let (status, body) = api_request(
        &server,
        "PATCH",
        "/api/v1/repos/acme/tool",
        Some(ADMIN),
        r#"{"name":"..x"}"#,
    );
    assert_eq!((status, body["code"].as_str()), (400, Some("INVALID_NAME")));
    assert_eq!(
        api_request(
            &server,
            "POST",
            "/api/v1/repos",
            Some(ADMIN),
            r#"{"owner":"tools","name":"taken"}"#
        )
        .0,
        201
    );
    let (status, body) = api_request(
        &server,
        "PATCH",
        "/api/v1/repos/acme/tool",
        Some(ADMIN),
        r#"{"owner":"tools","name":"TAKEN","default_branch":"topic"}"#,
    );
    assert_eq!(
        (status, body["code"].as_str()),
        (409, Some("ALREADY_EXISTS"))
    );
    let (_, unchanged) = api_request(&server, "GET", "/api/v1/repos/acme/tool", Some(ADMIN), "");
    assert_eq!(
        unchanged["default_branch"], "main",
        "a refused rename changes nothing else either: {unchanged}"
    );

    // Moved and renamed.
    let (status, moved) = api_request(
        &server,
        "PATCH",
        "/api/v1/repos/acme/tool",
        Some(ADMIN),
        r#"{"owner":"tools","name":"Tool2"}"#,
    );
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["owner"], "tools");
    assert_eq!(moved["name"], "Tool2");
    let new_url = format!("{}/tools/Tool2.git", server.url);
    assert_eq!(moved["clone_url"], new_url.as_str());
    assert_eq!(
        api_request(&server, "GET", "/api/v1/repos/tools/Tool2", Some(ADMIN), "").0,
        200
    );
    assert_eq!(
        api_request(&server, "GET", "/api/v1/repos/acme/tool", Some(ADMIN), "").0,
        404,
        "the API answers to the new name only"
    );

    // The history, and the read token's access, came along; the old URL
    // still reads and writes it.
    let fresh = work.path().join("fresh");
    clone_checked(work.path(), &with_token(&new_url, &reader), &fresh);
    assert_eq!(refs_of(&fresh, "refs/tags"), refs_of(&src, "refs/tags"));
    assert_eq!(
        git(&fresh, &["rev-parse", "HEAD"]),
        git(&src, &["rev-parse", "main"])
    );
    assert_eq!(
        remote_refs(work.path(), &with_token(&old_url, &reader)),
        remote_refs(work.path(), &with_token(&new_url, &reader)),
    );
    let after = commit_file(&src, "moved.txt", "moved\n", "after the move");
    git(&src, &["push", "-q", &with_token(&old_url, ADMIN), "main"]);
    git(&fresh, &["pull", "-q", "--ff-only"]);
    assert_eq!(git(&fresh, &["rev-parse", "HEAD"]).trim(), after);

    // Audited under the repository.
    let (_, audit) = api_request(
        &server,
        "GET",
        "/api/v1/repos/tools/Tool2/audit",
        Some(ADMIN),
        "",
    );
    let rename = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "repo.rename")
        .unwrap_or_else(|| panic!("a repo.rename event: {audit}"));
    assert_eq!(rename["details"]["old"], "acme/tool");
    assert_eq!(rename["details"]["new"], "tools/Tool2");

    // A repository created under the old name takes it over.
    assert_eq!(
        api_request(
            &server,
            "POST",
            "/api/v1/repos",
            Some(ADMIN),
            r#"{"owner":"acme","name":"tool"}"#
        )
        .0,
        201
    );
    assert!(
        remote_refs(work.path(), &old_url).is_empty(),
        "the old URL now names the new, empty repository"
    );
    let renamed = remote_refs(work.path(), &with_token(&new_url, &reader));
    assert!(
        renamed.contains(&format!("{after} refs/heads/main")),
        "the renamed repository is untouched: {renamed:?}"
    );
}
