//! Tokens and access: public and private repositories, scoped tokens, git with and
//! without credentials, 401 with WWW-Authenticate, 403 without the scope.

mod common;

use common::*;
use serde_json::Value;

const ADMIN: &str = "admin-secret-0123456789";

fn api(server: &Server, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let (status, bytes) = http(server.addr, method, path, &headers, body.as_bytes());
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn with_token(url: &str, token: &str) -> String {
    url.replacen("http://", &format!("http://ci:{token}@"), 1)
}

#[test]
fn scoped_tokens_guard_private_repositories_and_pushes() {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    // Writes need credentials; a 401 tells git to ask for them.
    let (status, _) = api(
        &server,
        "POST",
        "/api/v1/repos",
        None,
        r#"{"owner":"acme","name":"open"}"#,
    );
    assert_eq!(status, 401);
    let (status, _) = api(
        &server,
        "POST",
        "/api/v1/repos",
        Some("wrong-token-0123456789"),
        r#"{"owner":"acme","name":"open"}"#,
    );
    assert_eq!(status, 401);
    assert_eq!(
        api(
            &server,
            "POST",
            "/api/v1/repos",
            Some(ADMIN),
            r#"{"owner":"acme","name":"open"}"#
        )
        .0,
        201
    );
    assert_eq!(
        api(
            &server,
            "POST",
            "/api/v1/repos",
            Some(ADMIN),
            r#"{"owner":"acme","name":"secret","private":true}"#
        )
        .0,
        201
    );
    let (status, reader) = api(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(ADMIN),
        r#"{"name":"reader","repos":[{"repo":"acme/secret","access":"read"}]}"#,
    );
    assert_eq!(status, 201, "{reader}");
    let reader = reader["token"].as_str().unwrap().to_string();
    let (_, writer) = api(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(ADMIN),
        r#"{"name":"ci","repos":[{"repo":"acme/open","access":"write"},{"repo":"acme/secret","access":"write"}]}"#,
    );
    let writer = writer["token"].as_str().unwrap().to_string();
    assert_eq!(
        api(
            &server,
            "POST",
            "/api/v1/tokens",
            Some(&reader),
            r#"{"name":"x"}"#
        )
        .0,
        403,
        "only admins mint tokens"
    );

    let open_url = format!("{}/acme/open.git", server.url);
    let secret_url = format!("{}/acme/secret.git", server.url);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);

    // Pushing needs write: none → 401, read → 403, write → ok.
    let out = git_output(&src, &["push", &open_url, "main"]);
    assert!(!out.status.success());
    let out = git_output(&src, &["push", &with_token(&secret_url, &reader), "main"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    git(
        &src,
        &["push", "-q", &with_token(&open_url, &writer), "main"],
    );
    git(
        &src,
        &["push", "-q", &with_token(&secret_url, &writer), "main"],
    );
    let events = server
        .block_on(server.state.meta.list_audit(None, None, 50))
        .unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.action == "push" && e.actor == "token:ci"),
        "pushes are audited with the token's name"
    );

    // Reading: public for anyone, private only with a token.
    git(
        work.path(),
        &[
            "clone",
            "-q",
            &open_url,
            work.path().join("a").to_str().unwrap(),
        ],
    );
    let out = git_output(
        work.path(),
        &[
            "clone",
            &secret_url,
            work.path().join("b").to_str().unwrap(),
        ],
    );
    assert!(
        !out.status.success(),
        "a private repository needs credentials"
    );
    git(
        work.path(),
        &[
            "clone",
            "-q",
            &with_token(&secret_url, &reader),
            work.path().join("c").to_str().unwrap(),
        ],
    );
    let (status, head, _) = http_full(
        server.addr,
        "GET",
        "/acme/secret.git/info/refs?service=git-upload-pack",
        &[],
        b"",
    );
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{head}"
    );
    let (status, head, _) = http_full(
        server.addr,
        "POST",
        "/api/v1/repos",
        &[("Content-Type", "application/json")],
        b"{}",
    );
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{head}"
    );

    // The API hides private repositories from those who may not read them.
    let (_, list) = api(&server, "GET", "/api/v1/repos", None, "");
    let names: Vec<&str> = list["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["open"]);
    let (_, list) = api(&server, "GET", "/api/v1/repos", Some(&reader), "");
    assert_eq!(list["repos"].as_array().unwrap().len(), 2);
    assert_eq!(
        api(&server, "GET", "/api/v1/repos/acme/secret", None, "").0,
        401
    );
    assert_eq!(
        api(
            &server,
            "DELETE",
            "/api/v1/repos/acme/open",
            Some(&reader),
            ""
        )
        .0,
        403
    );
    assert_eq!(
        api(
            &server,
            "GET",
            "/api/v1/repos/acme/open/audit",
            Some(&writer),
            ""
        )
        .0,
        403,
        "audit is admin only"
    );
    assert_eq!(
        api(
            &server,
            "GET",
            "/api/v1/repos/acme/open/audit",
            Some(ADMIN),
            ""
        )
        .0,
        200
    );
}

#[test]
fn token_create_prints_the_token_alone_on_the_last_line() {
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gitclaw"))
            .env("GITCLAW_DATA_DIR", data.path())
            .env_remove("DATABASE_URL")
            .args(args)
            .output()
            .unwrap()
    };
    assert!(run(&["repo", "create", "acme/tools"]).status.success());
    let out = run(&[
        "token",
        "create",
        "--name",
        "deploy",
        "--repo",
        "acme/tools:write",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    let token = stdout.lines().last().unwrap();
    assert!(
        token.starts_with("gct_") && !token.contains(' '),
        "{stdout}"
    );
    let out = run(&[
        "token",
        "create",
        "--name",
        "bad",
        "--repo",
        "acme/tools:admin",
    ]);
    assert!(!out.status.success());
    let out = run(&[
        "token",
        "create",
        "--name",
        "bad",
        "--repo",
        "acme/nothing:read",
    ]);
    assert!(!out.status.success());
}

#[test]
fn an_open_server_refuses_a_public_address() {
    let data = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gitclaw"))
        .env("GITCLAW_DATA_DIR", data.path())
        .env("GITCLAW_LISTEN", "0.0.0.0:0")
        .env_remove("GITCLAW_ADMIN_TOKEN")
        .env_remove("GITCLAW_ALLOW_ANONYMOUS")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("without authentication") && stderr.contains("GITCLAW_ADMIN_TOKEN"),
        "{stderr}"
    );
}
