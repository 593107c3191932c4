//! Archive downloads: `curl` gets what `git archive` makes of the same
//! revision in the pusher's repository, byte for byte, by branch, tag, `HEAD`
//! or reachable commit id; what may not be read or does not exist is refused.

mod common;

use std::path::Path;

use common::*;

const ADMIN: &str = "archive-admin-token";

/// `git archive --format=tar` of `revision` in `repo` with `prefix`.
fn git_archive(repo: &Path, revision: &str, prefix: &str) -> Vec<u8> {
    let out = git_cmd(repo)
        .args([
            "archive",
            "--format=tar",
            &format!("--prefix={prefix}"),
            revision,
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

fn gunzip(data: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(data)
        .read_to_end(&mut out)
        .expect("a whole gzip stream");
    out
}

/// A zip's entries as Python's `zipfile` lists them: name, CRC, size,
/// external attributes, one line each.
fn zip_entries(zip: &[u8]) -> String {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), zip).unwrap();
    let script = "import sys, zipfile\n\
        for i in zipfile.ZipFile(sys.argv[1]).infolist():\n\
        \x20   print(i.filename, i.CRC, i.file_size, i.external_attr, i.date_time)";
    let out = std::process::Command::new("python3")
        .args(["-c", script, file.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn error_code(body: &[u8]) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    json["code"].as_str().unwrap_or_default().to_string()
}

fn archive_story(backend: Backend) {
    let (server, url) = server_with_repo(ADMIN, backend);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    git(&src, &["checkout", "-q", "-b", "work/x"]);
    commit_file(&src, "feature.txt", "on the feature\n", "feature");
    git(&src, &["checkout", "-q", "main"]);
    git(&src, &["tag", "-a", "-m", "release", "r1", "main~1"]);
    // A tag and a branch of one name: git takes the tag.
    git(&src, &["branch", "same", "main~2"]);
    git(&src, &["tag", "same", "main"]);
    push_everything(&src, &url);

    let base = "/api/v1/repos/acme/app/archive";
    let cases = [
        ("main.tar", "main", "app-main/", false),
        ("main.tar.gz", "main", "app-main/", true),
        ("r1.tgz", "r1", "app-r1/", true),
        ("work/x.tar", "work/x", "app-work-x/", false),
        (
            "refs/heads/work/x.tar",
            "work/x",
            "app-refs-heads-work-x/",
            false,
        ),
        ("HEAD.tar", "main", "app-HEAD/", false),
        ("same.tar", "refs/tags/same", "app-same/", false),
    ];
    for (file, revision, prefix, gzipped) in cases {
        let (status, head, body) = curl(&server, &format!("{base}/{file}"), &[]);
        assert_eq!(status, 200, "{file}: {}", String::from_utf8_lossy(&body));
        let tar = if gzipped { gunzip(&body) } else { body };
        assert!(
            tar == git_archive(&src, revision, prefix),
            "{file}: git archive's bytes"
        );
        // git reads the commit's id back out of the pax global header.
        let id = git_with_input(&src, &["get-tar-commit-id"], &tar[..1024]);
        assert_eq!(
            id.trim(),
            git(&src, &["rev-parse", &format!("{revision}^{{commit}}")]).trim()
        );
        let content_type = if gzipped {
            "application/gzip"
        } else {
            "application/x-tar"
        };
        assert_eq!(header(&head, "content-type"), Some(content_type), "{file}");
        let stem = file.split_once(".t").unwrap().0.replace('/', "-");
        let extension = if gzipped { "tar.gz" } else { "tar" };
        assert_eq!(
            header(&head, "content-disposition"),
            Some(format!("attachment; filename=\"app-{stem}.{extension}\"").as_str()),
        );
    }

    // Asked again (as release tarballs are), an archive comes from the
    // response cache: the same bytes, with their length up front.
    let path = format!("{base}/main.tar.gz");
    let (_, _, first) = curl(&server, &path, &[]);
    let mut cached_head = None;
    for _ in 0..3 {
        let (status, head, body) = curl(&server, &path, &[]);
        assert_eq!(status, 200);
        assert!(body == first, "the same bytes every time");
        if header(&head, "content-length").is_some() {
            cached_head = Some(head);
        }
    }
    let cached_head = cached_head.expect("a cached answer, with its length");
    assert_eq!(
        header(&cached_head, "content-length"),
        Some(first.len().to_string().as_str())
    );
    assert!(
        metric(
            server.addr,
            r#"gitclaw_archives_total{format="tar.gz",outcome="cached"}"#
        ) >= 1.0
    );

    // A zip: what git's holds (names, CRCs, sizes, attributes; see the
    // engine's tests for the rest), and the commit as its comment.
    let (status, head, body) = curl(&server, &format!("{base}/main.zip"), &[]);
    assert_eq!(status, 200);
    assert_eq!(header(&head, "content-type"), Some("application/zip"));
    let theirs = git_cmd(&src)
        .env("TZ", "UTC")
        .args(["archive", "--format=zip", "--prefix=app-main/", "main"])
        .output()
        .unwrap()
        .stdout;
    assert_eq!(zip_entries(&body), zip_entries(&theirs));
    assert!(body.ends_with(git(&src, &["rev-parse", "main"]).trim().as_bytes()));

    // A commit id some ref reaches, with a prefix of the caller's, or none.
    let older = git(&src, &["rev-parse", "main~2"]).trim().to_string();
    let (status, _, body) = curl(&server, &format!("{base}/{older}.tar?prefix=src/"), &[]);
    assert_eq!(status, 200);
    assert!(body == git_archive(&src, &older, "src/"));
    let (status, _, body) = curl(&server, &format!("{base}/{older}.tar?prefix="), &[]);
    assert_eq!(status, 200);
    assert!(body == git_archive(&src, &older, ""));

    // The ETag names the bytes: asked again with it, nothing is sent.
    let (_, head, _) = curl(&server, &format!("{base}/main.tar"), &[]);
    let etag = header(&head, "etag").expect("an ETag").to_string();
    let (status, _, body) = curl(
        &server,
        &format!("{base}/main.tar"),
        &["-H", &format!("If-None-Match: {etag}")],
    );
    assert_eq!(status, 304);
    assert!(body.is_empty());
    let (_, head, _) = curl(&server, &format!("{base}/main.tar?prefix=other/"), &[]);
    assert_ne!(header(&head, "etag"), Some(etag.as_str()), "another prefix");

    // A commit no ref reaches any more (force-pushed away) is not served.
    git(&src, &["checkout", "-q", "work/x"]);
    let gone = git(&src, &["rev-parse", "HEAD"]).trim().to_string();
    git(&src, &["reset", "-q", "--hard", "main"]);
    git(&src, &["push", "-q", "-f", &url, "work/x"]);
    let (status, _, body) = curl(&server, &format!("{base}/{gone}.tar"), &[]);
    assert_eq!(status, 404, "{}", String::from_utf8_lossy(&body));
    assert_eq!(error_code(&body), "NOT_FOUND");

    // Bad names and prefixes, and what is not there.
    for (path, status) in [
        (format!("{base}/main.7z"), 400),
        (format!("{base}/main.tar?prefix=../up/"), 400),
        (format!("{base}/main.tar?prefix=/abs/"), 400),
        (format!("{base}/a..b.tar"), 400),
        (format!("{base}/{}.tar", "r".repeat(2000)), 400),
        (format!("{base}/main.tar?prefix={}/", "p".repeat(300)), 400),
        (format!("{base}/main.tar?prefix=a%00b/"), 400),
        (format!("{base}/main.tar?unknown=1"), 400),
        (format!("{base}/no-such-branch.tar"), 404),
        (format!("{base}/{}.tar", "0".repeat(40)), 404),
        (
            "/api/v1/repos/acme/nothing/archive/main.tar".to_string(),
            404,
        ),
    ] {
        let (got, _, body) = curl(&server, &path, &[]);
        assert_eq!(got, status, "{path}: {}", String::from_utf8_lossy(&body));
        assert!(!error_code(&body).is_empty(), "{path}: a JSON error");
    }

    // A private repository: as missing to a stranger, served to a reader.
    private_copy(&server, ADMIN, &url, &src);
    let path = "/api/v1/repos/acme/secret/archive/main.tar.gz";
    let (status, _, _) = curl(&server, path, &[]);
    assert_eq!(status, 404);
    let reader = scoped_token(&server, ADMIN, "acme/secret", "read");
    let (status, _, body) = curl(
        &server,
        path,
        &["-H", &format!("Authorization: Bearer {reader}")],
    );
    assert_eq!(status, 200);
    assert!(gunzip(&body) == git_archive(&src, "main", "secret-main/"));

    let sent = metric(
        server.addr,
        r#"gitclaw_archives_total{format="tar",outcome="sent"}"#,
    );
    assert!(sent >= 7.0, "{sent}");
}

#[test]
fn archives_are_git_archive_s() {
    archive_story(Backend::Embedded);
}

#[test]
fn archives_are_git_archive_s_on_s3() {
    archive_story(Backend::S3Postgres);
}

/// A file that cannot be read once the archive is under way cuts the
/// transfer off: the client sees a broken download, never a short archive
/// that looks whole.
#[test]
fn a_failure_midway_cuts_the_download_off() {
    let (server, url) = server_with_repo(ADMIN, Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    std::fs::create_dir(&src).unwrap();
    git(&src, &["init", "-q", "-b", "main"]);
    // Files that do not compress: the archive is well past its first chunk
    // before the last file.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    for n in 0..8 {
        let data: Vec<u8> = (0..200_000)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        std::fs::write(src.join(format!("f{n}.bin")), data).unwrap();
    }
    git(&src, &["add", "-A"]);
    git(&src, &["commit", "-q", "-m", "random"]);
    git(&src, &["push", "-q", &url, "main"]);
    let (status, _, whole) = curl(&server, "/api/v1/repos/acme/app/archive/main.tar", &[]);
    assert_eq!(status, 200);
    assert!(whole == git_archive(&src, "main", "app-main/"));

    // Damage the last file's stored object (a small push is stored as loose
    // objects).
    let last = git(&src, &["rev-parse", "main:f7.bin"]).trim().to_string();
    let key = format!("objects/{}/{}", &last[..2], &last[2..]);
    let path = server.repo_dir("acme", "app").join(&key);
    let mut stored = std::fs::read(&path).unwrap_or_else(|err| {
        panic!(
            "{key}: {err}; the store has {:?}",
            server.stored_keys("acme", "app")
        )
    });
    let middle = stored.len() / 2;
    stored[middle..middle + 64].fill(0xa5);
    std::fs::write(&path, &stored).unwrap();

    // (Another prefix: the archive made before the damage is in the cache.)
    // Twice: what failed is not cached either.
    for _ in 0..2 {
        let out = std::process::Command::new("curl")
            .args([
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{size_download}",
            ])
            .arg(format!(
                "{}/api/v1/repos/acme/app/archive/main.tar?prefix=again/",
                server.url
            ))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            !out.status.success(),
            "curl must see a broken transfer, got {said} and {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let (status, size) = said.split_once(' ').unwrap();
        assert_eq!(status, "200", "it had begun");
        let size: usize = size.parse().unwrap();
        assert!(size > 0 && size < whole.len(), "{size} of {}", whole.len());
    }
    assert_eq!(
        metric(
            server.addr,
            r#"gitclaw_archives_total{format="tar",outcome="failed"}"#
        ),
        2.0
    );
}

/// A setuptools-scm `.git_archival.txt` (`export-subst`) in an archive is
/// what `git archive` writes, and follows the refs: a new tag of the commit
/// changes the archive (not the cached one sent again, nor a 304 to the old
/// validator), while a push of another branch leaves it cached.
#[test]
fn export_subst_archives_follow_the_tags() {
    let (server, url) = server_with_repo(ADMIN, Backend::Embedded);
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    fixture_repo(&src, 3);
    std::fs::write(
        src.join(".gitattributes"),
        ".git_archival.txt export-subst\n",
    )
    .unwrap();
    commit_file(
        &src,
        ".git_archival.txt",
        "node: $Format:%H$\nnode-date: $Format:%cI$\n\
         describe-name: $Format:%(describe:tags=true,match=*[0-9]*)$\nref-names: $Format:%D$\n",
        "archival",
    );
    git(&src, &["add", ".gitattributes"]);
    git(&src, &["commit", "-q", "-m", "export-subst"]);
    git(&src, &["tag", "-a", "-m", "release", "v1.2.0", "main~1"]);
    push_everything(&src, &url);

    let path = "/api/v1/repos/acme/app/archive/main.tar";
    let fetch = || {
        let (status, head, body) = curl(&server, path, &[]);
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        (head, body)
    };
    let described = |tar: &[u8]| {
        let describe = git(&src, &["describe", "--tags", "--match=*[0-9]*", "main"]);
        String::from_utf8_lossy(tar).contains(&format!("describe-name: {}\n", describe.trim()))
    };
    let (head, first) = fetch();
    assert!(first == git_archive(&src, "main", "app-main/"));
    assert!(described(&first), "the tag named as git describes it");
    let etag = header(&head, "etag").unwrap().to_string();
    let (head, again) = fetch();
    assert!(again == first);
    assert!(header(&head, "content-length").is_some(), "cached");

    // Another branch pushed: the archive of main is the one cached.
    git(&src, &["checkout", "-q", "-b", "elsewhere"]);
    commit_file(&src, "else.txt", "elsewhere\n", "elsewhere");
    git(&src, &["checkout", "-q", "main"]);
    push_everything(&src, &url);
    let (head, body) = fetch();
    assert!(body == first);
    assert!(header(&head, "content-length").is_some(), "still cached");

    // A release tag of main itself: new bytes, git's, and a new validator.
    git(&src, &["tag", "-a", "-m", "release", "v1.3.0", "main"]);
    push_everything(&src, &url);
    let (status, _, _) = curl(&server, path, &["-H", &format!("If-None-Match: {etag}")]);
    assert_eq!(status, 200, "the old validator no longer matches");
    let (head, second) = fetch();
    assert!(second != first);
    assert!(second == git_archive(&src, "main", "app-main/"));
    assert!(described(&second));
    assert!(String::from_utf8_lossy(&second).contains("tag: v1.3.0"));
    assert_ne!(header(&head, "etag"), Some(etag.as_str()));
}
