//! Tokens and access: public and private repositories, scoped tokens, git with and
//! without credentials, 401 with WWW-Authenticate, 403 without the scope; private
//! names that never leak; token listing, expiry and revocation; repository
//! deletion by admins only; names that ignore letter case.

mod common;

use common::*;
use serde_json::Value;

const ADMIN: &str = "admin-secret-0123456789";

fn with_token(url: &str, token: &str) -> String {
    url.replacen("http://", &format!("http://ci:{token}@"), 1)
}

#[test]
fn scoped_tokens_guard_private_repositories_and_pushes() {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    // Writes need credentials; a 401 tells git to ask for them.
    let (status, _) = api_request(
        &server,
        "POST",
        "/api/v1/repos",
        None,
        r#"{"owner":"acme","name":"open"}"#,
    );
    assert_eq!(status, 401);
    let (status, _) = api_request(
        &server,
        "POST",
        "/api/v1/repos",
        Some("wrong-token-0123456789"),
        r#"{"owner":"acme","name":"open"}"#,
    );
    assert_eq!(status, 401);
    assert_eq!(
        api_request(
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
        api_request(
            &server,
            "POST",
            "/api/v1/repos",
            Some(ADMIN),
            r#"{"owner":"acme","name":"secret","private":true}"#
        )
        .0,
        201
    );
    let (status, reader) = api_request(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(ADMIN),
        r#"{"name":"reader","repos":[{"repo":"acme/secret","access":"read"}]}"#,
    );
    assert_eq!(status, 201, "{reader}");
    let reader = reader["token"].as_str().unwrap().to_string();
    let (_, writer) = api_request(
        &server,
        "POST",
        "/api/v1/tokens",
        Some(ADMIN),
        r#"{"name":"ci","repos":[{"repo":"acme/open","access":"write"},{"repo":"acme/secret","access":"write"}]}"#,
    );
    let writer = writer["token"].as_str().unwrap().to_string();
    assert_eq!(
        api_request(
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
    let (_, list) = api_request(&server, "GET", "/api/v1/repos", None, "");
    let names: Vec<&str> = list["repos"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["open"]);
    let (_, list) = api_request(&server, "GET", "/api/v1/repos", Some(&reader), "");
    assert_eq!(list["repos"].as_array().unwrap().len(), 2);
    assert_eq!(
        api_request(&server, "GET", "/api/v1/repos/acme/secret", None, "").0,
        404,
        "a private repository is answered like a missing one"
    );
    assert_eq!(
        api_request(
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
        api_request(
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
        api_request(
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
        "acme/tools:owner",
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

/// `(status, body)` with every occurrence of `name` replaced by `NAME`: what a
/// caller learns, apart from the name it asked for.
fn answer(
    server: &Server,
    method: &str,
    path: &str,
    auth: Option<&str>,
    name: &str,
) -> (u16, String) {
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = auth {
        headers.push(("Authorization", a));
    }
    let (status, head, body) = http_full(server.addr, method, path, &headers, b"");
    let challenge = head
        .to_ascii_lowercase()
        .lines()
        .find(|l| l.starts_with("www-authenticate:"))
        .map(str::to_string)
        .unwrap_or_default();
    (
        status,
        format!("{challenge}\n{}", String::from_utf8_lossy(&body)).replace(name, "NAME"),
    )
}

fn create_token(server: &Server, body: &str) -> Value {
    let (status, token) = api_request(server, "POST", "/api/v1/tokens", Some(ADMIN), body);
    assert_eq!(status, 201, "{token}");
    token
}

#[test]
fn nobody_learns_the_name_of_a_private_repository_they_cannot_read() {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    // Private repositories sit before, between and after the public ones.
    for (full, private) in [
        ("alice/a-pub", false),
        ("alice/b-priv", true),
        ("alice/c-priv", true),
        ("alice/d-priv", true),
        ("alice/e-pub", false),
        ("alice/f-priv", true),
        ("bob/g-priv", true),
        ("bob/h-pub", false),
        ("carol/i-priv", true),
    ] {
        let (owner, name) = full.split_once('/').unwrap();
        let body = format!(r#"{{"owner":"{owner}","name":"{name}","private":{private}}}"#);
        assert_eq!(
            api_request(&server, "POST", "/api/v1/repos", Some(ADMIN), &body).0,
            201
        );
    }
    let reader = create_token(
        &server,
        r#"{"name":"reader","repos":[{"repo":"alice/c-priv","access":"read"}]}"#,
    );
    let reader = reader["token"].as_str().unwrap().to_string();

    // Paging one at a time shows only what the caller may read, in names and cursors.
    let page_through = |token: Option<&str>, limit: u32| {
        let (mut names, mut cursors) = (Vec::new(), Vec::new());
        let mut path = format!("/api/v1/repos?limit={limit}");
        loop {
            let (status, page) = api_request(&server, "GET", &path, token, "");
            assert_eq!(status, 200, "{page}");
            for repo in page["repos"].as_array().unwrap() {
                names.push(format!(
                    "{}/{}",
                    repo["owner"].as_str().unwrap(),
                    repo["name"].as_str().unwrap()
                ));
            }
            match page["next"].as_str() {
                Some(next) => {
                    cursors.push(next.to_string());
                    path = format!("/api/v1/repos?limit={limit}&after={next}");
                }
                None => return (names, cursors),
            }
            assert!(cursors.len() < 20, "paging ends");
        }
    };
    for limit in [1, 2, 50] {
        let (names, cursors) = page_through(None, limit);
        assert_eq!(
            names,
            ["alice/a-pub", "alice/e-pub", "bob/h-pub"],
            "limit {limit}"
        );
        assert!(
            cursors.iter().all(|c| names.contains(c)),
            "cursors name only listed repositories: {cursors:?}"
        );
        let (names, cursors) = page_through(Some(&reader), limit);
        assert_eq!(
            names,
            ["alice/a-pub", "alice/c-priv", "alice/e-pub", "bob/h-pub"],
            "limit {limit}"
        );
        assert!(cursors.iter().all(|c| names.contains(c)), "{cursors:?}");
        let (names, _) = page_through(Some(ADMIN), limit);
        assert_eq!(names.len(), 9, "an admin sees everything");
    }
    let (_, first) = api_request(&server, "GET", "/api/v1/repos?limit=1", None, "");
    assert_eq!(first["next"], "alice/a-pub", "{first}");

    // The API answers a private repository exactly like a missing one.
    let bearer = format!("Bearer {reader}");
    for auth in [None, Some(bearer.as_str())] {
        for (method, suffix) in [("GET", ""), ("GET", "/stats"), ("DELETE", "")] {
            let private = answer(
                &server,
                method,
                &format!("/api/v1/repos/alice/b-priv{suffix}"),
                auth,
                "b-priv",
            );
            let missing = answer(
                &server,
                method,
                &format!("/api/v1/repos/alice/zz-none{suffix}"),
                auth,
                "zz-none",
            );
            assert_eq!(private.0, 404, "{method} {suffix} {auth:?}: {}", private.1);
            assert_eq!(private, missing, "{method} {suffix} {auth:?}");
        }
    }
    assert_eq!(
        api_request(
            &server,
            "GET",
            "/api/v1/repos/alice/c-priv",
            Some(&reader),
            ""
        )
        .0,
        200
    );

    // Git without credentials: 401 with a challenge for both (so a credential
    // helper still gets asked); with credentials that cannot read: 404 for both.
    for service in ["git-upload-pack", "git-receive-pack"] {
        let path = |name: &str| format!("/alice/{name}.git/info/refs?service={service}");
        let private = answer(&server, "GET", &path("b-priv"), None, "b-priv");
        let missing = answer(&server, "GET", &path("zz-none"), None, "zz-none");
        assert_eq!(private.0, 401, "{}", private.1);
        assert!(
            private.1.starts_with("www-authenticate: basic"),
            "{}",
            private.1
        );
        assert_eq!(private, missing, "{service} without credentials");
        let private = answer(&server, "GET", &path("b-priv"), Some(&bearer), "b-priv");
        let missing = answer(&server, "GET", &path("zz-none"), Some(&bearer), "zz-none");
        assert_eq!(private.0, 404, "{}", private.1);
        assert_eq!(private, missing, "{service} with a token that cannot read");
    }
    // And as git shows it.
    let work = tempfile::tempdir().unwrap();
    for name in ["b-priv", "zz-none"] {
        let url = with_token(&format!("{}/alice/{name}.git", server.url), &reader);
        let out = git_output(
            work.path(),
            &["clone", &url, work.path().join(name).to_str().unwrap()],
        );
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not found"), "{name}: {stderr}");
    }
    // Public repositories still ask for credentials to push (401) and refuse
    // a token without write (403).
    let src = work.path().join("src");
    fixture_repo(&src, 0);
    let pub_url = format!("{}/alice/a-pub.git", server.url);
    let out = git_output(&src, &["push", &pub_url, "main"]);
    assert!(!out.status.success());
    let (status, _) = http(
        server.addr,
        "GET",
        "/alice/a-pub.git/info/refs?service=git-receive-pack",
        &[],
        b"",
    );
    assert_eq!(status, 401);
    let (status, _) = http(
        server.addr,
        "GET",
        "/alice/a-pub.git/info/refs?service=git-receive-pack",
        &[("Authorization", &bearer)],
        b"",
    );
    assert_eq!(status, 403);
}

#[test]
fn revoked_and_expired_tokens_are_refused_at_once_and_tokens_are_listed_without_secrets() {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    for body in [
        r#"{"owner":"acme","name":"app","private":true}"#,
        r#"{"owner":"acme","name":"lib"}"#,
    ] {
        assert_eq!(
            api_request(&server, "POST", "/api/v1/repos", Some(ADMIN), body).0,
            201
        );
    }
    let before = gitclaw_server::auth::now_secs();
    let ci = create_token(
        &server,
        r#"{"name":"ci","repos":[{"repo":"acme/app","access":"write"}],"expires_in_days":30}"#,
    );
    let expires = ci["expires_at"].as_i64().expect("expires_at");
    assert!(
        (before + 30 * 86_400..=before + 30 * 86_400 + 60).contains(&expires),
        "{ci}"
    );
    let secret = ci["token"].as_str().unwrap().to_string();
    let id = ci["id"].as_str().unwrap().to_string();

    for bad in [
        r#"{"name":"x","expires_in_days":0}"#,
        r#"{"name":"x","expires_in_days":1,"expires_at":99999999999}"#,
        r#"{"name":"x","expires_at":1}"#,
    ] {
        assert_eq!(
            api_request(&server, "POST", "/api/v1/tokens", Some(ADMIN), bad).0,
            400,
            "{bad}"
        );
    }

    let listed = |server: &Server| {
        let (status, list) = api_request(server, "GET", "/api/v1/tokens", Some(ADMIN), "");
        assert_eq!(status, 200, "{list}");
        list["tokens"].as_array().unwrap().clone()
    };
    let tokens = listed(&server);
    let entry = tokens
        .iter()
        .find(|t| t["id"] == id.as_str())
        .expect("listed");
    assert_eq!(entry["name"], "ci");
    assert_eq!(entry["admin"], false);
    assert_eq!(
        entry["scopes"],
        serde_json::json!([{"repo": "acme/app", "access": "write"}])
    );
    assert_eq!(entry["expires_at"], expires);
    assert!(entry["created_at"].as_i64().unwrap() >= before);
    assert!(entry["last_used_at"].is_null(), "{entry}");
    let text = serde_json::to_string(&tokens).unwrap();
    assert!(!text.contains(&secret), "the secret is never listed");
    assert!(
        !text.contains(&gitclaw_server::auth::hash_secret(&secret)),
        "nor its hash"
    );
    assert_eq!(
        api_request(&server, "GET", "/api/v1/tokens", Some(&secret), "").0,
        403
    );
    assert_eq!(
        api_request(&server, "GET", "/api/v1/tokens", None, "").0,
        401
    );

    // The token works, and its use is recorded.
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    let url = with_token(&format!("{}/acme/app.git", server.url), &secret);
    git(&src, &["push", "-q", &url, "main"]);
    let tokens = listed(&server);
    let entry = tokens.iter().find(|t| t["id"] == id.as_str()).unwrap();
    assert!(entry["last_used_at"].as_i64().unwrap() >= before, "{entry}");

    // Revoked: the very next push and clone are refused with 401.
    assert_eq!(
        api_request(
            &server,
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            Some(&secret),
            ""
        )
        .0,
        403
    );
    assert_eq!(
        api_request(
            &server,
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            Some(ADMIN),
            ""
        )
        .0,
        204
    );
    let out = git_output(&src, &["push", &url, "main:other"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Authentication failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = git_output(
        work.path(),
        &["clone", &url, work.path().join("c").to_str().unwrap()],
    );
    assert!(!out.status.success());
    let (status, body) = http(
        server.addr,
        "GET",
        "/api/v1/repos/acme/lib",
        &[("Authorization", &format!("Bearer {secret}"))],
        b"",
    );
    assert_eq!(status, 401, "{}", String::from_utf8_lossy(&body));
    assert!(!listed(&server).iter().any(|t| t["id"] == id.as_str()));
    assert_eq!(
        api_request(
            &server,
            "DELETE",
            &format!("/api/v1/tokens/{id}"),
            Some(ADMIN),
            ""
        )
        .0,
        404
    );

    // Expired: refused with a message that says so.
    // (Stored directly: the API only accepts expiry times in the future.)
    let old = "gct_expired0123456789";
    server
        .block_on(server.state.meta.create_token(
            "old",
            &gitclaw_server::auth::hash_secret(old),
            false,
            &[],
            Some(before - 1),
        ))
        .unwrap();
    let (status, head, body) = http_full(
        server.addr,
        "GET",
        "/acme/lib.git/info/refs?service=git-upload-pack",
        &[("Authorization", &format!("Bearer {old}"))],
        b"",
    );
    assert_eq!(status, 401);
    assert!(
        head.to_ascii_lowercase()
            .contains("www-authenticate: basic"),
        "{head}"
    );
    assert!(
        String::from_utf8_lossy(&body).contains("expired"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    // (git sends credentials only when asked, so a private repository shows it.)
    let out = git_output(
        work.path(),
        &[
            "clone",
            &with_token(&format!("{}/acme/app.git", server.url), old),
            work.path().join("d").to_str().unwrap(),
        ],
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Authentication failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (status, body) = api_request(&server, "GET", "/api/v1/repos/acme/lib", Some(old), "");
    assert_eq!(status, 401);
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
}

#[test]
fn auth_scheme_names_ignore_letter_case() {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    // base64 of "x:admin-secret-0123456789"
    let basic = "eDphZG1pbi1zZWNyZXQtMDEyMzQ1Njc4OQ==";
    for header in [
        format!("bearer {ADMIN}"),
        format!("BEARER {ADMIN}"),
        format!("Bearer {ADMIN}"),
        format!("basic {basic}"),
        format!("BASIC {basic}"),
    ] {
        let (status, body) = http(
            server.addr,
            "GET",
            "/api/v1/tokens",
            &[("Authorization", &header)],
            b"",
        );
        assert_eq!(status, 200, "{header}: {}", String::from_utf8_lossy(&body));
    }
}

#[test]
fn deleting_a_repository_needs_an_admin_token_or_the_admin_scope_not_write() {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    for body in [
        r#"{"owner":"acme","name":"app"}"#,
        r#"{"owner":"acme","name":"other"}"#,
        r#"{"owner":"acme","name":"hidden","private":true}"#,
    ] {
        assert_eq!(
            api_request(&server, "POST", "/api/v1/repos", Some(ADMIN), body).0,
            201
        );
    }
    let writer = create_token(
        &server,
        r#"{"name":"w","repos":[{"repo":"acme/app","access":"write"},{"repo":"acme/hidden","access":"write"}]}"#,
    );
    let writer = writer["token"].as_str().unwrap().to_string();
    let owner = create_token(
        &server,
        r#"{"name":"o","repos":[{"repo":"acme/app","access":"admin"}]}"#,
    );
    let owner = owner["token"].as_str().unwrap().to_string();

    let (status, body) = api_request(
        &server,
        "DELETE",
        "/api/v1/repos/acme/app",
        Some(&writer),
        "",
    );
    assert_eq!(status, 403, "a write token may not delete: {body}");
    assert_eq!(
        api_request(
            &server,
            "DELETE",
            "/api/v1/repos/acme/hidden",
            Some(&writer),
            ""
        )
        .0,
        403
    );
    assert_eq!(
        api_request(
            &server,
            "DELETE",
            "/api/v1/repos/acme/other",
            Some(&owner),
            ""
        )
        .0,
        403,
        "admin scope is per repository"
    );
    assert_eq!(
        api_request(
            &server,
            "DELETE",
            "/api/v1/repos/acme/hidden",
            Some(&owner),
            ""
        )
        .0,
        404,
        "and cannot even see a private one"
    );
    assert_eq!(
        api_request(&server, "GET", "/api/v1/repos/acme/app", None, "").0,
        200,
        "still there"
    );

    // The admin scope also pushes.
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 0);
    git(
        &src,
        &[
            "push",
            "-q",
            &with_token(&format!("{}/acme/app.git", server.url), &owner),
            "main",
        ],
    );

    assert_eq!(
        api_request(
            &server,
            "DELETE",
            "/api/v1/repos/acme/app",
            Some(&owner),
            ""
        )
        .0,
        204
    );
    assert_eq!(
        api_request(&server, "GET", "/api/v1/repos/acme/app", None, "").0,
        404
    );
    assert_eq!(
        api_request(
            &server,
            "DELETE",
            "/api/v1/repos/acme/other",
            Some(ADMIN),
            ""
        )
        .0,
        204
    );
}

#[test]
fn owner_and_name_are_unique_regardless_of_letter_case() {
    let server = Server::start();
    let (status, created) = api_request(
        &server,
        "POST",
        "/api/v1/repos",
        None,
        r#"{"owner":"alice","name":"Pub"}"#,
    );
    assert_eq!(status, 201, "{created}");
    for body in [
        r#"{"owner":"Alice","name":"pub"}"#,
        r#"{"owner":"ALICE","name":"PUB"}"#,
        r#"{"owner":"alice","name":"Pub"}"#,
    ] {
        let (status, answer) = api_request(&server, "POST", "/api/v1/repos", None, body);
        assert_eq!(status, 409, "{body}: {answer}");
        assert_eq!(answer["code"], "ALREADY_EXISTS");
    }
    let (status, fork) = api_request(
        &server,
        "POST",
        "/api/v1/repos/alice/Pub/fork",
        None,
        r#"{"owner":"ALICE","name":"pub"}"#,
    );
    assert_eq!(status, 409, "{fork}");

    // Any spelling finds it; the stored one is shown.
    let (status, shown) = api_request(&server, "GET", "/api/v1/repos/ALICE/PUB", None, "");
    assert_eq!(status, 200, "{shown}");
    assert_eq!(
        (shown["owner"].as_str(), shown["name"].as_str()),
        (Some("alice"), Some("Pub"))
    );
    assert_eq!(shown["id"], created["id"]);
    let (_, list) = api_request(&server, "GET", "/api/v1/repos", None, "");
    assert_eq!(list["repos"].as_array().unwrap().len(), 1, "{list}");
    assert_eq!(list["repos"][0]["name"], "Pub");

    // git push to one spelling, clone from another.
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 1);
    push_everything(&src, &format!("{}/Alice/pub.git", server.url));
    let dst = work.path().join("dst");
    git(
        work.path(),
        &[
            "clone",
            "-q",
            &format!("{}/ALICE/PUB.git", server.url),
            dst.to_str().unwrap(),
        ],
    );
    assert_eq!(
        refs_of(&dst, "refs/remotes/origin/main"),
        refs_of(&src, "refs/heads/main")
            .iter()
            .map(|l| l.replace("refs/heads/", "refs/remotes/origin/"))
            .collect::<Vec<_>>()
    );
    let (_, stats) = api_request(&server, "GET", "/api/v1/repos/aLiCe/pUb/stats", None, "");
    assert!(stats.is_object(), "{stats}");
}

#[test]
fn tokens_are_listed_and_revoked_from_the_command_line_and_a_revoked_token_stops_pushing() {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    assert_eq!(
        api_request(
            &server,
            "POST",
            "/api/v1/repos",
            Some(ADMIN),
            r#"{"owner":"acme","name":"tools"}"#
        )
        .0,
        201
    );
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_gitclaw"))
            .env("GITCLAW_DATA_DIR", server.data.path())
            .env_remove("DATABASE_URL")
            .env_remove("GITCLAW_CONFIG")
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&[
        "token",
        "create",
        "--name",
        "deploy",
        "--repo",
        "ACME/TOOLS:admin",
        "--expires-in-days",
        "7",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("expires 20"), "{stdout}");
    let secret = stdout.lines().last().unwrap().to_string();
    let id = stdout
        .split("(id ")
        .nth(1)
        .and_then(|rest| rest.split([',', ')']).next())
        .unwrap()
        .to_string();
    let out = run(&["token", "create", "--name", "bad", "--expires-in-days", "0"]);
    assert!(!out.status.success());

    let out = run(&["token", "list"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listing = String::from_utf8(out.stdout).unwrap();
    let line = listing
        .lines()
        .find(|l| l.starts_with(&id))
        .expect(&listing);
    assert!(
        line.contains("deploy") && line.contains("acme/tools:admin"),
        "{line}"
    );
    assert!(line.ends_with("never"), "not used yet: {line}");
    assert!(!listing.contains(&secret), "the secret is never listed");

    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 0);
    let url = with_token(&format!("{}/acme/tools.git", server.url), &secret);
    git(&src, &["push", "-q", &url, "main"]);

    // Revoked by another process: the running server refuses the next push.
    let out = run(&["token", "revoke", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = git_output(&src, &["push", &url, "main:again"]);
    assert!(!out.status.success(), "a revoked token pushed");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Authentication failed"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["token", "revoke", &id]);
    assert!(!out.status.success(), "revoking twice fails");
    let listing = String::from_utf8(run(&["token", "list"]).stdout).unwrap();
    assert!(!listing.contains(&id), "{listing}");
}

#[test]
fn changing_the_default_branch_needs_the_admin_scope_not_write() {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    let (status, _) = api_request(
        &server,
        "POST",
        "/api/v1/repos",
        Some(ADMIN),
        r#"{"owner":"acme","name":"app"}"#,
    );
    assert_eq!(status, 201);
    let token = |access: &str| {
        let body =
            format!(r#"{{"name":"{access}","repos":[{{"repo":"acme/app","access":"{access}"}}]}}"#);
        create_token(&server, &body)["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let (writer, owner) = (token("write"), token("admin"));
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    commit_file(&src, "a.txt", "one\n", "one");
    let url = format!("http://x:{ADMIN}@{}/acme/app.git", server.addr);
    git(&src, &["push", "-q", &url, "main", "main:next"]);

    let patch = r#"{"default_branch":"next"}"#;
    let path = "/api/v1/repos/acme/app";
    assert_eq!(api_request(&server, "PATCH", path, None, patch).0, 401);
    let (status, body) = api_request(&server, "PATCH", path, Some(&writer), patch);
    assert_eq!(status, 403, "a write token may not change it: {body}");
    let (status, body) = api_request(&server, "PATCH", path, Some(&owner), patch);
    assert_eq!(
        (status, body["default_branch"].as_str()),
        (200, Some("next")),
        "{body}"
    );
}
