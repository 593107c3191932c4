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
        // Past the first commit.
        (format!("{base}/README.md?ref=main~1000"), 404),
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

    revisions_are_git_s(&server, &src);
    trees_are_git_s(&server, &src);

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

/// `git ls-tree -l [-r] REVISION [PATH/]` as the API lists entries.
fn git_ls_tree(
    src: &Path,
    revision: &str,
    path: Option<&str>,
    recursive: bool,
) -> serde_json::Value {
    let mut args = vec!["ls-tree", "-z", "-l"];
    if recursive {
        args.push("-r");
    }
    args.push(revision);
    let dir = path.map(|p| format!("{p}/"));
    args.extend(dir.as_deref());
    let out = git(src, &args);
    out.split_terminator('\0')
        .map(|line| {
            let (meta, path) = line.split_once('\t').unwrap();
            let fields: Vec<&str> = meta.split_whitespace().collect();
            let mut entry = serde_json::json!({
                "path": path, "mode": fields[0], "type": fields[1], "id": fields[2],
            });
            if fields[3] != "-" {
                entry["size"] = fields[3].parse::<u64>().unwrap().into();
            }
            entry
        })
        .collect()
}

/// Percent-encoded, but for `/` and unreserved characters.
fn encoded(path: &str) -> String {
    path.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Directory listings: what `git ls-tree -l` (and `-r`) lists.
fn trees_are_git_s(server: &Server, src: &Path) {
    for (revision, path, recursive) in [
        ("main", None, false),
        ("main", None, true),
        ("main", Some("docs"), false),
        ("main", Some("docs"), true),
        ("v1.0", Some("src"), false),
        ("main~1", Some("日本語"), false),
    ] {
        let route = match path {
            Some(path) => format!("/api/v1/repos/acme/app/tree/{}", encoded(path)),
            None => "/api/v1/repos/acme/app/tree".to_string(),
        };
        let url = format!("{route}?ref={}&recursive={recursive}", query(revision));
        let (status, got) = api_request(server, "GET", &url, None, "");
        assert_eq!(status, 200, "{url}: {got}");
        assert_eq!(
            got["entries"],
            git_ls_tree(src, revision, path, recursive),
            "{url}"
        );
        assert_eq!(
            got["commit"],
            git_commit_of(src, revision).unwrap().as_str()
        );
        let tree = format!("{revision}:{}", path.unwrap_or(""));
        assert_eq!(got["id"], git(src, &["rev-parse", &tree]).trim());
        assert!(got.get("truncated").is_none());
    }
    for (url, status) in [
        ("/api/v1/repos/acme/app/tree/README.md", 404),
        ("/api/v1/repos/acme/app/tree/vendor/lib", 404),
        ("/api/v1/repos/acme/app/tree/no-such-dir", 404),
        ("/api/v1/repos/acme/app/tree?ref=no-such-branch", 404),
        ("/api/v1/repos/acme/app/tree/docs//deep", 400),
        ("/api/v1/repos/acme/app/tree/docs/..", 400),
        ("/api/v1/repos/acme/app/tree?recursive=maybe", 400),
    ] {
        let (got, body) = api_request(server, "GET", url, None, "");
        assert_eq!(got, status, "{url}: {body}");
        assert!(body["code"].is_string(), "{url}: {body}");
    }
}

/// Revision syntax: the commit a file is read from is the one git resolves.
fn revisions_are_git_s(server: &Server, src: &Path) {
    let merge = git(src, &["rev-list", "--merges", "-1", "main"])
        .trim()
        .to_string();
    let tip = git(src, &["rev-parse", "main"]).trim().to_string();
    let short = |id: &str, n: usize| id[..n].to_string();
    let mut found = vec![
        "main~1".to_string(),
        "main^".into(),
        "main~".into(),
        "HEAD~2".into(),
        "@".into(),
        "@~1".into(),
        "main^0".into(),
        "v1.0^{}".into(),
        "v1.0-signed-off^{}".into(),
        "v1.0-signed-off^{tag}~1".into(),
        "v1.0^{commit}^0".into(),
        "v1.0^{object}".into(),
        "light~~".into(),
        "topic^{commit}".into(),
        format!("{}^2", short(&merge, 7)),
        format!("{}^1", short(&merge, 4)),
        format!("{}^2~1", short(&merge, 12)),
        format!("{}~1", merge),
        short(&tip, 7).to_uppercase(),
    ];
    found.dedup();
    for revision in &found {
        let expected = git_commit_of(src, revision).unwrap_or_else(|| panic!("git: {revision}"));
        let path = format!(
            "/api/v1/repos/acme/app/raw/README.md?ref={}",
            query(revision)
        );
        let (status, head, body) = curl(server, &path, &[]);
        assert_eq!(
            status,
            200,
            "{revision}: {}",
            String::from_utf8_lossy(&body)
        );
        assert_eq!(
            header(&head, "x-gitclaw-commit"),
            Some(expected.as_str()),
            "{revision}"
        );
        assert_eq!(body, git_show(src, &expected, "README.md"), "{revision}");
    }
    // Past what the history has, or not a commit: git cannot either.
    for revision in [
        format!("{}^3", short(&merge, 7)),
        "main~1000".into(),
        "main^{tree}".into(),
        "light^{tag}".into(),
        "00000000".into(),
    ] {
        assert_eq!(git_commit_of(src, &revision), None, "{revision}");
        let path = format!(
            "/api/v1/repos/acme/app/raw/README.md?ref={}",
            query(&revision)
        );
        let (status, _, body) = curl(server, &path, &[]);
        assert_eq!(
            status,
            404,
            "{revision}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // Revision syntax these routes do not take: refused, not guessed at.
    for revision in ["main@{1}", "main^{/gitlink}", "main~x", "abc"] {
        let path = format!(
            "/api/v1/repos/acme/app/raw/README.md?ref={}",
            query(revision)
        );
        let (status, _, body) = curl(server, &path, &[]);
        let expected = if revision == "abc" { 404 } else { 400 };
        assert_eq!(
            status,
            expected,
            "{revision}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    // An archive of revision syntax is git's archive of that commit.
    let revision = format!("{}^2", short(&merge, 7));
    let commit = git_commit_of(src, &revision).unwrap();
    let path = format!(
        "/api/v1/repos/acme/app/archive/{}.tar?prefix=x/",
        query(&revision)
    );
    let (status, _, body) = curl(server, &path, &[]);
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let out = git_cmd(src)
        .args(["archive", "--format=tar", "--prefix=x/", &commit])
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(body == out.stdout, "the archive of {revision}");
}

#[test]
fn files_and_refs_are_git_s() {
    files_story(Backend::Embedded);
}

#[test]
fn files_and_refs_are_git_s_on_s3() {
    files_story(Backend::S3Postgres);
}

/// An abbreviated id two reachable commits share is refused as ambiguous; once
/// one of them is no longer reachable, it names the other (an object no ref
/// reaches is never told of).
#[test]
fn abbreviated_ids_count_reachable_commits_only() {
    let (server, url) = server_with_repo(ADMIN, Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 0);
    let tree = git(&src, &["rev-parse", "main^{tree}"]).trim().to_string();
    // Commits off main until two ids share their first four digits.
    let mut seen: std::collections::HashMap<String, String> = Default::default();
    let (a, b) = (0..20_000)
        .find_map(|n| {
            let out = git_cmd(&src)
                .args([
                    "commit-tree",
                    &tree,
                    "-p",
                    "main",
                    "-m",
                    &format!("try {n}"),
                ])
                .env("GIT_AUTHOR_DATE", "@1700000000 +0000")
                .env("GIT_COMMITTER_DATE", "@1700000000 +0000")
                .output()
                .unwrap();
            assert!(out.status.success());
            let id = String::from_utf8(out.stdout).unwrap().trim().to_string();
            seen.insert(id[..4].to_string(), id.clone())
                .map(|other| (other, id))
        })
        .expect("two commits sharing four digits");
    git(&src, &["branch", "a", &a]);
    git(&src, &["branch", "b", &b]);
    git(&src, &["push", "-q", &url, "main", "a", "b"]);
    let raw = |revision: &str| {
        curl(
            &server,
            &format!("/api/v1/repos/acme/app/raw/README.md?ref={revision}"),
            &[],
        )
    };
    let (status, _, body) = raw(&a[..4]);
    let message = String::from_utf8_lossy(&body).to_string();
    assert_eq!(status, 400, "{message}");
    assert!(
        message.contains("ambiguous") && message.contains(&a) && message.contains(&b),
        "{message}"
    );
    // Enough digits to tell them apart.
    let digits = (4..40).find(|&n| a[..n] != b[..n]).unwrap() + 1;
    for id in [&a, &b] {
        let (status, head, _) = raw(&id[..digits]);
        assert_eq!(status, 200);
        assert_eq!(header(&head, "x-gitclaw-commit"), Some(id.as_str()));
    }
    // `b` deleted: its objects stay stored, but no ref reaches it.
    git(&src, &["push", "-q", &url, ":b"]);
    let (status, head, _) = raw(&a[..4]);
    assert_eq!(status, 200);
    assert_eq!(header(&head, "x-gitclaw-commit"), Some(a.as_str()));
    for revision in [&b[..digits], b.as_str()] {
        let (status, _, body) = raw(revision);
        assert_eq!(
            status,
            404,
            "{revision}: {}",
            String::from_utf8_lossy(&body)
        );
    }
}
