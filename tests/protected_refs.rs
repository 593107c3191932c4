//! Protected refs: rules a repository's admins set, under which a real `git
//! push` may neither force-push nor delete the refs a pattern names (unless
//! the rule allows it), told why with the rule's pattern, while every other
//! ref takes any push.

mod common;

use std::path::Path;

use common::*;

const ADMIN: &str = "protect-admin-0123456789";
const ZERO: &str = "0000000000000000000000000000000000000000";

fn protect(server: &Server, token: &str, body: &str) -> (u16, serde_json::Value) {
    api_request(
        server,
        "POST",
        "/api/v1/repos/acme/app/protected-refs",
        Some(token),
        body,
    )
}

/// The server's value of `name`, or zeros.
fn remote(dir: &Path, url: &str, name: &str) -> String {
    git(dir, &["ls-remote", url, name])
        .split_whitespace()
        .next()
        .unwrap_or(ZERO)
        .to_string()
}

/// A push git reports refused, with what it said.
fn refused_push(dir: &Path, args: &[&str]) -> String {
    let mut full = vec!["push"];
    full.extend_from_slice(args);
    let out = git_output(dir, &full);
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{args:?} went through: {said}");
    said
}

fn protected_refs_story(backend: Backend) {
    let (server, url) = server_with_repo(ADMIN, backend);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    git(&src, &["branch", "release/1", "main~2"]);
    git(&src, &["branch", "release/2", "main~1"]);
    push_everything(&src, &url);

    // Only the repository's admins set rules; bad patterns and duplicates are refused.
    let writer = scoped_token(&server, ADMIN, "acme/app", "write");
    let (status, _) = protect(&server, &writer, r#"{"pattern":"refs/heads/main"}"#);
    assert_eq!(status, 403);
    for bad in ["main", "refs/heads/**x", "refs//a"] {
        let (status, body) = protect(&server, ADMIN, &format!(r#"{{"pattern":"{bad}"}}"#));
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, main_rule) = protect(&server, ADMIN, r#"{"pattern":"refs/heads/main"}"#);
    assert_eq!(status, 201, "{main_rule}");
    assert_eq!(main_rule["allow_force_push"], false);
    assert_eq!(main_rule["allow_deletion"], false);
    let (status, _) = protect(&server, ADMIN, r#"{"pattern":"refs/heads/main"}"#);
    assert_eq!(status, 409);
    let (status, body) = protect(
        &server,
        ADMIN,
        r#"{"pattern":"refs/heads/release/*","allow_force_push":true}"#,
    );
    assert_eq!(status, 201, "{body}");
    let (status, body) = protect(&server, ADMIN, r#"{"pattern":"refs/tags/**"}"#);
    assert_eq!(status, 201, "{body}");

    // main: a fast-forward goes through, a force-push does not.
    let before = git(&src, &["rev-parse", "main"]).trim().to_string();
    let ahead = commit_file(&src, "ff.txt", "ahead\n", "fast-forward");
    git(&src, &["push", "-q", &url, "main"]);
    assert_eq!(remote(&src, &url, "refs/heads/main"), ahead);
    git(&src, &["reset", "-q", "--hard", &before]);
    let rewritten = commit_file(&src, "other.txt", "rewritten\n", "rewritten history");
    let said = refused_push(&src, &["--force", &url, "main"]);
    assert!(
        said.contains("protected by rule 'refs/heads/main': not a fast-forward"),
        "{said}"
    );
    assert_eq!(
        remote(&src, &url, "refs/heads/main"),
        ahead,
        "main did not move"
    );

    // release/*: force-pushes allowed, deletion not.
    git(
        &src,
        &[
            "push",
            "-q",
            "--force",
            &url,
            &format!("{rewritten}:refs/heads/release/1"),
        ],
    );
    assert_eq!(remote(&src, &url, "refs/heads/release/1"), rewritten);
    let said = refused_push(&src, &[&url, "--delete", "release/2"]);
    assert!(
        said.contains("protected by rule 'refs/heads/release/*': may not be deleted"),
        "{said}"
    );
    assert_ne!(remote(&src, &url, "refs/heads/release/2"), ZERO);

    // Tags: neither moved nor deleted.
    let v1 = remote(&src, &url, "refs/tags/v1.0");
    let said = refused_push(
        &src,
        &["--force", &url, &format!("{rewritten}:refs/tags/v1.0")],
    );
    assert!(said.contains("protected by rule 'refs/tags/**'"), "{said}");
    let said = refused_push(&src, &[&url, "--delete", "refs/tags/light"]);
    assert!(said.contains("may not be deleted"), "{said}");
    assert_eq!(remote(&src, &url, "refs/tags/v1.0"), v1);

    // Other refs take anything.
    git(
        &src,
        &[
            "push",
            "-q",
            "--force",
            &url,
            &format!("{rewritten}:refs/heads/topic"),
        ],
    );
    assert_eq!(remote(&src, &url, "refs/heads/topic"), rewritten);
    git(&src, &["push", "-q", &url, "--delete", "topic"]);
    assert_eq!(remote(&src, &url, "refs/heads/topic"), ZERO);

    // An atomic push with one refused update moves nothing.
    let said = refused_push(
        &src,
        &[
            "--atomic",
            "--force",
            &url,
            "main",
            &format!("{rewritten}:refs/heads/feature"),
        ],
    );
    assert!(said.contains("protected by rule"), "{said}");
    assert_ne!(remote(&src, &url, "refs/heads/feature"), rewritten);

    // The rules as listed; with main's gone, main takes the force-push.
    let (status, listed) = api_request(
        &server,
        "GET",
        "/api/v1/repos/acme/app/protected-refs",
        Some(ADMIN),
        "",
    );
    assert_eq!(status, 200);
    let patterns = strings(&listed["rules"], "pattern");
    assert_eq!(
        patterns,
        ["refs/heads/main", "refs/heads/release/*", "refs/tags/**"]
    );
    let rule = format!(
        "/api/v1/repos/acme/app/protected-refs/{}",
        main_rule["id"].as_str().unwrap()
    );
    let (status, _) = api_request(&server, "DELETE", &rule, Some(&writer), "");
    assert_eq!(status, 403);
    let (status, _) = api_request(&server, "DELETE", &rule, Some(ADMIN), "");
    assert_eq!(status, 204);
    let (status, _) = api_request(&server, "DELETE", &rule, Some(ADMIN), "");
    assert_eq!(status, 404);
    git(&src, &["push", "-q", "--force", &url, "main"]);
    assert_eq!(remote(&src, &url, "refs/heads/main"), rewritten);

    // Audited.
    let (_, audit) = api_request(
        &server,
        "GET",
        "/api/v1/repos/acme/app/audit",
        Some(ADMIN),
        "",
    );
    let actions = strings(&audit["events"], "action");
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "protection.create")
            .count(),
        3,
        "{actions:?}"
    );
    assert_eq!(
        actions
            .iter()
            .filter(|a| **a == "protection.delete")
            .count(),
        1
    );
}

#[test]
fn protected_refs_refuse_force_pushes_and_deletions() {
    protected_refs_story(Backend::Embedded);
}

#[test]
fn protected_refs_refuse_force_pushes_and_deletions_on_postgres() {
    protected_refs_story(Backend::Postgres);
}
