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
    // A criss-cross merge (two merge bases) and a history of its own.
    let commit_tree = |tree: &str, parents: &[&str], message: &str| {
        let mut args = vec!["commit-tree".to_string(), tree.to_string()];
        for parent in parents {
            args.extend(["-p".to_string(), parent.to_string()]);
        }
        args.extend(["-m".to_string(), message.to_string()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        git(&src, &args).trim().to_string()
    };
    let p1 = commit_tree("main~1^{tree}", &["main"], "p1");
    let q1 = commit_tree("main~2^{tree}", &["main"], "q1");
    let m1 = commit_tree("main~3^{tree}", &[&p1, &q1], "m1");
    let m2 = commit_tree("main~4^{tree}", &[&q1, &p1], "m2");
    let lonely = commit_tree("v1.0^{tree}", &[], "lonely");
    git(&src, &["branch", "cc1", &m1]);
    git(&src, &["branch", "cc2", &m2]);
    git(&src, &["branch", "lonely", &lonely]);
    // Renames of each kind git finds: exact (a file, a link, an empty file,
    // an executable), by file name (edited), and by content (edited).
    git(&src, &["checkout", "-q", "-b", "moves", "main"]);
    std::fs::create_dir_all(src.join("scripts")).unwrap();
    for (from, to) in [
        ("src/lib.rs", "src/core.rs"),
        ("link-to-main", "link-moved"),
        ("empty.txt", "void.txt"),
        ("run.sh", "scripts/run.sh"),
        ("growing.txt", "docs/growing.txt"),
        ("history.txt", "chronicle.txt"),
    ] {
        git(&src, &["mv", from, to]);
    }
    for edited in ["docs/growing.txt", "chronicle.txt"] {
        let mut text = std::fs::read(src.join(edited)).unwrap();
        text.extend_from_slice(b"one more line\n");
        std::fs::write(src.join(edited), text).unwrap();
    }
    git(&src, &["add", "docs/growing.txt", "chronicle.txt"]);
    git(&src, &["commit", "-q", "-m", "moves"]);
    git(&src, &["checkout", "-q", "main"]);
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
    // In a page of the log, at 8 KiB.
    let (status, page) = api_request(
        &server,
        "GET",
        "/api/v1/repos/acme/app/commits?ref=main~1&limit=1",
        None,
        "",
    );
    assert_eq!(status, 200, "{page}");
    let message = page["commits"][0]["message"].as_str().unwrap();
    assert!(message.len() <= 8 << 10 && message.len() > (8 << 10) - 2);
    assert!(long.starts_with(message));
    assert_eq!(page["commits"][0]["message_truncated"], true);

    // The log, whole and of paths, page by page: git's list.
    for (revision, path) in [
        ("main", None),
        ("main", Some("docs")),
        ("main", Some("docs/")),
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
    compares_are_git_s(&server, &src);

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

/// `git diff --raw --no-abbrev FROM TO` with renames (`-M`) or without
/// (`--no-renames`), as the API lists files.
fn git_diff(src: &Path, from: &str, to: &str, renames: bool) -> serde_json::Value {
    let option = if renames { "-M" } else { "--no-renames" };
    let out = git(
        src,
        &["diff", "--raw", "--no-abbrev", "-z", option, from, to],
    );
    let mut fields = out.split_terminator('\0');
    let mut files = Vec::new();
    while let Some(meta) = fields.next() {
        let meta: Vec<&str> = meta.trim_start_matches(':').split(' ').collect();
        let mut file = serde_json::json!({
            "status": meta[4],
            "old_mode": meta[0],
            "new_mode": meta[1],
            "old_id": meta[2],
            "new_id": meta[3],
        });
        if let Some(similarity) = meta[4].strip_prefix('R') {
            file["status"] = "R".into();
            file["similarity"] = similarity.parse::<u32>().unwrap().into();
            file["previous_path"] = fields.next().unwrap().into();
        }
        file["path"] = fields.next().unwrap().into();
        files.push(file);
    }
    files.into()
}

fn count(src: &Path, range: &str) -> u64 {
    git(src, &["rev-list", "--count", range])
        .trim()
        .parse()
        .unwrap()
}

/// Compares: counts, commits, merge bases and files as git gives them.
fn compares_are_git_s(server: &Server, src: &Path) {
    for (base, head) in [
        ("main", "topic"),
        ("topic", "main"),
        ("v1.0", "main"),
        ("main", "v1.0"),
        ("main~2", "main"),
        ("main", "main"),
        ("cc1", "cc2"),
        ("main", "lonely"),
        ("light", "feature"),
        ("main", "moves"),
        ("moves", "main"),
    ] {
        let path = format!("/api/v1/repos/acme/app/compare/{base}...{head}");
        let (status, got) = api_request(server, "GET", &path, None, "");
        assert_eq!(status, 200, "{path}: {got}");
        let (b, h) = (
            git_commit_of(src, base).unwrap(),
            git_commit_of(src, head).unwrap(),
        );
        assert_eq!(
            (got["base"].as_str(), got["head"].as_str()),
            (Some(b.as_str()), Some(h.as_str()))
        );
        assert_eq!(
            got["ahead_by"],
            count(src, &format!("{base}..{head}")),
            "{path}"
        );
        assert_eq!(
            got["behind_by"],
            count(src, &format!("{head}..{base}")),
            "{path}"
        );
        let log = git(src, &["log", "--format=%H", &format!("{base}..{head}")]);
        let commits: Vec<&str> = log.lines().take(250).collect();
        assert_eq!(strings(&got["commits"], "id"), commits, "{path}");
        if let Some(first) = got["commits"].as_array().unwrap().first() {
            assert_eq!(first, &commit_as_git_shows_it(src, commits[0]));
        }
        let out = git_output(src, &["merge-base", "--all", base, head]);
        let mut bases: Vec<String> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(String::from)
            .collect();
        bases.sort();
        let mut got_bases: Vec<String> = got["merge_bases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b.as_str().unwrap().to_string())
            .collect();
        got_bases.sort();
        assert_eq!(got_bases, bases, "{path}");
        let from = if bases.len() == 1 {
            bases[0].clone()
        } else {
            b.clone()
        };
        assert_eq!(got["files_from"], from.as_str(), "{path}");
        assert_eq!(got["files"], git_diff(src, &from, &h, true), "{path}");
        assert!(got.get("files_truncated").is_none());
        assert!(got.get("renames_incomplete").is_none());
        let (status, unrenamed) =
            api_request(server, "GET", &format!("{path}?renames=false"), None, "");
        assert_eq!(status, 200, "{path}: {unrenamed}");
        assert_eq!(
            unrenamed["files"],
            git_diff(src, &from, &h, false),
            "{path}"
        );
    }
    // The moves are found as renames, each kind of them.
    let (_, got) = api_request(
        server,
        "GET",
        "/api/v1/repos/acme/app/compare/main...moves",
        None,
        "",
    );
    let renamed: Vec<(&str, &str, u64)> = got["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["status"].as_str().unwrap(),
                f["path"].as_str().unwrap(),
                f["similarity"].as_u64().unwrap_or(0),
            )
        })
        .collect();
    assert_eq!(renamed.len(), 6, "{renamed:?}");
    assert!(
        renamed.iter().all(|(status, _, _)| *status == "R"),
        "{renamed:?}"
    );
    assert_eq!(
        renamed
            .iter()
            .filter(|(_, _, similarity)| *similarity == 100)
            .count(),
        4
    );
    // The criss-cross has two merge bases; the orphan none.
    let (_, got) = api_request(
        server,
        "GET",
        "/api/v1/repos/acme/app/compare/cc1...cc2",
        None,
        "",
    );
    assert_eq!(got["merge_bases"].as_array().unwrap().len(), 2);
    let (_, got) = api_request(
        server,
        "GET",
        "/api/v1/repos/acme/app/compare/main...lonely",
        None,
        "",
    );
    assert_eq!(got["merge_bases"].as_array().unwrap().len(), 0);
    for (spec, status) in [
        ("main..topic", 400),
        ("main", 400),
        ("main...nope", 404),
        ("...main", 400),
        ("main...moves?renames=maybe", 400),
        ("main...moves?unknown=1", 400),
    ] {
        let path = format!("/api/v1/repos/acme/app/compare/{spec}");
        let (got, body) = api_request(server, "GET", &path, None, "");
        assert_eq!(got, status, "{spec}: {body}");
    }
}

#[test]
fn commits_are_git_s() {
    commits_story(Backend::Embedded);
}

#[test]
fn commits_are_git_s_on_s3() {
    commits_story(Backend::S3Postgres);
}
