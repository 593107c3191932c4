//! Git LFS with the real `git lfs` client: push of tracked files (one above
//! 100 MiB) and `git lfs pull` in another clone give identical files, through
//! the server on the filesystem store and straight to the bucket on S3;
//! tampered uploads are refused and never listed; private repositories need
//! the token for the batch and the object URLs; presigned URLs expire; locks
//! stop another clone's push until unlocked; fork copies and delete removes
//! the objects; bad batch requests get clear refusals.

mod common;

use std::{path::Path, process::Command};

use common::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const ADMIN: &str = "admin-secret-0123456789";
const MIB: usize = 1 << 20;

/// A token with `access` on `repo`.
fn token(server: &Server, name: &str, repo: &str, access: &str) -> String {
    let body = json!({"name": name, "repos": [{"repo": repo, "access": access}]}).to_string();
    let (status, answer) = api_request(server, "POST", "/api/v1/tokens", Some(ADMIN), &body);
    assert_eq!(status, 201, "{answer}");
    answer["token"].as_str().expect("token").to_string()
}

fn create(server: &Server, owner: &str, name: &str, private: bool) {
    let body = json!({"owner": owner, "name": name, "private": private}).to_string();
    let (status, answer) = api_request(server, "POST", "/api/v1/repos", Some(ADMIN), &body);
    assert_eq!(status, 201, "{answer}");
}

/// An LFS API request: status, response head and JSON body.
fn lfs(
    server: &Server,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: &[u8],
) -> (u16, String, Value) {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![
        ("Accept", "application/vnd.git-lfs+json"),
        ("Content-Type", "application/vnd.git-lfs+json"),
    ];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let (status, head, bytes) = http_full(server.addr, method, path, &headers, body);
    (
        status,
        head,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

fn batch(
    server: &Server,
    repo: &str,
    token: Option<&str>,
    operation: &str,
    objects: &[(&str, usize)],
) -> (u16, String, Value) {
    let objects: Vec<Value> = objects
        .iter()
        .map(|(oid, size)| json!({"oid": oid, "size": size}))
        .collect();
    let body = json!({"operation": operation, "transfers": ["basic"], "objects": objects});
    lfs(
        server,
        "POST",
        &format!("/{repo}.git/info/lfs/objects/batch"),
        token,
        body.to_string().as_bytes(),
    )
}

fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `git lfs args` in `dir`; panics with its output when it fails.
fn git_lfs(dir: &Path, args: &[&str]) -> String {
    let mut full = vec!["lfs"];
    full.extend_from_slice(args);
    git(dir, &full)
}

/// A repository whose `*.bin` files LFS tracks, pushing to `url` with `token`
/// (given by a credential helper, as git users do).
fn lfs_repo(dir: &Path, url: &str, token: Option<&str>) {
    std::fs::create_dir_all(dir).unwrap();
    git(dir, &["init", "-q", "-b", "main"]);
    git_lfs(dir, &["install", "--local"]);
    git(dir, &["remote", "add", "origin", url]);
    if let Some(token) = token {
        use_credentials(dir, token);
    }
}

fn use_credentials(dir: &Path, token: &str) {
    let helper = format!("!f() {{ echo username=ci; echo password={token}; }}; f");
    git(dir, &["config", "credential.helper", &helper]);
}

/// Clone `url` into `dir` (LFS files left as pointers, as without a global
/// `git lfs install`), then install LFS there.
fn clone_lfs(work: &Path, url: &str, dir: &Path, token: Option<&str>) {
    let name = dir.to_str().unwrap();
    let mut cmd = git_cmd(work);
    if let Some(token) = token {
        let helper =
            format!("credential.helper=!f() {{ echo username=ci; echo password={token}; }}; f");
        cmd.args(["-c", &helper]);
    }
    let out = cmd.args(["clone", "-q", url, name]).output().unwrap();
    assert!(
        out.status.success(),
        "clone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    git_lfs(dir, &["install", "--local"]);
    if let Some(token) = token {
        use_credentials(dir, token);
    }
}

/// Write the LFS files of the push test: sizes chosen to cover a tiny file,
/// a few MiB and one above 100 MiB. Returns (name, content) pairs.
fn write_files(dir: &Path, seed: u64, sizes: &[(&str, usize)]) -> Vec<(String, Vec<u8>)> {
    sizes
        .iter()
        .enumerate()
        .map(|(i, (name, size))| {
            let data = incompressible(*size, seed + 2 * i as u64);
            std::fs::write(dir.join(name), &data).unwrap();
            (name.to_string(), data)
        })
        .collect()
}

/// The value of one sample of the server's metrics (0 when not exported).
fn metric(server: &Server, sample: &str) -> u64 {
    let (status, body) = http(server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    let text = String::from_utf8_lossy(&body).to_string();
    text.lines()
        .find_map(|l| {
            l.strip_prefix(sample)
                .and_then(|v| v.trim().parse::<f64>().ok())
        })
        .map_or(0, |v| v as u64)
}

fn lfs_keys(keys: &[String]) -> Vec<String> {
    let mut lfs: Vec<String> = keys
        .iter()
        .filter(|k| k.contains("/lfs/"))
        .cloned()
        .collect();
    lfs.sort();
    lfs
}

/// Push LFS files through git and pull them into a fresh clone; returns the
/// files pushed.
fn push_and_pull(server: &Server, repo: &str, writer: &str) -> Vec<(String, Vec<u8>)> {
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    let url = format!("{}/{repo}.git", server.url);
    lfs_repo(&src, &url, Some(writer));
    git_lfs(&src, &["track", "*.bin"]);
    let files = write_files(
        &src,
        7,
        &[
            ("tiny.bin", 1000),
            ("mid.bin", 3 * MIB),
            ("big.bin", 101 * MIB),
        ],
    );
    std::fs::write(src.join("README.md"), "media\n").unwrap();
    git(&src, &["add", "."]);
    git(&src, &["commit", "-q", "-m", "media"]);
    let out = git_output(&src, &["push", "-q", "origin", "main"]);
    assert!(
        out.status.success(),
        "push: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // What a user sees: a clone elsewhere has pointers until `git lfs pull`,
    // then exactly the files pushed.
    let dst = work.path().join("dst");
    clone_lfs(work.path(), &url, &dst, None);
    let pointer = std::fs::read_to_string(dst.join("big.bin")).unwrap();
    assert!(pointer.starts_with("version https://git-lfs"), "{pointer}");
    git_lfs(&dst, &["pull"]);
    for (name, data) in &files {
        let pulled = std::fs::read(dst.join(name)).unwrap();
        assert!(pulled == *data, "{name} differs after git lfs pull");
    }

    // Recorded once each, stored under the repository's lfs prefix.
    let (status, stats) = api_request(
        server,
        "GET",
        &format!("/api/v1/repos/{repo}/stats"),
        Some(ADMIN),
        "",
    );
    assert_eq!(status, 200, "{stats}");
    let total: usize = files.iter().map(|(_, d)| d.len()).sum();
    assert_eq!(stats["lfs_objects"], 3, "{stats}");
    assert_eq!(stats["lfs_bytes"], total, "{stats}");
    let (owner, name) = repo.split_once('/').unwrap();
    let id = server.repo_id(owner, name);
    let mut expected: Vec<String> = files
        .iter()
        .map(|(_, data)| {
            let oid = sha256_hex(data);
            format!("{id}/lfs/{}/{}/{oid}", &oid[..2], &oid[2..4])
        })
        .collect();
    expected.sort();
    assert_eq!(lfs_keys(&server.stored_keys(owner, name)), expected);
    assert_eq!(metric(server, "gitclaw_lfs_objects "), 3);
    assert_eq!(metric(server, "gitclaw_lfs_bytes "), total as u64);
    let label = format!("{{repository=\"{repo}\"}}");
    assert_eq!(
        metric(server, &format!("gitclaw_repository_lfs_objects{label}")),
        3
    );
    assert_eq!(
        metric(server, &format!("gitclaw_repository_lfs_bytes{label}")),
        total as u64
    );
    files
}

#[test]
fn lfs_files_push_and_pull_through_the_server_on_the_filesystem() {
    need_git_lfs();
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    create(&server, "acme", "media", false);
    let writer = token(&server, "writer", "acme/media", "write");
    let files = push_and_pull(&server, "acme/media", &writer);
    let total: u64 = files.iter().map(|(_, d)| d.len() as u64).sum();
    // The bytes went through the server, both ways.
    assert_eq!(
        metric(
            &server,
            "gitclaw_lfs_transfer_bytes_total{direction=\"upload\"}"
        ),
        total
    );
    assert_eq!(
        metric(
            &server,
            "gitclaw_lfs_transfer_bytes_total{direction=\"download\"}"
        ),
        total
    );
    // The batch answer points at the server's own object URL.
    let oid = sha256_hex(&files[0].1);
    let (status, _, answer) = batch(&server, "acme/media", None, "download", &[(&oid, 1000)]);
    assert_eq!(status, 200, "{answer}");
    let href = answer["objects"][0]["actions"]["download"]["href"]
        .as_str()
        .unwrap();
    assert_eq!(
        href,
        format!("{}/acme/media.git/info/lfs/objects/{oid}", server.url)
    );
    raw_files_resolve_lfs_pointers(&server, "acme/media", &files, false);
}

/// The raw file API on LFS files: the pointer as committed, and with
/// `lfs=true` the content it names — streamed by the server, or (`presigned`,
/// on S3) at a URL of the bucket the answer redirects to.
fn raw_files_resolve_lfs_pointers(
    server: &Server,
    repo: &str,
    files: &[(String, Vec<u8>)],
    presigned: bool,
) {
    for (name, data) in files {
        let oid = sha256_hex(data);
        let path = format!("/api/v1/repos/{repo}/raw/{name}");
        let (status, _, pointer) = common::curl(server, &path, &[]);
        assert_eq!(status, 200);
        let pointer = String::from_utf8(pointer).unwrap();
        assert_eq!(
            pointer,
            format!(
                "version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\nsize {}\n",
                data.len()
            )
        );
        let (status, head, body) = common::curl(server, &format!("{path}?lfs=true"), &[]);
        if presigned {
            assert_eq!(status, 302, "{name}: {head}");
            let location = header(&head, "location").expect("a redirect").to_string();
            assert!(location.contains(&oid), "{location}");
            if data.len() < 10 * MIB {
                let (status, body) = curl("GET", &location, &json!({}), None);
                assert_eq!(status, 200, "{name}");
                assert!(body == *data, "{name}: the bucket's content");
            }
        } else {
            assert_eq!(status, 200, "{name}: {head}");
            assert_eq!(
                header(&head, "content-length"),
                Some(data.len().to_string().as_str())
            );
            assert!(body == *data, "{name}: the LFS content");
        }
        // Validators differ from the pointer's: one answer is never taken for the other.
        let etag = header(&head, "etag").unwrap().to_string();
        assert!(etag.ends_with("-lfs\""), "{etag}");
    }
    // A file that is no pointer is itself, with or without `lfs`.
    let path = format!("/api/v1/repos/{repo}/raw/README.md?lfs=true");
    let (status, _, body) = common::curl(server, &path, &[]);
    assert_eq!((status, body), (200, b"media\n".to_vec()));
}

fn need_git_lfs() {
    let out = Command::new("git").args(["lfs", "version"]).output();
    assert!(
        out.is_ok_and(|o| o.status.success()),
        "git-lfs is not installed (scripts/test.sh installs it)"
    );
}

/// `curl` of a presigned request: its status and body.
fn curl(method: &str, url: &str, headers: &Value, body: Option<&[u8]>) -> (u16, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let out_file = dir.path().join("out");
    let mut cmd = Command::new("curl");
    cmd.args(["-sS", "-X", method, "-o"])
        .arg(&out_file)
        .args(["-w", "%{http_code}"]);
    if let Some(map) = headers.as_object() {
        for (name, value) in map {
            cmd.args(["-H", &format!("{name}: {}", value.as_str().unwrap())]);
        }
    }
    if let Some(body) = body {
        let in_file = dir.path().join("in");
        std::fs::write(&in_file, body).unwrap();
        cmd.arg("--data-binary")
            .arg(format!("@{}", in_file.display()));
        cmd.args(["-H", "Content-Type:"]);
    }
    let out = cmd.arg(url).output().expect("curl runs");
    let status = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    (status, std::fs::read(&out_file).unwrap_or_default())
}

fn s3_server(adjust: impl FnOnce(&mut gitclaw_server::Config)) -> Server {
    Server::start_with(|c| {
        use_backend(c, Backend::S3Postgres);
        c.admin_token = Some(ADMIN.into());
        adjust(c);
    })
}

#[test]
fn lfs_files_go_straight_to_the_bucket_on_s3() {
    need_git_lfs();
    let server = s3_server(|_| {});
    create(&server, "acme", "media", false);
    let writer = token(&server, "writer", "acme/media", "write");
    let files = push_and_pull(&server, "acme/media", &writer);
    // No object byte went through the server: the batch answers sent the
    // client to the bucket.
    assert_eq!(
        metric(
            &server,
            "gitclaw_lfs_transfer_bytes_total{direction=\"upload\"}"
        ),
        0
    );
    assert_eq!(
        metric(
            &server,
            "gitclaw_lfs_transfer_bytes_total{direction=\"download\"}"
        ),
        0
    );
    assert_eq!(
        metric(
            &server,
            "gitclaw_lfs_batch_objects_total{answer=\"presigned\",operation=\"upload\"}"
        ),
        3
    );
    assert!(
        metric(
            &server,
            "gitclaw_lfs_batch_objects_total{answer=\"presigned\",operation=\"download\"}"
        ) >= 3
    );
    // Nor between the server and the bucket: verify compared the checksum the
    // bucket recorded instead of reading the objects back.
    for direction in ["read", "written"] {
        let sample = format!("gitclaw_store_bytes_total{{direction=\"{direction}\"}}");
        let moved = metric(&server, &sample);
        assert!(moved < MIB as u64, "{sample} = {moved}");
    }
    let endpoint = s3_env().endpoint.clone();
    let bucket = server.state.config.s3.as_ref().unwrap().bucket.clone();
    let wanted: Vec<(String, usize)> = files
        .iter()
        .map(|(_, d)| (sha256_hex(d), d.len()))
        .collect();
    let wanted: Vec<(&str, usize)> = wanted.iter().map(|(o, s)| (o.as_str(), *s)).collect();
    let (status, head, answer) = batch(&server, "acme/media", None, "download", &wanted);
    assert_eq!(status, 200, "{answer}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/vnd.git-lfs+json"),
        "{head}"
    );
    for (object, (_, data)) in answer["objects"].as_array().unwrap().iter().zip(&files) {
        let action = &object["actions"]["download"];
        let href = action["href"].as_str().unwrap();
        assert!(
            href.starts_with(&format!("{endpoint}/{bucket}/")),
            "{href} is not the bucket"
        );
        assert_eq!(action["expires_in"], 900, "{action}");
        assert!(action["expires_at"].as_str().unwrap().ends_with('Z'));
        if data.len() < 10 * MIB {
            let (status, body) = curl("GET", href, &action["header"], None);
            assert_eq!(status, 200);
            assert!(body == *data);
        }
    }
    raw_files_resolve_lfs_pointers(&server, "acme/media", &files, true);
}

#[test]
fn a_tampered_upload_to_the_bucket_is_refused_and_never_listed() {
    let server = s3_server(|_| {});
    create(&server, "acme", "media", false);
    let writer = token(&server, "writer", "acme/media", "write");
    let content = incompressible(4096, 99);
    let oid = sha256_hex(&content);
    let (status, _, answer) = batch(
        &server,
        "acme/media",
        Some(&writer),
        "upload",
        &[(&oid, content.len())],
    );
    assert_eq!(status, 200, "{answer}");
    let actions = &answer["objects"][0]["actions"];
    let upload = &actions["upload"];
    let href = upload["href"].as_str().unwrap();
    // The signature covers the content's SHA-256, handed to the client.
    let header = upload["header"].as_object().unwrap();
    let checksum = header
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-checksum-sha256"))
        .map(|(_, v)| v.as_str().unwrap().to_string())
        .expect("x-amz-checksum-sha256 in the upload's headers");
    assert_eq!(checksum.len(), 44, "base64 of 32 bytes");
    assert!(href.contains("x-amz-checksum-sha256") || href.contains("X-Amz-SignedHeaders"));

    // Other bytes of the same length: the store refuses them.
    let mut wrong = content.clone();
    wrong[0] ^= 1;
    let (put, body) = curl("PUT", href, &upload["header"], Some(&wrong));
    assert!(
        !(200..300).contains(&put),
        "the bucket took bytes that do not match the checksum: {}",
        String::from_utf8_lossy(&body)
    );
    let verify_path = "/acme/media.git/info/lfs/verify";
    let verify_body = json!({"oid": oid, "size": content.len()}).to_string();
    let (status, _, answer) = lfs(
        &server,
        "POST",
        verify_path,
        Some(&writer),
        verify_body.as_bytes(),
    );
    assert!(matches!(status, 404 | 422), "verify: {status} {answer}");
    let (status, _, answer) = batch(
        &server,
        "acme/media",
        None,
        "download",
        &[(&oid, content.len())],
    );
    assert_eq!(status, 200);
    assert_eq!(answer["objects"][0]["error"]["code"], 404, "{answer}");

    // The same URL with the right bytes works, and verify records them.
    let (put, body) = curl("PUT", href, &upload["header"], Some(&content));
    assert_eq!(put, 200, "{}", String::from_utf8_lossy(&body));
    let (status, _, answer) = lfs(
        &server,
        "POST",
        verify_path,
        Some(&writer),
        verify_body.as_bytes(),
    );
    assert_eq!(status, 200, "{answer}");
    let (_, _, answer) = batch(
        &server,
        "acme/media",
        None,
        "download",
        &[(&oid, content.len())],
    );
    let download = &answer["objects"][0]["actions"]["download"];
    let (status, body) = curl(
        "GET",
        download["href"].as_str().unwrap(),
        &download["header"],
        None,
    );
    assert_eq!(status, 200);
    assert!(body == content);
}

#[test]
fn verify_rehashes_content_the_store_did_not_check() {
    // Bytes written to the object's key without a checksum (as by a store that
    // ignores x-amz-checksum-sha256): verify must read and refuse them.
    let server = s3_server(|_| {});
    create(&server, "acme", "media", false);
    let writer = token(&server, "writer", "acme/media", "write");
    let content = incompressible(10_000, 5);
    let oid = sha256_hex(&content);
    let mut wrong = content.clone();
    wrong[9_999] ^= 0xff;
    let id = server.repo_id("acme", "media");
    let key = gitclaw_storage::ObjectKey::lfs(
        &gitclaw_storage::RepoId::new(&id).unwrap(),
        &gitclaw_storage::LfsOid::parse(&oid).unwrap(),
    );
    server
        .block_on(server.state.store.put(
            &key,
            bytes::Bytes::from(wrong),
            &gitclaw_storage::PutOptions::default(),
        ))
        .unwrap();
    let verify_body = json!({"oid": oid, "size": content.len()}).to_string();
    let (status, _, answer) = lfs(
        &server,
        "POST",
        "/acme/media.git/info/lfs/verify",
        Some(&writer),
        verify_body.as_bytes(),
    );
    assert_eq!(status, 422, "{answer}");
    assert!(
        answer["message"].as_str().unwrap().contains("SHA-256"),
        "{answer}"
    );
    // Refused content is deleted, and the object is not listed.
    assert!(lfs_keys(&server.stored_keys("acme", "media")).is_empty());
    let (_, _, answer) = batch(&server, "acme/media", None, "download", &[(&oid, 10_000)]);
    assert_eq!(answer["objects"][0]["error"]["code"], 404, "{answer}");
}

/// The store's refusal of a presigned request past its expiry.
fn assert_expired(status: u16, body: &[u8]) {
    let text = String::from_utf8_lossy(body);
    assert!(
        // AWS says "Request has expired" (403), Garage "Date is too old" (400).
        matches!(status, 400 | 403) && (text.contains("expired") || text.contains("too old")),
        "an expired presigned URL was not refused as expired: {status} {text}"
    );
}

#[test]
fn presigned_urls_expire() {
    const EXPIRY_SECS: u64 = 5;
    // Long enough that a fresh URL is used in time on a loaded machine (at 1 s,
    // a busy CI run once took longer between the batch and the PUT).
    let server = s3_server(|c| c.lfs.url_expiry = std::time::Duration::from_secs(EXPIRY_SECS));
    create(&server, "acme", "media", false);
    let writer = token(&server, "writer", "acme/media", "write");
    let content = incompressible(2048, 3);
    let oid = sha256_hex(&content);
    let (_, _, answer) = batch(
        &server,
        "acme/media",
        Some(&writer),
        "upload",
        &[(&oid, 2048)],
    );
    let upload = answer["objects"][0]["actions"]["upload"].clone();
    assert_eq!(upload["expires_in"], EXPIRY_SECS, "{upload}");
    std::thread::sleep(std::time::Duration::from_secs(EXPIRY_SECS + 2));
    let (status, body) = curl(
        "PUT",
        upload["href"].as_str().unwrap(),
        &upload["header"],
        Some(&content),
    );
    assert_expired(status, &body);
    // A fresh one works; its download URL expires as well.
    let (_, _, answer) = batch(
        &server,
        "acme/media",
        Some(&writer),
        "upload",
        &[(&oid, 2048)],
    );
    let upload = answer["objects"][0]["actions"]["upload"].clone();
    let (status, body) = curl(
        "PUT",
        upload["href"].as_str().unwrap(),
        &upload["header"],
        Some(&content),
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let body = json!({"oid": oid, "size": 2048}).to_string();
    let (status, _, _) = lfs(
        &server,
        "POST",
        "/acme/media/info/lfs/verify",
        Some(&writer),
        body.as_bytes(),
    );
    assert_eq!(status, 200);
    let (_, _, answer) = batch(&server, "acme/media", None, "download", &[(&oid, 2048)]);
    let download = answer["objects"][0]["actions"]["download"].clone();
    std::thread::sleep(std::time::Duration::from_secs(EXPIRY_SECS + 2));
    let (status, body) = curl(
        "GET",
        download["href"].as_str().unwrap(),
        &download["header"],
        None,
    );
    assert_expired(status, &body);
}

#[test]
fn private_repositories_need_the_token_for_batch_and_object_urls() {
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    create(&server, "acme", "secret", true);
    let writer = token(&server, "writer", "acme/secret", "write");
    let reader = token(&server, "reader", "acme/secret", "read");
    create(&server, "acme", "other", false);
    let outsider = token(&server, "outsider", "acme/other", "write");
    let content = incompressible(5000, 11);
    let oid = sha256_hex(&content);

    // No credentials: 401 asking for Basic, as git credential helpers expect.
    let (status, head, answer) = batch(&server, "acme/secret", None, "download", &[(&oid, 5000)]);
    assert_eq!(status, 401, "{answer}");
    let head = head.to_ascii_lowercase();
    assert!(head.contains("www-authenticate: basic"), "{head}");
    assert!(head.contains("lfs-authenticate: basic"), "{head}");
    assert!(head.contains("content-type: application/vnd.git-lfs+json"));
    // A token without a scope on it sees no such repository.
    let (status, _, _) = batch(
        &server,
        "acme/secret",
        Some(&outsider),
        "download",
        &[(&oid, 5000)],
    );
    assert_eq!(status, 404);
    // Read is not enough to upload.
    let (status, _, _) = batch(
        &server,
        "acme/secret",
        Some(&reader),
        "upload",
        &[(&oid, 5000)],
    );
    assert_eq!(status, 403);

    // The writer's upload goes to the server's URL with the writer's header.
    let (status, _, answer) = batch(
        &server,
        "acme/secret",
        Some(&writer),
        "upload",
        &[(&oid, 5000)],
    );
    assert_eq!(status, 200, "{answer}");
    let upload = &answer["objects"][0]["actions"]["upload"];
    let href = upload["href"].as_str().unwrap();
    let path = href.strip_prefix(&server.url).unwrap().to_string();
    assert_eq!(
        upload["header"]["Authorization"],
        format!("Bearer {writer}")
    );
    let (status, _) = http(server.addr, "PUT", &path, &[], &content);
    assert_eq!(status, 401, "an object URL without credentials");
    let reader_auth = format!("Bearer {reader}");
    let (status, _) = http(
        server.addr,
        "PUT",
        &path,
        &[("Authorization", reader_auth.as_str())],
        &content,
    );
    assert_eq!(status, 403, "a read token cannot upload");
    let writer_auth = format!("Bearer {writer}");
    let (status, body) = http(
        server.addr,
        "PUT",
        &path,
        &[("Authorization", writer_auth.as_str())],
        &content,
    );
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));

    // Downloads: the batch and the object URL both need the token.
    let (status, _) = http(server.addr, "GET", &path, &[], b"");
    assert_eq!(status, 401);
    let outsider_auth = format!("Bearer {outsider}");
    let (status, _) = http(
        server.addr,
        "GET",
        &path,
        &[("Authorization", outsider_auth.as_str())],
        b"",
    );
    assert_eq!(status, 404);
    let (status, _, answer) = batch(
        &server,
        "acme/secret",
        Some(&reader),
        "download",
        &[(&oid, 5000)],
    );
    assert_eq!(status, 200, "{answer}");
    let download = &answer["objects"][0]["actions"]["download"];
    assert_eq!(download["header"]["Authorization"], reader_auth);
    let (status, body) = http(
        server.addr,
        "GET",
        &path,
        &[("Authorization", reader_auth.as_str())],
        b"",
    );
    assert_eq!(status, 200);
    assert!(body == content);
}

#[test]
fn private_repositories_on_s3_need_the_token_and_get_presigned_urls() {
    let server = s3_server(|_| {});
    create(&server, "acme", "secret", true);
    let reader = token(&server, "reader", "acme/secret", "read");
    let oid = sha256_hex(b"x");
    let (status, head, _) = batch(&server, "acme/secret", None, "download", &[(&oid, 1)]);
    assert_eq!(status, 401);
    assert!(head
        .to_ascii_lowercase()
        .contains("www-authenticate: basic"));
    let (status, _, answer) = batch(
        &server,
        "acme/secret",
        Some(&reader),
        "download",
        &[(&oid, 1)],
    );
    assert_eq!(status, 200);
    assert_eq!(answer["objects"][0]["error"]["code"], 404);
}

#[test]
fn an_upload_through_the_server_that_does_not_match_its_oid_is_not_kept() {
    let server = Server::start_with(|c| c.lfs.max_object_bytes = MIB as u64);
    create_repo_at(server.addr, "acme", "media");
    let content = incompressible(4000, 1);
    let oid = sha256_hex(&content);
    let path = format!("/acme/media/info/lfs/objects/{oid}");
    let mut wrong = content.clone();
    wrong[10] ^= 1;
    let (status, body) = http(server.addr, "PUT", &path, &[], &wrong);
    assert_eq!(status, 422, "{}", String::from_utf8_lossy(&body));
    // A prefix of the content: not the oid's either.
    let (status, _) = http(server.addr, "PUT", &path, &[], &content[..100]);
    assert_eq!(status, 422);
    // Over the size limit.
    let big = incompressible(MIB + 1, 2);
    let big_path = format!("/acme/media/info/lfs/objects/{}", sha256_hex(&big));
    // (curl: the server answers before the body is all sent.)
    let url = format!("{}{big_path}", server.url);
    let (status, body) = curl("PUT", &url, &Value::Null, Some(&big));
    assert_eq!(status, 413, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("GITCLAW_LFS_MAX_OBJECT_BYTES"));
    // Nothing was kept, and nothing is listed.
    assert!(lfs_keys(&server.stored_keys("acme", "media")).is_empty());
    let scratch: Vec<_> = files_under(&server.state.scratch.dir);
    assert!(scratch.is_empty(), "scratch files left: {scratch:?}");
    let (_, _, answer) = batch(&server, "acme/media", None, "download", &[(&oid, 4000)]);
    assert_eq!(answer["objects"][0]["error"]["code"], 404);
    // The right bytes are kept (moved into place, no copy left behind) and served.
    let (status, _) = http(server.addr, "PUT", &path, &[], &content);
    assert_eq!(status, 200);
    assert!(files_under(&server.state.scratch.dir).is_empty());
    let (status, body) = http(server.addr, "GET", &path, &[], b"");
    assert_eq!(status, 200);
    assert!(body == content);
}

#[test]
fn bad_batch_requests_get_clear_refusals() {
    let server = Server::start_with(|c| c.lfs.max_object_bytes = MIB as u64);
    create_repo_at(server.addr, "acme", "media");
    let path = "/acme/media.git/info/lfs/objects/batch";
    let post = |body: &[u8]| lfs(&server, "POST", path, None, body);
    let good = "a".repeat(64);

    for (body, status, words) in [
        (b"{not json".to_vec(), 422, "malformed batch request"),
        (br#"{"operation":"upload"}"#.to_vec(), 422, "malformed"),
        (
            br#"{"operation":"delete","objects":[]}"#.to_vec(),
            422,
            "unknown operation",
        ),
        (
            br#"{"operation":"upload","transfers":["tus"],"objects":[]}"#.to_vec(),
            422,
            "basic",
        ),
        (
            br#"{"operation":"upload","hash_algo":"md5","objects":[]}"#.to_vec(),
            409,
            "sha256",
        ),
    ] {
        let (got, head, answer) = post(&body);
        assert_eq!(got, status, "{}: {answer}", String::from_utf8_lossy(&body));
        assert!(
            answer["message"].as_str().unwrap_or("").contains(words),
            "{answer}"
        );
        assert!(head
            .to_ascii_lowercase()
            .contains("application/vnd.git-lfs+json"));
    }
    // basic among others is fine.
    let body = json!({"operation": "upload", "transfers": ["tus", "basic"], "objects": [{"oid": good, "size": 3}]});
    let (status, _, answer) = post(body.to_string().as_bytes());
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["transfer"], "basic");

    // Per object: bad oids, bad sizes, too large; the others are answered.
    let body = json!({"operation": "upload", "objects": [
        {"oid": good, "size": 3},
        {"oid": good.to_uppercase(), "size": 3},
        {"oid": "../../etc/passwd", "size": 3},
        {"oid": good, "size": -1},
        {"oid": good, "size": 1e40},
        {"oid": good, "size": "3"},
        {"oid": good, "size": MIB + 1},
    ]});
    let (status, _, answer) = post(body.to_string().as_bytes());
    assert_eq!(status, 200, "{answer}");
    let codes: Vec<Value> = answer["objects"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["error"]["code"].clone())
        .collect();
    assert_eq!(
        codes,
        [
            Value::Null,
            json!(422),
            json!(422),
            json!(422),
            json!(422),
            json!(422),
            json!(422)
        ]
    );
    assert!(answer["objects"][6]["error"]["message"]
        .as_str()
        .unwrap()
        .contains("GITCLAW_LFS_MAX_OBJECT_BYTES"));

    // Too many objects, or too big a body: refused at once.
    let many: Vec<Value> = (0..1001).map(|_| json!({"oid": good, "size": 1})).collect();
    let body = json!({"operation": "download", "objects": many});
    let (status, _, answer) = post(body.to_string().as_bytes());
    assert_eq!(status, 413, "{answer}");
    assert!(answer["message"].as_str().unwrap().contains("1000"));
    let huge = format!(
        r#"{{"operation":"download","objects":[{}]}}"#,
        vec![r#"{"oid":"x","size":1}"#; 40_000].join(",")
    );
    let (status, _, answer) = post(huge.as_bytes());
    assert_eq!(status, 413, "{answer}");
    // 10k objects of a plausible size: refused, and the server still serves.
    let ten_k: Vec<Value> = (0..10_000)
        .map(|_| json!({"oid": good, "size": 1}))
        .collect();
    let (status, _, _) = post(
        json!({"operation": "upload", "objects": ten_k})
            .to_string()
            .as_bytes(),
    );
    assert_eq!(status, 413);
    let (status, _, _) = post(br#"{"operation":"download","objects":[]}"#);
    assert_eq!(status, 200);

    // Locks: bad paths and unknown ids.
    let locks = "/acme/media.git/info/lfs/locks";
    let (status, _, _) = lfs(&server, "POST", locks, None, br#"{"path":""}"#);
    assert_eq!(status, 422);
    let (status, _, _) = lfs(
        &server,
        "POST",
        &format!("{locks}/nope/unlock"),
        None,
        b"{}",
    );
    assert_eq!(status, 404);
    let (status, _, _) = lfs(&server, "GET", &format!("{locks}?limit=abc"), None, b"");
    assert_eq!(status, 422);
    let (status, _, _) = lfs(
        &server,
        "GET",
        &format!("{locks}?cursor=%27%20OR%201"),
        None,
        b"",
    );
    assert_eq!(status, 422);
}

/// Two clones with different tokens: a lock in one stops the other's push of
/// that file until it is unlocked; a lock held by someone else goes only by force.
#[test]
fn locks_stop_another_clones_push_until_unlocked() {
    need_git_lfs();
    let server = Server::start_with(|c| c.admin_token = Some(ADMIN.into()));
    create(&server, "acme", "game", false);
    let alice = token(&server, "alice", "acme/game", "write");
    let bob = token(&server, "bob", "acme/game", "write");
    let work = tempfile::tempdir().unwrap();
    let url = format!("{}/acme/game.git", server.url);
    let a = work.path().join("a");
    lfs_repo(&a, &url, Some(&alice));
    git_lfs(&a, &["track", "--lockable", "*.bin"]);
    write_files(&a, 1, &[("level.bin", 2000), ("other.bin", 2000)]);
    git(&a, &["add", "."]);
    git(&a, &["commit", "-q", "-m", "levels"]);
    git(&a, &["push", "-q", "origin", "main"]);
    let b = work.path().join("b");
    clone_lfs(work.path(), &url, &b, Some(&bob));
    git_lfs(&b, &["pull"]);
    // As git-lfs advises once it finds the locking API: without this it only
    // warns about locked files in a push.
    for clone in [&a, &b] {
        let key = format!("lfs.{url}/info/lfs.locksverify");
        git(clone, &["config", &key, "true"]);
    }

    // Alice locks level.bin; both see it, as hers.
    let locked = git_lfs(&a, &["lock", "level.bin"]);
    assert!(locked.contains("Locked level.bin"), "{locked}");
    let listed = git_lfs(&b, &["locks"]);
    assert!(
        listed.contains("level.bin") && listed.contains("alice"),
        "{listed}"
    );
    // Bob cannot lock it too.
    let out = git_output(&b, &["lfs", "lock", "level.bin"]);
    assert!(!out.status.success());

    // Bob's push of a change to it is refused by the pre-push lock check.
    std::fs::write(b.join("level.bin"), incompressible(2000, 42)).unwrap();
    git(&b, &["commit", "-q", "-am", "bob edits the level"]);
    let out = git_output(&b, &["push", "origin", "main"]);
    let stderr = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "push of a file locked by alice went through: {stderr}"
    );
    assert!(stderr.contains("level.bin"), "{stderr}");
    assert_eq!(
        git(&a, &["ls-remote", &url, "refs/heads/main"])
            .split('\t')
            .next(),
        Some(git(&a, &["rev-parse", "HEAD"]).trim()),
        "the ref did not move"
    );
    // Bob cannot unlock it without force.
    let out = git_output(&b, &["lfs", "unlock", "level.bin"]);
    assert!(!out.status.success());

    // Alice unlocks: Bob's push goes through.
    git_lfs(&a, &["unlock", "level.bin"]);
    let out = git_output(&b, &["push", "-q", "origin", "main"]);
    assert!(
        out.status.success(),
        "push after unlock: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Bob locks it; Alice removes his lock by force.
    git_lfs(&b, &["lock", "level.bin"]);
    let out = git_output(&a, &["lfs", "unlock", "level.bin"]);
    assert!(
        !out.status.success(),
        "unlocked someone else's lock without force"
    );
    git_lfs(&a, &["unlock", "--force", "level.bin"]);
    let listed = git_lfs(&a, &["locks"]);
    assert!(!listed.contains("level.bin"), "{listed}");

    // Paging and filters of the locks API.
    git_lfs(&a, &["lock", "level.bin"]);
    git_lfs(&a, &["lock", "other.bin"]);
    let path = "/acme/game.git/info/lfs/locks";
    let (status, _, page) = lfs(&server, "GET", &format!("{path}?limit=1"), None, b"");
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["locks"].as_array().unwrap().len(), 1);
    let cursor = page["next_cursor"]
        .as_str()
        .expect("a next page")
        .to_string();
    let (_, _, next) = lfs(
        &server,
        "GET",
        &format!("{path}?limit=1&cursor={cursor}"),
        None,
        b"",
    );
    assert_eq!(next["locks"].as_array().unwrap().len(), 1);
    assert!(next["next_cursor"].is_null(), "{next}");
    let (_, _, one) = lfs(&server, "GET", &format!("{path}?path=other.bin"), None, b"");
    assert_eq!(one["locks"][0]["path"], "other.bin");
    assert_eq!(one["locks"][0]["owner"]["name"], "alice");
    let id = one["locks"][0]["id"].as_str().unwrap();
    let (_, _, by_id) = lfs(&server, "GET", &format!("{path}?id={id}"), None, b"");
    assert_eq!(by_id["locks"][0]["path"], "other.bin");
    // Creating a taken lock: 409 with the lock that holds the path.
    let (status, _, conflict) = lfs(
        &server,
        "POST",
        path,
        Some(&bob),
        br#"{"path":"other.bin"}"#,
    );
    assert_eq!(status, 409, "{conflict}");
    assert_eq!(conflict["lock"]["id"], id);
    // Verify splits ours from theirs.
    let (status, _, verified) = lfs(
        &server,
        "POST",
        &format!("{path}/verify"),
        Some(&bob),
        b"{}",
    );
    assert_eq!(status, 200, "{verified}");
    assert_eq!(verified["ours"].as_array().unwrap().len(), 0);
    assert_eq!(verified["theirs"].as_array().unwrap().len(), 2);
    // Anonymous callers may list locks of a public repository, not take them.
    let (status, _, _) = lfs(&server, "POST", path, None, br#"{"path":"x.bin"}"#);
    assert_eq!(status, 401);
}

#[test]
fn fork_copies_lfs_objects_and_delete_removes_them() {
    need_git_lfs();
    for backend in BACKENDS {
        fork_and_delete_on(backend);
    }
}

fn fork_and_delete_on(backend: Backend) {
    let server = Server::start_with(|c| {
        use_backend(c, backend);
        c.admin_token = Some(ADMIN.into());
    });
    create(&server, "acme", "orig", false);
    let writer = token(&server, "writer", "acme/orig", "write");
    let work = tempfile::tempdir().unwrap();
    let src = work.path().join("src");
    lfs_repo(
        &src,
        &format!("{}/acme/orig.git", server.url),
        Some(&writer),
    );
    git_lfs(&src, &["track", "*.bin"]);
    let files = write_files(&src, 3, &[("one.bin", 3000), ("two.bin", 2 * MIB)]);
    git(&src, &["add", "."]);
    git(&src, &["commit", "-q", "-m", "data"]);
    git(&src, &["push", "-q", "origin", "main"]);

    let (status, answer) = api_request(
        &server,
        "POST",
        "/api/v1/repos/acme/orig/fork",
        Some(ADMIN),
        r#"{"owner":"beta","name":"copy"}"#,
    );
    assert_eq!(status, 201, "{answer}");
    let (_, stats) = api_request(
        &server,
        "GET",
        "/api/v1/repos/beta/copy/stats",
        Some(ADMIN),
        "",
    );
    assert_eq!(stats["lfs_objects"], 2, "{stats}");
    let orig_id = server.repo_id("acme", "orig");
    let orig_keys = lfs_keys(&server.stored_keys("acme", "orig"));
    assert_eq!(orig_keys.len(), 2);
    let fork_id = server.repo_id("beta", "copy");
    let fork_keys: Vec<String> = orig_keys
        .iter()
        .map(|k| k.replacen(&orig_id, &fork_id, 1))
        .collect();
    assert_eq!(lfs_keys(&server.stored_keys("beta", "copy")), fork_keys);

    // Deleting the source removes its objects; the fork keeps its own.
    let (status, _) = api_request(
        &server,
        "DELETE",
        "/api/v1/repos/acme/orig",
        Some(ADMIN),
        "",
    );
    assert_eq!(status, 204);
    let left = server.block_on(
        server
            .state
            .store
            .list(&gitclaw_storage::RepoId::new(&orig_id).unwrap().prefix()),
    );
    assert!(left.unwrap().is_empty());
    let rows = server
        .block_on(server.state.meta.list_lfs_objects(&orig_id))
        .unwrap();
    assert!(rows.is_empty(), "{rows:?}");
    let dst = work.path().join("dst");
    clone_lfs(
        work.path(),
        &format!("{}/beta/copy", server.url),
        &dst,
        None,
    );
    git_lfs(&dst, &["pull"]);
    for (name, data) in &files {
        assert!(std::fs::read(dst.join(name)).unwrap() == *data, "{name}");
    }
}

#[test]
fn the_sweep_removes_uploads_never_verified_and_keeps_recorded_objects() {
    let server = Server::start_with(|c| c.gc.grace_secs = 0);
    create_repo_at(server.addr, "acme", "media");
    // One object uploaded and recorded through the server.
    let kept = incompressible(3000, 8);
    let kept_oid = sha256_hex(&kept);
    let path = format!("/acme/media/info/lfs/objects/{kept_oid}");
    assert_eq!(http(server.addr, "PUT", &path, &[], &kept).0, 200);
    // One written to its key but never verified (as a client that uploaded
    // to the bucket and never called verify leaves it).
    let stray = incompressible(3000, 10);
    let stray_oid = sha256_hex(&stray);
    let repo = server
        .block_on(server.state.meta.get_repo("acme", "media"))
        .unwrap()
        .unwrap();
    let key = gitclaw_storage::ObjectKey::lfs(
        &gitclaw_storage::RepoId::new(&repo.id).unwrap(),
        &gitclaw_storage::LfsOid::parse(&stray_oid).unwrap(),
    );
    server
        .block_on(server.state.store.put(
            &key,
            bytes::Bytes::from(stray),
            &gitclaw_storage::PutOptions::default(),
        ))
        .unwrap();
    let before = lfs_keys(&server.stored_keys("acme", "media"));
    assert_eq!(before.len(), 2, "{before:?}");
    let swept = server
        .block_on(gitclaw_server::service::sweep::sweep_repo(
            &server.state,
            &repo,
        ))
        .unwrap();
    assert_eq!(swept.deleted, 1, "{swept:?}");
    let left = lfs_keys(&server.stored_keys("acme", "media"));
    assert_eq!(left.len(), 1);
    assert!(left[0].ends_with(&kept_oid), "{left:?}");
}

#[test]
fn objects_above_a_single_s3_put_are_refused_whatever_the_limit() {
    let server = s3_server(|c| c.lfs.max_object_bytes = 10 << 30);
    create(&server, "acme", "media", false);
    let writer = token(&server, "writer", "acme/media", "write");
    let oid = "b".repeat(64);
    let sizes = [(oid.as_str(), 5 << 30), (oid.as_str(), (5 << 30) + 1)];
    let (status, _, answer) = batch(&server, "acme/media", Some(&writer), "upload", &sizes);
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["objects"][0]["actions"]["upload"].is_object(),
        "{answer}"
    );
    let refused = &answer["objects"][1]["error"];
    assert_eq!(refused["code"], 422, "{answer}");
    assert!(
        refused["message"].as_str().unwrap().contains("5 GiB"),
        "{answer}"
    );
}
