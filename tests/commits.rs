//! Commits through the API: one commit, and the log of a revision (of a path
//! too), page by page, as git describes and lists them.

mod common;

use std::path::Path;

use common::*;

const ADMIN: &str = "commits-admin-token";

/// `git log --format=%H revision [-- path]`.
fn git_log(src: &Path, revision: &str, path: Option<&str>) -> Vec<String> {
    let mut args = vec!["log", "--format=%H", revision];
    if let Some(path) = path {
        args.extend(["--", path]);
    }
    git(src, &args).lines().map(String::from).collect()
}

fn commits_story(backend: Backend) {
    let (server, url) = server_with_repo(ADMIN, backend);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 4);
    // A message longer than the API returns, and one in another time zone.
    let long = format!("long\n\n{}\n", "é".repeat(40_000));
    git(&src, &["commit", "-q", "--allow-empty", "-m", &long]);
    let out = git_cmd(&src)
        .args(["commit", "-q", "--allow-empty", "-m", "east"])
        .env("GIT_AUTHOR_DATE", "@1700003600 +0530")
        .env("GIT_COMMITTER_DATE", "@1700003700 -0800")
        .output()
        .unwrap();
    assert!(out.status.success());
    push_everything(&src, &url);

    // One commit: every field git shows.
    let merge = git(&src, &["rev-list", "--merges", "-1", "main"])
        .trim()
        .to_string();
    for revision in [
        "HEAD".to_string(),
        "main".into(),
        "v1.0".into(),
        "v1.0-signed-off".into(),
        "topic".into(),
        "refs/heads/main~3".into(),
        format!("{}^2", &merge[..8]),
    ] {
        let commit = git_commit_of(&src, &revision).unwrap();
        let path = format!("/api/v1/repos/acme/app/commits/{}", query(&revision));
        let (status, got) = api_request(&server, "GET", &path, None, "");
        assert_eq!(status, 200, "{revision}: {got}");
        assert_eq!(got, commit_as_git_shows_it(&src, &commit), "{revision}");
    }
    // The long message: cut at 64 KiB, at a character's end, and said so.
    let (status, got) = api_request(
        &server,
        "GET",
        "/api/v1/repos/acme/app/commits/main~1",
        None,
        "",
    );
    assert_eq!(status, 200, "{got}");
    let message = got["message"].as_str().unwrap();
    assert!(message.len() <= 64 << 10 && message.len() > (64 << 10) - 2);
    assert!(long.starts_with(message));
    assert_eq!(got["message_truncated"], true);

    // The log, whole and of paths, page by page: git's list.
    for (revision, path) in [
        ("main", None),
        ("main", Some("docs")),
        ("main", Some("src/lib.rs")),
        ("main", Some("growing.txt")),
        ("topic", None),
        ("v1.0", Some("README.md")),
        ("main", Some("no/such/path")),
    ] {
        let expected = git_log(&src, revision, path);
        let mut got: Vec<String> = Vec::new();
        let mut skip = 0;
        loop {
            let mut url =
                format!("/api/v1/repos/acme/app/commits?ref={revision}&limit=3&skip={skip}");
            if let Some(path) = path {
                url.push_str(&format!("&path={path}"));
            }
            let (status, page) = api_request(&server, "GET", &url, None, "");
            assert_eq!(status, 200, "{url}: {page}");
            assert_eq!(
                page["start"],
                git_commit_of(&src, revision).unwrap().as_str()
            );
            assert!(page.get("walk_cut_short").is_none());
            let commits = page["commits"].as_array().unwrap();
            if let Some(first) = commits.first() {
                let id = first["id"].as_str().unwrap();
                assert_eq!(first, &commit_as_git_shows_it(&src, id), "{url}");
            }
            got.extend(
                strings(&page["commits"], "id")
                    .into_iter()
                    .map(String::from),
            );
            match page["next_skip"].as_u64() {
                Some(next) => skip = next,
                None => break,
            }
        }
        assert_eq!(got, expected, "{revision} -- {path:?}");
    }
    // HEAD by default, 50 at most by default.
    let (status, page) = api_request(&server, "GET", "/api/v1/repos/acme/app/commits", None, "");
    assert_eq!(status, 200);
    let head_log = git_log(&src, "HEAD", None);
    let shown: Vec<String> = head_log.iter().take(50).cloned().collect();
    assert_eq!(strings(&page["commits"], "id"), shown);

    // Bad pages, paths and revisions.
    for (query, status) in [
        ("?limit=0", 400),
        ("?limit=1001", 400),
        ("?skip=100001", 400),
        ("?path=../x", 400),
        ("?path=a//b", 400),
        ("?limit=x", 400),
        ("?unknown=1", 400),
        ("?ref=no-such-branch", 404),
        ("?ref=main%40%7B1%7D", 400),
    ] {
        let path = format!("/api/v1/repos/acme/app/commits{query}");
        let (got, body) = api_request(&server, "GET", &path, None, "");
        assert_eq!(got, status, "{query}: {body}");
        assert!(body["code"].is_string(), "{query}: {body}");
    }
    let (status, _) = api_request(
        &server,
        "GET",
        "/api/v1/repos/acme/app/commits/main~999",
        None,
        "",
    );
    assert_eq!(status, 404);

    // A private repository's commits: missing to a stranger, there to a reader.
    private_copy(&server, ADMIN, &url, &src);
    for path in [
        "/api/v1/repos/acme/secret/commits",
        "/api/v1/repos/acme/secret/commits/main",
    ] {
        let (status, _) = api_request(&server, "GET", path, None, "");
        assert_eq!(status, 404, "{path}");
    }
    let reader = scoped_token(&server, ADMIN, "acme/secret", "read");
    let (status, got) = api_request(
        &server,
        "GET",
        "/api/v1/repos/acme/secret/commits/main",
        Some(&reader),
        "",
    );
    assert_eq!(status, 200, "{got}");
    let main = git(&src, &["rev-parse", "main"]).trim().to_string();
    assert_eq!(got, commit_as_git_shows_it(&src, &main));
}

#[test]
fn commits_are_git_s() {
    commits_story(Backend::Embedded);
}

#[test]
fn commits_are_git_s_on_s3() {
    commits_story(Backend::S3Postgres);
}
