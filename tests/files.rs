//! A repository's refs and a revision's files through the API: `curl` gets
//! what `git ls-remote` and `git show REVISION:PATH` give.

mod common;

use std::path::Path;

use common::*;

const ADMIN: &str = "files-admin-token";

/// `git show REVISION:PATH`, as bytes.
fn git_show(repo: &Path, revision: &str, path: &str) -> Vec<u8> {
    let out = git_cmd(repo)
        .args(["cat-file", "blob", &format!("{revision}:{path}")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{revision}:{path}");
    out.stdout
}

fn files_story(backend: Backend) {
    let (server, url) = server_with_repo(ADMIN, backend);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 2);
    std::fs::create_dir_all(src.join("docs/deep")).unwrap();
    std::fs::write(src.join("docs/deep/guide.md"), "# Guide\n\nWords.\n").unwrap();
    std::fs::write(src.join("data.bin"), [0u8, 1, 2, 0, 255, 10]).unwrap();
    std::fs::write(src.join("with space.txt"), "spaced\n").unwrap();
    std::os::unix::fs::symlink("docs/deep/guide.md", src.join("guide-link")).unwrap();
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "files"]);
    let head = git(&src, &["rev-parse", "HEAD"]).trim().to_string();
    git(
        &src,
        &[
            "update-index",
            "--add",
            "--cacheinfo",
            &format!("160000,{head},vendor/lib"),
        ],
    );
    git(&src, &["commit", "-q", "-m", "a submodule"]);
    git(&src, &["tag", "-a", "-m", "release", "v2", "HEAD~1"]);
    push_everything(&src, &url);

    // Files at several revisions: git's bytes, the right type and length.
    let base = "/api/v1/repos/acme/app/raw";
    for (path, revision) in [
        ("docs/deep/guide.md", "main"),
        ("docs/deep/guide.md", "v2"),
        ("data.bin", "main"),
        ("with%20space.txt", "refs/heads/main"),
        ("guide-link", "main"),
    ] {
        let (status, head, body) = curl(&server, &format!("{base}/{path}?ref={revision}"), &[]);
        let plain = path.replace("%20", " ");
        assert_eq!(
            status,
            200,
            "{path}@{revision}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(body, git_show(&src, revision, &plain), "{path}@{revision}");
        let binary = body.contains(&0);
        assert_eq!(
            header(&head, "content-type"),
            Some(if binary {
                "application/octet-stream"
            } else {
                "text/plain; charset=utf-8"
            }),
            "{path}"
        );
        assert_eq!(
            header(&head, "content-length"),
            Some(body.len().to_string().as_str())
        );
        let blob = git(&src, &["rev-parse", &format!("{revision}:{plain}")]);
        assert_eq!(
            header(&head, "etag"),
            Some(format!("\"{}\"", blob.trim()).as_str())
        );
        let commit = git(&src, &["rev-parse", &format!("{revision}^{{commit}}")]);
        assert_eq!(header(&head, "x-gitclaw-commit"), Some(commit.trim()));
    }
    // HEAD by default; a commit id a ref reaches.
    let (status, _, body) = curl(&server, &format!("{base}/README.md"), &[]);
    assert_eq!(status, 200);
    assert_eq!(body, git_show(&src, "HEAD", "README.md"));
    let older = git(&src, &["rev-parse", "main~2"]).trim().to_string();
    let (status, _, body) = curl(&server, &format!("{base}/README.md?ref={older}"), &[]);
    assert_eq!(status, 200);
    assert_eq!(body, git_show(&src, &older, "README.md"));
    // The ETag: nothing sent again.
    let (_, head, _) = curl(&server, &format!("{base}/README.md"), &[]);
    let etag = header(&head, "etag").unwrap().to_string();
    let (status, _, body) = curl(
        &server,
        &format!("{base}/README.md"),
        &["-H", &format!("If-None-Match: {etag}")],
    );
    assert_eq!((status, body.len()), (304, 0));

    // What is not a file, or not there, or not a path.
    for (path, status) in [
        (format!("{base}/docs"), 404),
        (format!("{base}/docs/deep"), 404),
        (format!("{base}/vendor/lib"), 404),
        (format!("{base}/README.md/x"), 404),
        (format!("{base}/no-such-file"), 404),
        (format!("{base}/README.md?ref=no-such-branch"), 404),
        // Revision syntax is not a name: not guessed at.
        (format!("{base}/README.md?ref=main~1"), 404),
        (format!("{base}/docs//deep/guide.md"), 400),
        (format!("{base}/docs/../README.md"), 400),
        (format!("{base}/README.md?ref=a..b"), 400),
        (format!("{base}/{}", "x/".repeat(3000)), 400),
        (format!("{base}/README.md%00"), 404),
        (format!("{base}/README.md?ref={}", "r".repeat(2000)), 400),
    ] {
        let (got, _, body) = curl(&server, &path, &["--path-as-is"]);
        assert_eq!(got, status, "{path}: {}", String::from_utf8_lossy(&body));
        let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(json["code"].is_string(), "{path}: {json}");
    }

    // A file above 16 MiB streams.
    let big: Vec<u8> = (0..(17u32 << 20)).map(|n| (n % 251) as u8).collect();
    std::fs::write(src.join("big.bin"), &big).unwrap();
    git(&src, &["add", "big.bin"]);
    git(&src, &["commit", "-q", "-m", "big"]);
    git(&src, &["push", "-q", &url, "main"]);
    let (status, head, body) = curl(&server, &format!("{base}/big.bin"), &[]);
    assert_eq!(status, 200);
    assert_eq!(
        header(&head, "content-type"),
        Some("application/octet-stream")
    );
    assert!(body == big, "the big file whole");

    // Refs: what ls-remote shows, a page at a time.
    let listed = git(work.path(), &["ls-remote", &url]);
    let mut expected: Vec<(String, String, Option<String>)> = Vec::new();
    for line in listed.lines() {
        let (id, name) = line.split_once('\t').unwrap();
        if name == "HEAD" {
            continue;
        }
        match name.strip_suffix("^{}") {
            Some(tag) => expected.iter_mut().find(|e| e.0 == tag).unwrap().2 = Some(id.into()),
            None => expected.push((name.into(), id.into(), None)),
        }
    }
    expected.sort();
    let mut got = Vec::new();
    let mut after = String::new();
    loop {
        let (status, page) = api_request(
            &server,
            "GET",
            &format!("/api/v1/repos/acme/app/refs?limit=2&after={after}"),
            None,
            "",
        );
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["head"], "refs/heads/main");
        for r in page["refs"].as_array().unwrap() {
            got.push((
                r["name"].as_str().unwrap().to_string(),
                r["id"].as_str().unwrap().to_string(),
                r["peeled"].as_str().map(String::from),
            ));
        }
        match page["next"].as_str() {
            Some(next) => after = next.to_string(),
            None => break,
        }
    }
    assert_eq!(got, expected);
    let (status, tags) = api_request(
        &server,
        "GET",
        "/api/v1/repos/acme/app/refs?prefix=refs/tags/",
        None,
        "",
    );
    assert_eq!(status, 200);
    let names = strings(&tags["refs"], "name");
    let want: Vec<&str> = expected
        .iter()
        .map(|e| e.0.as_str())
        .filter(|n| n.starts_with("refs/tags/"))
        .collect();
    assert_eq!(names, want);

    // A private repository's files and refs: missing to a stranger.
    private_copy(&server, ADMIN, &url, &src);
    let (status, _, _) = curl(&server, "/api/v1/repos/acme/secret/raw/README.md", &[]);
    assert_eq!(status, 404);
    let (status, _) = api_request(&server, "GET", "/api/v1/repos/acme/secret/refs", None, "");
    assert_eq!(status, 404);
    let reader = scoped_token(&server, ADMIN, "acme/secret", "read");
    let (status, _, body) = curl(
        &server,
        "/api/v1/repos/acme/secret/raw/README.md",
        &["-H", &format!("Authorization: Bearer {reader}")],
    );
    assert_eq!(status, 200);
    assert_eq!(body, git_show(&src, "main", "README.md"));
}

#[test]
fn files_and_refs_are_git_s() {
    files_story(Backend::Embedded);
}

#[test]
fn files_and_refs_are_git_s_on_s3() {
    files_story(Backend::S3Postgres);
}
